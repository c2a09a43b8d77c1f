//! A capacity search in a real browser: the dashboard's capacity panel while the
//! search runs, and the HTML report's after it ended. Each shows every step: offered
//! against achieved load, and the first latency line's value against its limit.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use swarm::compile::{CompileOptions, compile_str};
use swarm::dashboard::{DashboardConfig, serve_run};
use swarm::metrics::capacity::{CapacityReport, StepOutcome};
use swarm::run::RunSession;

use crate::support::webdriver::Browser;
use crate::support::{base, demo, engine_config};

/// A short closed-model search against the demo's `/capacity` (8 requests at a time,
/// 20 ms each): a few steps of 1 s holds. The answer does not matter here, only that
/// every step the search ran is on the page.
const PLAN: &str = r#"
name: capacity panel
target: http://127.0.0.1:1
load:
  search: { users: 2..64, step: 2x, precision: 50%, warmup: 1s, hold: 1s, confirm: 0 }
flows:
  - name: f
    steps:
      - get: /capacity
slo:
  - p95 < 50ms
"#;

/// The page's step table, as `[level, achieved, p95, verdict]` text per row, and the
/// capacity charts' drawn points.
const READ_PANEL: &str = "return { \
    hidden: document.getElementById('capacity').hidden, \
    rows: [...document.querySelectorAll('#cap-body tr')].map(tr => { \
        const c = [...tr.children].map(td => td.textContent.trim()); \
        return [c[2], c[3], c[5], c[9]]; }), \
    load: +document.getElementById('ch-cap-load').dataset.points, \
    lat: +document.getElementById('ch-cap-lat').dataset.points, \
    title: document.getElementById('cap-lat-title').textContent, \
    legend: document.getElementById('lg-cap-lat').textContent, \
    answer: document.getElementById('cap-answer').textContent };";

/// The panel shows exactly the steps of `record`: each step's offered level, the
/// achieved rate and p95 (to the 3 figures the page prints), its verdict, and both
/// charts carry two series of one point per step (offered and achieved; the line's
/// value and its limit).
fn assert_panel_shows(panel: &Value, record: &CapacityReport) {
    assert_eq!(panel["hidden"], false, "{panel}");
    let rows = panel["rows"].as_array().unwrap();
    assert_eq!(rows.len(), record.steps.len(), "{panel}");
    let near = |text: &Value, want: f64| {
        let text = text.as_str().unwrap().replace(',', "");
        let have: f64 = match text.strip_suffix('k') {
            Some(k) => k.parse::<f64>().unwrap() * 1000.0,
            None => text.parse().unwrap(),
        };
        (have - want).abs() <= want.abs() * 0.01 + 0.01
    };
    for (row, step) in rows.iter().zip(&record.steps) {
        assert!(near(&row[0], step.level), "level {row} {step:?}");
        assert!(near(&row[1], step.achieved_rps), "achieved {row} {step:?}");
        assert!(near(&row[2], step.p95_ms), "p95 {row} {step:?}");
        let verdict = match step.outcome {
            StepOutcome::Pass => "PASS",
            StepOutcome::Fail => "FAIL",
            StepOutcome::Untrusted => "UNTRUSTED",
        };
        assert_eq!(row[3], verdict, "{row} {step:?}");
    }
    let n = record.steps.len() as f64;
    assert_eq!(
        panel["load"].as_f64(),
        Some(2.0 * n),
        "offered and achieved"
    );
    assert_eq!(
        panel["lat"].as_f64(),
        Some(2.0 * n),
        "the line and its limit"
    );
    assert_eq!(panel["title"], "p95 < 50ms, by step", "{panel}");
    let legend = panel["legend"].as_str().unwrap();
    assert!(legend.contains("limit 50"), "{legend}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_capacity_panel_shows_every_step_live_and_in_the_html_report() {
    let Some(browser) = Browser::start("capacity panel").await else {
        return;
    };
    let demo = demo().await;
    let opts = CompileOptions {
        target: Some(demo.url()),
        ..CompileOptions::default()
    };
    let plan = Arc::new(compile_str(PLAN, Path::new("capacity-panel.yaml"), &opts).unwrap());
    let session = RunSession::start(plan.clone(), engine_config()).unwrap();
    let config = DashboardConfig::new("127.0.0.1:0", None).unwrap();
    let dash = serve_run(config, plan.clone(), session.snapshots(), session.control())
        .await
        .expect("dashboard starts");
    // The search is steered from `wait`, so it runs from here on.
    let wait = tokio::spawn(session.wait(None));
    browser.goto(&format!("{}/", base(&dash))).await;
    // Live: the panel appears with the search's first steps while it runs.
    browser
        .wait_for(
            "the capacity panel with two steps",
            "return !document.getElementById('capacity').hidden \
             && document.querySelectorAll('#cap-body tr').length >= 2;",
            Duration::from_secs(60),
        )
        .await;
    let ended = tokio::time::timeout(Duration::from_secs(180), wait)
        .await
        .expect("the search ends")
        .unwrap();
    let result = ended.result(None);
    let record = result.report.search.clone().expect("a search record");
    assert!(record.steps.len() >= 3, "{record:?}");
    // The page's last frame is the final snapshot: every step, then the answer.
    dash.finish(result.snapshot.clone());
    let want = record.steps.len();
    // The table is written at once, the charts on the next animation frame.
    let every_step = format!(
        "return document.querySelectorAll('#cap-body tr').length === {want} \
         && +document.getElementById('ch-cap-load').dataset.points === {points} \
         && +document.getElementById('ch-cap-lat').dataset.points === {points};",
        points = 2 * want
    );
    browser
        .wait_for(
            "every step on the live page",
            &every_step,
            Duration::from_secs(20),
        )
        .await;
    let live = browser.eval(READ_PANEL).await;
    assert_panel_shows(&live, &record);
    assert!(
        live["answer"].as_str().unwrap().contains("capacity")
            || live["answer"].as_str().unwrap().contains("range")
            || live["answer"].as_str().unwrap().contains("trusted"),
        "{live}"
    );
    // The HTML report of the same run, opened from disk.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.html");
    swarm::report::html::write(&path, &plan, &result.snapshot, &[]).expect("report written");
    browser.goto(&format!("file://{}", path.display())).await;
    browser
        .wait_for(
            "the report's capacity panel",
            &every_step,
            Duration::from_secs(20),
        )
        .await;
    let report = browser.eval(READ_PANEL).await;
    assert_panel_shows(&report, &record);
    assert_eq!(live["answer"], report["answer"]);
}
