//! The dashboard's guard, run before every handler: the token, the `Host` check that
//! stops DNS rebinding, and the cross-site checks on control requests. It also adds
//! the security headers to every response.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::Hub;

/// The cookie a `?token=` visit sets is this, then the port: cookies do not keep
/// ports apart, and two dashboards on one host must not overwrite each other's token.
pub(crate) const TOKEN_COOKIE: &str = "swarm_token_";
/// The header every control request must carry; a cross-site form cannot send it, and
/// a cross-site script cannot send it without a CORS preflight, which is never granted.
pub(crate) const CONTROL_HEADER: &str = "x-swarm-request";
/// A header scripts may use to send the token.
pub(crate) const TOKEN_HEADER: &str = "x-swarm-token";

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; \
                   base-uri 'none'; form-action 'none'";

pub(crate) async fn guard(State(hub): State<Arc<Hub>>, req: Request, next: Next) -> Response {
    let mut response = match check(&hub, &req) {
        Ok(Some(redirect)) => redirect,
        Ok(None) => next.run(req).await,
        Err((status, message)) => (status, message).into_response(),
    };
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

type Refusal = (StatusCode, &'static str);

/// `Ok(Some(_))`: answer with this instead (the redirect after a `?token=` visit).
fn check(hub: &Hub, req: &Request) -> Result<Option<Response>, Refusal> {
    let headers = req.headers();
    match &hub.token {
        None => {
            if !host_is_loopback(headers) {
                return Err((
                    StatusCode::FORBIDDEN,
                    "forbidden: this dashboard answers only to a loopback host name",
                ));
            }
        }
        Some(token) => {
            let from_query = query_token(req.uri());
            let presented = from_query
                .clone()
                .or_else(|| cookie_token(headers, &cookie_name(headers)))
                .or_else(|| header_token(headers));
            match presented {
                Some(t) if same(&t, token) => {
                    if from_query.is_some() && req.method() == Method::GET {
                        let name = cookie_name(headers);
                        return Ok(Some(set_cookie_and_redirect(req.uri(), &name, token)));
                    }
                }
                Some(_) => return Err((StatusCode::UNAUTHORIZED, "unauthorized: wrong token")),
                None => {
                    return Err((
                        StatusCode::UNAUTHORIZED,
                        "unauthorized: open the URL with ?token=... (see --ui-token)",
                    ));
                }
            }
        }
    }
    if req.method() == Method::POST {
        if !headers.contains_key(CONTROL_HEADER) {
            return Err((
                StatusCode::FORBIDDEN,
                "forbidden: control requests need the X-Swarm-Request header",
            ));
        }
        let json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if !json {
            return Err((
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "control requests must be JSON",
            ));
        }
        if !same_origin(headers) {
            return Err((StatusCode::FORBIDDEN, "forbidden: cross-origin request"));
        }
    }
    Ok(None)
}

/// Compares in time independent of where the first difference is.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn query_token(uri: &Uri) -> Option<String> {
    url::form_urlencoded::parse(uri.query()?.as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
}

/// `swarm_token_<port>`, the port taken from the `Host` header.
fn cookie_name(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let port = match host.strip_prefix('[') {
        Some(v6) => v6.split_once("]:").map(|(_, p)| p),
        None => host.rsplit_once(':').map(|(_, p)| p),
    }
    .unwrap_or("80");
    let port: String = port.chars().filter(char::is_ascii_digit).collect();
    format!("{TOKEN_COOKIE}{port}")
}

fn cookie_token(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then(|| token_from_cookie(v))
        })
}

/// The token as the cookie holds it: form-urlencoded, since a token may hold
/// characters a cookie value cannot (spaces, `;`, `,`, `"`).
fn cookie_value(token: &str) -> String {
    url::form_urlencoded::byte_serialize(token.as_bytes()).collect()
}

/// Undoes [`cookie_value`]. Its output has no raw `&` or `=`, so it parses as one key;
/// a value with either was not set by us and is compared as it is.
fn token_from_cookie(value: &str) -> String {
    if value.contains(['&', '=']) {
        return value.to_string();
    }
    url::form_urlencoded::parse(value.as_bytes())
        .next()
        .map(|(k, _)| k.into_owned())
        .unwrap_or_default()
}

fn header_token(headers: &HeaderMap) -> Option<String> {
    if let Some(v) = headers.get(TOKEN_HEADER).and_then(|v| v.to_str().ok()) {
        return Some(v.to_string());
    }
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string)
}

/// Sets the token cookie and sends the browser to the same URL without the token, so
/// it does not linger in the address bar and history.
fn set_cookie_and_redirect(uri: &Uri, cookie_name: &str, token: &str) -> Response {
    let rest: Vec<(String, String)> = uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .filter(|(k, _)| k != "token")
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default();
    let mut location = uri.path().to_string();
    if !rest.is_empty() {
        location.push('?');
        location.push_str(
            &url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(rest)
                .finish(),
        );
    }
    let cookie = format!(
        "{cookie_name}={}; Path=/; HttpOnly; SameSite=Strict",
        cookie_value(token)
    );
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, location), (header::SET_COOKIE, cookie)],
    )
        .into_response()
}

fn host_name(headers: &HeaderMap) -> Option<&str> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    Some(match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    })
}

fn host_is_loopback(headers: &HeaderMap) -> bool {
    match host_name(headers) {
        Some(h) if h.eq_ignore_ascii_case("localhost") => true,
        Some(h) => h.parse::<std::net::IpAddr>().is_ok_and(super::is_loopback),
        None => false,
    }
}

/// A present `Origin` must be this server (`http://<Host>`); browsers send it on every
/// cross-origin POST, so a foreign page is refused even if it could send the headers.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    origin == format!("http://{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn hosts() {
        for ok in [
            "127.0.0.1:8089",
            "localhost:1",
            "[::1]:80",
            "127.3.4.5",
            "LOCALHOST",
        ] {
            assert!(host_is_loopback(&headers(&[("host", ok)])), "{ok}");
        }
        for bad in [
            "evil.example:8089",
            "10.0.0.1:80",
            "127.0.0.1.evil.example",
            "",
        ] {
            assert!(!host_is_loopback(&headers(&[("host", bad)])), "{bad}");
        }
        assert!(!host_is_loopback(&HeaderMap::new()));
    }

    #[test]
    fn tokens_from_cookie_and_headers() {
        let h = headers(&[
            ("host", "127.0.0.1:8089"),
            (
                "cookie",
                "a=b; swarm_token_9000=other; swarm_token_8089=s3cret; c=d",
            ),
        ]);
        assert_eq!(cookie_name(&h), "swarm_token_8089");
        assert_eq!(
            cookie_token(&h, &cookie_name(&h)).as_deref(),
            Some("s3cret")
        );
        let v6 = headers(&[("host", "[::1]:7000")]);
        assert_eq!(cookie_name(&v6), "swarm_token_7000");
        assert_eq!(
            cookie_name(&headers(&[("host", "[::1]")])),
            "swarm_token_80"
        );
        assert_eq!(
            cookie_name(&headers(&[("host", "localhost")])),
            "swarm_token_80"
        );
        let h = headers(&[("authorization", "Bearer abc")]);
        assert_eq!(header_token(&h).as_deref(), Some("abc"));
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "abcd"));
    }

    #[test]
    fn cookie_tokens_round_trip() {
        for token in ["tok3n", "a/b+c=", "with space", "100%", "x;y,\"z\"", "é"] {
            let value = cookie_value(token);
            assert!(!value.contains([' ', ';', ',', '"', '=', '&']), "{value}");
            let h = headers(&[("cookie", &format!("a=b; swarm_token_80={value}"))]);
            assert_eq!(
                cookie_token(&h, "swarm_token_80").as_deref(),
                Some(token),
                "{value}"
            );
        }
    }

    #[test]
    fn origins() {
        let h = headers(&[
            ("host", "127.0.0.1:8089"),
            ("origin", "http://127.0.0.1:8089"),
        ]);
        assert!(same_origin(&h));
        let h = headers(&[
            ("host", "127.0.0.1:8089"),
            ("origin", "http://evil.example"),
        ]);
        assert!(!same_origin(&h));
        assert!(same_origin(&headers(&[("host", "127.0.0.1:8089")])));
    }
}
