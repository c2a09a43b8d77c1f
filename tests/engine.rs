//! The engine through its library API, against real loopback servers on port 0:
//! weight spread, concurrency following stages, exact iterations, control messages,
//! feeders, and the open model's rate and dropped arrivals.
//!
//! Nothing here judges the machine's speed: the tests wait for states they can
//! observe (with generous bounds), and timed assertions only bound what a slower
//! machine cannot improve (a pace is never beaten, a stop never waits for the run's
//! end). The whole file also runs with the reqwest client
//! (`the_engine_tests_pass_with_reqwest`).

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::Uri;
use swarm::compile::graph::CompiledPlan;
use swarm::engine::config::{EngineConfig, HttpConfig, Implementation};
use swarm::engine::control::Control;
use swarm::engine::{RunError, RunHandle, start};
use swarm::metrics::failure::{FailureKind, TransportFailure};
use swarm::metrics::snapshot::{EndReason, Snapshot};
use swarm::metrics::stats::RequestStats;
use swarm::testing::TestPlan;

// ---------------------------------------------------------------------------------
// A loopback target that counts what it sees.

#[derive(Default)]
struct Seen {
    inflight: AtomicU32,
    max_inflight: AtomicU32,
    /// Every request's path and query with the moment it arrived, in arrival order.
    hits: Mutex<Vec<(Instant, String)>>,
}

impl Seen {
    fn hits(&self) -> Vec<String> {
        self.hits
            .lock()
            .unwrap()
            .iter()
            .map(|h| h.1.clone())
            .collect()
    }

    fn times(&self, prefix: &str) -> Vec<Instant> {
        let hits = self.hits.lock().unwrap();
        hits.iter()
            .filter(|h| h.1.starts_with(prefix))
            .map(|h| h.0)
            .collect()
    }

    fn count(&self, prefix: &str) -> usize {
        self.hits().iter().filter(|h| h.starts_with(prefix)).count()
    }
}

struct Inflight(Arc<Seen>);

impl Drop for Inflight {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Answers `ok`; `/slow/N...` answers after N milliseconds.
async fn handle(State(seen): State<Arc<Seen>>, uri: Uri) -> &'static str {
    let now = seen.inflight.fetch_add(1, Ordering::SeqCst) + 1;
    let _guard = Inflight(seen.clone());
    seen.max_inflight.fetch_max(now, Ordering::SeqCst);
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    seen.hits
        .lock()
        .unwrap()
        .push((Instant::now(), path.clone()));
    if let Some(rest) = path.strip_prefix("/slow/") {
        let ms: u64 = rest
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    "ok"
}

async fn server() -> (String, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let app = Router::new().fallback(handle).with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), seen)
}

// ---------------------------------------------------------------------------------
// Plans and runs

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Two threads, and the HTTP client `SWARM_HTTP_CLIENT` names (the lean one unless
/// `the_engine_tests_pass_with_reqwest` runs this file again).
fn config() -> EngineConfig {
    let client = std::env::var("SWARM_HTTP_CLIENT")
        .ok()
        .and_then(|name| Implementation::from_name(&name))
        .unwrap_or_default();
    EngineConfig {
        threads: 2,
        http: HttpConfig {
            client,
            ..HttpConfig::default()
        },
    }
}

/// The stats of the request called `name`.
fn stats<'a>(plan: &CompiledPlan, snap: &'a Snapshot, name: &str) -> &'a RequestStats {
    let i = plan
        .requests
        .iter()
        .position(|r| r.name == name)
        .unwrap_or_else(|| panic!("no request named {name}"));
    &snap.requests[i]
}

/// Waits (bounded) until `cond` holds on a fresh snapshot.
async fn until(run: &RunHandle, what: &str, cond: impl Fn(&Snapshot) -> bool) -> Arc<Snapshot> {
    let mut rx = run.snapshots();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let snap = rx.borrow_and_update().clone();
        if cond(&snap) {
            return snap;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "timed out waiting for {what}");
        let _ = tokio::time::timeout(left, rx.changed()).await;
    }
}

/// Waits (bounded) until `cond` holds on the server.
async fn until_seen(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn finish(run: RunHandle) -> Arc<Snapshot> {
    tokio::time::timeout(Duration::from_secs(60), run.wait())
        .await
        .expect("the run ended in time")
        .expect("the run succeeded")
}

async fn run_to_end(plan: &Arc<CompiledPlan>) -> Arc<Snapshot> {
    finish(start(plan.clone(), config()).unwrap()).await
}

/// This file again, with `SWARM_HTTP_CLIENT=reqwest`: the engine behaves the same
/// with either client. (The nested run skips this test, so it does not recurse.)
#[test]
fn the_engine_tests_pass_with_reqwest() {
    if std::env::var_os("SWARM_HTTP_CLIENT").is_some() {
        return;
    }
    let out = common::output_within(
        std::process::Command::new(std::env::current_exe().unwrap())
            .env("SWARM_HTTP_CLIENT", "reqwest")
            .args(["--skip", "the_engine_tests_pass_with_reqwest"]),
        Duration::from_secs(600),
    );
    assert!(out.status.success(), "{}", common::describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(" 0 failed"), "{stdout}");
}

// ---------------------------------------------------------------------------------
// Closed model

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_are_spread_over_flows_by_weight() {
    let (base, seen) = server().await;
    let p = Arc::new(
        TestPlan::new()
            .target(&base)
            .closed(8, Duration::from_millis(1500))
            .flow_spec("name: a\nweight: 3\nthink: 50ms\nsteps:\n  - get: '/a?u={{ user() }}'\n    name: a")
            .flow_spec("name: b\nthink: 50ms\nsteps:\n  - get: '/b?u={{ user() }}'\n    name: b")
            .compile(),
    );
    let snap = run_to_end(&p).await;
    assert_eq!(snap.end, EndReason::Completed);
    let users = |prefix: &str| -> std::collections::BTreeSet<String> {
        seen.hits()
            .into_iter()
            .filter(|h| h.starts_with(prefix))
            .collect()
    };
    assert_eq!(users("/a").len(), 6, "{:?}", users("/a"));
    assert_eq!(users("/b").len(), 2, "{:?}", users("/b"));
    assert!(stats(&p, &snap, "a").count >= 6 && stats(&p, &snap, "b").count >= 2);
    assert_eq!(stats(&p, &snap, "a").failures, 0);
}

/// Stages of 2 s each: up to 8 users, hold, down to 0. Judged on the engine's own
/// per-second series and on the server's peak, never on when the test happened to
/// sample: a busy machine changes neither.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_follows_stages() {
    let (base, seen) = server().await;
    let p = Arc::new(
        TestPlan::new()
            .target(&base)
            .load("{ stages: [ { duration: 2s, users: 8 }, { duration: 2s, users: 8 }, { duration: 2s, users: 0 } ] }")
            .flow("- get: /slow/50")
            .compile(),
    );
    let t0 = Instant::now();
    let run = start(p.clone(), config()).unwrap();
    until_seen("8 users in flight", || {
        seen.inflight.load(Ordering::SeqCst) == 8
    })
    .await;
    // The ramp gives the 8th user at 1.75 s at the earliest; all at once would be 0 s.
    assert!(
        t0.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        t0.elapsed()
    );
    let snap = finish(run).await;
    assert_eq!(snap.end, EndReason::Completed);
    assert!(seen.max_inflight.load(Ordering::SeqCst) <= 8);
    let users: Vec<u32> = snap.series.iter().map(|p| p.users).collect();
    let peak = users.iter().position(|&u| u == 8).expect("8 users held");
    // Up: the first second has some users, not all; down: a second with some left.
    assert!((1..8).contains(&users[0]), "{users:?}");
    assert!(
        users[peak..].iter().any(|&u| (1..8).contains(&u)),
        "{users:?}"
    );
    assert_eq!(snap.active_users, 0);
    assert!(snap.requests[0].count > 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iterations_are_exact_across_users() {
    let (base, seen) = server().await;
    let p = Arc::new(
        TestPlan::new()
            .target(&base)
            .load("{ users: 7, iterations: 53 }")
            .flow("- get: /one\n  name: one\n- get: /slow/3\n  name: slow")
            .compile(),
    );
    let snap = run_to_end(&p).await;
    assert_eq!(snap.end, EndReason::IterationsDone);
    assert_eq!(snap.iterations, 53);
    assert_eq!(seen.count("/one"), 53);
    assert_eq!(seen.count("/slow/"), 53);
    assert_eq!(stats(&p, &snap, "one").count, 53);
    assert_eq!(stats(&p, &snap, "slow").count, 53);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_users_steers_the_user_count() {
    let (base, seen) = server().await;
    let p = TestPlan::new()
        .target(&base)
        .closed(2, secs(120))
        .flow("- get: /slow/20")
        .compile();
    let run = start(Arc::new(p), config()).unwrap();
    let control = run.control();
    until_seen("2 users", || seen.inflight.load(Ordering::SeqCst) == 2).await;
    control
        .send(Control::SetUsers {
            users: 6,
            spawn_rate: None,
        })
        .unwrap();
    until_seen("6 users", || seen.inflight.load(Ordering::SeqCst) == 6).await;
    let snap = until(&run, "6 active users", |s| s.active_users == 6).await;
    assert_eq!(snap.target_users, 6);
    control
        .send(Control::SetUsers {
            users: 1,
            spawn_rate: Some(100.0),
        })
        .unwrap();
    until(&run, "1 active user", |s| s.active_users == 1).await;
    until_seen("1 user in flight", || {
        seen.inflight.load(Ordering::SeqCst) <= 1
    })
    .await;
    assert!(seen.max_inflight.load(Ordering::SeqCst) <= 6);
    control.send(Control::Stop).unwrap();
    let snap = finish(run).await;
    assert_eq!(snap.end, EndReason::Stopped);
    assert_eq!(snap.active_users, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_stats_and_stop() {
    let (base, seen) = server().await;
    let p = TestPlan::new()
        .target(&base)
        .closed(2, secs(120))
        .flow("- get: /slow/5")
        .compile();
    let run = start(Arc::new(p), config()).unwrap();
    let before = until(&run, "requests in a snapshot", |s| {
        s.requests[0].count >= 20 && s.elapsed >= Duration::from_secs(2)
    })
    .await;
    assert!(!before.series.is_empty());
    run.control().send(Control::ResetStats).unwrap();
    // The reset restarts the clock and the counts: a snapshot younger than the last
    // one, holding only what came after it.
    let after = until(&run, "a snapshot after the reset", |s| {
        s.elapsed < before.elapsed && s.requests[0].count > 0
    })
    .await;
    let sent = seen.count("/slow/") as u64;
    assert!(
        after.requests[0].count + before.requests[0].count <= sent,
        "after {} + before {} > sent {sent}",
        after.requests[0].count,
        before.requests[0].count
    );
    assert!(
        after.series.len() as u64 <= after.elapsed.as_secs() + 1,
        "{:?}",
        after.series
    );
    let stopped_at = Instant::now();
    run.control().send(Control::Stop).unwrap();
    let snap = finish(run).await;
    // The run was planned for 120 s: a stop ends it long before.
    assert!(stopped_at.elapsed() < Duration::from_secs(30));
    assert_eq!(snap.end, EndReason::Stopped);
    assert_eq!(snap.requests[0].failures, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupt_abandons_stalled_requests_after_the_grace_period() {
    let (base, seen) = server().await;
    let p = TestPlan::new()
        .target(&base)
        .closed(2, secs(120))
        .flow("- get: /slow/60000")
        .compile();
    let run = start(Arc::new(p), config()).unwrap();
    until_seen("both stalled requests in flight", || {
        seen.inflight.load(Ordering::SeqCst) == 2
    })
    .await;
    let t0 = Instant::now();
    run.control().send(Control::Interrupt).unwrap();
    let snap = finish(run).await;
    let took = t0.elapsed();
    // After the grace period (5 s), long before the requests would have answered.
    assert!(
        took >= Duration::from_secs(4) && took < Duration::from_secs(40),
        "{took:?}"
    );
    assert_eq!(snap.end, EndReason::Interrupted);
    // The abandoned requests were never recorded, neither as successes nor failures.
    assert_eq!(snap.requests[0].count, 0);
}

/// A request that outlives its `timeout` fails as a timeout, not before its deadline,
/// on an engine thread (where the lean client keeps deadlines in the thread's list
/// rather than a timer per request), and its user goes on with the next request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_past_its_timeout_fails_as_a_timeout_and_its_user_goes_on() {
    let (base, seen) = server().await;
    let p = TestPlan::new()
        .target(&base)
        .closed(2, secs(120))
        .flow("- get: /slow/60000\n  timeout: 300ms")
        .compile();
    let run = start(Arc::new(p), config()).unwrap();
    // Two users, four requests: each user's first request ended, by its timeout.
    until_seen("four stalled requests", || seen.count("/slow/") >= 4).await;
    run.control().send(Control::Stop).unwrap();
    let snap = finish(run).await;
    let s = &snap.requests[0];
    assert!(s.count >= 2, "{} requests recorded", s.count);
    assert_eq!(s.failures, s.count);
    let timeout = FailureKind::Transport(TransportFailure::Timeout);
    assert_eq!(s.reasons.get(&timeout), Some(&s.count), "{:?}", s.reasons);
    // Never before the deadline (the histogram keeps 3 significant digits); the
    // upper bound only catches a timer that never fires.
    assert!(s.min_ms() >= 299.0, "fastest {} ms", s.min_ms());
    assert!(s.max_ms() < 20_000.0, "slowest {} ms", s.max_ms());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_wakes_thinking_users_and_teardown_runs_once() {
    let (base, seen) = server().await;
    let p = Arc::new(
        TestPlan::new()
            .target(&base)
            .closed(3, secs(120))
            .flow_spec(
                "name: f
think: 60s..70s
setup:
  - get: /setup
    name: setup
steps:
  - get: /step
    name: step
teardown:
  - get: /teardown
    name: teardown",
            )
            .compile(),
    );
    let run = start(p.clone(), config()).unwrap();
    until_seen("3 users stepping", || seen.count("/step") == 3).await;
    let t0 = Instant::now();
    run.control().send(Control::Stop).unwrap();
    let snap = finish(run).await;
    // The users think for a minute: only a wake-up ends the run this soon.
    assert!(t0.elapsed() < Duration::from_secs(30), "{:?}", t0.elapsed());
    assert_eq!(snap.end, EndReason::Stopped);
    assert_eq!(seen.count("/setup"), 3);
    assert_eq!(seen.count("/step"), 3);
    assert_eq!(seen.count("/teardown"), 3);
    assert_eq!(stats(&p, &snap, "teardown").count, 3);
    // Users were stopped while thinking, in the middle of their first iteration.
    assert_eq!(snap.iterations, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pace_spaces_iterations() {
    let (base, seen) = server().await;
    let p = Arc::new(
        TestPlan::new()
            .target(&base)
            .closed(1, Duration::from_millis(1800))
            .flow_spec("name: f\npace: 400ms\nsteps:\n  - get: /p")
            .compile(),
    );
    let started = Instant::now();
    let snap = run_to_end(&p).await;
    // Iteration k starts k × 400 ms after the first at the earliest, and the first
    // starts after `started`: its request cannot reach the server sooner (a slow
    // machine only makes it later). At most 5 fit in 1.8 s.
    let times = seen.times("/p");
    assert!((2..=5).contains(&times.len()), "{}", times.len());
    for (k, t) in times.iter().enumerate() {
        let at = t.duration_since(started);
        assert!(
            at >= Duration::from_millis(400) * k as u32,
            "iteration {k} at {at:?}"
        );
    }
    assert!(snap.iterations >= 2);
}

// ---------------------------------------------------------------------------------
// Feeders

fn accounts(dir: &std::path::Path) -> std::path::PathBuf {
    let csv = dir.join("accounts.csv");
    std::fs::write(&csv, "user,password\nu0,p\nu1,p\nu2,p\nu3,p\nu4,p\n").unwrap();
    csv
}

const LOGINS: [&str; 5] = [
    "/login/u0",
    "/login/u1",
    "/login/u2",
    "/login/u3",
    "/login/u4",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unique_feeder_ends_the_run_when_exhausted() {
    let (base, seen) = server().await;
    let dir = tempfile::tempdir().unwrap();
    let csv = accounts(dir.path());
    let p = Arc::new(
        TestPlan::new()
            .source(dir.path().join("plan.yaml"))
            .target(&base)
            .closed(3, secs(120))
            .data("accounts", "accounts.csv", "unique")
            .flow("- get: '/login/{{ accounts.user }}'")
            .compile(),
    );
    let snap = run_to_end(&p).await;
    assert_eq!(
        snap.end,
        EndReason::FeederExhausted {
            feeder: "accounts".into()
        }
    );
    let mut logins: Vec<String> = seen.hits();
    logins.sort();
    assert_eq!(logins, LOGINS);
    assert_eq!(snap.requests[0].count, 5);

    // A data file that vanished before the run is a run error (exit code 3).
    std::fs::remove_file(&csv).unwrap();
    let err = start(p, config()).unwrap_err();
    assert!(matches!(err, RunError::Feeder(_)), "{err}");
    assert!(err.to_string().contains("accounts.csv"), "{err}");
}

/// The same in the open model: arrivals keep coming, but each row is used once and
/// the run ends when the rows are gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unique_feeder_ends_an_open_run_when_exhausted() {
    let (base, seen) = server().await;
    let dir = tempfile::tempdir().unwrap();
    accounts(dir.path());
    let p = Arc::new(
        TestPlan::new()
            .source(dir.path().join("plan.yaml"))
            .target(&base)
            .open(50.0, 4, secs(120))
            .data("accounts", "accounts.csv", "unique")
            .flow("- get: '/login/{{ accounts.user }}'")
            .compile(),
    );
    let snap = run_to_end(&p).await;
    assert_eq!(
        snap.end,
        EndReason::FeederExhausted {
            feeder: "accounts".into()
        }
    );
    let mut logins: Vec<String> = seen.hits();
    logins.sort();
    assert_eq!(logins, LOGINS);
    assert_eq!(snap.requests[0].count, 5);
    assert_eq!(snap.total().failures, 0);
}

#[tokio::test]
async fn a_plan_without_flows_is_a_run_error() {
    let mut p = TestPlan::new().flow("- get: /").compile();
    p.flows.clear();
    assert!(matches!(
        start(Arc::new(p), config()),
        Err(RunError::NoFlows)
    ));
}

// ---------------------------------------------------------------------------------
// Open model

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_model_keeps_the_rate() {
    let (base, seen) = server().await;
    let p = Arc::new(
        TestPlan::new()
            .target(&base)
            .open(50.0, 20, secs(2))
            .flow("- get: /x")
            .compile(),
    );
    let snap = run_to_end(&p).await;
    assert_eq!(snap.end, EndReason::Completed);
    // Arrivals are scheduled exactly: 50/s for 2 s is 100.
    assert!((98..=100).contains(&snap.iterations), "{}", snap.iterations);
    assert_eq!(snap.dropped, 0);
    assert_eq!(seen.count("/x") as u64, snap.requests[0].count);
    assert_eq!(snap.target_rate, Some(50.0));
}

/// The generator's CPU figure is this process's CPU time since the run started: CPU
/// burnt before the run is not in it, CPU burnt during the run is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_generator_reports_the_cpu_used_during_the_run() {
    let cpu = || swarm::metrics::generator::process_cpu_seconds().expect("/proc/self/stat");
    // Spins this thread until the process has used `secs` more CPU seconds.
    let burn = move |secs: f64| {
        let until = cpu() + secs;
        let deadline = Instant::now() + Duration::from_secs(30);
        while cpu() < until && Instant::now() < deadline {
            std::hint::black_box((0..10_000u64).sum::<u64>());
        }
    };
    let (base, _seen) = server().await;
    let p = TestPlan::new()
        .target(&base)
        .closed(1, secs(120))
        .flow("- get: /slow/50")
        .compile();
    burn(0.5);
    let before = cpu();
    let run = start(Arc::new(p), config()).unwrap();
    tokio::task::spawn_blocking(move || burn(0.5))
        .await
        .unwrap();
    until(&run, "a snapshot after the burn", |s| {
        s.generator.cpu_seconds >= 0.4
    })
    .await;
    run.control().send(Control::Stop).unwrap();
    let snap = finish(run).await;
    let used = cpu() - before;
    let reported = snap.generator.cpu_seconds;
    // One clock tick (10 ms) of rounding either way.
    assert!(
        reported >= 0.4 && reported <= used + 0.02,
        "reported {reported} s, used {used} s since the run started"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_model_iterations_are_exact() {
    let (base, seen) = server().await;
    let p = TestPlan::new()
        .target(&base)
        .load("{ arrival_rate: 100/s, max_users: 10, duration: 120s, iterations: 25 }")
        .flow("- get: /i")
        .compile();
    let snap = run_to_end(&Arc::new(p)).await;
    assert_eq!(snap.end, EndReason::IterationsDone);
    assert_eq!(snap.iterations, 25);
    assert_eq!(seen.count("/i"), 25);
    // 25 arrivals at 100/s take 0.25 s: the run ended on its count, not its duration.
    assert!(snap.elapsed < Duration::from_secs(60));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_rate_changes_the_arrival_rate() {
    let (base, seen) = server().await;
    let p = TestPlan::new()
        .target(&base)
        // A pool of 500: at 200/s, 50 would drop arrivals whenever a busy machine
        // froze the process for a quarter of a second (seen once at a load of 12).
        .open(5.0, 500, secs(120))
        .flow("- get: /r")
        .compile();
    let run = start(Arc::new(p), config()).unwrap();
    until_seen("a few arrivals", || seen.count("/r") >= 3).await;
    run.control().send(Control::SetRate { rate: 0.0 }).unwrap();
    // The scheduler has applied the new rate, no iteration is running and the server
    // has answered everything it was sent.
    let idle = until(&run, "rate 0 with nothing running", |s| {
        s.target_rate == Some(0.0) && s.active_users == 0
    })
    .await;
    until_seen("the server idle", || {
        seen.inflight.load(Ordering::SeqCst) == 0
    })
    .await;
    let paused = seen.count("/r");
    // Then a whole snapshot interval (at 5/s, about 5 arrivals) must bring none.
    until(&run, "a second at rate 0", |s| {
        s.elapsed >= idle.elapsed + Duration::from_secs(1)
    })
    .await;
    assert_eq!(seen.count("/r"), paused, "no arrivals at rate 0");
    run.control()
        .send(Control::SetRate { rate: 200.0 })
        .unwrap();
    until_seen("the faster rate", || seen.count("/r") >= paused + 100).await;
    let snap = until(&run, "the new target rate", |s| {
        s.target_rate == Some(200.0)
    })
    .await;
    assert_eq!(snap.dropped, 0);
    run.control().send(Control::Stop).unwrap();
    assert_eq!(finish(run).await.end, EndReason::Stopped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_model_counts_dropped_arrivals_when_the_target_stalls() {
    let (base, _seen) = server().await;
    let p = TestPlan::new()
        .target(&base)
        .open(40.0, 4, secs(2))
        .flow("- get: /slow/700")
        .compile();
    let snap = run_to_end(&Arc::new(p)).await;
    assert_eq!(snap.end, EndReason::Completed);
    // 80 arrivals; at most 4 run at once and each takes 0.7 s: about 12 run (fewer on
    // a slower machine, never more).
    assert!(snap.dropped >= 55, "dropped {}", snap.dropped);
    assert_eq!(snap.dropped + snap.requests[0].count, 80);
    let series_dropped: u64 = snap.series.iter().map(|p| p.dropped).sum();
    assert_eq!(series_dropped, snap.dropped);
    assert!(snap.requests[0].percentile_ms(50.0) >= 700.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_model_caps_running_iterations_at_max_users() {
    let (base, seen) = server().await;
    // One pooled user and a target taking 300 ms: at 5/s, the arrivals that find the
    // user busy are dropped, never queued (a queue would hide waiting).
    let p = TestPlan::new()
        .target(&base)
        .open(5.0, 1, secs(2))
        .flow("- get: /slow/300")
        .compile();
    let snap = run_to_end(&Arc::new(p)).await;
    assert_eq!(snap.dropped + snap.requests[0].count, 10);
    assert!(seen.max_inflight.load(Ordering::SeqCst) <= 1);
    // Every other arrival finds the user busy (more on a slower machine): a queue
    // would drop none.
    assert!(snap.dropped >= 3, "dropped {}", snap.dropped);
    assert!(snap.requests[0].percentile_ms(50.0) >= 300.0);
}

// ---------------------------------------------------------------------------------
// A plan as a user writes it

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compiled_plan_runs_as_written() {
    let (base, seen) = server().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ids.csv"), "id\n1\n2\n3\n").unwrap();
    let p = TestPlan::new()
        .source(dir.path().join("plan.yaml"))
        .target(&base)
        .load("{ users: 4, iterations: 30 }")
        .data("ids", "ids.csv", "sequential")
        .flow_spec(
            "name: browse
weight: 3
think: 1ms..3ms
setup:
  - get: /setup
steps:
  - get: '/item/{{ ids.id }}?u={{ user() }}'
    name: item
  - think: 1ms
  - get: '/again/{{ ids.id }}?u={{ user() }}'
    name: again",
        )
        // The buyer thinks 20 ms: without a think it could take all 30 iterations
        // while a busy machine held the browsers in their setup (seen at a load of 12).
        .flow_spec("name: buy\nthink: 20ms\nsteps:\n  - get: '/buy?u={{ user() }}'\n    name: buy")
        .compile();
    let snap = run_to_end(&Arc::new(p)).await;
    assert_eq!(snap.end, EndReason::IterationsDone);
    assert_eq!(snap.iterations, 30);
    // Users 0, 1 and 3 browse (A A B A); user 2 buys.
    assert_eq!(seen.count("/setup"), 3);
    let items = seen.count("/item/");
    let buys = seen.count("/buy?u=2");
    assert_eq!(items + buys, 30);
    assert_eq!(seen.count("/buy"), buys);
    // Both requests of one iteration use one row: per user, in order, the k-th
    // `again` names the row of the k-th `item` (the rows go round, so a feeder that
    // advanced per request would pair 1 with 2).
    let mut rows: BTreeMap<String, (Vec<String>, Vec<String>)> = BTreeMap::new();
    for hit in seen.hits() {
        let Some((path, user)) = hit.split_once("?u=") else {
            continue;
        };
        let (kind, id) = path.rsplit_once('/').unwrap();
        let entry = rows.entry(user.to_string()).or_default();
        match kind {
            "/item" => entry.0.push(id.to_string()),
            "/again" => entry.1.push(id.to_string()),
            _ => {}
        }
    }
    assert_eq!(rows.len(), 4, "{rows:?}");
    for (user, (items, agains)) in &rows {
        assert_eq!(items, agains, "user {user}");
    }
    let distinct: std::collections::BTreeSet<&String> = rows.values().flat_map(|r| &r.0).collect();
    assert!(distinct.len() > 1, "the rows advance: {distinct:?}");
    assert_eq!(snap.total().failures, 0);
}
