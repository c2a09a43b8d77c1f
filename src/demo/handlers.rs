//! The demo shop's HTTP endpoints (the table in the plan-format design).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::catalog;

/// Longest pause `/slow` grants, so a typo cannot hang a client for hours.
const MAX_SLOW_MS: u64 = 60_000;

/// `/capacity` serves this many requests at a time...
pub const CAPACITY_SLOTS: usize = 8;
/// ...each taking this long, and queues the rest: a known capacity of
/// `CAPACITY_SLOTS * 1000 / CAPACITY_MS` = 400 requests/s, past which latency grows
/// without bound. A capacity search against it has a real knee to find.
pub const CAPACITY_MS: u64 = 20;

/// Signs and checks tokens. The key is random per server, so tokens from another
/// server (or a restarted one) are refused, as a real shop would.
#[derive(Clone)]
struct Keys(Arc<RandomState>);

/// The demo's shared state: the token key, and the slots of `/capacity`.
#[derive(Clone)]
struct Shop {
    keys: Keys,
    capacity: Arc<tokio::sync::Semaphore>,
}

impl axum::extract::FromRef<Shop> for Keys {
    fn from_ref(shop: &Shop) -> Keys {
        shop.keys.clone()
    }
}

impl Keys {
    fn mac(&self, user_hex: &str, nonce: &str) -> u64 {
        self.0.hash_one((user_hex, nonce, "swarm-demo"))
    }

    /// A new token for `user`: `hex(user).nonce.mac`.
    fn issue(&self, user: &str) -> String {
        let user_hex: String = user.bytes().map(|b| format!("{b:02x}")).collect();
        let nonce = format!("{:016x}", rand::random::<u64>());
        let mac = self.mac(&user_hex, &nonce);
        format!("{user_hex}.{nonce}.{mac:016x}")
    }

    /// The user a token was issued to, if it is genuine.
    fn verify(&self, token: &str) -> Option<String> {
        let mut parts = token.trim().split('.');
        let (user_hex, nonce, mac) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || u64::from_str_radix(mac, 16).ok()? != self.mac(user_hex, nonce)
        {
            return None;
        }
        let bytes = (0..user_hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(user_hex.get(i..i + 2)?, 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        String::from_utf8(bytes).ok()
    }
}

pub(super) fn router() -> Router {
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/login", post(login))
        .route("/me", get(me))
        .route("/products", get(products))
        .route("/products/{id}", get(product))
        .route("/cart", post(cart))
        .route("/slow", get(slow))
        .route("/flaky", get(flaky))
        .route("/status/{code}", get(status))
        .route("/capacity", get(capacity))
        .route("/ws", get(super::ws::upgrade))
        .with_state(Shop {
            keys: Keys(Arc::new(RandomState::new())),
            capacity: Arc::new(tokio::sync::Semaphore::new(CAPACITY_SLOTS)),
        })
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

fn parse_json(body: &Bytes) -> Result<Value, Box<Response>> {
    serde_json::from_slice(body)
        .map_err(|_| Box::new(error(StatusCode::BAD_REQUEST, "body is not JSON")))
}

async fn login(State(keys): State<Keys>, body: Bytes) -> Response {
    let body = match parse_json(&body) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let field = |name: &str| match body.get(name) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    let (user, password) = (field("user"), field("password"));
    if password.is_empty() {
        return error(StatusCode::UNAUTHORIZED, "wrong user or password");
    }
    let token = keys.issue(&user);
    let cookie = format!(
        "session={}; Path=/; HttpOnly; SameSite=Lax",
        keys.issue(&user)
    );
    (
        [(header::SET_COOKIE, cookie)],
        axum::Json(json!({ "token": token, "user": user })),
    )
        .into_response()
}

fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix("session="))
}

async fn me(State(keys): State<Keys>, headers: HeaderMap) -> Response {
    match session_cookie(&headers).and_then(|s| keys.verify(s)) {
        Some(user) => axum::Json(json!({ "user": user })).into_response(),
        None => error(StatusCode::UNAUTHORIZED, "no valid session cookie"),
    }
}

async fn products(Query(q): Query<HashMap<String, String>>) -> Response {
    let page = match q.get("page").map(|p| p.trim().parse::<u64>()) {
        None => 1,
        Some(Ok(p)) if p >= 1 => p,
        Some(_) => return error(StatusCode::BAD_REQUEST, "page must be a number from 1"),
    };
    let items = catalog::page(page);
    axum::Json(json!({ "page": page, "items": items, "total": catalog::PRODUCTS })).into_response()
}

async fn product(Path(id): Path<String>) -> Response {
    match id.parse::<u64>().ok().and_then(catalog::product) {
        Some(p) => axum::Json(p).into_response(),
        None => error(StatusCode::NOT_FOUND, "no such product"),
    }
}

async fn cart(State(keys): State<Keys>, headers: HeaderMap, body: Bytes) -> Response {
    let authorized = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|t| keys.verify(t))
        .is_some();
    if !authorized {
        return error(StatusCode::UNAUTHORIZED, "a valid bearer token is required");
    }
    let body = match parse_json(&body) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let product = body.get("product").cloned().unwrap_or(Value::Null);
    if product.is_null() {
        return error(StatusCode::BAD_REQUEST, "product is required");
    }
    let qty = body.get("qty").cloned().unwrap_or(json!(1));
    // From the thread's generator: no system call per cart.
    let cart_id = uuid::Builder::from_random_bytes(rand::random())
        .into_uuid()
        .to_string();
    (
        StatusCode::CREATED,
        axum::Json(json!({ "cart_id": cart_id, "items": [{ "product": product, "qty": qty }] })),
    )
        .into_response()
}

async fn slow(Query(q): Query<HashMap<String, String>>) -> Response {
    let ms = match q.get("ms").map(|v| v.trim().parse::<u64>()) {
        None => 0,
        Some(Ok(ms)) => ms.min(MAX_SLOW_MS),
        Some(Err(_)) => return error(StatusCode::BAD_REQUEST, "ms must be a number"),
    };
    tokio::time::sleep(Duration::from_millis(ms)).await;
    axum::Json(json!({ "slept_ms": ms })).into_response()
}

/// Waits for one of the [`CAPACITY_SLOTS`] slots (in arrival order: tokio's semaphore
/// is fair), holds it for [`CAPACITY_MS`], and reports how long it queued.
async fn capacity(State(shop): State<Shop>) -> Response {
    let arrived = tokio::time::Instant::now();
    let Ok(_slot) = shop.capacity.acquire().await else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    };
    let queued_ms = arrived.elapsed().as_millis() as u64;
    tokio::time::sleep(Duration::from_millis(CAPACITY_MS)).await;
    axum::Json(json!({ "queued_ms": queued_ms, "served_ms": CAPACITY_MS })).into_response()
}

async fn flaky(Query(q): Query<HashMap<String, String>>) -> Response {
    let p = match q.get("fail").map(|v| v.trim().parse::<f64>()) {
        None => 0.5,
        Some(Ok(p)) if p.is_finite() => p.clamp(0.0, 1.0),
        Some(_) => return error(StatusCode::BAD_REQUEST, "fail must be a probability"),
    };
    if rand::random_bool(p) {
        error(StatusCode::INTERNAL_SERVER_ERROR, "flaky failure")
    } else {
        axum::Json(json!({ "ok": true })).into_response()
    }
}

async fn status(Path(code): Path<String>) -> Response {
    match code.parse::<u16>().ok().filter(|c| (200..=599).contains(c)) {
        Some(c) => {
            let status = StatusCode::from_u16(c).unwrap_or(StatusCode::OK);
            if matches!(c, 204 | 205 | 304) {
                status.into_response()
            } else {
                (status, status.to_string()).into_response()
            }
        }
        None => error(StatusCode::BAD_REQUEST, "status must be 200 to 599"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_and_forgeries_do_not() {
        let keys = Keys(Arc::new(RandomState::new()));
        let token = keys.issue("alice");
        assert_eq!(keys.verify(&token).as_deref(), Some("alice"));
        assert_ne!(token, keys.issue("alice"), "each login gets a fresh token");
        let other = Keys(Arc::new(RandomState::new()));
        assert_eq!(other.verify(&token), None);
        assert_eq!(keys.verify("616c696365.00.00"), None);
        assert_eq!(keys.verify(""), None);
        assert_eq!(keys.verify("zz.zz.zz.zz"), None);
    }
}

#[cfg(test)]
mod capacity_tests {
    use std::time::Instant;

    use super::*;

    /// `/capacity` never serves more than its slots at once: 80 requests sent together
    /// take at least 80 / 8 slots x 20 ms = 200 ms, however fast the machine. (Without
    /// the semaphore they all finish in about 20 ms.) Only a lower bound is asserted.
    #[tokio::test]
    async fn capacity_serves_a_fixed_number_at_a_time() {
        let server = crate::demo::start("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let addr = server.addr;
        let n = 10 * CAPACITY_SLOTS as u64;
        let started = Instant::now();
        let answers = futures_util::future::join_all((0..n).map(|_| async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
            conn.write_all(b"GET /capacity HTTP/1.1\r\nhost: demo\r\nconnection: close\r\n\r\n")
                .await
                .expect("send");
            let mut answer = String::new();
            conn.read_to_string(&mut answer).await.expect("answer");
            answer
        }))
        .await;
        for a in &answers {
            assert!(a.starts_with("HTTP/1.1 200"), "{a}");
            assert!(a.contains(&format!("\"served_ms\":{CAPACITY_MS}")), "{a}");
        }
        let elapsed = started.elapsed();
        let floor = Duration::from_millis(n / CAPACITY_SLOTS as u64 * CAPACITY_MS);
        assert!(
            elapsed >= floor,
            "{n} requests in {elapsed:?}, under {floor:?}"
        );
    }
}
