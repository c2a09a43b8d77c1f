//! Faults: a worker killed, a coordinator killed, too few workers, a late worker, a
//! wrong token, a worker that cannot run the plan, a coordinator off loopback
//! without a token.

use std::time::{Duration, Instant};

use crate::cluster::{Coordinator, LIMIT, Setup, Target, lost, plan, read_json, swarm, worker};
use crate::common::{code, describe, output_within, serial};

#[test]
fn a_killed_worker_ends_the_run_with_exit_3_naming_it_and_the_reports_written() {
    let _turn = serial();
    let s = Setup::new("{ users: 4, duration: 40s }", "/ok", &[]);
    let json = s.file("run.json");
    let mut coordinator = Coordinator::start(&s.plan, 2, &["--json", &json]);
    let [keep, doomed] = coordinator.join(["keep", "doomed"]);
    s.kill_under_load(&doomed);
    let killed = Instant::now();
    coordinator
        .proc
        .line("worker `doomed` lost at", Duration::from_secs(10));
    assert!(
        killed.elapsed() < Duration::from_secs(5),
        "noticed in {:?}",
        killed.elapsed()
    );
    let (code, out, err) = coordinator.proc.finish(Duration::from_secs(20));
    assert_eq!(code, 3, "{out}\n{err}");
    assert!(err.contains("worker `doomed` was lost at"), "{err}");
    let report = read_json(&json);
    let lost = lost(&report);
    assert_eq!(lost.len(), 1, "{report}");
    assert_eq!(lost[0]["name"], "doomed");
    assert!(lost[0]["lost_at_s"].as_f64().is_some());
    // The other worker was stopped by the coordinator and ends normally.
    let (code, _, err) = keep.finish(Duration::from_secs(20));
    assert_eq!(code, 0, "{err}");
}

#[test]
fn with_on_worker_loss_continue_the_run_goes_on_and_the_report_marks_the_gap() {
    let _turn = serial();
    let s = Setup::new("{ users: 4, duration: 6s }", "/ok", &[]);
    let json = s.file("run.json");
    let args = ["--json", json.as_str(), "--on-worker-loss", "continue"];
    let mut coordinator = Coordinator::start(&s.plan, 2, &args);
    let [_keep, doomed] = coordinator.join(["keep", "doomed"]);
    s.kill_under_load(&doomed);
    let (code, out, err) = coordinator.proc.finish(LIMIT);
    assert_eq!(code, 0, "the run went on and its SLO held:\n{out}\n{err}");
    assert!(err.contains("worker `doomed` lost at"), "{err}");
    let report = read_json(&json);
    assert_eq!(report["end"]["reason"], "completed", "{report}");
    let lost = lost(&report);
    assert_eq!(lost.len(), 1, "{report}");
    assert_eq!(lost[0]["name"], "doomed");
    assert!(lost[0]["lost_at_s"].as_f64().unwrap() < 6.0, "{}", lost[0]);
    assert!(out.contains("doomed"), "the console marks the gap:\n{out}");
}

#[test]
fn a_killed_coordinator_stops_every_worker_within_10_s() {
    let _turn = serial();
    let s = Setup::new("{ users: 4, duration: 60s }", "/ok", &[]);
    let mut coordinator = Coordinator::start(&s.plan, 2, &[]);
    let [a, b] = coordinator.join(["a", "b"]);
    s.kill_under_load(&coordinator.proc);
    let killed = Instant::now();
    for w in [a, b] {
        let (code, _, err) = w.finish(Duration::from_secs(15));
        assert_ne!(code, 0, "a worker that lost its coordinator fails: {err}");
        assert!(err.contains("lost the coordinator"), "{err}");
    }
    assert!(
        killed.elapsed() < Duration::from_secs(10),
        "{:?}",
        killed.elapsed()
    );
    // No stray load: nothing reaches the target any more.
    let after = s.target.hits();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        s.target.hits(),
        after,
        "load went on after the workers exited"
    );
}

#[test]
fn too_few_workers_in_time_exits_3_and_sends_nothing() {
    let _turn = serial();
    let s = Setup::new("{ users: 2, duration: 2s }", "/ok", &[]);
    let mut coordinator = Coordinator::start(&s.plan, 2, &["--workers-timeout", "2s"]);
    let [lonely] = coordinator.join(["lonely"]);
    let (code, out, err) = coordinator.proc.finish(Duration::from_secs(20));
    assert_eq!(code, 3, "{out}\n{err}");
    assert!(
        err.contains("only 1 of 2 workers joined within 2s"),
        "{err}"
    );
    let (code, _, err) = lonely.finish(Duration::from_secs(20));
    assert_ne!(code, 0);
    assert!(err.contains("cancelled"), "{err}");
    assert_eq!(s.target.hits(), 0, "nothing was sent");
}

#[test]
fn a_late_worker_is_refused_and_the_run_goes_on() {
    let _turn = serial();
    let s = Setup::new("{ users: 2, duration: 4s }", "/ok", &[]);
    let mut coordinator = Coordinator::start(&s.plan, 1, &[]);
    let [_first] = coordinator.join(["first"]);
    let late = worker(&coordinator.url, "late", &[]);
    let (code, _, err) = late.finish(Duration::from_secs(20));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("has all its workers"), "{err}");
    let (code, out, err) = coordinator.proc.finish(LIMIT);
    assert_eq!(code, 0, "{out}\n{err}");
}

#[test]
fn a_wrong_token_is_refused_on_both_sides_and_the_coordinator_keeps_serving() {
    let _turn = serial();
    let s = Setup::new("{ users: 2, duration: 2s }", "/ok", &[]);
    let mut coordinator = Coordinator::start(&s.plan, 1, &["--token", "s3cret"]);
    for args in [&["--token", "wrong"][..], &[]] {
        let out = output_within(
            swarm().args(["worker", &coordinator.url]).args(args),
            Duration::from_secs(20),
        );
        assert_eq!(code(&out), 3, "{}", describe(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("401") && err.contains("wrong or missing token"),
            "{err}"
        );
    }
    coordinator
        .proc
        .line("refused a connection from", Duration::from_secs(10));
    let good = worker(&coordinator.url, "good", &["--token", "s3cret"]);
    let (code, out, err) = coordinator.proc.finish(LIMIT);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(good.finish(Duration::from_secs(20)).0, 0);
}

#[test]
fn a_token_is_required_off_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let plan = plan(
        dir.path(),
        "http://127.0.0.1:9",
        "{ users: 1, duration: 1s }",
        "/ok",
        &[],
    );
    let out = output_within(
        swarm()
            .arg("check")
            .arg(&plan)
            .args(["--coordinator", "0.0.0.0:0", "--workers", "1"]),
        Duration::from_secs(20),
    );
    assert_eq!(code(&out), 2, "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("off loopback") && err.contains("token"),
        "{err}"
    );
}

#[test]
fn a_worker_that_cannot_run_the_plan_fails_the_run_with_its_error() {
    let _turn = serial();
    let s = Setup::new("{ users: 2, duration: 2s }", "/ok", &[]);
    let coordinator = Coordinator::start(&s.plan, 2, &[]);
    let _fine = worker(&coordinator.url, "fine", &[]);
    // This one cannot write the plan anywhere: its temporary folder is a file.
    let blocker = s.dir.path().join("blocker");
    std::fs::write(&blocker, "not a folder").unwrap();
    let mut broken = crate::common::Watched::spawn(
        swarm()
            .args(["worker", &coordinator.url, "--name", "broken"])
            .env("TMPDIR", &blocker),
    );
    let (code, out, err) = coordinator.proc.finish(LIMIT);
    assert_eq!(code, 3, "{out}\n{err}");
    assert!(err.contains("worker `broken` cannot run the plan"), "{err}");
    broken.line(
        "error: this worker cannot run the plan",
        Duration::from_secs(20),
    );
    assert_eq!(s.target.hits(), 0, "nothing was sent");
}

#[test]
fn tls_on_the_coordinator_port_with_the_worker_trusting_its_ca() {
    let _turn = serial();
    let target = Target::start();
    let dir = tempfile::tempdir().unwrap();
    // A fresh CA and a certificate for `localhost` signed by it, as PEM files.
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca_pem = ca_params.self_signed(&ca_key).unwrap().pem();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let file = |name: &str, text: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let ca = file("ca.pem", ca_pem);
    let cert = file("cert.pem", leaf.pem());
    let key = file("key.pem", leaf_key.serialize_pem());
    let plan = plan(
        dir.path(),
        &target.url(),
        "{ users: 2, iterations: 40 }",
        "/ok",
        &[],
    );
    let coordinator = Coordinator::start(
        &plan,
        1,
        &[
            "--coordinator-cert",
            &cert,
            "--coordinator-key",
            &key,
            "--token",
            "t",
        ],
    );
    let url = coordinator
        .url
        .replace("http://127.0.0.1", "https://localhost");
    // Without the CA, the worker does not trust the coordinator: refused, clearly.
    let out = output_within(
        swarm().args(["worker", &url, "--token", "t"]),
        Duration::from_secs(20),
    );
    assert_eq!(code(&out), 3, "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("TLS"),
        "{}",
        describe(&out)
    );
    let trusting = worker(&url, "trusting", &["--token", "t", "--ca", &ca]);
    let (code, out, err) = coordinator.proc.finish(LIMIT);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(trusting.finish(Duration::from_secs(20)).0, 0);
    assert_eq!(target.hits(), 40);
}
