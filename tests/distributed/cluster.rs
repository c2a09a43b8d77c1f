//! The pieces of a distributed run in a test: the counting target, plans, the
//! coordinator and its workers as processes.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::{self, Watched};

/// How long any one run of these tests may take.
pub const LIMIT: Duration = Duration::from_secs(60);

pub fn swarm() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_swarm"));
    cmd.env_remove("SWARM_TARGET")
        .env_remove("SWARM_TOKEN")
        .env_remove("GITHUB_STEP_SUMMARY")
        .env("CI", "1")
        .stdin(Stdio::null());
    cmd
}

/// A loopback target that counts requests: `GET /ok` answers at once, `GET /slow`
/// after 20 ms.
pub struct Target {
    pub addr: SocketAddr,
    hits: Arc<AtomicU64>,
    queries: Arc<Mutex<Vec<String>>>,
}

impl Target {
    pub fn start() -> Target {
        let hits = Arc::new(AtomicU64::new(0));
        let counted = hits.clone();
        let queries = Arc::new(Mutex::new(Vec::new()));
        let seen = queries.clone();
        let app = axum::Router::new()
            .route("/ok", axum::routing::get(|| async { "ok" }))
            .route(
                "/slow",
                axum::routing::get(|| async {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    "slow"
                }),
            )
            .layer(axum::middleware::from_fn(
                move |req: axum::extract::Request, next: axum::middleware::Next| {
                    let (counted, seen) = (counted.clone(), seen.clone());
                    async move {
                        counted.fetch_add(1, Ordering::Relaxed);
                        if let Some(q) = req.uri().query() {
                            seen.lock().unwrap().push(q.to_owned());
                        }
                        next.run(req).await
                    }
                },
            ));
        Target {
            addr: common::serve(app),
            hits,
            queries,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// The query strings of the requests seen, in order.
    pub fn queries(&self) -> Vec<String> {
        self.queries.lock().unwrap().clone()
    }
}

/// Writes a plan of one flow hitting `path` (think 20 ms) with `load` and `slos`.
pub fn plan(dir: &Path, target: &str, load: &str, path: &str, slos: &[&str]) -> PathBuf {
    let slo: String = slos.iter().map(|s| format!("  - \"{s}\"\n")).collect();
    let slo = if slo.is_empty() {
        String::new()
    } else {
        format!("slo:\n{slo}")
    };
    let text = format!(
        "name: distributed\ntarget: {target}\nload: {load}\nflows:\n  - name: probe\n    think: 20ms\n    steps:\n      - get: {path}\n        name: probe\n{slo}"
    );
    let file = dir.join("plan.yaml");
    std::fs::write(&file, text).unwrap();
    file
}

pub fn read_json(path: impl AsRef<Path>) -> serde_json::Value {
    let text = std::fs::read_to_string(path).expect("the JSON report was written");
    serde_json::from_str(&text).expect("the JSON report parses")
}

/// The rows of a JSON report's workers table whose state is `lost`.
pub fn lost(report: &serde_json::Value) -> Vec<serde_json::Value> {
    let rows = report["workers"]
        .as_array()
        .expect("the report lists the workers");
    rows.iter()
        .filter(|w| w["state"] == "lost")
        .cloned()
        .collect()
}

/// What most tests start from: a counting target, a folder, and in it a plan of one
/// flow hitting `path` with `load` and `slos` (see [`plan`]).
pub struct Setup {
    pub target: Target,
    pub dir: tempfile::TempDir,
    pub plan: PathBuf,
}

impl Setup {
    pub fn new(load: &str, path: &str, slos: &[&str]) -> Setup {
        let target = Target::start();
        let dir = tempfile::tempdir().unwrap();
        let plan = plan(dir.path(), &target.url(), load, path, slos);
        Setup { target, dir, plan }
    }

    /// `NAME` in the test's folder, as the command line takes it.
    pub fn file(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }

    /// Waits until the target got some load, then kills `worker` (SIGKILL).
    pub fn kill_under_load(&self, worker: &Watched) {
        common::wait_until("load at the target", Duration::from_secs(20), || {
            self.target.hits() > 20
        });
        worker.signal("-KILL");
    }
}

/// A coordinator process, once it listens.
pub struct Coordinator {
    pub proc: Watched,
    pub url: String,
}

impl Coordinator {
    /// Starts `swarm check PLAN --coordinator 127.0.0.1:0 --workers N ARGS...` and
    /// waits until it says where it listens.
    pub fn start(plan: &Path, workers: usize, args: &[&str]) -> Coordinator {
        Coordinator::start_on("127.0.0.1:0", plan, workers, args)
    }

    pub fn start_on(addr: &str, plan: &Path, workers: usize, args: &[&str]) -> Coordinator {
        let mut proc = Watched::spawn(
            swarm()
                .arg("check")
                .arg(plan)
                .args(["--coordinator", addr, "--workers", &workers.to_string()])
                .args(["--progress", "none"])
                .args(args),
        );
        let line = proc.line("coordinator listening on ", Duration::from_secs(20));
        let addr = line.split(':').take(2).collect::<Vec<_>>().join(":");
        let url = format!("http://{addr}");
        Coordinator { proc, url }
    }
}

impl Coordinator {
    /// Starts a worker for each of `names` and waits until the last one joined.
    pub fn join<const N: usize>(&mut self, names: [&str; N]) -> [Watched; N] {
        let workers = names.map(|name| worker(&self.url, name, &[]));
        if let Some(last) = names.last() {
            let joined = format!("worker `{last}` joined");
            self.proc.line(&joined, Duration::from_secs(20));
        }
        workers
    }
}

/// Starts `swarm worker URL --name NAME ARGS...`.
pub fn worker(url: &str, name: &str, args: &[&str]) -> Watched {
    Watched::spawn(swarm().args(["worker", url, "--name", name]).args(args))
}
