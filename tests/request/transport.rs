//! Redirects, TLS, limits and every transport failure kind.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::Method;
use serde_json::json;
use swarm::engine::config::EngineConfig;
use swarm::metrics::failure::FailureKind;
use tokio::io::AsyncWriteExt;

use crate::support::*;

#[tokio::test]
async fn redirects_are_followed_up_to_the_limit() {
    let (addr, _) = target().await;
    let config = EngineConfig {
        max_redirects: 3,
        ..EngineConfig::default()
    };
    let env = Env::with_config(&[], config);
    let mut user = env.user(0);
    let out = env
        .run(&step(Method::GET, url(addr, "/r/3")), &mut user)
        .await;
    assert_eq!(out.result, Ok(()));
    assert_eq!(out.bytes, 4, "the final body is `done`");
    let out = env
        .run(&step(Method::GET, url(addr, "/r/4")), &mut user)
        .await;
    assert_eq!(out.result, Err(FailureKind::TooManyRedirects));
}

#[tokio::test]
async fn refused() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let env = Env::new(&["x"]);
    let mut user = env.user(0);
    user.slots[0] = Some(json!("stale"));
    let mut s = step(Method::GET, format!("http://127.0.0.1:{port}/"));
    s.captures.push(capture_all(0));
    let out = env.run(&s, &mut user).await;
    assert_eq!(out.result, Err(FailureKind::Refused));
    assert_eq!(
        user.slots[0], None,
        "no response: the step's captures are cleared"
    );
}

#[tokio::test]
async fn accept_then_close_is_a_reset() {
    let addr = raw(|mut stream| async move {
        read_request(&mut stream).await;
        drop(stream);
    })
    .await;
    let env = Env::new(&[]);
    let mut user = env.user(0);
    let out = env.run(&step(Method::GET, url(addr, "/")), &mut user).await;
    assert_eq!(out.result, Err(FailureKind::Reset));
}

#[tokio::test]
async fn tcp_reset_is_a_reset() {
    let addr = raw(|mut stream| async move {
        read_request(&mut stream).await;
        // A zero linger makes the close an RST; it never blocks the thread.
        #[expect(deprecated, reason = "SO_LINGER 0 resets at once instead of blocking")]
        let _ = stream.set_linger(Some(Duration::ZERO));
        drop(stream);
    })
    .await;
    let env = Env::new(&[]);
    let mut user = env.user(0);
    let out = env.run(&step(Method::GET, url(addr, "/")), &mut user).await;
    assert_eq!(out.result, Err(FailureKind::Reset));
}

#[tokio::test]
async fn a_stalled_target_times_out_within_the_request_timeout() {
    let addr = raw(|mut stream| async move {
        read_request(&mut stream).await;
        tokio::time::sleep(Duration::from_secs(10)).await;
        drop(stream);
    })
    .await;
    let env = Env::new(&[]);
    let mut user = env.user(0);
    let mut s = step(Method::GET, url(addr, "/"));
    s.timeout = Duration::from_millis(300);
    let out = env.run(&s, &mut user).await;
    assert_eq!(out.result, Err(FailureKind::Timeout));
    assert!(out.latency >= Duration::from_millis(300));
    assert!(out.latency < Duration::from_secs(5));
}

#[tokio::test]
async fn the_timeout_covers_a_body_that_stalls() {
    let addr = raw(|mut stream| async move {
        read_request(&mut stream).await;
        let head = "HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n0123456789";
        let _ = stream.write_all(head.as_bytes()).await;
        tokio::time::sleep(Duration::from_secs(10)).await;
    })
    .await;
    let env = Env::new(&[]);
    let mut user = env.user(0);
    let mut s = step(Method::GET, url(addr, "/"));
    s.timeout = Duration::from_millis(300);
    assert_eq!(
        env.run(&s, &mut user).await.result,
        Err(FailureKind::Timeout)
    );
}

#[tokio::test]
async fn oversized_bodies_fail_without_being_read_whole() {
    let (addr, _) = target().await;
    let config = EngineConfig {
        body_limit: 1024 * 1024,
        ..EngineConfig::default()
    };
    let env = Env::with_config(&[], config);
    let mut user = env.user(0);
    let out = env
        .run(&step(Method::GET, url(addr, "/big")), &mut user)
        .await;
    assert_eq!(out.result, Err(FailureKind::BodyTooLarge));

    // Chunked, so no content-length gives it away: the read stops at the limit.
    // The server would write 64 MiB; it stops when the client hangs up.
    let written = Arc::new(AtomicUsize::new(0));
    let counter = written.clone();
    let chunked = raw(move |mut stream| {
        let counter = counter.clone();
        async move {
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
    assert_eq!(out.result, Err(FailureKind::BodyTooLarge));

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

#[tokio::test]
async fn a_reply_that_is_not_http_is_a_protocol_error() {
    let addr = raw(|mut stream| async move {
        read_request(&mut stream).await;
        let _ = stream
            .write_all(b"SSH-2.0-OpenSSH_9.6 not http at all\r\n\r\n")
            .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    })
    .await;
    let env = Env::new(&[]);
    let mut user = env.user(0);
    let out = env.run(&step(Method::GET, url(addr, "/")), &mut user).await;
    assert_eq!(out.result, Err(FailureKind::Protocol));
}

#[tokio::test]
async fn tls_to_a_plain_http_port_is_a_tls_error() {
    let (addr, _) = target().await;
    for insecure in [false, true] {
        let config = EngineConfig {
            insecure,
            ..EngineConfig::default()
        };
        let env = Env::with_config(&[], config);
        let mut user = env.user(0);
        let s = step(Method::GET, format!("https://{addr}/hello"));
        assert_eq!(
            env.run(&s, &mut user).await.result,
            Err(FailureKind::Tls),
            "insecure: {insecure}"
        );
    }
}

#[tokio::test]
async fn tls_verification_and_insecure() {
    let addr = tls_target().await;
    let s = step(Method::GET, format!("https://localhost:{}/", addr.port()));
    let strict = Env::new(&[]);
    let mut user = strict.user(0);
    assert_eq!(
        strict.run(&s, &mut user).await.result,
        Err(FailureKind::Tls),
        "a self-signed certificate is rejected"
    );
    let insecure = Env::with_config(
        &[],
        EngineConfig {
            insecure: true,
            ..EngineConfig::default()
        },
    );
    let mut user = insecure.user(0);
    let out = insecure.run(&s, &mut user).await;
    assert_eq!(out.result, Ok(()));
    assert_eq!(out.bytes, 2);
}
