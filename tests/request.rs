//! The request pipeline against real loopback servers: rendering, cookies, captures,
//! expectations, redirects and every transport failure kind.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use http::Method;
use swarm::compile::graph::*;
use swarm::engine::config::EngineConfig;
use swarm::engine::http::HttpShared;
use swarm::engine::request::{Outcome, VuContext, execute};
use swarm::metrics::failure::FailureKind;

const T: Duration = Duration::from_secs(5);

/// Serves `app` on a free loopback port.
async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

fn plan(slots: &[&str]) -> CompiledPlan {
    CompiledPlan {
        name: "test".into(),
        source: PathBuf::from("test.yaml"),
        target: "http://127.0.0.1".into(),
        load: Load {
            model: LoadModel::Closed(ClosedLoad::Fixed {
                users: 1,
                spawn_rate: None,
            }),
            duration: Some(Duration::from_secs(1)),
            iterations: None,
        },
        flows: Vec::new(),
        requests: Vec::new(),
        expectations: Vec::new(),
        captures: Vec::new(),
        slots: slots
            .iter()
            .map(|s| SlotInfo { name: (*s).into() })
            .collect(),
        feeders: Vec::new(),
        slos: Vec::new(),
    }
}

fn step(method: Method, url: impl Into<String>) -> RequestStep {
    RequestStep {
        request: RequestId(0),
        method,
        url: Template::literal(url),
        headers: Vec::new(),
        query: Vec::new(),
        body: None,
        timeout: T,
        expect: Expect::default(),
        captures: Vec::new(),
        feeders: Vec::new(),
    }
}

struct Env {
    http: HttpShared,
    plan: CompiledPlan,
}

impl Env {
    fn new(slots: &[&str]) -> Env {
        Env::with_config(slots, EngineConfig::default())
    }
    fn with_config(slots: &[&str], config: EngineConfig) -> Env {
        Env {
            http: HttpShared::new(&config).unwrap(),
            plan: plan(slots),
        }
    }
    fn user(&self, n: u32) -> VuContext {
        VuContext::new(n, &self.plan, &self.http)
    }
    async fn run(&self, s: &RequestStep, ctx: &mut VuContext) -> Outcome {
        tokio::time::timeout(
            Duration::from_secs(20),
            execute(s, ctx, &self.http, Instant::now()),
        )
        .await
        .expect("execute is bounded by the request timeout")
    }
}

#[tokio::test]
async fn plain_get() {
    let addr = serve(Router::new().route("/hello", get(|| async { "hello world" }))).await;
    let env = Env::new(&[]);
    let mut user = env.user(0);
    let out = env
        .run(
            &step(Method::GET, format!("http://{addr}/hello")),
            &mut user,
        )
        .await;
    assert_eq!(out.result, Ok(()));
    assert_eq!(out.bytes, 11);
    assert!(out.latency > Duration::ZERO);
}

#[tokio::test]
async fn refused() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let env = Env::new(&[]);
    let mut user = env.user(0);
    let out = env
        .run(
            &step(Method::GET, format!("http://127.0.0.1:{port}/")),
            &mut user,
        )
        .await;
    assert_eq!(out.result, Err(FailureKind::Refused));
}
