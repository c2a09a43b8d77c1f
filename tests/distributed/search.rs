//! A capacity search steered by the coordinator across two real workers, against a
//! target of known capacity (`tests/capacity`'s: K requests served at a time, each
//! taking S ms, the rest queued).

use std::path::Path;
use std::time::Duration;

use swarm::metrics::capacity::{CapacityReport, SearchOutcome};

use crate::capacity_target::Target;
use crate::cluster::{Coordinator, read_json, worker};
use crate::common::serial;

/// How many searches run before an untrusted answer fails the test (see
/// `docs/testing.md`, "Capacity searches on a busy machine").
const ATTEMPTS: usize = 3;

/// One search by a coordinator and two workers: the coordinator's exit code, stdout
/// and JSON report, and what the workers printed.
fn search_once(plan: &Path, dir: &Path) -> (i32, String, serde_json::Value, Vec<String>) {
    let json = dir.join("run.json");
    let _ = std::fs::remove_file(&json);
    let mut coordinator = Coordinator::start(plan, 2, &["--json", json.to_str().unwrap()]);
    let a = worker(&coordinator.url, "a", &[]);
    let b = worker(&coordinator.url, "b", &[]);
    coordinator
        .proc
        .line("worker `b` joined", Duration::from_secs(20));
    // Eight steps or so of 1 s warmup and 2 s hold, and a drain after each failure:
    // far below this bound on any machine.
    let (code, out, err) = coordinator.proc.finish(Duration::from_secs(400));
    let mut printed = Vec::new();
    for w in [a, b] {
        let (code, out, err) = w.finish(Duration::from_secs(20));
        assert_eq!(code, 0, "a worker exits 0 after a normal end: {err}");
        printed.push(format!("{out}{err}"));
    }
    assert!(
        code == 0 || code == 3,
        "a search finds a capacity (0) or cannot be trusted (3): {code}\n{out}\n{err}"
    );
    (code, out, read_json(&json), printed)
}

/// 4 requests at a time, 100 ms each: 40 requests/s, the rest queued. Offered in
/// the open model from 20/s, doubling, then bisected to 10%: the answer lies within
/// 10% of 40/s. The steps are run and judged by the coordinator, on the merged data
/// of both workers; the workers only run the load it sets.
#[test]
fn a_capacity_search_across_two_workers_finds_the_known_capacity() {
    let _turn = serial();
    let target = Target::capacity(4, Duration::from_millis(100));
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.yaml");
    let text = format!(
        "name: distributed search\ntarget: {}\nload:\n  search: {{ arrival_rate: 20/s..160/s, step: 2x, precision: 10%, warmup: 1s, hold: 2s, confirm: 1 }}\n  max_users: 200\nflows:\n  - name: f\n    steps:\n      - get: /capacity\nslo:\n  - p95 < 300ms\n",
        target.base
    );
    std::fs::write(&plan, text).unwrap();
    let mut untrusted = Vec::new();
    let (out, report, json, workers) = loop {
        let (code, out, report, workers) = search_once(&plan, dir.path());
        let record: CapacityReport =
            serde_json::from_value(report["search"].clone()).expect("the report has the search");
        let answer = record.answer.clone().expect("an answer");
        if answer.outcome != SearchOutcome::Untrusted {
            assert_eq!(code, 0, "{out}");
            break (out, record, report, workers);
        }
        assert_eq!(code, 3, "an untrusted answer is exit code 3\n{out}");
        // Straight to stderr: the harness swallows eprintln! of a passing test.
        use std::io::Write as _;
        let _ =
            std::io::stderr().write_all(format!("\n!!!!! UNTRUSTED search:\n{out}\n").as_bytes());
        untrusted.push(out);
        assert!(
            untrusted.len() < ATTEMPTS,
            "every search was untrusted ({ATTEMPTS} of them):\n{}",
            untrusted.join("\n")
        );
    };
    let answer = report.answer.clone().unwrap();
    assert_eq!(answer.outcome, SearchOutcome::Found, "{out}");
    let (cap, fail) = (answer.capacity.unwrap(), answer.failed_at.unwrap());
    assert!((36.0..=44.0).contains(&cap), "capacity {cap}\n{out}");
    assert!(
        fail > cap && fail - cap <= cap * 0.10 + 0.01,
        "{cap}..{fail}"
    );
    assert_eq!(answer.broke_first, ["p95 < 300ms"], "{out}");
    // The coordinator printed the step table and the answer; the workers ran load
    // and printed neither.
    assert!(
        out.contains("Capacity search (") && out.contains("Answer: capacity"),
        "{out}"
    );
    for printed in &workers {
        assert!(
            !printed.contains("Capacity search") && !printed.contains("Answer:"),
            "a worker printed the search: {printed}"
        );
    }
    assert!(report.steps.len() >= 4, "{out}");
    assert!(report.steps.iter().all(|s| s.requests > 0), "{out}");
    let rows = json["workers"]
        .as_array()
        .expect("the report lists the workers");
    assert_eq!(rows.len(), 2, "{json}");
    assert!(rows.iter().all(|w| w["state"] == "done"), "{json}");
}
