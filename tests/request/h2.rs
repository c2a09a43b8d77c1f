//! HTTP/2 (`http.version`) against real hyper servers on loopback: over TLS with ALPN,
//! cleartext with prior knowledge (`h2c`), falling back to HTTP/1.1, and refused
//! where HTTP/2 is required. The server records the version of every request it
//! answers, so each test checks what was spoken on the server's side, not only what
//! the client reports.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Version};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use swarm::engine::config::{HttpConfig, HttpVersion};
use swarm::engine::http::Implementation;
use swarm::metrics::failure::{FailureKind, ProtocolFailure, TransportFailure};
use swarm::metrics::stats::HttpVersionUsed;
use tokio::net::TcpListener;

use crate::support::*;

/// What a test server saw: the version of each request, and the connections.
#[derive(Clone, Default)]
struct Seen {
    versions: Arc<Mutex<Vec<Version>>>,
    connections: Arc<AtomicUsize>,
}

impl Seen {
    fn versions(&self) -> Vec<Version> {
        self.versions.lock().unwrap().clone()
    }
}

/// Which protocols a test server speaks.
#[derive(Clone, Copy)]
enum Speaks {
    /// HTTP/1.1 and HTTP/2 (by ALPN over TLS, by the connection preface on cleartext).
    Both,
    /// HTTP/1.1 only; over TLS, ALPN offers only `http/1.1`.
    Http1,
    /// HTTP/1.1 only, over TLS without ALPN at all.
    Http1NoAlpn,
}

/// The answers: `/` says `ok`, `/set` sets a cookie, `/me` echoes the cookie,
/// `/r` redirects to `/me`, `/big` is 64 KiB, `/big-head` has a 20 KiB header and
/// `/slow` answers after 5 s.
async fn answer(req: http::Request<Incoming>, seen: Seen) -> http::Response<Full<Bytes>> {
    seen.versions.lock().unwrap().push(req.version());
    let mut res = http::Response::builder().status(200);
    let body: Bytes = match req.uri().path() {
        "/set" => {
            res = res.header("set-cookie", "session=h2; Path=/");
            "set".into()
        }
        "/me" => req
            .headers()
            .get("cookie")
            .map(|v| Bytes::copy_from_slice(v.as_bytes()))
            .unwrap_or_default(),
        "/r" => {
            res = res.status(302).header("location", "/me");
            Bytes::new()
        }
        "/big" => vec![b'b'; 64 * 1024].into(),
        "/big-head" => {
            res = res.header("x-big", "h".repeat(20 * 1024));
            "ok".into()
        }
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            "late".into()
        }
        _ => "ok".into(),
    };
    res.body(Full::new(body)).unwrap()
}

/// Serves one accepted connection (already TLS when it is).
async fn serve_conn<I>(io: I, speaks: Speaks, seen: Seen)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| {
        let seen = seen.clone();
        async move { Ok::<_, Infallible>(answer(req, seen).await) }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    if !matches!(speaks, Speaks::Both) {
        builder = builder.http1_only();
    }
    let _ = tokio::time::timeout(
        Duration::from_secs(20),
        builder.serve_connection(TokioIo::new(io), service),
    )
    .await;
}

/// A hyper server on a free loopback port: TLS with a certificate for `localhost`
/// from `ca`, or cleartext.
async fn server(ca: Option<&TestCa>, speaks: Speaks) -> (SocketAddr, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = ca.map(|ca| {
        let (chain, key) = ca.leaf("localhost", false);
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
        config.alpn_protocols = match speaks {
            Speaks::Both => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
            Speaks::Http1 => vec![b"http/1.1".to_vec()],
            Speaks::Http1NoAlpn => Vec::new(),
        };
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    });
    let seen = Seen::default();
    let server_seen = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            server_seen.connections.fetch_add(1, Ordering::SeqCst);
            let (seen, acceptor) = (server_seen.clone(), acceptor.clone());
            tokio::spawn(async move {
                match acceptor {
                    Some(acceptor) => {
                        if let Ok(tls) = acceptor.accept(stream).await {
                            serve_conn(tls, speaks, seen).await;
                        }
                    }
                    None => serve_conn(stream, speaks, seen).await,
                }
            });
        }
    });
    (addr, seen)
}

fn config(ca: &TestCa, version: HttpVersion) -> HttpConfig {
    HttpConfig {
        extra_roots: vec![ca.cert.clone()],
        version,
        ..HttpConfig::default()
    }
}

fn https(addr: SocketAddr, path: &str) -> String {
    format!("https://localhost:{}{path}", addr.port())
}

/// `auto` (the default) negotiates HTTP/2 over TLS; a user's requests, a redirect and
/// its cookies included, share one connection.
async fn auto_speaks_h2_over_tls_on_one_connection(imp: Implementation) {
    let ca = TestCa::new();
    let (addr, seen) = server(Some(&ca), Speaks::Both).await;
    assert_eq!(HttpConfig::default().version, HttpVersion::Auto);
    let env = Env::with_config(imp, &[], config(&ca, HttpVersion::Auto));
    let mut user = env.user(0);
    for (path, bytes) in [("/set", 3), ("/me", 10), ("/r", 10), ("/", 2)] {
        let out = env
            .run(&step(Method::GET, https(addr, path)), &mut user)
            .await;
        assert_eq!(out.result, Ok(()), "{path}");
        assert_eq!(out.bytes, bytes, "{path}: `/me` echoes `session=h2`");
        assert_eq!(out.version, Some(HttpVersionUsed::Http2), "{path}");
    }
    // The redirect is two requests.
    assert_eq!(seen.versions(), vec![Version::HTTP_2; 5]);
    assert_eq!(seen.connections.load(Ordering::SeqCst), 1);
}

/// `h2c` speaks HTTP/2 with prior knowledge on cleartext; `auto` keeps cleartext on
/// HTTP/1.1 (the lean client's own code), with the same server.
async fn h2c_uses_prior_knowledge_and_auto_keeps_cleartext_on_http1(imp: Implementation) {
    let (addr, seen) = server(None, Speaks::Both).await;
    let h2c = Env::with_config(
        imp,
        &[],
        HttpConfig {
            version: HttpVersion::H2c,
            ..HttpConfig::default()
        },
    );
    let mut user = h2c.user(0);
    for _ in 0..2 {
        let out = h2c.run(&step(Method::GET, url(addr, "/")), &mut user).await;
        assert_eq!(out.result, Ok(()));
        assert_eq!(out.version, Some(HttpVersionUsed::Http2));
    }
    assert_eq!(seen.versions(), vec![Version::HTTP_2; 2]);
    assert_eq!(seen.connections.load(Ordering::SeqCst), 1);

    let auto = Env::new(imp, &[]);
    let mut user = auto.user(0);
    let out = auto
        .run(&step(Method::GET, url(addr, "/")), &mut user)
        .await;
    assert_eq!(out.result, Ok(()));
    assert_eq!(out.version, Some(HttpVersionUsed::Http11));
    assert_eq!(seen.versions()[2], Version::HTTP_11);
}

/// A server that offers only HTTP/1.1: `auto` falls back to it, `"1.1"` never asks
/// for HTTP/2, and `"2"` fails with its own reason, sending nothing.
async fn a_server_without_h2_gets_http1_or_a_clear_failure(imp: Implementation) {
    let ca = TestCa::new();
    let (addr, seen) = server(Some(&ca), Speaks::Http1).await;
    for version in [HttpVersion::Auto, HttpVersion::Http1] {
        let env = Env::with_config(imp, &[], config(&ca, version));
        let mut user = env.user(0);
        let out = env
            .run(&step(Method::GET, https(addr, "/")), &mut user)
            .await;
        assert_eq!(out.result, Ok(()), "{version:?}");
        assert_eq!(out.version, Some(HttpVersionUsed::Http11), "{version:?}");
    }
    assert_eq!(seen.versions(), vec![Version::HTTP_11; 2]);

    let required = Env::with_config(imp, &[], config(&ca, HttpVersion::Http2));
    let mut user = required.user(0);
    let out = required
        .run(&step(Method::GET, https(addr, "/")), &mut user)
        .await;
    assert_eq!(
        out.result,
        Err(FailureKind::Protocol(ProtocolFailure::NoHttp2))
    );
    assert_eq!(out.version, None);
    // A cleartext URL cannot carry HTTP/2 without `h2c`.
    let out = required
        .run(&step(Method::GET, format!("http://{addr}/")), &mut user)
        .await;
    assert_eq!(
        out.result,
        Err(FailureKind::Protocol(ProtocolFailure::NoHttp2))
    );
    assert_eq!(seen.versions().len(), 2, "nothing more reached the server");

    // A server with no ALPN at all is not HTTP/2 either.
    let (plain_alpn, seen) = server(Some(&ca), Speaks::Http1NoAlpn).await;
    let out = required
        .run(&step(Method::GET, https(plain_alpn, "/")), &mut user)
        .await;
    assert_eq!(
        out.result,
        Err(FailureKind::Protocol(ProtocolFailure::NoHttp2))
    );
    assert!(seen.versions().iter().all(|v| *v == Version::HTTP_11));
}

/// The response limits and the timeout hold over HTTP/2 as over HTTP/1.1.
async fn limits_and_timeouts_hold_over_h2(imp: Implementation) {
    let ca = TestCa::new();
    let (addr, seen) = server(Some(&ca), Speaks::Both).await;
    let env = Env::with_config(
        imp,
        &[],
        HttpConfig {
            body_limit: 16 * 1024,
            head_limit: 8 * 1024,
            ..config(&ca, HttpVersion::Http2)
        },
    );
    let mut user = env.user(0);
    for path in ["/big", "/big-head"] {
        let out = env
            .run(&step(Method::GET, https(addr, path)), &mut user)
            .await;
        assert_eq!(
            out.result,
            Err(FailureKind::Protocol(ProtocolFailure::BodyTooLarge)),
            "{path}"
        );
    }
    let mut slow = step(Method::GET, https(addr, "/slow"));
    slow.timeout = Duration::from_millis(300);
    let out = env.run(&slow, &mut user).await;
    assert_eq!(
        out.result,
        Err(FailureKind::Transport(TransportFailure::Timeout))
    );
    // The connection outlives a failed stream.
    let out = env
        .run(&step(Method::GET, https(addr, "/")), &mut user)
        .await;
    assert_eq!(out.result, Ok(()));
    assert_eq!(seen.versions(), vec![Version::HTTP_2; 4]);
}

per_client!(
    auto_speaks_h2_over_tls_on_one_connection,
    h2c_uses_prior_knowledge_and_auto_keeps_cleartext_on_http1,
    a_server_without_h2_gets_http1_or_a_clear_failure,
    limits_and_timeouts_hold_over_h2,
);
