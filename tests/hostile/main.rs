//! swarm against a hostile target (tests/hostile/server.rs): one run of the binary with
//! one flow per misbehaviour and a healthy flow beside them, once per HTTP client. Each
//! misbehaviour must be counted under its typed failure kind, the run must end on
//! time, its peak memory must stay bounded (a 1 GB body is never buffered), and the
//! healthy flow must succeed in the same run.

#[path = "../measured/mod.rs"]
mod measured;
mod server;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

/// The run's length and each request's timeout. The run must end well within
/// `RUN_BOUND`: duration, plus one timeout for the requests in flight, plus a lot.
const DURATION_S: u64 = 6;
const TIMEOUT_S: u64 = 2;
const RUN_BOUND: Duration = Duration::from_secs(90);
/// Far below the 1 GB the largest body would take if it were buffered.
const MEMORY_BOUND: u64 = 256 * 1024 * 1024;

/// The failure kinds each behaviour may be counted as (JSON report names).
fn expected(name: &str) -> &'static [&'static str] {
    match name {
        "refused" => &["refused"],
        "reset-before-head" | "reset-mid-body" | "close-owing-body" => &["reset"],
        "garbage-status" | "bad-chunk-size" | "http09" | "switching-without-upgrade" => {
            &["protocol"]
        }
        "endless-headers" | "huge-body" | "huge-chunked-body" => &["body_too_large"],
        "drip" | "silent" | "continue-then-nothing" | "upload-not-read" => &["timeout"],
        "tls-expired" => &["tls_expired"],
        // The wrong-host certificate is self-signed too, and the chain is judged
        // before the name (the binary trusts no test CA): an unknown issuer. The
        // name check itself is tested against a trusted test CA (tests/request).
        "tls-self-signed" | "tls-wrong-host" => &["tls_unknown_issuer"],
        other => panic!("no expectation for {other}"),
    }
}

fn plan(s: &server::Hostile) -> String {
    let mut flows: Vec<(String, String)> = server::PATHS
        .iter()
        .map(|p| (p.to_string(), format!("http://{}/{p}", s.http)))
        .collect();
    flows.push(("refused".into(), format!("http://{}/refused", s.refused)));
    for (name, addr) in [
        ("tls-expired", s.tls_expired),
        ("tls-self-signed", s.tls_self_signed),
        ("tls-wrong-host", s.tls_wrong_host),
    ] {
        flows.push((name.into(), format!("https://localhost:{}/", addr.port())));
    }
    let mut text = format!(
        "name: hostile\nload: {{ users: {}, duration: {DURATION_S}s }}\n\
         defaults: {{ timeout: {TIMEOUT_S}s, max_response_head: 16KiB, max_response_body: 1MiB }}\n\
         flows:\n",
        flows.len()
    );
    // 1 MiB, so the unread upload fills the socket buffers and stalls.
    let upload = "u".repeat(1 << 20);
    for (name, url) in &flows {
        let (method, body) = if name == "upload-not-read" {
            ("post", format!(", body: \"{upload}\""))
        } else {
            ("get", String::new())
        };
        writeln!(
            text,
            "  - name: {name}\n    pace: 200ms\n    steps: [ {{ {method}: \"{url}\", name: {name}{body} }} ]"
        )
        .unwrap();
    }
    text
}

/// Runs the plan through `swarm check` and returns the JSON report, by request name.
fn run(client: &str) -> BTreeMap<String, Value> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let servers = rt.block_on(server::start());
    let dir = tempfile::tempdir().unwrap();
    let plan_path = dir.path().join("hostile.yaml");
    std::fs::write(&plan_path, plan(&servers)).unwrap();
    let report = dir.path().join("report.json");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_swarm"));
    cmd.arg("check")
        .arg(&plan_path)
        .arg("--json")
        .arg(&report)
        .args(["--progress", "none"])
        .env("SWARM_HTTP_CLIENT", client)
        .env("NO_COLOR", "1");
    let m = measured::run_measured(&mut cmd, RUN_BOUND);
    assert!(
        !m.stderr.contains("panicked"),
        "{client}: swarm panicked\n{}",
        m.stderr
    );
    assert!(
        m.peak_rss < MEMORY_BOUND,
        "{client}: peak RSS {} MB\n{}",
        m.peak_rss >> 20,
        m.stderr
    );
    let text = std::fs::read_to_string(&report)
        .unwrap_or_else(|e| panic!("{client}: no report ({e})\n{}\n{}", m.stdout, m.stderr));
    let json: Value = serde_json::from_str(&text).unwrap();
    rt.shutdown_background();
    json["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["name"].as_str().unwrap().to_owned(), r.clone()))
        .collect()
}

fn check_all(client: &str) {
    let by_name = run(client);
    let healthy = &by_name["healthy"];
    assert!(
        healthy["count"].as_u64().unwrap() > 0 && healthy["failures"] == 0,
        "{client}: the healthy flow was affected: {healthy}"
    );
    let mut wrong = Vec::new();
    for (name, r) in &by_name {
        if name == "healthy" {
            continue;
        }
        let kinds: Vec<&str> = r["failure_reasons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["kind"].as_str().unwrap())
            .collect();
        let ok = r["count"].as_u64().unwrap() > 0
            && r["failures"] == r["count"]
            && !kinds.is_empty()
            && kinds.iter().all(|k| expected(name).contains(k));
        if !ok {
            wrong.push(format!(
                "{name}: count {} failures {} kinds {kinds:?}, expected {:?}",
                r["count"],
                r["failures"],
                expected(name)
            ));
        }
    }
    let all = server::PATHS.len() + 4;
    assert_eq!(by_name.len(), all, "{client}: {:?}", by_name.keys());
    assert!(wrong.is_empty(), "{client}:\n{}", wrong.join("\n"));
}

#[test]
fn the_lean_client_counts_every_hostile_behaviour_and_stays_bounded() {
    check_all("lean");
}

#[test]
fn the_reqwest_client_counts_every_hostile_behaviour_and_stays_bounded() {
    check_all("reqwest");
}
