//! Helpers: an HTTP client, the test plan, a live run with its dashboard, an SSE
//! reader and a WebDriver client.

pub mod webdriver;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use swarm::compile::graph::CompiledPlan;
use swarm::compile::{CompileOptions, compile_str};
#[cfg(feature = "ui")]
use swarm::dashboard::{Dashboard, DashboardConfig, serve_run};
use swarm::engine::RunHandle;
use swarm::engine::config::EngineConfig;

/// A header value the page must never see.
pub const SECRET: &str = "s3cr3t-do-not-leak";

/// An HTTP client for loopback tests, with its own cookie jar.
/// Sends `req` and returns the answer's status, for checks that look at nothing else.
pub async fn status(req: reqwest::RequestBuilder) -> reqwest::StatusCode {
    req.send().await.expect("the request is answered").status()
}

pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .cookie_store(true)
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client builds")
}

/// The test plan: `list products` (with a secret header), `GET /health` and
/// `GET /flaky` (3% failures), two SLOs.
pub const PLAN: &str = r#"
name: dashboard test
target: http://127.0.0.1:1
load: { users: 2, duration: 60s }
flows:
  - name: browse
    think: 20ms..60ms
    steps:
      - get: /products?page={{ rand(1, 5) }}
        name: list products
        headers: { authorization: "Bearer s3cr3t-do-not-leak" }
      - get: /health
        name: GET /health
      - get: /flaky?fail=0.03
        name: GET /flaky
slo:
  - p95 < 500ms
  - "list products: error_rate < 1%"
"#;

/// Compile options pointing the test plan at `target`.
pub fn options(target: &str, users: u32, duration: Duration) -> CompileOptions {
    CompileOptions {
        target: Some(target.to_string()),
        users: Some(users),
        duration: Some(duration),
        ..CompileOptions::default()
    }
}

/// The test plan, compiled against `target`.
pub fn plan(target: &str, users: u32, duration: Duration) -> CompiledPlan {
    compile_str(
        PLAN,
        Path::new("dashboard-test.yaml"),
        &options(target, users, duration),
    )
    .unwrap_or_else(|e| panic!("the test plan compiles: {e}"))
}

/// One thread: the machine running the tests is small.
pub fn engine_config() -> EngineConfig {
    EngineConfig {
        threads: 1,
        ..EngineConfig::default()
    }
}

/// Reads Server-Sent Events from a response.
pub struct Sse {
    response: reqwest::Response,
    buffer: String,
}

impl Sse {
    pub async fn open(http: &reqwest::Client, url: &str) -> Sse {
        let response = http.get(url).send().await.expect("stream opens");
        assert_eq!(response.status(), 200, "stream status");
        let ct = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(ct.starts_with("text/event-stream"), "{ct}");
        Sse {
            response,
            buffer: String::new(),
        }
    }

    /// The next event `(name, data)`, within `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> (String, Value) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let raw: String = self.buffer.drain(..end + 2).collect();
                let mut name = String::from("message");
                let mut data = String::new();
                for line in raw.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                let value = serde_json::from_str(&data).expect("event data is JSON");
                return (name, value);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no event within {timeout:?}");
            let chunk = tokio::time::timeout(left, self.response.chunk())
                .await
                .expect("an event arrives in time")
                .expect("stream reads")
                .expect("stream stays open");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Skips events until a `snap` whose state satisfies `pred`; returns it.
    pub async fn until(&mut self, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "condition not met within {timeout:?}");
            let (name, data) = self.next(left).await;
            if name == "snap" && pred(&data["state"]) {
                return data;
            }
        }
    }
}

/// A demo target on a free loopback port.
pub async fn demo() -> swarm::demo::DemoServer {
    swarm::demo::start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("demo binds")
}

#[cfg(feature = "ui")]
/// A demo target, a real run of `users` users against it and a dashboard showing it.
pub async fn live_run(
    bind: &str,
    token: Option<&str>,
    users: u32,
) -> (swarm::demo::DemoServer, Dashboard, RunHandle) {
    let demo = demo().await;
    let plan = Arc::new(plan(&demo.url(), users, Duration::from_secs(60)));
    let run = swarm::engine::start(plan.clone(), engine_config()).expect("the run starts");
    let config = DashboardConfig::new(bind, token.map(str::to_string)).unwrap();
    let dash = serve_run(config, plan, run.snapshots(), run.control())
        .await
        .expect("dashboard starts");
    (demo, dash, run)
}

#[cfg(feature = "ui")]
/// `swarm ui` for the test plan, written to `dir` and aimed at `target`: idle until a
/// run is started through the API.
pub async fn interactive(dir: &Path, target: String) -> Dashboard {
    use swarm::compile::compile_file;
    use swarm::dashboard::{PlanLauncher, serve_interactive};

    let path = dir.join("plan.yaml");
    std::fs::write(&path, PLAN).unwrap();
    let launcher = PlanLauncher {
        path: path.clone(),
        options: CompileOptions {
            target: Some(target),
            ..CompileOptions::default()
        },
        engine: engine_config(),
    };
    let idle_plan = Arc::new(compile_file(&path, &launcher.options).unwrap());
    let config = DashboardConfig::new("127.0.0.1:0", None).unwrap();
    serve_interactive(config, idle_plan, Arc::new(launcher))
        .await
        .expect("dashboard starts")
}

#[cfg(feature = "ui")]
pub fn base(dash: &Dashboard) -> String {
    format!("http://127.0.0.1:{}", dash.addr().port())
}

#[cfg(feature = "ui")]
pub async fn control(http: &reqwest::Client, base: &str, body: Value) -> reqwest::Response {
    http.post(format!("{base}/api/control"))
        .header("x-swarm-request", "1")
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[cfg(feature = "ui")]
/// Skips events until the next `run` event; returns its meta.
pub async fn next_run(sse: &mut Sse) -> Value {
    for _ in 0..100 {
        let (name, data) = sse.next(Duration::from_secs(10)).await;
        if name == "run" {
            return data;
        }
    }
    panic!("no run event");
}

#[cfg(feature = "ui")]
pub async fn start_run(http: &reqwest::Client, base: &str, body: Value) -> reqwest::Response {
    http.post(format!("{base}/api/start"))
        .header("x-swarm-request", "1")
        .json(&body)
        .send()
        .await
        .unwrap()
}
