//! The commands beside `swarm check`, run as the binary a user runs: `swarm demo`,
//! `swarm ui`, `swarm check --ui --ui-exit`, and a second Ctrl-C that stops a run
//! without waiting for its stalled requests. Every server binds port 0 and says
//! where it listens; every wait is bounded.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Watched, serial};

const T: Duration = Duration::from_secs(60);

fn swarm() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_swarm"));
    cmd.env_remove("SWARM_TARGET")
        .env_remove("SWARM_UI_TOKEN")
        .env_remove("GITHUB_STEP_SUMMARY")
        .env("CI", "1");
    cmd
}

/// `GET url` over a fresh connection: the status code and the body.
fn get(url: &str) -> (u16, String) {
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (host, path) = rest.split_once('/').map_or((rest, "/"), |(h, p)| (h, p));
    let path = format!("/{}", path.trim_start_matches('/'));
    let mut stream = TcpStream::connect(host).expect("connects");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("a response");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("a status line: {response}"));
    let body = response
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

fn write_plan(dir: &Path, target: &str, load: &str, path: &str) -> PathBuf {
    let plan = dir.join("plan.yaml");
    std::fs::write(
        &plan,
        format!(
            "name: commands\ntarget: {target}\nload: {load}\nflows:\n  - name: f\n    think: 10ms\n    steps:\n      - get: {path}\n"
        ),
    )
    .unwrap();
    plan
}

#[test]
fn swarm_demo_serves_the_shop_until_ctrl_c() {
    let _turn = serial();
    let mut demo = Watched::spawn(swarm().args(["demo", "--port", "0"]));
    let url = demo.line("swarm demo shop listening on ", T);
    let (status, body) = get(&format!("{}/health", url.trim_end_matches('/')));
    assert_eq!((status, body.as_str()), (200, "ok"));
    let (status, body) = get(&format!("{}/products", url.trim_end_matches('/')));
    assert_eq!(status, 200);
    assert!(body.contains("\"items\""), "{body}");
    demo.signal("-INT");
    let (code, _, stderr) = demo.finish(T);
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn swarm_ui_serves_the_dashboard_until_ctrl_c() {
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(
        dir.path(),
        "http://127.0.0.1:9",
        "{ users: 1, duration: 1s }",
        "/health",
    );
    let mut ui = Watched::spawn(swarm().arg("ui").arg(&plan).args(["127.0.0.1:0", "--demo"]));
    let url = ui.line("dashboard:", T);
    let (status, page) = get(&url);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("<html"), "{page}");
    let (status, _) = get(&format!("{url}assets/app.js"));
    assert_eq!(status, 200);
    assert!(
        ui.stdout().contains("swarm ui: commands"),
        "{}",
        ui.stdout()
    );
    ui.signal("-INT");
    let (code, _, stderr) = ui.finish(T);
    assert_eq!(code, 0, "{stderr}");
}

/// `--ui` serves the dashboard while the run goes on; `--ui-exit` ends the process
/// with the run instead of serving the results until Ctrl-C.
#[test]
fn check_with_ui_and_ui_exit_serves_the_run_then_exits() {
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(
        dir.path(),
        "http://127.0.0.1:9",
        "{ users: 1, duration: 4s }",
        "/health",
    );
    let json = dir.path().join("report.json");
    let mut run = Watched::spawn(
        swarm()
            .arg("check")
            .arg(&plan)
            .args(["--demo", "--ui", "127.0.0.1:0", "--ui-exit", "--json"])
            .arg(&json),
    );
    let url = run.line("dashboard:", T);
    let (status, page) = get(&url);
    assert_eq!(status, 200, "{page}");
    let (code, stdout, stderr) = run.finish(T);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(!stderr.contains("until Ctrl-C"), "{stderr}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["end"]["reason"], "completed");
}

/// The first Ctrl-C lets in-flight requests finish (for up to the 5 s grace period);
/// a second one stops at once. The target never answers, so only the second signal
/// can end the run before the grace period is over.
#[test]
fn a_second_ctrl_c_stops_without_waiting_for_stalled_requests() {
    let _turn = serial();
    // Accepts connections and never answers; the listener is kept, never re-bound.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(
        dir.path(),
        &format!("http://{addr}"),
        "{ users: 2, duration: 120s }",
        "/stall",
    );
    let json = dir.path().join("report.json");
    let mut run = Watched::spawn(swarm().arg("check").arg(&plan).arg("--json").arg(&json));
    common::wait_until("both users connected", T, || {
        accepted.load(Ordering::SeqCst) >= 2
    });
    run.signal("-INT");
    let first = Instant::now();
    run.line("interrupting:", T);
    run.signal("-INT");
    let (code, stdout, stderr) = run.finish(T);
    let took = first.elapsed();
    assert_eq!(code, 130, "{stdout}\n{stderr}");
    assert!(stderr.contains("interrupted again"), "{stderr}");
    assert!(
        took < Duration::from_secs(5),
        "waited {took:?}: the grace period"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["end"]["reason"], "interrupted");
}
