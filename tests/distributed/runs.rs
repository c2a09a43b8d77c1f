//! Runs that end normally: the merged totals, the split, a central SLO verdict.
//! (The percentiles are in `exact.rs`.)

use std::time::Duration;

use crate::cluster::{Coordinator, LIMIT, Setup, Target, read_json, worker};
use crate::common::serial;

#[test]
fn merged_totals_equal_what_the_target_counted_and_iterations_are_exact() {
    let _turn = serial();
    // Exactly 300 iterations of one request, shared by 5 users on 2 workers: the
    // tickets of `iterations` cross the network and no more, no fewer, run.
    let s = Setup::new("{ users: 5, iterations: 300 }", "/ok", &[]);
    let json = s.file("run.json");
    let mut coordinator = Coordinator::start(&s.plan, 2, &["--json", &json]);
    let workers = coordinator.join(["worker-a", "worker-b"]);
    let (code, out, err) = coordinator.proc.finish(LIMIT);
    assert_eq!(code, 0, "{out}\n{err}");
    for w in workers {
        let (code, _, err) = w.finish(Duration::from_secs(20));
        assert_eq!(code, 0, "a worker exits 0 after a normal end: {err}");
    }
    let report = read_json(&json);
    assert_eq!(report["iterations"], 300, "{report}");
    assert_eq!(report["total"]["count"], 300);
    assert_eq!(
        s.target.hits(),
        300,
        "the target saw what the coordinator merged"
    );
    let workers = report["workers"]
        .as_array()
        .expect("the report lists the workers");
    let names: Vec<&str> = workers
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"worker-a") && names.contains(&"worker-b"),
        "{names:?}"
    );
    assert!(workers.iter().all(|w| w["state"] == "done"), "{workers:?}");
}

#[test]
fn a_timed_run_counts_at_the_coordinator_what_the_target_got() {
    let _turn = serial();
    let s = Setup::new("{ users: 4, duration: 3s }", "/ok", &[]);
    let json = s.file("run.json");
    let mut coordinator = Coordinator::start(&s.plan, 2, &["--json", &json]);
    let _workers = coordinator.join(["a", "b"]);
    let (code, out, err) = coordinator.proc.finish(LIMIT);
    assert_eq!(code, 0, "{out}\n{err}");
    let report = read_json(&json);
    let merged = report["total"]["count"].as_u64().unwrap();
    assert!(merged > 20, "the run sent something: {merged}");
    // Requests still in flight when the grace period ended are neither merged nor
    // (always) counted by the target, so allow the users' few in-flight requests.
    let hits = s.target.hits();
    assert!(
        hits >= merged && hits <= merged + 4,
        "the target counted {hits}, the coordinator merged {merged}"
    );
}

#[test]
fn an_slo_judged_on_the_merged_data_fails_the_run_with_exit_1() {
    let _turn = serial();
    // Each worker sends 100 requests: only the merged count breaks the line.
    let s = Setup::new("{ users: 2, iterations: 200 }", "/ok", &["requests < 150"]);
    let mut coordinator = Coordinator::start(&s.plan, 2, &[]);
    let _workers = coordinator.join(["a", "b"]);
    let (code, out, err) = coordinator.proc.finish(LIMIT);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.contains("requests < 150"), "{out}");
}

#[test]
fn unique_rows_go_to_one_worker_each() {
    let _turn = serial();
    let target = Target::start();
    let dir = tempfile::tempdir().unwrap();
    let rows: String = (0..40).map(|i| format!("{i}\n")).collect();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("data/ids.csv"), format!("id\n{rows}")).unwrap();
    let text = format!(
        "name: unique\ntarget: {}\ndata: {{ ids: {{ csv: data/ids.csv, pick: unique }} }}\nload: {{ users: 4, duration: 20s }}\nflows:\n  - name: f\n    steps:\n      - get: /ok?id={{{{ ids.id }}}}\n        name: probe\n",
        target.url()
    );
    let plan = dir.path().join("plan.yaml");
    std::fs::write(&plan, text).unwrap();
    let json = dir.path().join("run.json");
    // The workers get the data file from the coordinator: none has a copy.
    let coordinator = Coordinator::start(&plan, 2, &["--json", json.to_str().unwrap()]);
    let _a = worker(&coordinator.url, "a", &[]);
    let _b = worker(&coordinator.url, "b", &[]);
    let (code, out, err) = coordinator.proc.finish(LIMIT);
    assert_eq!(code, 0, "{out}\n{err}");
    let report = read_json(&json);
    assert_eq!(report["end"]["reason"], "feeder_exhausted", "{report}");
    // 40 rows, each sent once at most, by one worker or the other.
    let count = report["total"]["count"].as_u64().unwrap();
    assert!(
        (20..=40).contains(&count),
        "{count} requests for 40 unique rows"
    );
    assert_eq!(target.hits(), count);
    let mut ids = target.queries();
    ids.sort();
    let before = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), before, "a row was handed out twice");
}
