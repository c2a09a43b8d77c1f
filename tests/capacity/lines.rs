//! Windowed and aborting SLO lines in real runs.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use swarm::engine::config::EngineConfig;
use swarm::run::RunSession;
use swarm::testing::TestPlan;

use crate::common;
use crate::support::Target;

/// k6 #2379, scaled down: a 10 s run whose target fails every request in its last
/// 2.5 s. Over the run that is a quarter of the requests, which a cumulative
/// `error_rate < 40%` lets through; the same line on a 2 s window fails, and says
/// which window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_windowed_line_catches_what_the_run_dilutes() {
    let _turn = common::serial_async().await;
    let target = Target::failing_after(Duration::from_millis(7_500));
    let plan = TestPlan::new()
        .target(&target.base)
        .closed(2, Duration::from_secs(10))
        .flow_spec("name: f\nthink: 50ms\nsteps:\n  - get: /fail")
        .slo("error_rate < 40%")
        .slo("{ line: \"error_rate < 40%\", window: 2s }")
        .compile();
    let session = RunSession::start(Arc::new(plan), EngineConfig::default()).unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(60), session.wait(None))
        .await
        .expect("the run ends");
    let result = ended.result(None);
    let slos = &result.report.slos;
    let cumulative = slos[0].value.unwrap();
    assert!(slos[0].passed, "cumulative: {cumulative}");
    assert!(cumulative > 0.05, "the last seconds failed: {cumulative}");
    assert!(!slos[1].passed, "{:?}", slos[1]);
    assert_eq!(slos[1].value, Some(1.0), "{:?}", slos[1]);
    let note = slos[1].note.as_deref().unwrap_or_default();
    assert!(note.starts_with("worst 2 s window, ending"), "{note}");
    assert!(!result.passed());
}

/// `abort: true` ends a 60 s run as soon as its line fails after the 10 s grace: the
/// binary exits 1, and every report says the run was aborted, and by which line.
#[test]
fn an_aborting_line_ends_the_run_early_with_exit_1() {
    let _turn = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("abort.yaml");
    std::fs::write(
        &plan,
        "name: abort\ntarget: http://127.0.0.1:9\nload: { users: 2, duration: 60s }\n\
         flows:\n  - name: f\n    think: 50ms\n    steps:\n      - get: /status/500\n\
         slo:\n  - p95 < 5s\n  - line: error_rate < 5%\n    abort: true\n",
    )
    .unwrap();
    let (json, junit, html) = (
        dir.path().join("r.json"),
        dir.path().join("r.xml"),
        dir.path().join("r.html"),
    );
    let t0 = Instant::now();
    let out = common::output_within(
        Command::new(env!("CARGO_BIN_EXE_swarm"))
            .env("CI", "1")
            .env_remove("GITHUB_STEP_SUMMARY")
            .arg("check")
            .arg(&plan)
            .arg("--demo")
            .args(["--progress", "none"])
            .arg("--json")
            .arg(&json)
            .arg("--junit")
            .arg(&junit)
            .arg("--html")
            .arg(&html),
        Duration::from_secs(120),
    );
    assert_eq!(common::code(&out), 1, "{}", common::describe(&out));
    // Stopped long before its 60 s (the grace, plus a few seconds for the seconds to
    // be complete); a bound a slow machine cannot break.
    assert!(t0.elapsed() < Duration::from_secs(50), "{:?}", t0.elapsed());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("aborted by the SLO line `error_rate < 5%`"),
        "{stdout}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["end"]["reason"], "aborted");
    assert_eq!(report["end"]["line"], "error_rate < 5%");
    assert!(report["duration_s"].as_f64().unwrap() < 40.0);
    assert_eq!(report["slos"][1]["passed"], false);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("aborted by the SLO line"), "{xml}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("aborted"), "the HTML report says so");
}
