//! WebSocket and TCP steps against real loopback servers (tests/sockets/server.rs):
//! one run of the binary with a healthy flow per protocol beside one flow per hostile
//! behaviour (a server that closes mid-flow, one that never answers, one that never
//! sends the awaited message, one that sends a 100 MB frame). Each behaviour must be
//! counted under its failure kind, the run must end on time, peak memory must stay
//! far below the 100 MB answer, and the healthy flows must not fail once.

#[path = "../measured/mod.rs"]
mod measured;
mod server;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

const DURATION_S: u64 = 6;
/// Each step's timeout (`await.timeout`).
const TIMEOUT_S: u64 = 2;
/// The huge answers' timeout: their limit trips once 1 MiB has arrived, which a
/// machine at load average 16 once failed to carry in 2 s (counted as `timeout`);
/// the timeout only bounds a stalled transfer, so it is generous.
const HUGE_TIMEOUT_S: u64 = 20;
/// Duration, plus the 5 s grace period, plus a generous margin for a busy machine.
const RUN_BOUND: Duration = Duration::from_secs(60);
/// Below the 100 MB that a buffered answer would take, for a run of the huge
/// answers alone (about 35 MB in a debug build; each request name's histograms
/// cost memory of their own, so the run of every flow is bounded more loosely).
const HUGE_BOUND: u64 = 80 * 1024 * 1024;
const ALL_BOUND: u64 = 256 * 1024 * 1024;

/// The request name of each hostile step, and the failure kinds it may count.
const HOSTILE: &[(&str, &[&str])] = &[
    ("ws close-mid-flow", &["server_closed"]),
    ("ws silent", &["timeout"]),
    ("ws never-match", &["timeout"]),
    ("ws huge", &["body_too_large"]),
    ("tcp close-mid-flow", &["server_closed", "reset"]),
    ("tcp silent", &["timeout"]),
    ("tcp huge", &["body_too_large"]),
];

/// The plan with the flows whose names `keep` accepts.
fn plan(s: &server::Servers, keep: impl Fn(&str) -> bool) -> String {
    let all = all_flows(s);
    let (head, flows) = all.split_once("flows:\n").unwrap();
    let kept: Vec<&str> = flows
        .split("  - name: ")
        .skip(1)
        .filter(|f| keep(f.lines().next().unwrap_or_default()))
        .collect();
    let users = kept.len();
    let head = head.replace("users: 9", &format!("users: {users}"));
    format!("{head}flows:\n  - name: {}", kept.join("  - name: "))
}

fn all_flows(s: &server::Servers) -> String {
    let ws = |path: &str| format!("ws://{}{path}", s.ws);
    let ping = r#"{ json: { type: ping } }"#;
    let pong = format!("{{ match: {{ $.type: pong }}, timeout: {TIMEOUT_S}s }}");
    let line = format!("{{ until: \"\\r\\n\", timeout: {TIMEOUT_S}s }}");
    let huge_pong = format!("{{ match: {{ $.type: pong }}, timeout: {HUGE_TIMEOUT_S}s }}");
    let huge_line = format!("{{ until: \"\\r\\n\", timeout: {HUGE_TIMEOUT_S}s }}");
    format!(
        r#"name: sockets
load: {{ users: 9, duration: {DURATION_S}s }}
defaults: {{ max_response_body: 1MiB }}
flows:
  - name: ws-healthy
    think: 50ms
    setup:
      - ws: "{echo}"
        name: ws healthy connect
    steps:
      - ws_send: {ping}
        name: ws healthy
        await: {pong}
      - ws_send: {{ json: {{ type: subscribe, count: 3 }} }}
        name: ws healthy push
        await: {{ match: {{ $.seq: 3 }}, timeout: {TIMEOUT_S}s }}
      - ws_recv: {{ match: {{ $.seq: 1 }}, timeout: {TIMEOUT_S}s }}
        name: ws healthy queued
        expect: {{ json: {{ $.type: event }} }}
      - ws_recv: {{ timeout: {TIMEOUT_S}s }}
        name: ws healthy queued
        expect: {{ json: {{ $.seq: 2 }} }}
      - ws_send: {{ binary: aGVsbG8= }}
        name: ws healthy binary
        await: {{ timeout: {TIMEOUT_S}s }}
        expect: {{ body: hello }}
    teardown:
      - ws_close: 1000
        name: ws healthy close
  - name: ws-close-mid-flow
    pace: 200ms
    steps:
      - ws: "{close}"
        name: ws close-mid-flow connect
      - ws_send: {ping}
        name: ws close-mid-flow first
        await: {pong}
      - ws_send: {ping}
        name: ws close-mid-flow
        await: {pong}
  - name: ws-silent
    setup:
      - ws: "{silent}"
        name: ws silent connect
    steps:
      - ws_send: {ping}
        name: ws silent
        await: {pong}
  - name: ws-never-match
    setup:
      - ws: "{never}"
        name: ws never-match connect
    steps:
      - ws_send: {ping}
        name: ws never-match
        await: {pong}
  - name: ws-huge
    pace: 200ms
    steps:
      - ws: "{huge}"
        name: ws huge connect
      - ws_send: {ping}
        name: ws huge
        await: {huge_pong}
  - name: tcp-healthy
    think: 50ms
    setup:
      - tcp: "{tcp_line}"
        name: tcp healthy connect
    steps:
      - tcp_send: "PING\r\n"
        name: tcp healthy
        await: {line}
        expect: {{ body: {{ matches: '^\+PONG\r\n$' }} }}
      - tcp_send: "ECHO a\r\nECHO b\r\n"
        name: tcp healthy pipelined
        await: {line}
        capture: {{ first: {{ regex: '^\+(\w)' }} }}
        expect: {{ body: "+a\r\n" }}
      - tcp_send: "PING\r\n"
        name: tcp healthy rest
        await: {{ bytes: 4, timeout: {TIMEOUT_S}s }}
        expect: {{ body: "+b\r\n" }}
      - tcp_send: ""
        name: tcp healthy rest
        await: {line}
        expect: {{ body: "+PONG\r\n" }}
  - name: tcp-close-mid-flow
    pace: 200ms
    steps:
      - tcp: "{tcp_close}"
        name: tcp close-mid-flow connect
      - tcp_send: "PING\r\n"
        name: tcp close-mid-flow first
        await: {line}
      - tcp_send: "PING\r\n"
        name: tcp close-mid-flow
        await: {line}
  - name: tcp-silent
    steps:
      - tcp: "{tcp_silent}"
        name: tcp silent connect
      - tcp_send: "PING\r\n"
        name: tcp silent
        await: {line}
  - name: tcp-huge
    pace: 200ms
    steps:
      - tcp: "{tcp_huge}"
        name: tcp huge connect
      - tcp_send: "PING\r\n"
        name: tcp huge
        await: {huge_line}
"#,
        echo = ws("/echo"),
        close = ws("/close-mid-flow"),
        silent = ws("/silent"),
        never = ws("/never-match"),
        huge = ws("/huge"),
        tcp_line = s.tcp_line,
        tcp_close = s.tcp_close,
        tcp_silent = s.tcp_silent,
        tcp_huge = s.tcp_huge,
    )
}

/// Runs the plan through `swarm check`: the JSON report by request name, and how
/// long the run took.
fn run(plan_text: String, memory_bound: u64) -> (BTreeMap<String, Value>, Duration) {
    run_with(plan_text, memory_bound, &[])
}

fn run_with(
    plan_text: String,
    memory_bound: u64,
    args: &[&str],
) -> (BTreeMap<String, Value>, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let plan_path = dir.path().join("sockets.yaml");
    std::fs::write(&plan_path, plan_text).unwrap();
    let report = dir.path().join("report.json");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_swarm"));
    cmd.arg("check")
        .arg(&plan_path)
        .arg("--json")
        .arg(&report)
        .args(["--progress", "none"])
        .args(args)
        .env("NO_COLOR", "1");
    let m = measured::run_measured(&mut cmd, RUN_BOUND);
    assert!(
        !m.stderr.contains("panicked"),
        "swarm panicked\n{}",
        m.stderr
    );
    assert!(
        m.peak_rss < memory_bound,
        "peak RSS {} MB\n{}",
        m.peak_rss >> 20,
        m.stderr
    );
    let text = std::fs::read_to_string(&report)
        .unwrap_or_else(|e| panic!("no report ({e})\n{}\n{}", m.stdout, m.stderr));
    let json: Value = serde_json::from_str(&text).unwrap();
    let by_name = json["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["name"].as_str().unwrap().to_owned(), r.clone()))
        .collect();
    (by_name, m.took)
}

fn kinds(r: &Value) -> Vec<&str> {
    r["failure_reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect()
}

#[test]
fn websocket_and_tcp_steps_count_each_hostile_server_and_leave_other_users_alone() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let servers = rt.block_on(server::start());
    let (by_name, took) = run(plan(&servers, |_| true), ALL_BOUND);
    rt.shutdown_background();
    assert!(
        took < Duration::from_secs(DURATION_S + 5 + 20),
        "the run took {took:?}"
    );
    let mut wrong = Vec::new();
    for (name, r) in &by_name {
        let kinds = kinds(r);
        let count = r["count"].as_u64().unwrap();
        let ty = r["method"].as_str().unwrap();
        if !name.starts_with(&ty.to_lowercase()) {
            wrong.push(format!("{name}: type {ty}"));
        }
        match HOSTILE.iter().find(|(n, _)| n == name) {
            Some((_, expected)) => {
                let ok = count > 0
                    && r["failures"] == r["count"]
                    && kinds.iter().all(|k| expected.contains(k));
                if !ok {
                    wrong.push(format!(
                        "{name}: count {count} kinds {kinds:?}, expected {expected:?}"
                    ));
                }
            }
            // The healthy flows, and the steps before a hostile one, never fail.
            None if (name.contains("healthy") || name.ends_with("first"))
                && (count == 0 || r["failures"] != 0) =>
            {
                wrong.push(format!("{name}: count {count} failures {kinds:?}"));
            }
            None => {}
        }
    }
    for (name, _) in HOSTILE {
        if !by_name.contains_key(*name) {
            wrong.push(format!("{name}: never ran"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// A 100 MB WebSocket frame and a 100 MB TCP answer are refused as "response too
/// large" as soon as they pass the 1 MiB limit: the run's memory stays far below them.
#[test]
fn a_100_mb_frame_or_answer_fails_as_too_large_in_bounded_memory() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let servers = rt.block_on(server::start());
    let (by_name, _) = run(plan(&servers, |f| f.ends_with("huge")), HUGE_BOUND);
    rt.shutdown_background();
    for name in ["ws huge", "tcp huge"] {
        let r = &by_name[name];
        assert!(r["count"].as_u64().unwrap() > 0, "{name}: {r}");
        assert_eq!(r["failures"], r["count"], "{name}: {r}");
        assert_eq!(kinds(r), ["body_too_large"], "{name}: {r}");
    }
}

/// `wss://` and `tls: true` speak TLS with HTTP's settings: with `--insecure` the
/// self-signed test certificate is accepted and every exchange succeeds; without
/// it, both connects fail as `tls` (so TLS was really spoken).
#[test]
fn wss_and_tcp_over_tls_use_the_http_tls_settings() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let servers = rt.block_on(server::start());
    let plan = format!(
        r#"name: tls sockets
load: {{ users: 2, duration: 2s }}
flows:
  - name: wss
    pace: 100ms
    setup:
      - ws: "wss://localhost:{wss}/echo"
        name: wss connect
    steps:
      - ws_send: {{ json: {{ type: ping }} }}
        name: wss ping
        await: {{ match: {{ $.type: pong }}, timeout: 2s }}
  - name: tcp-tls
    pace: 100ms
    setup:
      - tcp: "localhost:{tcp}"
        tls: true
        name: tls connect
    steps:
      - tcp_send: "PING\r\n"
        name: tls ping
        await: {{ until: "\r\n", timeout: 2s }}
        expect: {{ body: "+PONG\r\n" }}
"#,
        wss = servers.wss.port(),
        tcp = servers.tcp_tls.port(),
    );
    let (by_name, _) = run_with(plan.clone(), ALL_BOUND, &["--insecure"]);
    for (name, r) in &by_name {
        assert!(r["count"].as_u64().unwrap() > 0, "{name}: {r}");
        assert_eq!(r["failures"], 0, "{name}: {r}");
    }
    assert_eq!(by_name.len(), 4, "{:?}", by_name.keys());
    let (by_name, _) = run_with(plan, ALL_BOUND, &[]);
    rt.shutdown_background();
    // Without --insecure the servers' self-signed certificates are refused, with
    // the reason HTTP gives them.
    for name in ["wss connect", "tls connect"] {
        assert_eq!(
            kinds(&by_name[name]),
            ["tls_unknown_issuer"],
            "{name}: {}",
            by_name[name]
        );
    }
}
