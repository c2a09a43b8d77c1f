//! The dashboard under abuse, during a real run: oversized and malformed control
//! requests, cross-origin and CSRF attempts, a wrong token sent many times, and 1,000
//! event-stream clients. None of it may stop, slow or crash the run.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{SECRET, Sse, base, control, live_run};

/// One abuse test at a time: the stream test measures this process's memory, which the
/// others' 8 MB bodies and thousands of requests would blur.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The run is still going and still measuring: a fresh stream sees its request count
/// grow.
async fn assert_run_unaffected(http: &reqwest::Client, base: &str) {
    let mut sse = Sse::open(http, &format!("{base}/api/stream")).await;
    let count = |state: &serde_json::Value| state["total"][1].as_u64().unwrap_or(0);
    let first = sse
        .until(Duration::from_secs(20), |s| s["state"] == "running")
        .await;
    let before = count(&first["state"]);
    sse.until(Duration::from_secs(30), |s| {
        s["state"] == "running" && count(s) > before
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_malformed_control_requests_are_refused_and_the_run_goes_on() {
    let _one = ONE_AT_A_TIME.lock().await;
    let (_demo, dash, _run) = live_run("127.0.0.1:0", None, 2).await;
    let base = base(&dash);
    let http = crate::support::client();
    let huge = format!(
        "{{\"action\":\"stop\",\"pad\":\"{}\"}}",
        "x".repeat(8 << 20)
    );
    let r = http
        .post(format!("{base}/api/control"))
        .header("x-swarm-request", "1")
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await;
    // The server answers 413 as soon as the length is known; it may close the
    // connection before the client has written it all, which the client sees as a
    // broken pipe, or, when the close with unread bytes becomes a reset that
    // overtakes the answer, as a connection that ended before any response (seen
    // once on a loaded machine). Either way the request was refused unread.
    match r {
        Ok(r) => assert_eq!(r.status(), 413, "an 8 MB control request"),
        Err(e) => assert!(
            e.is_request()
                && ["BodyWrite", "IncompleteMessage", "ConnectionReset"]
                    .iter()
                    .any(|what| format!("{e:?}").contains(what)),
            "an 8 MB control request: {e:?}"
        ),
    }
    for body in [
        json!("not an object"),
        json!({ "action": "explode" }),
        json!({ "action": "users", "users": -1 }),
        json!({ "action": "users", "users": 1e30 }),
        // A count that parses, but that no machine holds: refused, never attempted.
        json!({ "action": "users", "users": u32::MAX }),
        json!({ "action": "rate", "rate": "fast" }),
        json!({ "action": "users", "users": 2, "spawn_rate": 0 }),
    ] {
        let r = control(&http, &base, body.clone()).await;
        assert_eq!(r.status(), 400, "{body}: {}", r.text().await.unwrap());
    }
    let r = http
        .post(format!("{base}/api/control"))
        .header("x-swarm-request", "1")
        .body(&b"\xff\xfe{{{"[..])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        415,
        "bytes that are not JSON, without a content type"
    );
    assert_run_unaffected(&http, &base).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_origin_and_csrf_attempts_are_refused() {
    let _one = ONE_AT_A_TIME.lock().await;
    let (_demo, dash, _run) = live_run("127.0.0.1:0", None, 2).await;
    let base = base(&dash);
    let http = crate::support::client();
    let stop = json!({ "action": "stop" });
    // A foreign page's form or fetch: a foreign Origin, or no custom header.
    let foreign = http
        .post(format!("{base}/api/control"))
        .header("x-swarm-request", "1")
        .header("origin", "http://evil.example")
        .json(&stop)
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403);
    let form = crate::support::status(
        http.post(format!("{base}/api/control"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("action=stop"),
    )
    .await;
    assert_eq!(form, 403, "a form post without the custom header");
    // DNS rebinding: a foreign host name pointing at loopback.
    let rebound = crate::support::status(
        http.get(format!("{base}/api/stream"))
            .header("host", "evil.example"),
    )
    .await;
    assert_eq!(rebound, 403);
    assert_run_unaffected(&http, &base).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_sent_2000_times_is_refused_each_time_and_the_right_one_still_works() {
    let _one = ONE_AT_A_TIME.lock().await;
    let (_demo, dash, _run) = live_run("127.0.0.1:0", Some("right-token"), 2).await;
    let base = base(&dash);
    let http = crate::support::client();
    for i in 0..2000 {
        let r = crate::support::status(
            http.get(format!("{base}/api/stream"))
                .header("x-swarm-token", format!("wrong-{i}")),
        )
        .await;
        assert_eq!(r, 401, "attempt {i}");
    }
    let ok = http
        .get(format!("{base}/api/report/json"))
        .header("x-swarm-token", "right-token")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert!(!ok.text().await.unwrap().contains(SECRET));
}

/// The resident set of this test process, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

/// Makes room for `n` more open files (each stream is two sockets in this process).
fn raise_fd_limit(n: u64) -> u64 {
    // SAFETY: getrlimit/setrlimit on a valid struct.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        let want = (lim.rlim_cur as u64 + n).min(lim.rlim_max as u64);
        lim.rlim_cur = want as libc::rlim_t;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur as u64
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_event_stream_clients_cost_bounded_memory_and_the_run_goes_on() {
    let limit = raise_fd_limit(2_500);
    // Each client holds two descriptors here (its socket and the server's); keep 200
    // for the run itself.
    let clients = 1000.min((limit.saturating_sub(200) / 2) as usize);
    if clients < 1000 {
        eprintln!("NOTE: the open-file limit ({limit}) allows {clients} stream clients, not 1,000");
    }
    let _one = ONE_AT_A_TIME.lock().await;
    let (_demo, dash, _run) = live_run("127.0.0.1:0", None, 2).await;
    let base = base(&dash);
    let http = crate::support::client();
    let addr = dash.addr();
    let before = rss();
    let mut streams = Vec::with_capacity(clients);
    let request = format!(
        "GET /api/stream HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\r\n",
        addr.port()
    );
    let start = Instant::now();
    for i in 0..clients {
        let mut s = TcpStream::connect(addr)
            .await
            .unwrap_or_else(|e| panic!("client {i}: {e}"));
        s.write_all(request.as_bytes()).await.unwrap();
        streams.push(s);
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "connecting took too long"
        );
    }
    // Every client gets its stream's head and a first event; none is read after that,
    // so the server must not buffer without bound for slow readers.
    let mut buf = vec![0u8; 4096];
    for (i, s) in streams.iter_mut().enumerate() {
        let n = tokio::time::timeout(Duration::from_secs(30), s.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("client {i} got nothing"))
            .unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "client {i}");
    }
    // Let snapshots pile up for the clients that do not read.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_run_unaffected(&http, &base).await;
    let grown = rss().saturating_sub(before);
    eprintln!(
        "{clients} stream clients: the process grew by {} MB",
        grown >> 20
    );
    assert!(
        grown < 150 * 1024 * 1024,
        "{clients} stream clients grew the process by {} MB",
        grown >> 20
    );
    drop(streams);
}
