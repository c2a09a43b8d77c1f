//! Helpers for tests/dashboard.rs: an HTTP client, a hand-built plan, an SSE reader,
//! a load driver and a WebDriver client.

#![allow(dead_code)]

pub mod driver;
pub mod webdriver;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use http::{HeaderName, Method};
use serde_json::Value;
use swarm::compile::graph::{
    ClosedLoad, CmpOp, CompiledPlan, Expect, Flow, Load, LoadModel, Metric, RequestId, RequestInfo,
    RequestStep, Slo, Step, Template,
};

/// A header value the page must never see.
pub const SECRET: &str = "s3cr3t-do-not-leak";

/// An HTTP client for loopback tests, with its own cookie jar.
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

/// The plan the driver's traffic matches: `list products` and `GET /health`, with a
/// secret header, two SLOs and 2 users.
pub fn plan(target: &str) -> CompiledPlan {
    let step = |request: u32, path: &str| {
        Step::Request(Box::new(RequestStep {
            request: RequestId(request),
            method: Method::GET,
            url: Template::literal(format!("{target}{path}")),
            headers: vec![(
                HeaderName::from_static("authorization"),
                Template::literal(format!("Bearer {SECRET}")),
            )],
            query: Vec::new(),
            body: None,
            timeout: Duration::from_secs(5),
            expect: Expect::default(),
            captures: Vec::new(),
            feeders: Vec::new(),
        }))
    };
    let slo = |request: Option<u32>, text: &str, metric: Metric, op: CmpOp, threshold: f64| Slo {
        text: text.into(),
        request: request.map(RequestId),
        metric,
        op,
        threshold,
        line: Some(1),
        column: Some(1),
    };
    CompiledPlan {
        name: "dashboard test".into(),
        source: PathBuf::from("dashboard-test.yaml"),
        target: target.to_string(),
        load: Load {
            model: LoadModel::Closed(ClosedLoad::Fixed {
                users: 2,
                spawn_rate: None,
            }),
            duration: Some(Duration::from_secs(60)),
            iterations: None,
        },
        flows: vec![Flow {
            name: "browse".into(),
            weight: 1,
            think: None,
            pace: None,
            setup: Vec::new(),
            steps: vec![step(0, "/products?page=1"), step(1, "/health")],
            teardown: Vec::new(),
        }],
        requests: vec![
            RequestInfo {
                name: "list products".into(),
                method: Method::GET,
            },
            RequestInfo {
                name: "GET /health".into(),
                method: Method::GET,
            },
        ],
        expectations: Vec::new(),
        captures: Vec::new(),
        slots: Vec::new(),
        feeders: Vec::new(),
        slos: vec![
            slo(
                None,
                "p95 < 500ms",
                Metric::Percentile(95.0),
                CmpOp::Lt,
                500.0,
            ),
            slo(
                Some(0),
                "error_rate < 1%",
                Metric::ErrorRate,
                CmpOp::Lt,
                0.01,
            ),
        ],
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
