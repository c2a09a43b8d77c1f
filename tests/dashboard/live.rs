//! `swarm check --ui`: the stream, the controls, the downloads and the token.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::json;
use swarm::dashboard::{DashboardConfig, DashboardError, serve_run};
use swarm::metrics::snapshot::{EndReason, Snapshot};
use tokio::sync::{mpsc, watch};

use crate::support::{SECRET, Sse, base, control, demo, engine_config, live_run, next_run, plan};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_delivers_snapshots_and_the_controls_steer_the_run() {
    let (_demo, dash, run) = live_run("127.0.0.1:0", None, 2).await;
    let base = base(&dash);
    let http = crate::support::client();

    let page = http.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    let page = page.text().await.unwrap();
    assert!(page.contains("/assets/app.js") && page.contains("ch-rps"));
    for asset in ["app.js", "charts.js", "style.css"] {
        let r = http
            .get(format!("{base}/assets/{asset}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{asset}");
    }

    let mut sse = Sse::open(&http, &format!("{base}/api/stream")).await;
    let (name, meta) = sse.next(Duration::from_secs(5)).await;
    assert_eq!(name, "run");
    assert_eq!(meta["name"], "dashboard test");
    assert_eq!(meta["requests"][0][1], "list products");
    assert_eq!(meta["slos"][1], "list products: error_rate < 1%");
    assert!(
        !meta.to_string().contains(SECRET),
        "a secret reached the page: {meta}"
    );

    // The first snapshot carries the whole series; the next ones only new points.
    let first = sse
        .until(Duration::from_secs(10), |s| {
            s["total"][1].as_u64() > Some(0)
        })
        .await;
    let mut last_t = first["points"]
        .as_array()
        .unwrap()
        .last()
        .map_or(-1.0, |p| p[0].as_f64().unwrap());
    let mut seen_delta = false;
    for _ in 0..6 {
        let (name, snap) = sse.next(Duration::from_secs(5)).await;
        assert_eq!(name, "snap");
        if snap["reset"] == false {
            for p in snap["points"].as_array().unwrap() {
                assert!(p[0].as_f64().unwrap() > last_t, "a point was sent twice");
                last_t = p[0].as_f64().unwrap();
                seen_delta = true;
            }
        }
        assert!(!snap.to_string().contains(SECRET));
    }
    assert!(seen_delta, "no new series points were streamed");
    let state = sse.until(Duration::from_secs(5), |_| true).await["state"].clone();
    assert_eq!(state["state"], "running");
    assert_eq!(state["users"], 2);
    assert_eq!(state["rows"].as_array().unwrap().len(), 3);
    assert_eq!(state["slos"].as_array().unwrap().len(), 2);

    // Cross-site and malformed control requests are refused.
    let no_header = crate::support::status(
        http.post(format!("{base}/api/control"))
            .json(&json!({"action": "stop"})),
    )
    .await;
    assert_eq!(no_header, 403);
    let form = crate::support::status(
        http.post(format!("{base}/api/control"))
            .header("x-swarm-request", "1")
            .form(&[("action", "stop")]),
    )
    .await;
    assert_eq!(form, 415);
    let foreign = crate::support::status(
        http.post(format!("{base}/api/control"))
            .header("x-swarm-request", "1")
            .header("origin", "http://evil.example")
            .json(&json!({"action": "stop"})),
    )
    .await;
    assert_eq!(foreign, 403);
    let get = http
        .get(format!("{base}/api/control"))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 405);
    let rebound =
        crate::support::status(http.get(format!("{base}/")).header("host", "evil.example")).await;
    assert_eq!(rebound, 403, "a DNS-rebinding host is refused");
    let bad = control(&http, &base, json!({"action": "users", "users": -3})).await;
    assert_eq!(bad.status(), 400);

    // Changing the user count changes the observed active users.
    let r = control(
        &http,
        &base,
        json!({"action": "users", "users": 5, "spawn_rate": 10}),
    )
    .await;
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    sse.until(Duration::from_secs(10), |s| s["users"] == 5)
        .await;

    // Downloads, while running.
    for (kind, needle) in [
        ("csv", "list products"),
        ("json", "\"list products\""),
        ("junit", "<testsuite"),
        ("html", "swarm-data"),
    ] {
        let r = http
            .get(format!("{base}/api/report/{kind}?run=1"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{kind}");
        assert!(
            r.headers()["content-disposition"]
                .to_str()
                .unwrap()
                .starts_with("attachment")
        );
        let body = r.text().await.unwrap();
        assert!(body.contains(needle), "{kind} lacks {needle}");
        assert!(!body.contains(SECRET), "{kind} leaks a secret");
    }
    let csv = http
        .get(format!("{base}/api/report/csv"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(csv.starts_with("Type,Name,Request Count,Failure Count,Median Response Time"));
    assert!(csv.lines().last().unwrap().contains("Aggregated"));

    // Stop ends the run; the page sees it; the dashboard keeps the final results.
    let r = control(&http, &base, json!({"action": "stop"})).await;
    assert_eq!(r.status(), 202);
    let done = tokio::time::timeout(Duration::from_secs(10), run.wait())
        .await
        .expect("the run ends after stop")
        .unwrap();
    dash.finish(done.clone());
    sse.until(Duration::from_secs(10), |s| s["state"] == "stopped")
        .await;
    let late = control(&http, &base, json!({"action": "users", "users": 1})).await;
    assert_eq!(late.status(), 409, "controls after the end are refused");
    let html = http
        .get(format!("{base}/api/report/html"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("\"state\":\"stopped\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_loopback_without_a_token_is_refused() {
    let demo = demo().await;
    let plan = Arc::new(plan(&demo.url(), 1, Duration::from_secs(5)));
    let run = swarm::engine::start(plan.clone(), engine_config()).expect("the run starts");
    let err = DashboardConfig::new("0.0.0.0:0", None).unwrap_err();
    assert!(matches!(err, DashboardError::TokenRequired(_)));
    // A config built by hand is checked again when serving.
    let config = DashboardConfig {
        addr: "0.0.0.0:0".parse().unwrap(),
        token: None,
    };
    let err = serve_run(config, plan, run.snapshots(), run.control())
        .await
        .err()
        .expect("refused");
    assert!(matches!(err, DashboardError::TokenRequired(_)));
    assert!(err.to_string().contains("--ui-token"), "{err}");
    assert_eq!(swarm::cli::CliError::from(err).code(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_is_checked_on_every_request() {
    // Bound to all interfaces with a token; every request below goes to 127.0.0.1.
    let (_demo, dash, _run) = live_run("0.0.0.0:0", Some("tok3n"), 1).await;
    let base = base(&dash);
    assert!(dash.url_with_token().ends_with("/?token=tok3n"));
    let anon = crate::support::client();
    for path in [
        "/",
        "/assets/app.js",
        "/api/stream",
        "/api/report/csv",
        "/?token=wrong",
    ] {
        let r = anon.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
    }
    let r = control(&anon, &base, json!({"action": "stop"})).await;
    assert_eq!(r.status(), 401);
    let r = anon
        .get(format!("{base}/api/stream"))
        .header("x-swarm-token", "wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // A first visit with ?token= sets the cookie and drops the token from the URL.
    let browser = crate::support::client();
    let r = browser
        .get(format!("{base}/?token=tok3n"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/");
    let cookie = r.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    assert_eq!(
        crate::support::status(browser.get(format!("{base}/"))).await,
        200
    );
    let mut sse = Sse::open(&browser, &format!("{base}/api/stream")).await;
    assert_eq!(sse.next(Duration::from_secs(5)).await.0, "run");
    let r = anon
        .get(format!("{base}/api/report/csv"))
        .header("authorization", "Bearer tok3n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_with_url_characters_works_after_the_first_visit() {
    let token = "a/b+c= %";
    let (_demo, dash, _run) = live_run("127.0.0.1:0", Some(token), 1).await;
    let base = base(&dash);
    let url = dash.url_with_token();
    let query = &url[url.find('?').expect("the URL has the token")..];
    assert_eq!(query, "?token=a%2Fb%2Bc%3D+%25");
    let browser = crate::support::client();
    let r = browser.get(format!("{base}/{query}")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    // From here on the browser presents only the cookie.
    let r = browser.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let mut sse = Sse::open(&browser, &format!("{base}/api/stream")).await;
    assert_eq!(sse.next(Duration::from_secs(5)).await.0, "run");
    let r = browser
        .get(format!("{base}/api/report/csv"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let anon = crate::support::client();
    let r = anon
        .get(format!("{base}/"))
        .header(
            "cookie",
            format!("swarm_token_{}=a%2Fb", dash.addr().port()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "a prefix of the token is refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_arrival_rate_of_an_open_model_run_can_be_changed() {
    let demo = demo().await;
    let source = r#"
name: open dashboard test
load: { arrival_rate: 20/s, max_users: 20, duration: 60s }
flows:
  - name: browse
    steps:
      - get: /health
"#;
    let options = swarm::compile::CompileOptions {
        target: Some(demo.url()),
        ..Default::default()
    };
    let plan = swarm::compile::compile_str(source, std::path::Path::new("open.yaml"), &options)
        .expect("the plan compiles");
    let plan = Arc::new(plan);
    let run = swarm::engine::start(plan.clone(), engine_config()).expect("the run starts");
    let config = DashboardConfig::new("127.0.0.1:0", None).unwrap();
    let dash = serve_run(config, plan, run.snapshots(), run.control())
        .await
        .unwrap();
    let base = base(&dash);
    let http = crate::support::client();
    let mut sse = Sse::open(&http, &format!("{base}/api/stream")).await;
    let meta = next_run(&mut sse).await;
    assert_eq!(meta["load"]["model"], "open");
    assert_eq!(meta["load"]["rate"], 20.0);
    let r = control(&http, &base, json!({"action": "rate", "rate": -1})).await;
    assert_eq!(r.status(), 400);
    let r = control(&http, &base, json!({"action": "rate", "rate": 50})).await;
    assert_eq!(r.status(), 202);
    sse.until(Duration::from_secs(10), |s| s["target_rate"] == 50.0)
        .await;
    let r = control(&http, &base, json!({"action": "stop"})).await;
    assert_eq!(r.status(), 202);
    sse.until(Duration::from_secs(10), |s| s["state"] == "stopped")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_snapshots_stop_while_running_is_shown_as_stopped() {
    // `swarm check --ui` when the engine fails: its snapshots end mid-run.
    let HandFed {
        dash,
        snapshots_tx,
        empty,
        base,
        http,
        mut sse,
        _control,
    } = hand_fed().await;
    let mut mid_run = empty;
    mid_run.elapsed = Duration::from_secs(1);
    snapshots_tx.send_replace(Arc::new(mid_run.clone()));
    sse.until(Duration::from_secs(10), |s| s["elapsed"] == 1.0)
        .await;
    drop(snapshots_tx);
    sse.until(Duration::from_secs(10), |s| s["state"] == "stopped")
        .await;
    let r = control(&http, &base, json!({"action": "stop"})).await;
    assert_eq!(r.status(), 409, "the run has ended");
    // The caller's final snapshot (the one its reports used) still wins.
    mid_run.elapsed = Duration::from_secs(2);
    mid_run.end = EndReason::Interrupted;
    dash.finish(Arc::new(mid_run));
    sse.until(Duration::from_secs(10), |s| {
        s["state"] == "interrupted" && s["elapsed"] == 2.0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_downloaded_later_keeps_the_runs_start_time() {
    let before = SystemTime::now();
    let HandFed {
        dash: _serving,
        snapshots_tx,
        empty,
        base,
        http,
        mut sse,
        _control,
    } = hand_fed().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut last = empty;
    last.elapsed = Duration::from_millis(500);
    last.end = EndReason::Completed;
    snapshots_tx.send_replace(Arc::new(last));
    sse.until(Duration::from_secs(10), |s| s["state"] == "completed")
        .await;

    let started_at = || async {
        let report: serde_json::Value = http
            .get(format!("{base}/api/report/json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let at = report["started_at"].as_str().unwrap().to_string();
        SystemTime::from(chrono::DateTime::parse_from_rfc3339(&at).unwrap())
    };
    let first = started_at().await;
    // Milliseconds in the report: `first` may be up to 1 ms before `before`.
    let apart = first
        .duration_since(before)
        .unwrap_or_else(|e| e.duration());
    assert!(
        apart < Duration::from_millis(300),
        "started {apart:?} away from the attach"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(started_at().await, first, "the start does not move");
}

/// A dashboard attached to snapshots the test publishes by hand, as an engine would,
/// with a page's stream open on the run.
struct HandFed {
    dash: swarm::dashboard::Dashboard,
    snapshots_tx: watch::Sender<Arc<Snapshot>>,
    /// The first snapshot published: the run's start, nothing measured.
    empty: Snapshot,
    base: String,
    http: reqwest::Client,
    sse: Sse,
    /// Kept open, as an engine keeps it, though nothing steers a hand-fed run.
    _control: mpsc::UnboundedReceiver<swarm::engine::control::Control>,
}

async fn hand_fed() -> HandFed {
    let plan = Arc::new(plan("http://127.0.0.1:1", 2, Duration::from_secs(60)));
    let config = DashboardConfig::new("127.0.0.1:0", None).unwrap();
    let dash = swarm::dashboard::bind(config, plan.clone()).await.unwrap();
    let empty = Snapshot::empty(plan.requests.len(), None);
    let (snapshots_tx, snapshots) = watch::channel(Arc::new(empty.clone()));
    let (control_tx, control) = mpsc::unbounded_channel();
    dash.attach(plan, snapshots, control_tx);
    let base = base(&dash);
    let http = crate::support::client();
    let mut sse = Sse::open(&http, &format!("{base}/api/stream")).await;
    next_run(&mut sse).await;
    HandFed {
        dash,
        snapshots_tx,
        empty,
        base,
        http,
        sse,
        _control: control,
    }
}
