//! Loopback targets and builders for hand-made request steps.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query};
use axum::response::{IntoResponse, Redirect};
use axum::routing::{any, get, post};
use http::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use http::{HeaderMap, HeaderName, Method, StatusCode};
use serde_json::{Value, json};
use swarm::compile::graph::*;
use swarm::engine::config::{EngineConfig, HttpConfig, Implementation};
use swarm::engine::request::{Outcome, VuContext, execute};
use swarm::engine::session::Protocols;
use swarm::testing::TestPlan;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

pub const T: Duration = Duration::from_secs(5);

/// Serves `app` on a free loopback port.
pub async fn serve(app: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
    });
    addr
}

/// The test target: a small API exercising every feature of the pipeline.
pub fn app(hits: Arc<AtomicUsize>) -> Router {
    Router::new()
        .route("/hello", get(|| async { "hello world" }))
        .route(
            "/set",
            get(|Query(q): Query<HashMap<String, String>>| async move {
                let user = q.get("u").cloned().unwrap_or_default();
                ([(SET_COOKIE, format!("session={user}; Path=/"))], "set")
            }),
        )
        .route(
            "/me",
            get(|headers: HeaderMap| async move { header(&headers, COOKIE) }),
        )
        .route(
            "/login",
            post(|axum::Json(v): axum::Json<Value>| async move {
                match (v["user"].as_str(), v["password"].as_str()) {
                    (Some(user), Some(pw)) if !pw.is_empty() => (
                        StatusCode::OK,
                        axum::Json(json!({ "token": format!("T-{user}") })),
                    ),
                    (Some(_), Some(_)) => (StatusCode::OK, axum::Json(json!({ "error": "no" }))),
                    _ => (StatusCode::BAD_REQUEST, axum::Json(json!({}))),
                }
            }),
        )
        .route(
            "/cart",
            get(|headers: HeaderMap| async move {
                if header(&headers, AUTHORIZATION) == "Bearer T-alice" {
                    (StatusCode::OK, "cart")
                } else {
                    (StatusCode::UNAUTHORIZED, "no")
                }
            }),
        )
        .route(
            "/status/{code}",
            get(|Path(code): Path<u16>| async move {
                StatusCode::from_u16(code).unwrap_or(StatusCode::IM_A_TEAPOT)
            }),
        )
        .route(
            "/echo",
            any(
                |method: Method, uri: http::Uri, headers: HeaderMap, body: Bytes| async move {
                    axum::Json(json!({
                        "method": method.as_str(),
                        "query": uri.query(),
                        "content_type": header(&headers, CONTENT_TYPE),
                        "x_token": header(&headers, HeaderName::from_static("x-token")),
                        "user_agent": header(&headers, http::header::USER_AGENT),
                        "authorization": header(&headers, AUTHORIZATION),
                        "cookies": headers
                            .get_all(COOKIE)
                            .iter()
                            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                            .collect::<Vec<_>>(),
                        "body": String::from_utf8_lossy(&body),
                    }))
                },
            ),
        )
        .route(
            "/page",
            get(|| async {
                (
                    [("etag", "\"v7\"")],
                    r#"<form><input name="csrf" value="c-123"></form>"#,
                )
            }),
        )
        .route(
            "/r/{n}",
            get(|Path(n): Path<u32>| async move {
                if n == 0 {
                    "done".into_response()
                } else {
                    Redirect::to(&format!("/r/{}", n - 1)).into_response()
                }
            }),
        )
        .route("/big", get(|| async { vec![b'x'; 2 * 1024 * 1024] }))
        .route(
            "/port",
            get(
                |ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.port().to_string() },
            ),
        )
        .route(
            "/counted",
            get(move || {
                hits.fetch_add(1, Ordering::SeqCst);
                async { "counted" }
            }),
        )
        .route(
            "/redirect/{code}",
            any(|Path(code): Path<u16>| async move {
                let status = StatusCode::from_u16(code).unwrap_or(StatusCode::FOUND);
                (status, [(LOCATION, "/echo")])
            }),
        )
        .route(
            "/redirect-to",
            get(|Query(q): Query<HashMap<String, String>>| async move {
                let to = q.get("to").cloned().unwrap_or_default();
                (StatusCode::FOUND, [(LOCATION, to)])
            }),
        )
        .route(
            "/login-redirect",
            get(|| async {
                (
                    StatusCode::SEE_OTHER,
                    [(SET_COOKIE, "hop=1; Path=/"), (LOCATION, "/me")],
                )
            }),
        )
        .route(
            "/a/set",
            get(|| async { ([(SET_COOKIE, "scoped=1; Path=/a")], "set") }),
        )
        .route(
            "/{dir}/me",
            get(|headers: HeaderMap| async move { header(&headers, COOKIE) }),
        )
}

pub fn header(headers: &HeaderMap, name: HeaderName) -> String {
    headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default()
}

/// A raw TCP target that runs `behave` on each accepted connection.
pub async fn raw<F, Fut>(behave: F) -> SocketAddr
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(behave(stream));
        }
    });
    addr
}

/// Reads (some of) the request so the client has finished writing.
pub async fn read_request(stream: &mut tokio::net::TcpStream) {
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buf)).await;
}

/// A plan whose capture slots are `slots`, in order (the steps under test are built
/// by hand and refer to them by index).
pub fn plan(slots: &[&str]) -> CompiledPlan {
    let captures: Vec<String> = slots.iter().map(|s| format!("{s}: '$.{s}'")).collect();
    let step = if captures.is_empty() {
        "- get: /".to_string()
    } else {
        format!("- get: /\n  capture: {{ {} }}", captures.join(", "))
    };
    let plan = TestPlan::new()
        .target("http://127.0.0.1")
        .flow(&step)
        .compile();
    let names: Vec<&str> = plan.slots.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, slots, "the slots in order");
    plan
}

pub fn step(method: Method, url: impl Into<String>) -> Call {
    Call {
        request: RequestId(0),
        timeout: T,
        expect: Expect::default(),
        captures: Vec::new(),
        feeders: Vec::new(),
        kind: CallKind::Http(HttpCall {
            method,
            url: Template::literal(url),
            headers: Vec::new(),
            query: Vec::new(),
            body: None,
            fixed: Default::default(),
        }),
    }
}

/// The HTTP parts of a call made by [`step`].
pub fn http(call: &mut Call) -> &mut HttpCall {
    match &mut call.kind {
        CallKind::Http(http) => http,
        other => panic!("expected an HTTP call, got {other:?}"),
    }
}

pub struct Env {
    pub protocols: Protocols,
    pub plan: CompiledPlan,
}

impl Env {
    pub fn new(imp: Implementation, slots: &[&str]) -> Env {
        Env::with_config(imp, slots, HttpConfig::default())
    }
    /// Users get `imp` as their client, whatever `http.client` says.
    pub fn with_config(imp: Implementation, slots: &[&str], http: HttpConfig) -> Env {
        let config = EngineConfig {
            http: HttpConfig {
                client: imp,
                ..http
            },
            ..EngineConfig::default()
        };
        Env {
            protocols: Protocols::new(&config).unwrap(),
            plan: plan(slots),
        }
    }
    pub fn user(&self, n: u32) -> VuContext {
        VuContext::new(n, &self.plan, &self.protocols)
    }
    pub async fn run(&self, s: &Call, ctx: &mut VuContext) -> Outcome {
        tokio::time::timeout(Duration::from_secs(20), execute(s, ctx, Instant::now()))
            .await
            .expect("execute is bounded by the request timeout")
    }
}

pub fn tpl(segments: Vec<Segment>) -> Template {
    Template { segments }
}

pub fn lit(s: &str) -> Segment {
    Segment::Literal(s.into())
}

pub fn url(addr: SocketAddr, path: &str) -> String {
    format!("http://{addr}{path}")
}

/// The echo server's view of a request.
pub fn echoed(ctx: &VuContext, slot: usize) -> Value {
    ctx.slots[slot].clone().expect("echo captured")
}

pub fn capture_all(slot: u32) -> Capture {
    Capture {
        id: CaptureId(slot),
        slot: SlotId(slot),
        source: CaptureSource::Json(swarm::compile::jsonpath::JsonPath::parse("$").unwrap()),
    }
}

pub async fn target() -> (SocketAddr, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    (serve(app(hits.clone())).await, hits)
}

/// A TLS target with the self-signed certificate in `tests/fixtures`, answering `ok`.
pub async fn tls_target() -> SocketAddr {
    tls_target_recording().await.0
}

/// [`tls_target`], also recording each handshake: full, or resumed from an earlier
/// session.
pub async fn tls_target_recording() -> (SocketAddr, Arc<Mutex<Vec<rustls::HandshakeKind>>>) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let cert = CertificateDer::from_pem_file(dir.join("localhost.crt")).unwrap();
    let key = PrivateKeyDer::from_pem_file(dir.join("localhost.key")).unwrap();
    tls_serve(vec![cert], key).await
}

/// A TLS target presenting `chain`, answering `ok` to one request per connection.
pub async fn tls_serve(
    chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
) -> (SocketAddr, Arc<Mutex<Vec<rustls::HandshakeKind>>>) {
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let kinds = Arc::new(Mutex::new(Vec::new()));
    let seen = kinds.clone();
    let addr = raw(move |stream| {
        let (acceptor, seen) = (acceptor.clone(), seen.clone());
        async move {
            let Ok(mut tls) = acceptor.accept(stream).await else {
                return;
            };
            if let Some(kind) = tls.get_ref().1.handshake_kind() {
                seen.lock().unwrap().push(kind);
            }
            let mut buf = [0u8; 4096];
            let _ = tokio::time::timeout(Duration::from_secs(2), tls.read(&mut buf)).await;
            let _ = tls
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                .await;
            let _ = tls.flush().await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    (addr, kinds)
}

/// A test certificate authority, made fresh for each test (rcgen).
pub struct TestCa {
    pub cert: rustls::pki_types::CertificateDer<'static>,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl TestCa {
    pub fn new() -> TestCa {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "swarm test CA");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap().der().clone();
        TestCa {
            cert,
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    /// A server certificate for `name`, signed by this CA: current, or `expired`
    /// (valid only in 2000).
    pub fn leaf(
        &self,
        name: &str,
        expired: bool,
    ) -> (
        Vec<rustls::pki_types::CertificateDer<'static>>,
        rustls::pki_types::PrivateKeyDer<'static>,
    ) {
        let mut params = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap();
        if expired {
            params.not_before = rcgen::date_time_ymd(2000, 1, 1);
            params.not_after = rcgen::date_time_ymd(2000, 12, 31);
        }
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap().der().clone();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
        (vec![cert], key)
    }
}
