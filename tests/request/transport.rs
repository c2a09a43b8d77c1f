//! Redirects, TLS, limits and every transport failure kind.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::Method;
use http::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE};
use serde_json::json;
use swarm::compile::graph::{Body, Capture, CaptureId, CaptureSource, SlotId, Template};
use swarm::engine::config::HttpConfig;
use swarm::metrics::failure::{FailureKind, ProtocolFailure, TransportFailure};
use tokio::io::AsyncWriteExt;

use swarm::engine::http::Implementation;

use crate::support::*;

async fn redirects_are_followed_up_to_the_limit(imp: Implementation) {
    let (addr, _) = target().await;
    let config = HttpConfig {
        max_redirects: 3,
        ..HttpConfig::default()
    };
    let env = Env::with_config(imp, &[], config);
    let mut user = env.user(0);
    let out = env
        .run(&step(Method::GET, url(addr, "/r/3")), &mut user)
        .await;
    assert_eq!(out.result, Ok(()));
    assert_eq!(out.bytes, 4, "the final body is `done`");
    let out = env
        .run(&step(Method::GET, url(addr, "/r/4")), &mut user)
        .await;
    assert_eq!(
        out.result,
        Err(FailureKind::Protocol(ProtocolFailure::TooManyRedirects))
    );
}

async fn refused(imp: Implementation) {
    // A socket bound but not listening holds the port (never released and reused):
    // connecting to it is refused.
    let reserved = tokio::net::TcpSocket::new_v4().unwrap();
    reserved.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = reserved.local_addr().unwrap().port();
    let env = Env::new(imp, &["x"]);
    let mut user = env.user(0);
    user.slots[0] = Some(json!("stale"));
    let mut s = step(Method::GET, format!("http://127.0.0.1:{port}/"));
    s.captures.push(capture_all(0));
    let out = env.run(&s, &mut user).await;
    assert_eq!(
        out.result,
        Err(FailureKind::Transport(TransportFailure::Refused))
    );
    assert_eq!(
        user.slots[0], None,
        "no response: the step's captures are cleared"
    );
}

async fn accept_then_close_is_a_reset(imp: Implementation) {
    let addr = raw(|mut stream| async move {
        read_request(&mut stream).await;
        drop(stream);
    })
    .await;
    let env = Env::new(imp, &[]);
    let mut user = env.user(0);
    let out = env.run(&step(Method::GET, url(addr, "/")), &mut user).await;
    assert_eq!(
        out.result,
        Err(FailureKind::Transport(TransportFailure::Reset))
    );
}

async fn tcp_reset_is_a_reset(imp: Implementation) {
    let addr = raw(|mut stream| async move {
        read_request(&mut stream).await;
        // A zero linger makes the close an RST; it never blocks the thread.
        #[expect(deprecated, reason = "SO_LINGER 0 resets at once instead of blocking")]
        let _ = stream.set_linger(Some(Duration::ZERO));
        drop(stream);
    })
    .await;
    let env = Env::new(imp, &[]);
    let mut user = env.user(0);
    let out = env.run(&step(Method::GET, url(addr, "/")), &mut user).await;
    assert_eq!(
        out.result,
        Err(FailureKind::Transport(TransportFailure::Reset))
    );
}

async fn a_stalled_target_times_out_within_the_request_timeout(imp: Implementation) {
    let addr = raw(|mut stream| async move {
        read_request(&mut stream).await;
        tokio::time::sleep(Duration::from_secs(10)).await;
        drop(stream);
    })
    .await;
    let env = Env::new(imp, &[]);
    let mut user = env.user(0);
    let mut s = step(Method::GET, url(addr, "/"));
    s.timeout = Duration::from_millis(300);
    let out = env.run(&s, &mut user).await;
    assert_eq!(
        out.result,
        Err(FailureKind::Transport(TransportFailure::Timeout))
    );
    assert!(out.latency >= Duration::from_millis(300));
    assert!(out.latency < Duration::from_secs(5));
}

async fn the_timeout_covers_a_body_that_stalls(imp: Implementation) {
    let addr = raw(|mut stream| async move {
        read_request(&mut stream).await;
        let head = "HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n0123456789";
        let _ = stream.write_all(head.as_bytes()).await;
        tokio::time::sleep(Duration::from_secs(10)).await;
    })
    .await;
    let env = Env::new(imp, &[]);
    let mut user = env.user(0);
    let mut s = step(Method::GET, url(addr, "/"));
    s.timeout = Duration::from_millis(300);
    assert_eq!(
        env.run(&s, &mut user).await.result,
        Err(FailureKind::Transport(TransportFailure::Timeout))
    );
}

async fn oversized_bodies_fail_without_being_read_whole(imp: Implementation) {
    let (addr, _) = target().await;
    let config = HttpConfig {
        body_limit: 1024 * 1024,
        ..HttpConfig::default()
    };
    let env = Env::with_config(imp, &[], config);
    let mut user = env.user(0);
    let out = env
        .run(&step(Method::GET, url(addr, "/big")), &mut user)
        .await;
    assert_eq!(
        out.result,
        Err(FailureKind::Protocol(ProtocolFailure::BodyTooLarge))
    );

    // Chunked, so no content-length gives it away: the read stops at the limit.
    // The server would write 64 MiB; it stops when the client hangs up.
    let written = Arc::new(AtomicUsize::new(0));
    let gave_up = Arc::new(tokio::sync::Notify::new());
    let (counter, done) = (written.clone(), gave_up.clone());
    let chunked = raw(move |mut stream| {
        let (counter, done) = (counter.clone(), done.clone());
        async move {
            // However the writing ends, say so.
            struct Done(Arc<tokio::sync::Notify>);
            impl Drop for Done {
                fn drop(&mut self) {
                    self.0.notify_one();
                }
            }
            let _done = Done(done);
            read_request(&mut stream).await;
            let head = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let chunk = format!("10000\r\n{}\r\n", "y".repeat(0x10000));
            for _ in 0..1024 {
                if stream.write_all(chunk.as_bytes()).await.is_err() {
                    return;
                }
                counter.fetch_add(0x10000, Ordering::SeqCst);
            }
            let _ = stream.write_all(b"0\r\n\r\n").await;
        }
    })
    .await;
    let out = env
        .run(&step(Method::GET, url(chunked, "/")), &mut user)
        .await;
    assert_eq!(
        out.result,
        Err(FailureKind::Protocol(ProtocolFailure::BodyTooLarge))
    );
    // The client hung up: the server's writes failed long before its 64 MiB (what
    // is written is the limit plus what the socket buffers held).
    drop(user);
    tokio::time::timeout(Duration::from_secs(30), gave_up.notified())
        .await
        .expect("the server stopped writing");
    let sent = written.load(Ordering::SeqCst);
    assert!(
        sent < 32 << 20,
        "the server wrote {sent} bytes: the body was read whole"
    );
    let mut user = env.user(0);

    // A body at the limit is fine.
    let exact = raw(|mut stream| async move {
        read_request(&mut stream).await;
        let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", 1024 * 1024);
        let _ = stream.write_all(head.as_bytes()).await;
        let _ = stream.write_all(&vec![b'z'; 1024 * 1024]).await;
    })
    .await;
    let out = env
        .run(&step(Method::GET, url(exact, "/")), &mut user)
        .await;
    assert_eq!(out.result, Ok(()));
    assert_eq!(out.bytes, 1024 * 1024);
}

async fn a_reply_that_is_not_http_is_a_protocol_error(imp: Implementation) {
    let addr = raw(|mut stream| async move {
        read_request(&mut stream).await;
        let _ = stream
            .write_all(b"SSH-2.0-OpenSSH_9.6 not http at all\r\n\r\n")
            .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    })
    .await;
    let env = Env::new(imp, &[]);
    let mut user = env.user(0);
    let out = env.run(&step(Method::GET, url(addr, "/")), &mut user).await;
    assert_eq!(
        out.result,
        Err(FailureKind::Protocol(ProtocolFailure::InvalidHttp))
    );
}

async fn tls_to_a_plain_http_port_is_a_tls_error(imp: Implementation) {
    let (addr, _) = target().await;
    for insecure in [false, true] {
        let config = HttpConfig {
            insecure,
            ..HttpConfig::default()
        };
        let env = Env::with_config(imp, &[], config);
        let mut user = env.user(0);
        let s = step(Method::GET, format!("https://{addr}/hello"));
        assert_eq!(
            env.run(&s, &mut user).await.result,
            Err(FailureKind::Transport(TransportFailure::Tls)),
            "insecure: {insecure}"
        );
    }
}

async fn tls_verification_and_insecure(imp: Implementation) {
    let addr = tls_target().await;
    let s = step(Method::GET, format!("https://localhost:{}/", addr.port()));
    let strict = Env::new(imp, &[]);
    let mut user = strict.user(0);
    assert_eq!(
        strict.run(&s, &mut user).await.result,
        Err(FailureKind::Transport(TransportFailure::TlsUnknownIssuer)),
        "a self-signed certificate is rejected"
    );
    let insecure = Env::with_config(
        imp,
        &[],
        HttpConfig {
            insecure: true,
            ..HttpConfig::default()
        },
    );
    let mut user = insecure.user(0);
    let out = insecure.run(&s, &mut user).await;
    assert_eq!(out.result, Ok(()));
    assert_eq!(out.bytes, 2);
}

/// Verification on, against a test CA the run trusts: a current certificate for the
/// name is accepted; one for another name, or an expired one, fails with its own
/// reason; and
/// without the CA the same good certificate is rejected (the CA is what let it pass).
async fn tls_verification_against_a_test_ca(imp: Implementation) {
    let ca = TestCa::new();
    let trusting = Env::with_config(
        imp,
        &[],
        HttpConfig {
            extra_roots: vec![ca.cert.clone()],
            ..HttpConfig::default()
        },
    );
    let cases = [
        ("localhost", false, Ok(())),
        (
            "elsewhere.test",
            false,
            Err(FailureKind::Transport(TransportFailure::TlsHostname)),
        ),
        (
            "localhost",
            true,
            Err(FailureKind::Transport(TransportFailure::TlsExpired)),
        ),
    ];
    for (name, expired, want) in cases {
        let (chain, key) = ca.leaf(name, expired);
        let (addr, _) = tls_serve(chain, key).await;
        let s = step(Method::GET, format!("https://localhost:{}/", addr.port()));
        let mut user = trusting.user(0);
        let out = trusting.run(&s, &mut user).await;
        assert_eq!(
            out.result, want,
            "certificate for {name}, expired: {expired}"
        );
        if want.is_ok() {
            assert_eq!(out.bytes, 2);
            let strict = Env::new(imp, &[]);
            let mut user = strict.user(0);
            assert_eq!(
                strict.run(&s, &mut user).await.result,
                Err(FailureKind::Transport(TransportFailure::TlsUnknownIssuer)),
                "without the CA"
            );
        }
    }
}

/// A user resumes its own TLS sessions, never another user's: distinct users are
/// distinct browsers, and a shared cache would understate handshake cost.
async fn tls_sessions_are_resumed_per_user(imp: Implementation) {
    let (addr, kinds) = tls_target_recording().await;
    let s = step(Method::GET, format!("https://localhost:{}/", addr.port()));
    let env = Env::with_config(
        imp,
        &[],
        HttpConfig {
            insecure: true,
            ..HttpConfig::default()
        },
    );
    let (mut alice, mut bob) = (env.user(0), env.user(1));
    // The target closes each connection after its answer, so every request
    // handshakes again: resumed when the user holds a session for it.
    assert_eq!(env.run(&s, &mut alice).await.result, Ok(()));
    assert_eq!(env.run(&s, &mut alice).await.result, Ok(()));
    assert_eq!(env.run(&s, &mut bob).await.result, Ok(()));
    use rustls::HandshakeKind::{Full, Resumed};
    assert_eq!(*kinds.lock().unwrap(), [Full, Resumed, Full]);
}

async fn redirects_keep_or_drop_the_body_by_status(imp: Implementation) {
    let (addr, _) = target().await;
    let env = Env::new(imp, &["echo"]);
    let mut user = env.user(0);
    for (code, method, body) in [
        (307, "POST", "payload"),
        (308, "POST", "payload"),
        (302, "GET", ""),
        (303, "GET", ""),
    ] {
        let mut s = step(Method::POST, url(addr, &format!("/redirect/{code}")));
        http(&mut s).body = Some(Body::Raw(Template::literal("payload")));
        http(&mut s)
            .headers
            .push((CONTENT_TYPE, Template::literal("text/plain")));
        http(&mut s)
            .headers
            .push((AUTHORIZATION, Template::literal("Bearer t")));
        s.captures.push(capture_all(0));
        assert_eq!(env.run(&s, &mut user).await.result, Ok(()), "{code}");
        let seen = user.slots[0].clone().unwrap();
        assert_eq!(seen["method"], method, "{code}");
        assert_eq!(seen["body"], body, "{code}");
        // The body's type goes with the body; credentials stay on the same origin.
        let content_type = if body.is_empty() { "" } else { "text/plain" };
        assert_eq!(seen["content_type"], content_type, "{code}");
        assert_eq!(seen["authorization"], "Bearer t", "{code}");
    }
}

/// A redirect to another origin does not carry the plan's credentials along.
async fn credentials_stay_on_their_origin_across_redirects(imp: Implementation) {
    let (home, _) = target().await;
    let (away, _) = target().await;
    let env = Env::new(imp, &["echo"]);
    let mut user = env.user(0);
    let to = url(away, "/echo");
    let mut s = step(Method::GET, url(home, &format!("/redirect-to?to={to}")));
    http(&mut s)
        .headers
        .push((AUTHORIZATION, Template::literal("Bearer t")));
    http(&mut s)
        .headers
        .push((COOKIE, Template::literal("plan=1")));
    s.captures.push(capture_all(0));
    assert_eq!(env.run(&s, &mut user).await.result, Ok(()));
    let seen = user.slots[0].clone().unwrap();
    assert_eq!(seen["authorization"], "", "{seen}");
    assert_eq!(seen["cookies"], json!([]), "{seen}");
}

/// A plan's own `cookie` header is the one cookie header sent: the jar does not add
/// a second.
async fn a_plan_cookie_header_is_sent_alone(imp: Implementation) {
    let (addr, _) = target().await;
    let env = Env::new(imp, &["echo"]);
    let mut user = env.user(0);
    let set = step(Method::GET, url(addr, "/set?u=alice"));
    assert_eq!(env.run(&set, &mut user).await.result, Ok(()));
    let mut s = step(Method::GET, url(addr, "/echo"));
    s.captures.push(capture_all(0));
    assert_eq!(env.run(&s, &mut user).await.result, Ok(()));
    assert_eq!(
        user.slots[0].clone().unwrap()["cookies"],
        json!(["session=alice"])
    );
    // A new call: a compiled call does not change once sent (its request may have
    // been rendered once).
    let mut own = step(Method::GET, url(addr, "/echo"));
    own.captures.push(capture_all(0));
    http(&mut own)
        .headers
        .push((COOKIE, Template::literal("plan=1")));
    assert_eq!(env.run(&own, &mut user).await.result, Ok(()));
    assert_eq!(user.slots[0].clone().unwrap()["cookies"], json!(["plan=1"]));
}

async fn cookies_set_on_a_redirect_hop_are_kept(imp: Implementation) {
    let (addr, _) = target().await;
    let env = Env::new(imp, &["me"]);
    let mut user = env.user(0);
    let mut s = step(Method::GET, url(addr, "/login-redirect"));
    s.captures.push(Capture {
        id: CaptureId(0),
        slot: SlotId(0),
        source: CaptureSource::Regex(regex::Regex::new("^.*$").unwrap()),
    });
    assert_eq!(env.run(&s, &mut user).await.result, Ok(()));
    assert_eq!(user.slots[0], Some(json!("hop=1")));
}

async fn a_connection_closed_after_each_response_is_replaced(imp: Implementation) {
    // Answers one request per connection and closes without saying so: the
    // client's idle connection goes stale between requests.
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    let addr = raw(move |mut stream| {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            read_request(&mut stream).await;
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .await;
        }
    })
    .await;
    let env = Env::new(imp, &[]);
    let mut user = env.user(0);
    for i in 0..3 {
        let out = env.run(&step(Method::GET, url(addr, "/")), &mut user).await;
        assert_eq!(out.result, Ok(()), "request {i}");
        assert_eq!(out.bytes, 2);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(connections.load(Ordering::SeqCst), 3);
}

async fn a_chunked_body_is_read_whole(imp: Implementation) {
    let addr = raw(|mut stream| async move {
        read_request(&mut stream).await;
        let mut reply = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
        for i in 0..40u8 {
            reply.extend_from_slice(b"3e8\r\n");
            reply.extend_from_slice(&[b'a' + i % 26; 1000]);
            reply.extend_from_slice(b"\r\n");
        }
        reply.extend_from_slice(b"0\r\n\r\n");
        // Written in pieces so the client sees the body arrive over time.
        for piece in reply.chunks(7000) {
            if stream.write_all(piece).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    })
    .await;
    let env = Env::new(imp, &["tail"]);
    let mut user = env.user(0);
    let mut s = step(Method::GET, url(addr, "/"));
    s.captures.push(Capture {
        id: CaptureId(0),
        slot: SlotId(0),
        source: CaptureSource::Regex(regex::Regex::new("(n+)$").unwrap()),
    });
    let out = env.run(&s, &mut user).await;
    assert_eq!(out.result, Ok(()));
    assert_eq!(out.bytes, 40_000);
    // The 40th chunk is all `n` (39 % 26 = 13).
    assert_eq!(user.slots[0], Some(json!("n".repeat(1000))));
}

per_client!(
    redirects_keep_or_drop_the_body_by_status,
    cookies_set_on_a_redirect_hop_are_kept,
    a_connection_closed_after_each_response_is_replaced,
    a_chunked_body_is_read_whole,
    redirects_are_followed_up_to_the_limit,
    refused,
    accept_then_close_is_a_reset,
    tcp_reset_is_a_reset,
    a_stalled_target_times_out_within_the_request_timeout,
    the_timeout_covers_a_body_that_stalls,
    oversized_bodies_fail_without_being_read_whole,
    a_reply_that_is_not_http_is_a_protocol_error,
    tls_to_a_plain_http_port_is_a_tls_error,
    tls_verification_and_insecure,
    tls_verification_against_a_test_ca,
    tls_sessions_are_resumed_per_user,
    credentials_stay_on_their_origin_across_redirects,
    a_plan_cookie_header_is_sent_alone,
);
