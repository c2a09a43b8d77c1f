//! CI integration: the Markdown job summary and the GitHub annotations (snapshots), the
//! baseline regression gate, and the GitHub Action's scripts (`action/install.sh`,
//! `action/check.sh`) run with a GitHub-like environment, a locally built binary in
//! place of the download, and a loopback server in place of GitHub's releases.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, UNIX_EPOCH};

use common::output_within;
use swarm::compile::graph::{CmpOp, CompiledPlan, ExpectId, Metric, RequestId, Slo};
use swarm::metrics::failure::{CheckFailure, FailureKind, ProtocolFailure};
use swarm::metrics::slo;
use swarm::metrics::snapshot::{EndReason, Snapshot};
use swarm::report::annotations;
use swarm::report::baseline::{self, BaselineError};
use swarm::report::json::JsonReport;
use swarm::report::summary;
use swarm::testing::TestPlan;

// ---------------------------------------------------------------------------------
// Fixtures: a compiled plan built by hand and a run with known numbers.

fn slo_at(request: Option<u32>, text: &str, metric: Metric, op: CmpOp, t: f64, line: u32) -> Slo {
    Slo {
        text: text.into(),
        request: request.map(RequestId),
        metric,
        op,
        threshold: t,
        line: Some(line),
        column: Some(5),
        window: None,
        abort: false,
    }
}

fn plan() -> CompiledPlan {
    let mut plan = TestPlan::new()
        .name("shop")
        .source("plans/shop.yaml")
        .target("http://127.0.0.1:8080")
        .closed(10, Duration::from_secs(10))
        .flow(
            "- get: /products
  name: list products
- post: /cart
  name: 'add | to cart'
  expect: { status: 201 }",
        )
        .compile();
    // The SLOs at known lines, as the report tests expect them.
    plan.slos = vec![
        slo_at(
            None,
            "p95 < 300ms",
            Metric::Percentile(95.0),
            CmpOp::Lt,
            300.0,
            21,
        ),
        slo_at(
            None,
            "error_rate < 1%",
            Metric::ErrorRate,
            CmpOp::Lt,
            0.01,
            22,
        ),
        slo_at(
            Some(0),
            "p95 < 15ms",
            Metric::Percentile(95.0),
            CmpOp::Lt,
            15.0,
            23,
        ),
    ];
    plan
}

/// A 10-second run: `list products` 100 requests at 10..=19 ms; `add | to cart` 20 at
/// `cart_ms` of which `cart_failures` failed (HTTP 500 first, then `status 201`).
fn snapshot(cart_ms: u64, cart_failures: u64) -> Snapshot {
    let mut snap = Snapshot::empty(2, Some(Duration::from_secs(10)));
    snap.elapsed = Duration::from_secs(10);
    snap.end = EndReason::Completed;
    snap.iterations = 20;
    for i in 0..100u64 {
        snap.requests[0].record(Duration::from_millis(10 + i % 10), 1000, Ok(()));
    }
    for i in 0..20u64 {
        let outcome = match i {
            _ if i >= cart_failures => Ok(()),
            0 | 1 => Err(FailureKind::Protocol(ProtocolFailure::HttpStatus(500))),
            _ => Err(FailureKind::Check(CheckFailure::Expect(ExpectId(0)))),
        };
        snap.requests[1].record(Duration::from_millis(cart_ms), 250, outcome);
    }
    snap
}

fn report(cart_ms: u64, cart_failures: u64) -> JsonReport {
    report_of(&plan(), cart_ms, cart_failures)
}

fn report_of(plan: &CompiledPlan, cart_ms: u64, cart_failures: u64) -> JsonReport {
    let snap = snapshot(cart_ms, cart_failures);
    let verdicts = slo::evaluate(plan, &snap);
    JsonReport::build(plan, &snap, &verdicts, UNIX_EPOCH)
}

fn write_report(dir: &Path, name: &str, report: &JsonReport) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, report.to_json()).unwrap();
    path
}

// ---------------------------------------------------------------------------------
// Summary and annotations

#[test]
fn summary_of_a_failed_run_with_a_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let old = write_report(dir.path(), "previous.json", &report(100, 0));
    let base = baseline::load(&old).unwrap();
    let mut current = report(150, 3);
    let cmp = baseline::compare(&base, &current, 0.1);
    let mut cmp_display = cmp.clone();
    cmp_display.file = "previous.json".into();
    current.generator.saturated = Some("CPU at 100% of one core".into());
    current.baseline = Some(cmp_display);
    insta::assert_snapshot!("summary_failed_with_baseline", summary::render(&current));
}

#[test]
fn summary_of_a_passing_run() {
    // The passing variant: only the SLOs over all requests, which this run holds.
    let mut plan = plan();
    plan.slos.retain(|s| s.request.is_none());
    let r = report_of(&plan, 100, 0);
    assert!(r.passed, "{:?}", r.slos);
    insta::assert_snapshot!("summary_passed", summary::render(&r));
}

#[test]
fn summary_goes_to_the_given_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("summary.md");
    std::fs::write(&path, "stale").unwrap();
    let r = report(100, 0);
    let target = |path: PathBuf| summary::SummaryTarget {
        path,
        append: false,
    };
    summary::write(&target(path.clone()), &r).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("## swarm: shop"), "{text}");
    assert!(!text.contains("stale"), "an explicit file is replaced");
    let err = summary::write(&target(dir.path().join("no/such/dir.md")), &r).unwrap_err();
    assert!(err.to_string().starts_with("cannot write the summary to"));
}

#[test]
fn annotations_point_at_the_slo_lines() {
    let dir = tempfile::tempdir().unwrap();
    let old = write_report(dir.path(), "previous.json", &report(100, 0));
    let current = report(150, 3);
    let mut cmp = baseline::compare(&baseline::load(&old).unwrap(), &current, 0.1);
    cmp.file = "previous.json".into();
    let plan_file = "plans/shop.yaml";
    let mut out = annotations::slo_failures(&current.slos, plan_file);
    out.push_str(&annotations::regressions(&cmp, plan_file));
    out.push_str(&annotations::plan_error(
        "plans/bad.yaml",
        7,
        3,
        "unknown key `thnk`: 100% wrong, see line 7\nsecond line",
        Some("did you mean `think`?"),
    ));
    insta::assert_snapshot!("annotations", out);
    // Every annotation is exactly one line.
    assert!(out.lines().all(|l| l.starts_with("::error ")), "{out}");
}

#[test]
fn plan_errors_point_at_the_offending_lines() {
    let source = "name: bad\ntarget: http://127.0.0.1:1\nload: { users: 1, duration: 1s }\n\
                  flows:\n  - name: f\n    thnk: 1s\n    steps:\n      - get: /\n";
    let errors = swarm::compile::compile_str(
        source,
        Path::new("plans/bad.yaml"),
        &swarm::compile::CompileOptions::default(),
    )
    .unwrap_err();
    let out = annotations::plan_errors(&errors, &annotations::Github::default());
    assert_eq!(out.lines().count(), errors.diagnostics.len(), "{out}");
    assert!(
        out.starts_with("::error file=plans/bad.yaml,line=6,col=5,title=Invalid plan::"),
        "{out}"
    );
    assert!(out.contains("thnk"), "{out}");
}

#[test]
fn the_sinks_write_the_summary_and_fail_on_a_regression() {
    use swarm::report::{RunResult, Sink, SinkError};
    let dir = tempfile::tempdir().unwrap();
    let old = write_report(dir.path(), "previous.json", &report(100, 0));
    let plan = std::sync::Arc::new(plan());
    let base = baseline::load(&old).unwrap();
    let result = RunResult::new(
        plan.clone(),
        std::sync::Arc::new(snapshot(150, 0)),
        UNIX_EPOCH,
        Some((&base, 0.1)),
    );

    let path = dir.path().join("summary.md");
    let mut sink = summary::SummarySink::new(Some(summary::SummaryTarget {
        path: path.clone(),
        append: false,
    }));
    sink.emit(&result).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("### Baseline"), "{text}");

    let notes = annotations::AnnotationSink::default().render(&result);
    assert!(
        notes.contains("title=Regression%3A add | to cart p95::"),
        "{notes}"
    );
    assert!(
        notes.contains("line=23,col=5,title=SLO failed%3A list products"),
        "{notes}"
    );

    let mut gate = baseline::BaselineSink { quiet: true };
    match gate.emit(&result) {
        Err(SinkError::Gate { message, .. }) => {
            assert!(
                message.contains("add | to cart: p95 100ms → 150ms"),
                "{message}"
            )
        }
        other => panic!("expected a gate failure, got {other:?}"),
    }
    let mut same = result.clone();
    same.report.baseline = Some(baseline::compare(&base, &report(100, 0), 0.1));
    assert!(gate.emit(&same).is_ok());
    same.report.baseline = None;
    assert!(gate.emit(&same).is_ok(), "no baseline, no gate");
}

// ---------------------------------------------------------------------------------
// The baseline gate

#[test]
fn baseline_gate_improving_equal_and_regressing_runs() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_report(dir.path(), "previous.json", &report(100, 1));
    let base = baseline::load(&path).unwrap();
    baseline::check_plan(&base, &plan()).unwrap();

    let equal = baseline::compare(&base, &report(100, 1), 0.1);
    assert!(!equal.regressed);
    let improving = baseline::compare(&base, &report(50, 0), 0.0);
    assert!(!improving.regressed);

    let slower = baseline::compare(&base, &report(120, 1), 0.1);
    assert!(slower.regressed);
    let regressed: Vec<String> = slower
        .regressions()
        .map(|(name, m)| format!("{name} {}", m.metric.name()))
        .collect();
    assert_eq!(
        regressed,
        [
            "add | to cart p50",
            "add | to cart p95",
            "add | to cart p99"
        ]
    );
    // The same run within a looser tolerance passes.
    assert!(!baseline::compare(&base, &report(120, 1), 0.25).regressed);

    let failing = baseline::compare(&base, &report(100, 4), 0.1);
    let regressed: Vec<_> = failing
        .regressions()
        .map(|(_, m)| m.metric.name())
        .collect();
    assert_eq!(regressed, ["error_rate"]);

    // The comparison survives the JSON report's round trip.
    let json = serde_json::to_string(&slower).unwrap();
    let back: baseline::BaselineComparison = serde_json::from_str(&json).unwrap();
    assert_eq!(back, slower);
    let text = baseline::render_text(&slower);
    assert!(text.contains("REGRESSED"), "{text}");
}

#[test]
fn a_baseline_from_another_plan_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut other = report(100, 0);
    other.plan.name = "checkout".into();
    let base = baseline::load(&write_report(dir.path(), "other.json", &other)).unwrap();
    let err = baseline::check_plan(&base, &plan()).unwrap_err();
    assert!(matches!(err, BaselineError::OtherPlan { .. }));
    assert!(
        err.to_string()
            .contains("is a report of plan `checkout`, not of `shop`"),
        "{err}"
    );

    let mut renamed = report(100, 0);
    for r in &mut renamed.requests {
        r.name = format!("old {}", r.name);
    }
    let base = baseline::load(&write_report(dir.path(), "renamed.json", &renamed)).unwrap();
    let err = baseline::check_plan(&base, &plan()).unwrap_err();
    assert!(
        matches!(err, BaselineError::NoMatchingRequests { .. }),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------
// The Action's scripts

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A GitHub-like environment in a temporary folder.
struct Runner {
    dir: tempfile::TempDir,
}

impl Runner {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        for f in ["output", "path", "step_summary"] {
            std::fs::write(dir.path().join(f), "").unwrap();
        }
        std::fs::create_dir(dir.path().join("tool_cache")).unwrap();
        Runner { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs `action/<script>` the way action.yml does, with `env` on top.
    fn run(&self, script: &str, env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new("bash");
        cmd.arg(repo().join("action").join(script))
            .current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_OUTPUT", self.path("output"))
            .env("GITHUB_PATH", self.path("path"))
            .env("GITHUB_STEP_SUMMARY", self.path("step_summary"))
            .env("GITHUB_WORKSPACE", self.dir.path())
            .env("GITHUB_ACTION_PATH", repo())
            .env("RUNNER_OS", "Linux")
            .env("RUNNER_ARCH", "X64")
            .env("RUNNER_TEMP", self.dir.path())
            .env("RUNNER_TOOL_CACHE", self.path("tool_cache"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        output_within(&mut cmd, Duration::from_secs(120))
    }

    /// The step outputs written so far, as `name=value` lines.
    fn outputs(&self) -> Vec<(String, String)> {
        std::fs::read_to_string(self.path("output"))
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn output(&self, name: &str) -> Option<String> {
        self.outputs()
            .into_iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout)
}

/// A small file server on 127.0.0.1 (release assets, or a target for a plan): serves
/// `files` under `/download/v9.9.9/`, 404 otherwise, and stops when dropped (or
/// after 60 s).
struct AssetServer {
    url: String,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl AssetServer {
    fn start(files: Vec<(String, Vec<u8>)>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}/download/v9.9.9", listener.local_addr().unwrap());
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            while !flag.load(Ordering::Relaxed) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((stream, _)) => serve(stream, &files),
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        AssetServer {
            url,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for AssetServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(stream: TcpStream, files: &[(String, Vec<u8>)]) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    // Skip the headers.
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
        line.clear();
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or("/");
    let file = files
        .iter()
        .find(|(p, _)| path == format!("/download/v9.9.9/{p}"));
    let mut stream = reader.into_inner();
    let (status, body): (&str, &[u8]) = match file {
        Some((_, body)) => ("200 OK", body),
        None => ("404 Not Found", b"not found"),
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(body);
}

/// `swarm-<target>.tar.gz` holding the locally built binary, and its sha256 line.
fn release_archive(dir: &Path, target: &str) -> (Vec<u8>, String) {
    let stage = dir.join("stage");
    std::fs::create_dir_all(&stage).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_swarm"), stage.join("swarm")).unwrap();
    let archive = dir.join(format!("swarm-{target}.tar.gz"));
    let tar = output_within(
        Command::new("tar")
            .arg("-czf")
            .arg(&archive)
            .arg("-C")
            .arg(&stage)
            .arg("swarm"),
        // A hang guard, not a speed limit: compressing the ~230 MB debug binary took
        // 95 s of wall time on 2 cores at load average 13.
        Duration::from_secs(600),
    );
    assert!(tar.status.success(), "{}", stderr(&tar));
    let sum = output_within(
        Command::new("sha256sum").arg(&archive),
        Duration::from_secs(300),
    );
    assert!(sum.status.success(), "{}", stderr(&sum));
    let digest = String::from_utf8(sum.stdout).unwrap();
    let digest = digest.split_whitespace().next().unwrap().to_string();
    let mut bytes = Vec::new();
    std::fs::File::open(&archive)
        .unwrap()
        .read_to_end(&mut bytes)
        .unwrap();
    (bytes, format!("{digest}  swarm-{target}.tar.gz\n"))
}

#[test]
fn install_uses_a_local_binary() {
    let runner = Runner::new();
    let bin = env!("CARGO_BIN_EXE_swarm");
    let out = runner.run("install.sh", &[("SWARM_BINARY", bin)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(runner.output("bin").as_deref(), Some(bin));
    let path = std::fs::read_to_string(runner.path("path")).unwrap();
    assert_eq!(
        path.trim(),
        Path::new(bin).parent().unwrap().to_str().unwrap()
    );

    let out = runner.run("install.sh", &[("SWARM_BINARY", "/no/such/swarm")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("not an executable file"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn install_downloads_and_verifies_the_release_binary() {
    let runner = Runner::new();
    let target = "x86_64-unknown-linux-musl";
    let (archive, sum) = release_archive(runner.dir.path(), target);
    let server = AssetServer::start(vec![
        (format!("swarm-{target}.tar.gz"), archive.clone()),
        (format!("swarm-{target}.tar.gz.sha256"), sum.into_bytes()),
    ]);
    let env = [
        ("SWARM_RELEASE_URL", server.url.as_str()),
        ("SWARM_VERSION", "v9.9.9"),
        ("SWARM_INSTALL", "release"),
    ];
    let out = runner.run("install.sh", &env);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("sha256 verified"), "{}", stderr(&out));
    let bin = runner.output("bin").unwrap();
    assert_eq!(
        PathBuf::from(&bin),
        runner
            .path("tool_cache")
            .join(format!("swarm/v9.9.9/{target}/swarm"))
    );
    let version = output_within(Command::new(&bin).arg("--version"), Duration::from_secs(30));
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("swarm "));
    drop(server);

    // A tampered archive is refused, never used or replaced by a source build.
    let runner = Runner::new();
    let server = AssetServer::start(vec![
        (format!("swarm-{target}.tar.gz"), archive),
        (
            format!("swarm-{target}.tar.gz.sha256"),
            format!("{}  swarm-{target}.tar.gz\n", "0".repeat(64)).into_bytes(),
        ),
    ]);
    let env = [
        ("SWARM_RELEASE_URL", server.url.as_str()),
        ("SWARM_VERSION", "v9.9.9"),
        ("SWARM_INSTALL", "auto"),
    ];
    let out = runner.run("install.sh", &env);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("sha256 mismatch"), "{}", stderr(&out));
    assert_eq!(runner.output("bin"), None);
}

#[test]
fn install_without_a_release_binary_fails_when_release_is_required() {
    let runner = Runner::new();
    let server = AssetServer::start(Vec::new());
    let env = [
        ("SWARM_RELEASE_URL", server.url.as_str()),
        ("SWARM_VERSION", "v9.9.9"),
        ("SWARM_INSTALL", "release"),
    ];
    let out = runner.run("install.sh", &env);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no release asset"),
        "{}",
        stderr(&out)
    );
    // An unsupported runner has no release binary at all.
    let out = runner.run(
        "install.sh",
        &[("SWARM_INSTALL", "release"), ("RUNNER_OS", "Windows")],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no release binary for Windows/X64"));
}

#[test]
fn install_falls_back_to_cargo_when_the_release_has_no_binary() {
    let runner = Runner::new();
    let server = AssetServer::start(Vec::new());
    // A stand-in `cargo` that records its arguments and "builds" the local binary.
    let fake_bin = runner.path("fake-bin");
    std::fs::create_dir(&fake_bin).unwrap();
    let script = format!(
        r#"#!/usr/bin/env bash
printf '%s\n' "$@" >"{args}"
while [[ $# -gt 0 ]]; do
  if [[ "$1" == --root ]]; then mkdir -p "$2/bin" && cp "{swarm}" "$2/bin/swarm"; fi
  shift
done
"#,
        args = runner.path("cargo-args").display(),
        swarm = env!("CARGO_BIN_EXE_swarm"),
    );
    std::fs::write(fake_bin.join("cargo"), script).unwrap();
    let chmod = output_within(
        Command::new("chmod").arg("+x").arg(fake_bin.join("cargo")),
        Duration::from_secs(30),
    );
    assert!(chmod.status.success(), "{}", stderr(&chmod));
    let path = format!(
        "{}:{}",
        fake_bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let env = [
        ("PATH", path.as_str()),
        ("SWARM_RELEASE_URL", server.url.as_str()),
        ("SWARM_VERSION", "v9.9.9"),
    ];
    let out = runner.run("install.sh", &env);
    assert!(out.status.success(), "{}", stderr(&out));
    let args = std::fs::read_to_string(runner.path("cargo-args")).unwrap();
    let root = runner.path("swarm-cargo");
    let expected = format!(
        "install\n--locked\n--root\n{}\n--path\n{}\n",
        root.display(),
        repo().display()
    );
    assert_eq!(args, expected);
    assert_eq!(
        runner.output("bin").map(PathBuf::from),
        Some(root.join("bin/swarm"))
    );
}

/// A stand-in for `swarm check` that records its arguments, writes `report` where
/// `--json` says and exits with `code`.
fn fake_swarm(runner: &Runner, report: &JsonReport, code: i32) -> PathBuf {
    let report_path = runner.path("fake-report.json");
    std::fs::write(&report_path, report.to_json()).unwrap();
    let script = format!(
        r#"#!/usr/bin/env bash
printf '%s\n' "$@" >"{args}"
while [[ $# -gt 0 ]]; do
  if [[ "$1" == --baseline && ! -f "$2" ]]; then echo "no baseline $2" >&2; exit 99; fi
  if [[ "$1" == --json ]]; then cp "{report}" "$2"; fi
  shift
done
exit {code}
"#,
        args = runner.path("args").display(),
        report = report_path.display(),
    );
    let bin = runner.path("fake-swarm");
    std::fs::write(&bin, script).unwrap();
    let chmod = output_within(
        Command::new("chmod").arg("+x").arg(&bin),
        Duration::from_secs(30),
    );
    assert!(chmod.status.success(), "{}", stderr(&chmod));
    bin
}

#[test]
fn check_passes_inputs_and_publishes_outputs() {
    let runner = Runner::new();
    let bin = fake_swarm(&runner, &report(150, 3), 1);
    std::fs::write(runner.path("previous.json"), report(100, 0).to_json()).unwrap();
    let out = runner.run(
        "check.sh",
        &[
            ("SWARM_BIN", bin.to_str().unwrap()),
            ("INPUT_PLAN", "plans/shop.yaml"),
            ("INPUT_TARGET", "http://127.0.0.1:9"),
            (
                "INPUT_VARS",
                "region=eu\n  # a comment\n\npage_size = 20 \n",
            ),
            ("INPUT_ARGS", "--users 5  --duration\t30s"),
            ("INPUT_JSON", "out/report.json"),
            ("INPUT_JUNIT", "out/junit.xml"),
            ("INPUT_BASELINE", "previous.json"),
            ("INPUT_MAX_REGRESSION", "5%"),
        ],
    );
    // The step fails with swarm's own exit code.
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let args = std::fs::read_to_string(runner.path("args")).unwrap();
    let args: Vec<&str> = args.lines().collect();
    assert_eq!(
        args,
        [
            "check",
            "plans/shop.yaml",
            "--json",
            "out/report.json",
            "--target",
            "http://127.0.0.1:9",
            "--var",
            "region=eu",
            "--var",
            "page_size = 20",
            "--junit",
            "out/junit.xml",
            "--baseline",
            "previous.json",
            "--max-regression",
            "5%",
            "--users",
            "5",
            "--duration",
            "30s",
        ]
    );
    let outputs = runner.outputs();
    let get = |k: &str| {
        runner
            .output(k)
            .unwrap_or_else(|| panic!("no output {k}: {outputs:?}"))
    };
    assert_eq!(get("verdict"), "fail");
    assert_eq!(get("exit-code"), "1");
    assert_eq!(get("json"), "out/report.json");
    assert_eq!(get("junit"), "out/junit.xml");
    assert_eq!(
        get("summary"),
        runner.path("step_summary").to_str().unwrap()
    );
    assert_eq!(get("requests"), "120");
    assert_eq!(get("error-rate"), "0.025");
    assert_eq!(get("p95-ms"), "150.015");
}

#[test]
fn check_keeps_a_baseline_that_is_also_the_report_path() {
    let runner = Runner::new();
    let bin = fake_swarm(&runner, &report(100, 0), 0);
    std::fs::write(runner.path("swarm-report.json"), report(150, 0).to_json()).unwrap();
    let out = runner.run(
        "check.sh",
        &[
            ("SWARM_BIN", bin.to_str().unwrap()),
            ("INPUT_PLAN", "p.yaml"),
            ("INPUT_BASELINE", "./swarm-report.json"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // The new report replaced the baseline after swarm read it.
    assert_eq!(runner.output("p95-ms").as_deref(), Some("100.031"));
}

#[test]
fn check_exit_codes_map_to_verdicts() {
    for (code, verdict) in [
        (0, "pass"),
        (2, "invalid"),
        (3, "error"),
        (130, "interrupted"),
    ] {
        let runner = Runner::new();
        let bin = fake_swarm(&runner, &report(100, 0), code);
        let out = runner.run(
            "check.sh",
            &[
                ("SWARM_BIN", bin.to_str().unwrap()),
                ("INPUT_PLAN", "p.yaml"),
                // Blank extra arguments add none (and do not trip `set -u`).
                ("INPUT_ARGS", " \n "),
                ("INPUT_JUNIT", "deep/er/junit.xml"),
            ],
        );
        assert_eq!(out.status.code(), Some(code), "{}", stderr(&out));
        assert_eq!(runner.output("verdict").as_deref(), Some(verdict));
        assert_eq!(runner.output("exit-code"), Some(code.to_string()));
        // The default JSON path, in the working directory.
        assert_eq!(runner.output("json").as_deref(), Some("swarm-report.json"));
        assert_eq!(runner.output("requests").as_deref(), Some("120"));
        assert!(
            runner.path("deep/er").is_dir(),
            "report folders are created"
        );
        let args = std::fs::read_to_string(runner.path("args")).unwrap();
        assert!(args.ends_with("--junit\ndeep/er/junit.xml\n"), "{args}");
    }
    let runner = Runner::new();
    let out = runner.run("check.sh", &[("SWARM_BIN", "/bin/false")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stdout).contains("::error title=swarm::"));
    assert_eq!(runner.output("verdict").as_deref(), Some("invalid"));
}

#[test]
fn check_with_the_real_binary_fails_the_step_on_invalid_arguments() {
    let runner = Runner::new();
    // A report from an earlier run must not pass for this one's.
    std::fs::write(runner.path("swarm-report.json"), report(100, 0).to_json()).unwrap();
    let bin = env!("CARGO_BIN_EXE_swarm");
    let out = runner.run(
        "check.sh",
        &[
            ("SWARM_BIN", bin),
            ("INPUT_PLAN", "plans/none.yaml"),
            ("INPUT_ARGS", "--no-such-option"),
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(runner.output("verdict").as_deref(), Some("invalid"));
    assert_eq!(runner.output("exit-code").as_deref(), Some("2"));
    // Nothing ran, so there is no report and no headline numbers.
    assert_eq!(runner.output("json").as_deref(), Some(""));
    assert_eq!(runner.output("requests"), None);
}

/// The whole step, end to end: the real binary runs a plan against a loopback server,
/// passes, then fails an SLO, with the annotation on the SLO's line.
#[test]
fn the_action_gates_a_real_run() {
    let server = AssetServer::start(vec![("ok".to_string(), b"ok".to_vec())]);
    let origin = server.url.trim_end_matches("/download/v9.9.9").to_string();
    let bin = env!("CARGO_BIN_EXE_swarm");
    for (slo, code, verdict) in [("error_rate < 1%", 0, "pass"), ("p95 < 0ms", 1, "fail")] {
        let runner = Runner::new();
        let plan = format!(
            "name: action e2e\ntarget: {origin}\nload: {{ users: 2, iterations: 20 }}\n\
             flows:\n  - name: ping\n    steps:\n      - get: /download/v9.9.9/ok\n\
             slo:\n  - {slo}\n"
        );
        std::fs::write(runner.path("plan.yaml"), plan).unwrap();
        let out = runner.run(
            "check.sh",
            &[
                ("SWARM_BIN", bin),
                ("INPUT_PLAN", "plan.yaml"),
                ("INPUT_JUNIT", "junit.xml"),
            ],
        );
        assert_eq!(out.status.code(), Some(code), "{}", stderr(&out));
        assert_eq!(runner.output("verdict").as_deref(), Some(verdict));
        assert_eq!(runner.output("requests").as_deref(), Some("20"));
        assert!(runner.path("junit.xml").exists());
        let summary = std::fs::read_to_string(runner.path("step_summary")).unwrap();
        assert!(summary.contains("## swarm: action e2e"), "{summary}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        if code == 1 {
            assert!(
                stdout.contains(
                    "::error file=plan.yaml,line=9,col=5,title=SLO failed%3A p95 < 0ms::"
                ),
                "{stdout}"
            );
        }
    }
}

/// Under GitHub Actions, `swarm validate` and `swarm check` annotate an invalid plan
/// at the offending line; elsewhere they print no workflow commands.
#[test]
fn an_invalid_plan_is_annotated_by_validate_and_check() {
    let plan = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/shared-plans/invalid/unknown-key.yaml"
    );
    for command in ["validate", "check"] {
        let run = |github: bool| {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_swarm"));
            cmd.arg(command).arg(plan).env_remove("GITHUB_WORKSPACE");
            if github {
                cmd.env("GITHUB_ACTIONS", "true");
            } else {
                cmd.env_remove("GITHUB_ACTIONS");
            }
            output_within(&mut cmd, Duration::from_secs(60))
        };
        let out = run(true);
        assert_eq!(out.status.code(), Some(2), "{command}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("::error file=") && stdout.contains("unknown-key.yaml,line=9,col=9"),
            "{command}: {stdout}"
        );
        assert!(stdout.contains("expect"), "{command}: {stdout}");
        let quiet = run(false);
        assert_eq!(quiet.status.code(), Some(2), "{command}");
        assert!(
            !String::from_utf8_lossy(&quiet.stdout).contains("::error"),
            "{command}"
        );
    }
}
