//! A worker lost while the plan runs by `iterations`: the run always ends, with exit
//! 3, whatever `--on-worker-loss` says. The lost worker held iteration tickets that
//! nobody can tell run or not run (its last units went with it), so the plan's exact
//! count cannot be kept; going on would either run more than N at the target or
//! wait for N completions that never come.

use std::time::{Duration, Instant};

use crate::cluster::{Coordinator, Setup, lost, read_json};
use crate::common::serial;

/// Kills one of two workers of a run of far more iterations than the test waits
/// for; returns the coordinator's exit code, stderr and JSON report, and how long
/// it took to end after the kill.
fn kill_one_during_iterations(extra: &[&str]) -> (i32, String, serde_json::Value, Duration) {
    // 4 users pausing 20 ms: a few hundred iterations a second at most, so 1,000,000
    // would take most of an hour.
    let s = Setup::new("{ users: 4, iterations: 1000000 }", "/ok", &[]);
    let json = s.file("run.json");
    let mut args = vec!["--json", json.as_str()];
    args.extend_from_slice(extra);
    let mut coordinator = Coordinator::start(&s.plan, 2, &args);
    let [keep, doomed] = coordinator.join(["keep", "doomed"]);
    s.kill_under_load(&doomed);
    let killed = Instant::now();
    let (code, out, err) = coordinator.proc.finish(Duration::from_secs(30));
    let took = killed.elapsed();
    let (kept, _, kept_err) = keep.finish(Duration::from_secs(20));
    assert_eq!(
        kept, 0,
        "the other worker was stopped and ends normally: {kept_err}"
    );
    (code, format!("{out}\n{err}"), read_json(&json), took)
}

fn assert_lost(report: &serde_json::Value) {
    let lost = lost(report);
    assert_eq!(lost.len(), 1, "{report}");
    assert_eq!(lost[0]["name"], "doomed");
    let count = report["total"]["count"].as_u64().unwrap();
    assert!(
        count > 0 && count < 1_000_000,
        "the run ended early: {count}"
    );
}

#[test]
fn a_worker_lost_under_iterations_ends_the_run_with_exit_3() {
    let _turn = serial();
    let (code, said, report, took) = kill_one_during_iterations(&[]);
    assert_eq!(code, 3, "{said}");
    assert!(said.contains("worker `doomed` was lost at"), "{said}");
    assert!(
        took < Duration::from_secs(20),
        "ended {took:?} after the kill"
    );
    assert_lost(&report);
}

#[test]
fn a_worker_lost_under_iterations_ends_the_run_even_with_continue() {
    let _turn = serial();
    let (code, said, report, took) = kill_one_during_iterations(&["--on-worker-loss", "continue"]);
    assert_eq!(code, 3, "{said}");
    assert!(said.contains("worker `doomed` was lost at"), "{said}");
    assert!(
        said.contains("under `iterations`"),
        "the message says why `continue` did not apply: {said}"
    );
    assert!(
        took < Duration::from_secs(20),
        "ended {took:?} after the kill"
    );
    assert_lost(&report);
}
