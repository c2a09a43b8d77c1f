//! The demo target and the live dashboard, driven over real loopback HTTP.

mod dashboard_support;

use std::net::SocketAddr;

use serde_json::{Value, json};

use dashboard_support::client;

async fn demo() -> swarm::demo::DemoServer {
    swarm::demo::start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("demo binds")
}

#[tokio::test]
async fn demo_serves_the_shop_api() {
    let server = demo().await;
    let base = server.url();
    let http = client();

    let r = http.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "ok");

    // Every id listed on pages 1..5 resolves, with a positive price.
    for page in 1..=5 {
        let body: Value = http
            .get(format!("{base}/products?page={page}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(body["page"], page);
        let items = body["items"].as_array().unwrap();
        assert_eq!(items.len(), 10);
        for item in items {
            assert!(item["price"].as_f64().unwrap() > 0.0);
            let one = http
                .get(format!("{base}/products/{}", item["id"]))
                .send()
                .await
                .unwrap();
            assert_eq!(one.status(), 200);
            let one: Value = one.json().await.unwrap();
            assert_eq!(&one, item);
        }
    }
    let missing = http.get(format!("{base}/products/100000")).send().await;
    assert_eq!(missing.unwrap().status(), 404);

    // No session yet.
    assert_eq!(
        http.get(format!("{base}/me"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let bad = http
        .post(format!("{base}/login"))
        .json(&json!({"user": "alice", "password": ""}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    let login = http
        .post(format!("{base}/login"))
        .json(&json!({"user": "alice", "password": "wonderland"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let token = login.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let me: Value = http
        .get(format!("{base}/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["user"], "alice");

    let cart = http
        .post(format!("{base}/cart"))
        .bearer_auth(&token)
        .json(&json!({"product": 7, "qty": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(cart.status(), 201);
    let cart: Value = cart.json().await.unwrap();
    assert!(cart["cart_id"].is_string());
    assert_eq!(cart["items"][0]["product"], 7);
    for auth in [None, Some("Bearer forged.token.0")] {
        let mut req = http
            .post(format!("{base}/cart"))
            .json(&json!({"product": 7, "qty": 1}));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        assert_eq!(req.send().await.unwrap().status(), 401);
    }

    let started = std::time::Instant::now();
    let slow = http
        .get(format!("{base}/slow?ms=120"))
        .send()
        .await
        .unwrap();
    assert_eq!(slow.status(), 200);
    assert!(started.elapsed() >= std::time::Duration::from_millis(120));

    for (p, want) in [("0", 200), ("1", 500)] {
        let r = http
            .get(format!("{base}/flaky?fail={p}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), want);
    }
    for code in [201, 204, 418, 503] {
        let r = http
            .get(format!("{base}/status/{code}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), code);
    }
    assert_eq!(
        http.get(format!("{base}/status/99"))
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
}

#[tokio::test]
async fn demo_stops_when_dropped() {
    let server = demo().await;
    let url = format!("{}/health", server.url());
    drop(server);
    let http = client();
    let mut refused = false;
    for _ in 0..50 {
        if http.get(&url).send().await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(refused, "the demo still answers after being dropped");
}

// ---------------------------------------------------------------------------------
// The live dashboard

use std::sync::Arc;
use std::time::Duration;

use dashboard_support::{SECRET, Sse, engine_config, plan};
use swarm::dashboard::{Dashboard, DashboardConfig, DashboardError, serve_run};
use swarm::engine::RunHandle;

/// A demo target, a real run of `users` users against it and a dashboard showing it.
async fn live_run(
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

fn base(dash: &Dashboard) -> String {
    format!("http://127.0.0.1:{}", dash.addr().port())
}

async fn control(http: &reqwest::Client, base: &str, body: Value) -> reqwest::Response {
    http.post(format!("{base}/api/control"))
        .header("x-swarm-request", "1")
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_delivers_snapshots_and_the_controls_steer_the_run() {
    let (_demo, dash, run) = live_run("127.0.0.1:0", None, 2).await;
    let base = base(&dash);
    let http = dashboard_support::client();

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
    let no_header = http
        .post(format!("{base}/api/control"))
        .json(&json!({"action": "stop"}))
        .send()
        .await
        .unwrap();
    assert_eq!(no_header.status(), 403);
    let form = http
        .post(format!("{base}/api/control"))
        .header("x-swarm-request", "1")
        .form(&[("action", "stop")])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 415);
    let foreign = http
        .post(format!("{base}/api/control"))
        .header("x-swarm-request", "1")
        .header("origin", "http://evil.example")
        .json(&json!({"action": "stop"}))
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403);
    let get = http
        .get(format!("{base}/api/control"))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 405);
    let rebound = http
        .get(format!("{base}/"))
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status(), 403, "a DNS-rebinding host is refused");
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
    assert_eq!(err.exit_code(), 2);
    assert!(err.to_string().contains("--ui-token"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_is_checked_on_every_request() {
    // Bound to all interfaces with a token; every request below goes to 127.0.0.1.
    let (_demo, dash, _run) = live_run("0.0.0.0:0", Some("tok3n"), 1).await;
    let base = base(&dash);
    assert!(dash.url_with_token().ends_with("/?token=tok3n"));
    let anon = dashboard_support::client();
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
    let browser = dashboard_support::client();
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
        browser
            .get(format!("{base}/"))
            .send()
            .await
            .unwrap()
            .status(),
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
    let http = dashboard_support::client();
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

/// Skips events until the next `run` event; returns its meta.
async fn next_run(sse: &mut Sse) -> Value {
    for _ in 0..100 {
        let (name, data) = sse.next(Duration::from_secs(10)).await;
        if name == "run" {
            return data;
        }
    }
    panic!("no run event");
}

async fn start_run(http: &reqwest::Client, base: &str, body: Value) -> reqwest::Response {
    http.post(format!("{base}/api/start"))
        .header("x-swarm-request", "1")
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interactive_mode_starts_steers_and_stops_runs() {
    use swarm::compile::{CompileOptions, compile_file};
    use swarm::dashboard::{PlanLauncher, serve_interactive};

    let demo = demo().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.yaml");
    std::fs::write(&path, dashboard_support::PLAN).unwrap();
    let launcher = PlanLauncher {
        path: path.clone(),
        options: CompileOptions {
            target: Some(demo.url()),
            ..CompileOptions::default()
        },
        engine: engine_config(),
    };
    let idle_plan = Arc::new(compile_file(&path, &launcher.options).unwrap());
    let config = DashboardConfig::new("127.0.0.1:0", None).unwrap();
    let dash = serve_interactive(config, idle_plan, Arc::new(launcher))
        .await
        .expect("dashboard starts");
    let base = base(&dash);
    let http = dashboard_support::client();
    let mut sse = Sse::open(&http, &format!("{base}/api/stream")).await;
    let (name, meta) = sse.next(Duration::from_secs(5)).await;
    assert_eq!(name, "idle");
    assert_eq!(meta["run"], 0);
    assert_eq!(meta["interactive"], true);
    assert_eq!(meta["load"]["users"], 2);

    let r = control(&http, &base, json!({"action": "users", "users": 3})).await;
    assert_eq!(r.status(), 409, "no run to steer yet");
    let r = start_run(&http, &base, json!({"users": 3, "duration": "soon"})).await;
    assert_eq!(r.status(), 400);

    // First run: 3 users, steered to 1, stopped.
    let r = start_run(
        &http,
        &base,
        json!({"users": 3, "spawn_rate": 50, "duration": "30s"}),
    )
    .await;
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    assert_eq!(next_run(&mut sse).await["run"], 1);
    sse.until(Duration::from_secs(10), |s| s["users"] == 3)
        .await;
    let r = start_run(&http, &base, json!({"users": 1})).await;
    assert_eq!(r.status(), 409, "one run at a time");
    let r = control(&http, &base, json!({"action": "users", "users": 1})).await;
    assert_eq!(r.status(), 202);
    sse.until(Duration::from_secs(10), |s| s["users"] == 1)
        .await;
    let r = control(&http, &base, json!({"action": "reset"})).await;
    assert_eq!(r.status(), 202);
    let r = control(&http, &base, json!({"action": "stop"})).await;
    assert_eq!(r.status(), 202);
    sse.until(Duration::from_secs(10), |s| s["state"] == "stopped")
        .await;

    // Second run, with the plan's own duration but 2 users.
    let r = start_run(&http, &base, json!({"users": 2})).await;
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    assert_eq!(next_run(&mut sse).await["run"], 2);
    sse.until(Duration::from_secs(10), |s| {
        s["users"] == 2 && s["total"][1].as_u64() > Some(0)
    })
    .await;
    let r = control(&http, &base, json!({"action": "stop"})).await;
    assert_eq!(r.status(), 202);
    sse.until(Duration::from_secs(10), |s| s["state"] == "stopped")
        .await;

    // Each run's reports stay downloadable.
    for run in [1, 2] {
        let r = http
            .get(format!("{base}/api/report/csv?run={run}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.text().await.unwrap().contains("list products"));
    }
    let r = http
        .get(format!("{base}/api/report/csv?run=3"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

// ---------------------------------------------------------------------------------
// In a real browser (headless Chromium through chromedriver)

use dashboard_support::webdriver::Browser;

/// Where screenshots go when SWARM_SCREENSHOTS names a directory (e.g. `docs`).
fn save_screenshot(name: &str, png: &[u8]) {
    if let Ok(dir) = std::env::var("SWARM_SCREENSHOTS") {
        let path = std::path::Path::new(&dir).join(name);
        std::fs::write(&path, png).expect("screenshot written");
        eprintln!("screenshot: {}", path.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_browser_the_page_charts_the_run_and_steers_it() {
    let Some(browser) = Browser::start("dashboard").await else {
        return;
    };
    let (_demo, dash, run) = live_run("127.0.0.1:0", None, 3).await;
    let base = base(&dash);
    browser.goto(&format!("{base}/")).await;
    let wait = Duration::from_secs(20);
    browser
        .wait_for(
            "the charts to draw points",
            "return ['ch-rps','ch-lat','ch-users'].every(id => +document.getElementById(id).dataset.points >= 4);",
            wait,
        )
        .await;
    browser
        .wait_for(
            "the stats table and SLOs",
            "return document.querySelectorAll('#stats-body tr').length === 3 \
             && document.querySelectorAll('#slo-body .pill').length === 2 \
             && document.getElementById('state-badge').textContent === 'running';",
            wait,
        )
        .await;
    // Change the user count through the page's own form.
    browser
        .eval(
            "const i = document.getElementById('c-users'); i.value = '7'; \
             i.dispatchEvent(new Event('input')); \
             document.getElementById('c-apply').click(); return true;",
        )
        .await;
    browser
        .wait_for(
            "the page to show 7 users",
            "return document.getElementById('k-users').textContent === '7';",
            wait,
        )
        .await;
    assert_eq!(
        run.snapshots().borrow().active_users,
        7,
        "the run follows the page"
    );
    // Let a few more seconds of data arrive for a readable screenshot.
    browser.set_window(1600, 1250).await;
    browser
        .eval("document.getElementById('theme-btn').click(); document.documentElement.dataset.theme = 'dark'; return true;")
        .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    save_screenshot("dashboard.png", &browser.screenshot().await);
    browser
        .eval("document.getElementById('theme-btn').click(); return document.documentElement.dataset.theme;")
        .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    save_screenshot("dashboard-light.png", &browser.screenshot().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_html_report_opens_offline_with_charts_and_slos() {
    let Some(browser) = Browser::start("html report").await else {
        return;
    };
    let demo = demo().await;
    let plan = Arc::new(plan(&demo.url(), 4, Duration::from_secs(6)));
    let run = swarm::engine::start(plan.clone(), engine_config()).expect("the run starts");
    let last = tokio::time::timeout(Duration::from_secs(20), run.wait())
        .await
        .expect("the run ends")
        .expect("the run succeeds");
    drop(demo);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.html");
    swarm::report::html::write(&path, &plan, &last).expect("report written");
    let html = std::fs::read_to_string(&path).unwrap();
    for external in ["src=\"http", "href=\"http", "url(http", "@import"] {
        assert!(!html.contains(external), "the report loads {external}");
    }
    assert!(!html.contains(SECRET));
    browser.goto(&format!("file://{}", path.display())).await;
    browser
        .wait_for(
            "the report's charts and SLO table",
            "return ['ch-rps','ch-lat','ch-users'].every(id => +document.getElementById(id).dataset.points >= 4) \
             && document.querySelectorAll('#slo-body .pill').length === 2 \
             && document.querySelectorAll('#stats-body tr').length === 3;",
            Duration::from_secs(20),
        )
        .await;
    let resources = browser
        .eval("return performance.getEntriesByType('resource').map(r => r.name);")
        .await;
    assert_eq!(resources, json!([]), "the report fetched resources");
    assert_eq!(
        browser
            .eval("return document.getElementById('state-badge').textContent;")
            .await,
        "completed"
    );
    browser.set_window(1600, 1250).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    save_screenshot("html-report.png", &browser.screenshot().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_browser_interactive_mode_starts_and_stops_a_run() {
    use swarm::compile::{CompileOptions, compile_file};
    use swarm::dashboard::{PlanLauncher, serve_interactive};

    let Some(browser) = Browser::start("interactive").await else {
        return;
    };
    let demo = demo().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.yaml");
    std::fs::write(&path, dashboard_support::PLAN).unwrap();
    let launcher = PlanLauncher {
        path: path.clone(),
        options: CompileOptions {
            target: Some(demo.url()),
            ..CompileOptions::default()
        },
        engine: engine_config(),
    };
    let idle_plan = Arc::new(compile_file(&path, &launcher.options).unwrap());
    let config = DashboardConfig::new("127.0.0.1:0", None).unwrap();
    let dash = serve_interactive(config, idle_plan, Arc::new(launcher))
        .await
        .unwrap();
    browser.goto(&base(&dash)).await;
    let wait = Duration::from_secs(20);
    browser
        .wait_for(
            "the idle page",
            "return document.getElementById('state-badge').textContent === 'idle' \
             && getComputedStyle(document.getElementById('c-start')).display !== 'none';",
            wait,
        )
        .await;
    save_screenshot("ui-idle.png", &browser.screenshot().await);
    browser
        .eval(
            "const set = (id, v) => { const i = document.getElementById(id); i.value = v; i.dispatchEvent(new Event('input')); }; \
             set('c-users', '4'); set('c-duration', '30s'); \
             document.getElementById('c-start').click(); return true;",
        )
        .await;
    browser
        .wait_for(
            "the run to start with 4 users",
            "return document.getElementById('state-badge').textContent === 'running' \
             && document.getElementById('k-users').textContent === '4' \
             && +document.getElementById('ch-users').dataset.points >= 2;",
            wait,
        )
        .await;
    browser
        .eval("document.getElementById('c-stop').click(); return true;")
        .await;
    browser
        .wait_for(
            "the run to stop and the page to offer a new one",
            "return document.getElementById('state-badge').textContent === 'stopped' \
             && getComputedStyle(document.getElementById('c-start')).display !== 'none';",
            wait,
        )
        .await;
}
