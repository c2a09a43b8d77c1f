//! `parallel:` groups, compiled from YAML and run against a hyper server on loopback
//! that counts, on its side, the connections and the requests in flight at once.
//!
//! Its `/gate` answers only once enough requests have arrived (or after 5 s, with a
//! 504), so a group sent one request after another cannot pass: concurrency is
//! proved by the server, not by timing.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Version;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::{Value, json};
use swarm::compile::graph::{CompiledPlan, Step};
use swarm::compile::{CompileOptions, compile_str};
use swarm::engine::config::{EngineConfig, HttpConfig, Implementation};
use swarm::engine::request::{Outcome, VuContext, execute};
use swarm::engine::session::Protocols;
use swarm::metrics::stats::HttpVersionUsed;
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// What the server saw.
#[derive(Default)]
struct Seen {
    /// Requests to `/gate` wait until this many have arrived.
    need: usize,
    arrived: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    connections: AtomicUsize,
    versions: Mutex<Vec<Version>>,
    notify: Notify,
}

/// `/gate?c=NAME` waits for the gate, sets the cookie `NAME=1` and answers
/// `{"c": NAME, "cookie": <the Cookie header>}`; any other path answers the same at
/// once.
async fn answer(req: http::Request<Incoming>, seen: Arc<Seen>) -> http::Response<Full<Bytes>> {
    seen.versions.lock().unwrap().push(req.version());
    let now = seen.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    seen.max_in_flight.fetch_max(now, Ordering::SeqCst);
    seen.arrived.fetch_add(1, Ordering::SeqCst);
    seen.notify.notify_waiters();
    let mut status = 200;
    if req.uri().path() == "/gate" {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let opened = seen.notify.notified();
            tokio::pin!(opened);
            opened.as_mut().enable();
            if seen.arrived.load(Ordering::SeqCst) >= seen.need {
                break;
            }
            if tokio::time::timeout_at(deadline, opened).await.is_err() {
                status = 504;
                break;
            }
        }
    }
    let c = req
        .uri()
        .query()
        .and_then(|q| q.strip_prefix("c="))
        .unwrap_or("");
    let cookie = req
        .headers()
        .get("cookie")
        .map_or("", |v| v.to_str().unwrap_or(""));
    let body = json!({ "c": c, "cookie": cookie }).to_string();
    let mut res = http::Response::builder().status(status);
    if !c.is_empty() {
        res = res.header("set-cookie", format!("{c}=1; Path=/"));
    }
    seen.in_flight.fetch_sub(1, Ordering::SeqCst);
    res.body(Full::new(Bytes::from(body))).unwrap()
}

/// A cleartext hyper server speaking HTTP/1.1 and HTTP/2 (by the preface), whose
/// `/gate` opens once `need` requests have arrived.
async fn server(need: usize) -> (SocketAddr, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen {
        need,
        ..Seen::default()
    });
    let server_seen = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            server_seen.connections.fetch_add(1, Ordering::SeqCst);
            let seen = server_seen.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let seen = seen.clone();
                    async move { Ok::<_, Infallible>(answer(req, seen).await) }
                });
                let builder = auto::Builder::new(TokioExecutor::new());
                let _ = tokio::time::timeout(
                    Duration::from_secs(20),
                    builder.serve_connection(TokioIo::new(stream), service),
                )
                .await;
            });
        }
    });
    (addr, seen)
}

fn compile(yaml: &str, addr: SocketAddr) -> CompiledPlan {
    let opts = CompileOptions {
        target: Some(format!("http://{addr}")),
        ..CompileOptions::default()
    };
    match compile_str(yaml, Path::new("plan.yaml"), &opts) {
        Ok(plan) => plan,
        Err(e) => panic!("the test plan compiles:\n{e}"),
    }
}

/// Runs the first flow's steps once as user 0, groups included; the outcomes in the
/// order of the plan's calls.
async fn run(imp: Implementation, plan: &CompiledPlan) -> (Vec<Outcome>, VuContext) {
    let config = EngineConfig {
        http: HttpConfig {
            client: imp,
            version: plan.http_version,
            ..HttpConfig::default()
        },
        ..EngineConfig::default()
    };
    let protocols = Protocols::new(&config).unwrap();
    let mut ctx = VuContext::new(0, plan, &protocols);
    let mut outcomes = Vec::new();
    for step in &plan.flows[0].steps {
        let ran = async {
            match step {
                Step::Call(call) => vec![execute(call, &mut ctx, Instant::now()).await],
                Step::Parallel(group) => {
                    swarm::engine::parallel::execute_group(group, &mut ctx, Instant::now()).await
                }
                Step::Think(_) => Vec::new(),
            }
        };
        let outs = tokio::time::timeout(Duration::from_secs(30), ran)
            .await
            .expect("bounded by the request timeouts");
        outcomes.extend(outs);
    }
    (outcomes, ctx)
}

fn slot<'a>(plan: &CompiledPlan, ctx: &'a VuContext, name: &str) -> Option<&'a Value> {
    let i = plan.slots.iter().position(|s| s.name == name)?;
    ctx.slots[i].as_ref()
}

const H2C: &str = r#"
name: p
http: { version: h2c }
defaults: { timeout: 10s }
load: { users: 1, duration: 1s }
flows:
  - name: f
    steps:
      - get: /?c=before
        name: before
      - parallel:
          - { get: "/gate?c=a", name: a, expect: { status: 200 }, capture: { a: $.c } }
          - { get: "/gate?c=b", name: b, expect: { status: 200 }, capture: { b: $.c } }
          - { get: "/gate?c=c", name: c, expect: { status: 200 }, capture: { c: $.cookie } }
          - { get: "/gate?c=d", name: d, expect: { status: 200 } }
      - get: /?from={{ a }}{{ b }}
        name: after
        capture: { cookies: $.cookie }
"#;

/// Over HTTP/2 a group's requests are concurrent streams of the user's one
/// connection: the server's gate opens only when all four are in flight at once.
/// The group's captures and cookies are there for the step after it, and each
/// request of the group saw the cookies set before it.
async fn an_h2c_group_is_concurrent_streams_on_one_connection(imp: Implementation) {
    // 1 request before the group, then its 4.
    let (addr, seen) = server(5).await;
    let plan = compile(H2C, addr);
    let (outs, ctx) = run(imp, &plan).await;
    assert_eq!(outs.len(), 6);
    for (i, out) in outs.iter().enumerate() {
        assert_eq!(out.result, Ok(()), "call {i}: {out:?}");
        assert_eq!(out.version, Some(HttpVersionUsed::Http2), "call {i}");
    }
    assert_eq!(seen.max_in_flight.load(Ordering::SeqCst), 4);
    assert_eq!(seen.connections.load(Ordering::SeqCst), 1);
    assert_eq!(*seen.versions.lock().unwrap(), vec![Version::HTTP_2; 6]);
    assert_eq!(slot(&plan, &ctx, "a"), Some(&json!("a")));
    assert_eq!(slot(&plan, &ctx, "b"), Some(&json!("b")));
    assert_eq!(slot(&plan, &ctx, "c"), Some(&json!("before=1")));
    let cookies = slot(&plan, &ctx, "cookies")
        .and_then(Value::as_str)
        .unwrap();
    let mut cookies: Vec<&str> = cookies.split("; ").collect();
    cookies.sort_unstable();
    assert_eq!(cookies, ["a=1", "b=1", "before=1", "c=1", "d=1"]);
}

const H1: &str = r#"
name: p
http: { version: "1.1" }
defaults: { timeout: 10s }
load: { users: 1, duration: 1s }
flows:
  - name: f
    steps:
      - parallel:
          - get: /gate?c=a
          - get: /gate?c=b
          - get: /gate?c=c
          - get: /gate?c=d
          - get: /gate?c=e
          - get: /gate?c=f
          - get: /gate?c=g
          - get: /gate?c=h
      - get: /
        name: after
        capture: { cookies: $.cookie }
"#;

/// Over HTTP/1.1 a group goes out on at most 6 connections at once: the gate opens
/// when 6 have arrived, never more than 6 are in flight, and the 2 left over reuse
/// connections, as does the step after the group.
async fn an_http1_group_uses_up_to_six_connections(imp: Implementation) {
    let (addr, seen) = server(6).await;
    let plan = compile(H1, addr);
    let (outs, ctx) = run(imp, &plan).await;
    assert_eq!(outs.len(), 9);
    for (i, out) in outs.iter().enumerate() {
        assert_eq!(out.result, Ok(()), "call {i}: {out:?}");
        assert_eq!(out.version, Some(HttpVersionUsed::Http11), "call {i}");
    }
    assert_eq!(seen.max_in_flight.load(Ordering::SeqCst), 6);
    assert_eq!(seen.connections.load(Ordering::SeqCst), 6);
    let cookies = slot(&plan, &ctx, "cookies")
        .and_then(Value::as_str)
        .unwrap();
    assert_eq!(cookies.split("; ").count(), 8, "{cookies}");
}

per_client!(
    an_h2c_group_is_concurrent_streams_on_one_connection,
    an_http1_group_uses_up_to_six_connections,
);
