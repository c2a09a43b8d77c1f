//! The lean client against real loopback servers that misbehave on purpose.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::header::ACCEPT;
use http::{HeaderMap, HeaderValue, Method};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;
use crate::engine::config::HttpConfig;

/// What the test server does with one request.
enum Reply {
    /// Answer and keep the connection open.
    Keep(Vec<u8>),
    /// Answer and close the connection.
    Close(Vec<u8>),
    /// Never answer.
    Silent,
}

struct Server {
    addr: std::net::SocketAddr,
    /// Connections accepted so far.
    conns: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// A loopback HTTP/1.1 server; `handler` gets the request head and body.
async fn serve(handler: impl Fn(&str, &[u8]) -> Reply + Send + Sync + 'static) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let conns = Arc::new(AtomicUsize::new(0));
    let handler = Arc::new(handler);
    let counter = Arc::clone(&conns);
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(connection(stream, Arc::clone(&handler)));
        }
    });
    Server { addr, conns, task }
}

async fn connection(
    mut stream: TcpStream,
    handler: Arc<impl Fn(&str, &[u8]) -> Reply + Send + Sync + 'static>,
) {
    let mut buf = Vec::new();
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let len: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse().unwrap())
            })
            .unwrap_or(0);
        while buf.len() < head_end + len {
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body: Vec<u8> = buf.drain(..head_end + len).skip(head_end).collect();
        match handler(&head, &body) {
            Reply::Keep(r) => {
                if stream.write_all(&r).await.is_err() {
                    return;
                }
            }
            Reply::Close(r) => {
                let _ = stream.write_all(&r).await;
                return;
            }
            Reply::Silent => {
                tokio::time::sleep(Duration::from_secs(30)).await;
                return;
            }
        }
    }
}

fn ok(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn path(head: &str) -> &str {
    head.split(' ').nth(1).unwrap_or("")
}

fn shared(body_limit: usize, max_redirects: u32) -> HttpShared {
    let config = HttpConfig {
        body_limit,
        max_redirects,
        ..HttpConfig::default()
    };
    HttpShared::new(&config).unwrap()
}

async fn send(
    client: &mut LeanClient,
    shared: &HttpShared,
    method: Method,
    url: &str,
    body: &[u8],
) -> Result<Response, FailureKind> {
    let mut headers = HeaderMap::new();
    headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
    let req = HttpRequest {
        method: &method,
        url,
        headers: &headers,
        body,
        timeout: Duration::from_secs(5),
        head: None,
    };
    client.send(shared, &req).await
}

async fn get(
    client: &mut LeanClient,
    shared: &HttpShared,
    url: &str,
) -> Result<Response, FailureKind> {
    send(client, shared, Method::GET, url, b"").await
}

#[tokio::test]
async fn keep_alive_connections_are_reused() {
    let server = serve(|head, _| {
        assert!(head.contains("accept: application/json\r\n"));
        Reply::Keep(ok(r#"{"ok":true}"#))
    })
    .await;
    let (shared, mut client) = (shared(1024, 5), LeanClient::new());
    for _ in 0..5 {
        let r = get(&mut client, &shared, &server.url("/x")).await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.body(), br#"{"ok":true}"#);
        assert_eq!(r.header("Content-Length"), Some(&b"11"[..]));
    }
    assert_eq!(server.conns.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_response_borrows_the_pooled_buffer_until_dropped() {
    let big = "x".repeat(100 * 1024);
    let server = serve(move |head, _| match path(head) {
        "/big" => Reply::Keep(ok(&big)),
        _ => Reply::Keep(ok(r#"{"ok":true}"#)),
    })
    .await;
    let (shared, mut client) = (shared(1 << 20, 5), LeanClient::new());
    let first = get(&mut client, &shared, &server.url("/small"))
        .await
        .unwrap();
    let buf = first.body().as_ptr();
    assert_eq!(first.body(), br#"{"ok":true}"#);
    assert_eq!(first.header("content-length"), Some(&b"11"[..]));
    drop(first);
    let again = get(&mut client, &shared, &server.url("/small"))
        .await
        .unwrap();
    assert_eq!(
        again.body().as_ptr(),
        buf,
        "the next request reused the buffer"
    );
    drop(again);
    let big = get(&mut client, &shared, &server.url("/big"))
        .await
        .unwrap();
    assert_eq!(big.body().len(), 100 * 1024);
    drop(big);
    assert_eq!(server.conns.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn chunked_bodies_and_connection_close() {
    let server = serve(|head, _| {
        let r = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        if path(head) == "/close" {
            Reply::Close(b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nhi".to_vec())
        } else {
            Reply::Keep(r.to_vec())
        }
    })
    .await;
    let (shared, mut client) = (shared(1024, 5), LeanClient::new());
    let r = get(&mut client, &shared, &server.url("/")).await.unwrap();
    assert_eq!(r.body(), b"abcde");
    let r = get(&mut client, &shared, &server.url("/close"))
        .await
        .unwrap();
    assert_eq!(r.body(), b"hi");
    let r = get(&mut client, &shared, &server.url("/")).await.unwrap();
    assert_eq!(r.body(), b"abcde");
    assert_eq!(
        server.conns.load(Ordering::SeqCst),
        2,
        "a new connection after `connection: close`"
    );
}

#[tokio::test]
async fn a_keep_alive_connection_closed_by_the_server_is_replaced() {
    // The server closes after every answer without saying so, as one whose idle
    // timeout fired between two requests.
    let server = serve(|_, _| Reply::Close(ok("x"))).await;
    let (shared, mut client) = (shared(1024, 5), LeanClient::new());
    for _ in 0..3 {
        // Immediately: the stale connection is found by the retry.
        let r = get(&mut client, &shared, &server.url("/")).await.unwrap();
        assert_eq!(r.body(), b"x");
    }
    // After an idle spell, even a POST (never retried) finds a fresh connection.
    tokio::time::sleep(PROBE_AFTER + Duration::from_millis(100)).await;
    let r = send(&mut client, &shared, Method::POST, &server.url("/"), b"{}").await;
    assert_eq!(r.unwrap().status(), 200);
    assert_eq!(server.conns.load(Ordering::SeqCst), 4);
}

/// A request the socket does not take at once (a body larger than its send buffer)
/// is written in full: what the first `send` left goes out once the socket drains.
#[tokio::test]
async fn a_request_larger_than_the_socket_buffer_is_sent_whole() {
    let body: Vec<u8> = (0..16 << 20).map(|i: u32| (i % 251) as u8).collect();
    let expected = body.clone();
    let server = serve(move |_, got| {
        Reply::Keep(if got == expected.as_slice() {
            ok("same")
        } else {
            ok("different")
        })
    })
    .await;
    let (shared, mut client) = (shared(1024, 5), LeanClient::new());
    for _ in 0..2 {
        let r = send(&mut client, &shared, Method::POST, &server.url("/"), &body).await;
        assert_eq!(r.unwrap().body(), b"same");
    }
    assert_eq!(server.conns.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn oversized_bodies_fail() {
    let server = serve(|head, _| {
        let big = "x".repeat(100);
        Reply::Keep(if path(head) == "/chunked" {
            format!("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n64\r\n{big}\r\n0\r\n\r\n")
                .into_bytes()
        } else {
            ok(&big)
        })
    })
    .await;
    let (shared, mut client) = (shared(99, 5), LeanClient::new());
    for p in ["/", "/chunked"] {
        let r = get(&mut client, &shared, &server.url(p)).await;
        assert_eq!(
            r.err(),
            Some(FailureKind::Protocol(ProtocolFailure::BodyTooLarge)),
            "{p}"
        );
    }
    let r = get(
        &mut LeanClient::new(),
        &self::shared(100, 5),
        &server.url("/chunked"),
    )
    .await;
    assert_eq!(r.unwrap().body().len(), 100);
}

#[tokio::test]
async fn garbage_and_silence_fail_with_their_kind() {
    let server = serve(|head, _| match path(head) {
        "/garbage" => Reply::Keep(b"SSH-2.0-OpenSSH_9.6\r\n\r\n".to_vec()),
        "/cut" => Reply::Close(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc".to_vec()),
        _ => Reply::Silent,
    })
    .await;
    let (shared, mut client) = (shared(1024, 5), LeanClient::new());
    let r = get(&mut client, &shared, &server.url("/garbage")).await;
    assert_eq!(
        r.err(),
        Some(FailureKind::Protocol(ProtocolFailure::InvalidHttp))
    );
    let r = get(&mut client, &shared, &server.url("/cut")).await;
    assert_eq!(
        r.err(),
        Some(FailureKind::Transport(TransportFailure::Reset))
    );
    let method = Method::GET;
    let url = server.url("/silent");
    let req = HttpRequest {
        method: &method,
        url: &url,
        headers: &HeaderMap::new(),
        body: b"",
        timeout: Duration::from_millis(200),
        head: None,
    };
    let started = std::time::Instant::now();
    assert_eq!(
        client.send(&shared, &req).await.err(),
        Some(FailureKind::Transport(TransportFailure::Timeout))
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn connection_failures_have_their_kind() {
    let (shared, mut client) = (shared(1024, 5), LeanClient::new());
    let closed = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let r = get(&mut client, &shared, &format!("http://{closed}/")).await;
    assert_eq!(
        r.err(),
        Some(FailureKind::Transport(TransportFailure::Refused))
    );
    // A plain HTTP server answers the TLS hello with a plain 400 and hangs up.
    let plain = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = plain.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (mut s, _) = plain.accept().await.unwrap();
        let mut hello = [0u8; 512];
        let _ = s.read(&mut hello).await;
        let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
    });
    let r = get(&mut client, &shared, &format!("https://{addr}/")).await;
    task.abort();
    assert_eq!(r.err(), Some(FailureKind::Transport(TransportFailure::Tls)));
    let r = get(&mut client, &shared, "not a url").await;
    assert_eq!(
        r.err(),
        Some(FailureKind::Check(CheckFailure::InvalidRequest))
    );
}

#[tokio::test]
async fn cookies_are_kept_per_user() {
    let server = serve(|head, _| {
        let cookie = head
            .lines()
            .find_map(|l| l.strip_prefix("cookie: "))
            .unwrap_or("")
            .to_owned();
        Reply::Keep(match path(head) {
            "/login" => b"HTTP/1.1 200 OK\r\nset-cookie: session=s1; Path=/; HttpOnly\r\nset-cookie: theme=dark; Max-Age=3600\r\ncontent-length: 0\r\n\r\n".to_vec(),
            "/logout" => b"HTTP/1.1 200 OK\r\nset-cookie: session=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT\r\ncontent-length: 0\r\n\r\n".to_vec(),
            _ => ok(&cookie),
        })
    })
    .await;
    let shared = shared(1024, 5);
    let (mut alice, mut bob) = (LeanClient::new(), LeanClient::new());
    get(&mut alice, &shared, &server.url("/login"))
        .await
        .unwrap();
    let r = get(&mut alice, &shared, &server.url("/me")).await.unwrap();
    assert_eq!(r.body(), b"session=s1; theme=dark");
    let r = get(&mut bob, &shared, &server.url("/me")).await.unwrap();
    assert_eq!(r.body(), b"", "cookies belong to one user");
    get(&mut alice, &shared, &server.url("/logout"))
        .await
        .unwrap();
    let r = get(&mut alice, &shared, &server.url("/me")).await.unwrap();
    assert_eq!(r.body(), b"theme=dark");
}

#[tokio::test]
async fn redirects_are_followed_up_to_the_limit() {
    let server = serve(|head, body| {
        let p = path(head);
        Reply::Keep(if let Some(n) = p.strip_prefix("/r/") {
            let n: u32 = n.parse().unwrap();
            if n == 0 {
                ok("done")
            } else {
                format!(
                    "HTTP/1.1 302 Found\r\nlocation: /r/{}\r\ncontent-length: 0\r\n\r\n",
                    n - 1
                )
                .into_bytes()
            }
        } else if p == "/form" {
            b"HTTP/1.1 303 See Other\r\nlocation: /echo\r\ncontent-length: 0\r\n\r\n".to_vec()
        } else {
            let method = head.split(' ').next().unwrap_or("");
            ok(&format!("{method} {}", body.len()))
        })
    })
    .await;
    let (shared, mut client) = (shared(1024, 3), LeanClient::new());
    let r = get(&mut client, &shared, &server.url("/r/3"))
        .await
        .unwrap();
    assert_eq!((r.status(), r.body()), (200, &b"done"[..]));
    let r = get(&mut client, &shared, &server.url("/r/4")).await;
    assert_eq!(
        r.err(),
        Some(FailureKind::Protocol(ProtocolFailure::TooManyRedirects))
    );
    let r = send(
        &mut client,
        &shared,
        Method::POST,
        &server.url("/form"),
        b"a=1",
    )
    .await;
    assert_eq!(r.unwrap().body(), b"GET 0", "a 303 turns a POST into a GET");
    let r = get(&mut client, &self::shared(1024, 0), &server.url("/r/1")).await;
    assert_eq!(
        r.err(),
        Some(FailureKind::Protocol(ProtocolFailure::TooManyRedirects))
    );
    assert_eq!(server.conns.load(Ordering::SeqCst), 1);
}

/// A user's task is as large as its largest state, so the request in flight must not
/// be part of it: see [`LeanClient::send`].
#[test]
fn a_request_in_flight_adds_little_to_a_users_task() {
    let shared = shared(1024, 5);
    let mut client = LeanClient::new();
    let (method, headers) = (Method::GET, HeaderMap::new());
    let req = HttpRequest {
        method: &method,
        url: "http://127.0.0.1:1/",
        headers: &headers,
        body: b"",
        timeout: Duration::from_secs(1),
        head: None,
    };
    // The exchange is boxed; what stays inline is its deadline and a few references
    // (88 bytes with rustc 1.95; 168 with a tokio timer of its own). The bound leaves
    // room for compilers to lay it out differently, and still fails if the exchange
    // is put back inline.
    let size = std::mem::size_of_val(&client.send(&shared, &req));
    assert!(size <= 320, "the send future is {size} bytes");
    let now = std::time::Instant::now();
    let exchange = std::mem::size_of_val(&client.follow(&shared, &req, now));
    assert!(exchange <= 1024, "the exchange is {exchange} bytes");
    assert!(std::mem::size_of::<LeanClient>() <= 64);
    // A user of one origin keeps one slot, not the four a first push reserves.
    assert_eq!(client.origin(req.url, now), Some(0));
    assert_eq!(client.origins.capacity(), 1);
}
