//! `swarm check` end to end: the binary against real loopback servers, each exit code,
//! the reports it writes, Ctrl-C, and every shared plan against the built-in demo.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

const PLANS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/shared-plans");
const SCHEMA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/report.schema.json");

/// Runs of the binary take turns: load tests sharing two cores would measure each
/// other, and latency SLOs would fail for the wrong reason.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn swarm() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_swarm"));
    cmd.env_remove("SWARM_TARGET")
        .env_remove("GITHUB_STEP_SUMMARY")
        .env("CI", "1")
        .stdin(Stdio::null());
    cmd
}

/// Runs `cmd` to completion, killing it if it outlives `limit`.
fn run(cmd: &mut Command, limit: Duration) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the swarm binary starts");
    wait_bounded(child, limit)
}

fn wait_bounded(mut child: Child, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "swarm ran longer than {limit:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited with a code")
}

fn describe(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A loopback HTTP server that answers `GET /ok` with `ok` and counts requests.
/// `GET /accept` answers 200 when the request has an `accept` header (reqwest sends
/// one, the lean client does not) and 500 otherwise.
struct Server {
    addr: SocketAddr,
    hits: Arc<AtomicU64>,
}

impl Server {
    fn start() -> Server {
        let hits = Arc::new(AtomicU64::new(0));
        let counted = hits.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let app = axum::Router::new()
                    .route("/ok", axum::routing::get(|| async { "ok" }))
                    .route(
                        "/accept",
                        axum::routing::get(|headers: axum::http::HeaderMap| async move {
                            match headers.contains_key("accept") {
                                true => axum::http::StatusCode::OK,
                                false => axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                            }
                        }),
                    )
                    .layer(axum::middleware::from_fn(
                        move |req: axum::extract::Request, next: axum::middleware::Next| {
                            let counted = counted.clone();
                            async move {
                                counted.fetch_add(1, Ordering::Relaxed);
                                next.run(req).await
                            }
                        },
                    ));
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                axum::serve(listener, app).await.unwrap();
            });
        });
        let addr = rx.recv_timeout(Duration::from_secs(10)).expect("server up");
        Server { addr, hits }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }
}

/// Writes a plan hitting `/ok` on `target` with the given load and SLO lines.
fn plan(dir: &Path, target: &str, load: &str, slos: &[&str]) -> PathBuf {
    let slo: String = slos.iter().map(|s| format!("  - \"{s}\"\n")).collect();
    let text = format!(
        "name: loopback\ntarget: {target}\nload: {load}\nflows:\n  - name: probe\n    think: 20ms\n    steps:\n      - get: /ok\n        name: ok\nslo:\n{slo}"
    );
    let path = dir.join("plan.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).expect("the JSON report was written");
    serde_json::from_str(&text).expect("the JSON report parses")
}

/// Checks `report` against the checked-in schema.
fn assert_valid(report: &serde_json::Value) {
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(SCHEMA).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(report)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn a_passing_plan_exits_0_and_writes_both_reports() {
    let _turn = serial();
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let plan = plan(
        dir.path(),
        &server.url(),
        "{ users: 2, duration: 2s }",
        &["p95 < 2s", "error_rate < 1%", "ok: requests >= 5"],
    );
    let json = dir.path().join("report.json");
    let junit = dir.path().join("junit.xml");
    let out = run(
        swarm()
            .arg("check")
            .arg(&plan)
            .arg("--json")
            .arg(&json)
            .arg("--junit")
            .arg(&junit),
        Duration::from_secs(60),
    );
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Aggregated"), "{stdout}");
    assert!(stdout.contains("✓ loopback: all 3 SLOs held"), "{stdout}");
    // CI is set: progress is a plain status line on stderr, never in the summary.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("s/2s] users "), "{stderr}");
    assert!(!stdout.contains("req/s"), "{stdout}");
    assert!(server.hits() >= 5);

    let report = read_json(&json);
    assert_valid(&report);
    assert_eq!(report["version"], 1);
    assert_eq!(report["plan"]["name"], "loopback");
    assert_eq!(report["end"]["reason"], "completed");
    assert_eq!(report["passed"], true);
    assert_eq!(report["requests"][0]["name"], "ok");
    assert_eq!(report["requests"][0]["count"].as_u64(), Some(server.hits()));
    let xml = std::fs::read_to_string(&junit).expect("the JUnit report was written");
    assert!(xml.contains("<testsuite name=\"loopback\""), "{xml}");
    assert_eq!(xml.matches("<testcase ").count(), 3, "{xml}");
}

/// `SWARM_HTTP_CLIENT` is read by the command line, which hands the engine a plain
/// config: reqwest (which sends `accept: */*`) passes, the lean client fails.
#[test]
fn the_http_client_is_chosen_by_swarm_http_client() {
    let _turn = serial();
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.yaml");
    let text = format!(
        "name: client\ntarget: {}\nload: {{ users: 1, iterations: 2 }}\nflows:\n  - name: f\n    steps:\n      - get: /accept\n",
        server.url()
    );
    std::fs::write(&plan, text).unwrap();
    for (client, expected) in [(Some("reqwest"), 0), (Some("lean"), 1), (None, 1)] {
        let mut cmd = swarm();
        match client {
            Some(c) => cmd.env("SWARM_HTTP_CLIENT", c),
            None => cmd.env_remove("SWARM_HTTP_CLIENT"),
        };
        let out = run(cmd.arg("check").arg(&plan), Duration::from_secs(60));
        assert_eq!(code(&out), expected, "{client:?}: {}", describe(&out));
    }
}

#[test]
fn a_failing_slo_exits_1_and_says_which() {
    let _turn = serial();
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let plan = plan(
        dir.path(),
        &server.url(),
        "{ users: 1, duration: 1s }",
        &["error_rate < 1%", "rps >= 100000"],
    );
    // The other sinks' flags are accepted alongside (they cannot turn a failure into
    // anything but 1).
    let out = run(
        swarm()
            .arg("check")
            .arg(&plan)
            .arg("--quiet")
            .arg("--html")
            .arg(dir.path().join("report.html"))
            .arg("--summary")
            .arg(dir.path().join("summary.md")),
        Duration::from_secs(60),
    );
    assert_eq!(code(&out), 1, "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    // --quiet prints the verdict line only.
    assert_eq!(stdout.trim(), "✗ loopback: 1 of 2 SLOs failed");
}

#[test]
fn invalid_plans_and_arguments_exit_2_and_send_nothing() {
    let _turn = serial();
    let server = Server::start();
    for entry in std::fs::read_dir(format!("{PLANS}/invalid")).unwrap() {
        let path = entry.unwrap().path();
        let out = run(
            swarm()
                .arg("check")
                .arg(&path)
                .arg("--target")
                .arg(server.url()),
            Duration::from_secs(30),
        );
        assert_eq!(code(&out), 2, "{}: {}", path.display(), describe(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        let name = path.file_name().unwrap().to_string_lossy();
        assert!(
            stderr.contains(name.as_ref()),
            "{}: {stderr}",
            path.display()
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let plan = plan(dir.path(), &server.url(), "{ users: 1, duration: 1s }", &[]);
    for bad in [
        &["--duration", "soon"][..],
        &["--var", "novalue"],
        &["--progress", "fancy"],
    ] {
        let out = run(
            swarm().arg("check").arg(&plan).args(bad),
            Duration::from_secs(30),
        );
        assert_eq!(code(&out), 2, "{bad:?}: {}", describe(&out));
    }
    let out = run(
        swarm().arg("check").arg(dir.path().join("missing.yaml")),
        Duration::from_secs(30),
    );
    assert_eq!(code(&out), 2, "{}", describe(&out));
    assert_eq!(server.hits(), 0, "an invalid plan sent requests");
}

#[test]
fn an_unwritable_report_exits_3_but_the_rest_is_still_written() {
    let _turn = serial();
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let plan = plan(
        dir.path(),
        &server.url(),
        "{ users: 1, duration: 1s }",
        &["p95 < 2s"],
    );
    let junit = dir.path().join("junit.xml");
    let out = run(
        swarm()
            .arg("check")
            .arg(&plan)
            .arg("--json")
            .arg(dir.path().join("no/such/dir/report.json"))
            .arg("--junit")
            .arg(&junit),
        Duration::from_secs(60),
    );
    assert_eq!(code(&out), 3, "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("could not write the json report"),
        "{stderr}"
    );
    assert!(junit.exists(), "the JUnit report is still written");
    assert!(String::from_utf8_lossy(&out.stdout).contains("Aggregated"));
}

/// A data file that vanishes between compiling the plan and starting the run is a
/// run error. The file is a FIFO whose writer unlinks it before closing: the compiler
/// reads the header and first row, and the engine then finds no file.
#[test]
fn a_data_file_that_vanished_exits_3() {
    let _turn = serial();
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("accounts.csv");
    let made = Command::new("mkfifo").arg(&csv).status().unwrap();
    assert!(made.success());
    let plan = dir.path().join("plan.yaml");
    std::fs::write(
        &plan,
        format!(
            "name: vanishing\ntarget: {}\ndata:\n  accounts: {{ csv: accounts.csv }}\nload: {{ users: 1, duration: 1s }}\nflows:\n  - name: f\n    steps:\n      - get: /ok?user={{{{ accounts.user }}}}\n",
            server.url()
        ),
    )
    .unwrap();
    let writer_path = csv.clone();
    let writer = std::thread::spawn(move || -> std::io::Result<()> {
        use std::io::Write;
        // Blocks until the compiler opens the file for reading.
        let mut f = std::fs::OpenOptions::new().write(true).open(&writer_path)?;
        // No newline after the row: the reader needs the end of the file to finish it.
        f.write_all(b"user,password\nalice,wonderland")?;
        std::fs::remove_file(&writer_path)
    });
    let out = run(swarm().arg("check").arg(&plan), Duration::from_secs(60));
    // If swarm never opened the FIFO, the writer is still blocked in `open`: open it
    // here to release it (on Linux, opening a FIFO read-write never blocks, fifo(7)),
    // and hold it open until the writer is done so that its write cannot fail. Once
    // the writer has removed the file this open fails, which is fine.
    let _release = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&csv);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !writer.is_finished() {
        assert!(
            Instant::now() < deadline,
            "the FIFO writer is still blocked\n{}",
            describe(&out)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let written = writer.join().expect("the FIFO writer did not panic");
    assert!(written.is_ok(), "{written:?}\n{}", describe(&out));
    assert_eq!(code(&out), 3, "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("accounts.csv"), "{stderr}");
    assert_eq!(server.hits(), 0);
}

#[test]
fn sigint_exits_130_and_still_writes_the_report() {
    interrupt_with("-INT");
}

#[test]
fn sigterm_stops_like_ctrl_c() {
    interrupt_with("-TERM");
}

/// Sends `signal` to a running `swarm check` once load flows: it must stop promptly,
/// exit 130 and still write the report with what was measured.
fn interrupt_with(signal: &str) {
    let _turn = serial();
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let plan = plan(
        dir.path(),
        &server.url(),
        "{ users: 2, duration: 60s }",
        &["p95 < 2s"],
    );
    let json = dir.path().join("report.json");
    let mut child = swarm()
        .arg("check")
        .arg(&plan)
        .arg("--json")
        .arg(&json)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.hits() < 10 {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("no requests reached the server: {}", describe(&out));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let sent = Command::new("kill")
        .arg(signal)
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(sent.success());
    let started = Instant::now();
    let out = wait_bounded(child, Duration::from_secs(30));
    assert_eq!(code(&out), 130, "{}", describe(&out));
    assert!(started.elapsed() < Duration::from_secs(15), "slow to stop");
    let report = read_json(&json);
    assert_valid(&report);
    assert_eq!(report["end"]["reason"], "interrupted");
    assert!(report["total"]["count"].as_u64().unwrap() >= 10);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Run ended: interrupted"), "{stdout}");
}

/// The shared plans, as the product design promises: `failing-slo.yaml` exits 1,
/// the others 0, each against the built-in demo.
#[test]
fn every_shared_plan_runs_against_the_demo() {
    let _turn = serial();
    let cases: &[(&str, &[&str], i32)] = &[
        ("quickstart.yaml", &["--duration", "3s"], 0),
        ("shop.toml", &["--duration", "3s"], 0),
        ("shop.yaml", &["--duration", "6s"], 0),
        ("open-model.yaml", &[], 0),
        ("failing-slo.yaml", &[], 1),
    ];
    let mut seen: Vec<String> = Vec::new();
    for (name, extra, expected) in cases {
        seen.push(name.to_string());
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("report.json");
        let out = run(
            swarm()
                .arg("check")
                .arg(format!("{PLANS}/{name}"))
                .arg("--demo")
                .args(*extra)
                .arg("--json")
                .arg(&json),
            Duration::from_secs(90),
        );
        assert_eq!(code(&out), *expected, "{name}: {}", describe(&out));
        let report = read_json(&json);
        assert_valid(&report);
        assert!(report["total"]["count"].as_u64().unwrap() > 0, "{name}");
    }
    // A plan added to the shared folder must be added here too.
    let mut on_disk: Vec<String> = std::fs::read_dir(PLANS)
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            let ext = p.extension()?.to_str()?.to_string();
            ["yaml", "yml", "toml"]
                .contains(&ext.as_str())
                .then(|| p.file_name().unwrap().to_string_lossy().into_owned())
        })
        .collect();
    on_disk.sort();
    seen.sort();
    assert_eq!(seen, on_disk);
}

/// The project's own example plans (`plans/`, one per feature) keep running against
/// the demo and keep their SLOs, so the examples in the docs never rot.
#[test]
fn every_example_plan_runs_against_the_demo() {
    let _turn = serial();
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/plans");
    let mut plans: Vec<PathBuf> = std::fs::read_dir(examples)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| ["yaml", "yml", "toml"].contains(&e))
        })
        .collect();
    plans.sort();
    assert!(
        plans.len() >= 10,
        "expected the example plans in {examples}"
    );
    for plan in &plans {
        let out = run(
            swarm().arg("check").arg(plan).args([
                "--demo",
                "--duration",
                "2s",
                "--progress",
                "none",
            ]),
            Duration::from_secs(60),
        );
        assert_eq!(code(&out), 0, "{}: {}", plan.display(), describe(&out));
    }
}
