//! The engine through its library API, against real loopback servers on port 0:
//! weight spread, concurrency following stages, exact iterations, control messages,
//! feeders, and the open model's rate and dropped arrivals. Timed assertions are
//! deliberately tolerant: this runs on shared, noisy machines.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::Uri;
use http::Method;
use swarm::compile::graph::*;
use swarm::compile::{CompileOptions, compile_str};
use swarm::engine::config::EngineConfig;
use swarm::engine::control::Control;
use swarm::engine::{RunError, RunHandle, start};
use swarm::metrics::snapshot::{EndReason, Snapshot};

// ---------------------------------------------------------------------------------
// A loopback target that counts what it sees.

#[derive(Default)]
struct Seen {
    inflight: AtomicU32,
    max_inflight: AtomicU32,
    /// Every request's path and query, in arrival order.
    hits: Mutex<Vec<String>>,
}

impl Seen {
    fn hits(&self) -> Vec<String> {
        self.hits.lock().unwrap().clone()
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
    seen.hits.lock().unwrap().push(path.clone());
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
// Plans built by hand (the graph types are public).

fn lit(s: &str) -> Template {
    Template::literal(s)
}

fn get(url: Template, request: u32) -> Step {
    Step::Call(Box::new(Call {
        request: RequestId(request),
        timeout: Duration::from_secs(30),
        expect: Expect::default(),
        captures: Vec::new(),
        feeders: Vec::new(),
        kind: CallKind::Http(HttpCall {
            method: Method::GET,
            url,
            headers: Vec::new(),
            query: Vec::new(),
            body: None,
        }),
    }))
}

fn flow(name: &str, weight: u32, steps: Vec<Step>) -> Flow {
    Flow {
        name: name.into(),
        weight,
        think: None,
        pace: None,
        setup: Vec::new(),
        steps,
        teardown: Vec::new(),
    }
}

fn plan(load: Load, flows: Vec<Flow>, requests: usize) -> Arc<CompiledPlan> {
    Arc::new(CompiledPlan {
        name: "engine test".into(),
        source: "test.yaml".into(),
        target: String::new(),
        load,
        flows,
        requests: (0..requests)
            .map(|i| RequestInfo {
                name: format!("r{i}"),
                call: CallType::Http(Method::GET),
            })
            .collect(),
        expectations: Vec::new(),
        captures: Vec::new(),
        slots: Vec::new(),
        feeders: Vec::new(),
        slos: Vec::new(),
        fingerprint: Default::default(),
    })
}

fn closed(users: u32, duration: Option<Duration>, iterations: Option<u64>) -> Load {
    Load {
        model: LoadModel::Closed(ClosedLoad::Fixed {
            users,
            spawn_rate: None,
        }),
        duration,
        iterations,
        search: None,
    }
}

fn open(rate: RateShape, max_users: u32, duration: Duration) -> Load {
    Load {
        model: LoadModel::Open(OpenLoad { rate, max_users }),
        duration: Some(duration),
        iterations: None,
        search: None,
    }
}

fn config() -> EngineConfig {
    EngineConfig {
        threads: 2,
        ..EngineConfig::default()
    }
}

/// Waits (bounded) until `cond` holds on a fresh snapshot.
async fn until(run: &RunHandle, what: &str, cond: impl Fn(&Snapshot) -> bool) -> Arc<Snapshot> {
    let mut rx = run.snapshots();
    let deadline = Instant::now() + Duration::from_secs(15);
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
    let deadline = Instant::now() + Duration::from_secs(15);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn finish(run: RunHandle) -> Arc<Snapshot> {
    tokio::time::timeout(Duration::from_secs(30), run.wait())
        .await
        .expect("the run ended in time")
        .expect("the run succeeded")
}

// ---------------------------------------------------------------------------------
// Closed model

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_are_spread_over_flows_by_weight() {
    let (base, seen) = server().await;
    let user_url = |path: &str| Template {
        segments: vec![
            Segment::Literal(format!("{base}{path}?u=")),
            Segment::Func(Func::User),
        ],
    };
    let mut a = flow("a", 3, vec![get(user_url("/a"), 0)]);
    let mut b = flow("b", 1, vec![get(user_url("/b"), 1)]);
    let think = Think {
        min: Duration::from_millis(50),
        max: Duration::from_millis(50),
    };
    a.think = Some(think);
    b.think = Some(think);
    let p = plan(
        closed(8, Some(Duration::from_millis(1500)), None),
        vec![a, b],
        2,
    );
    let snap = finish(start(p, config()).unwrap()).await;
    assert_eq!(snap.end, EndReason::Completed);
    let users = |prefix: &str| -> BTreeSet<String> {
        seen.hits()
            .into_iter()
            .filter(|h| h.starts_with(prefix))
            .collect()
    };
    assert_eq!(users("/a").len(), 6, "{:?}", users("/a"));
    assert_eq!(users("/b").len(), 2, "{:?}", users("/b"));
    assert!(snap.requests[0].count >= 6 && snap.requests[1].count >= 2);
    assert_eq!(snap.requests[0].failures, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_follows_stages() {
    let (base, seen) = server().await;
    let f = flow("f", 1, vec![get(lit(&format!("{base}/slow/50")), 0)]);
    let stage = |secs, users| UsersStage {
        duration: Duration::from_secs(secs),
        users,
    };
    let load = Load {
        model: LoadModel::Closed(ClosedLoad::Stages(vec![
            stage(2, 8),
            stage(2, 8),
            stage(2, 0),
        ])),
        duration: None,
        iterations: None,
        search: None,
    };
    let run = start(plan(load, vec![f], 1), config()).unwrap();
    let t0 = Instant::now();
    // Sample what the server sees (each user has at most one request in flight).
    let mut samples = Vec::new();
    while t0.elapsed() < Duration::from_millis(6400) {
        samples.push((t0.elapsed(), seen.inflight.load(Ordering::SeqCst)));
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let snap = finish(run).await;
    assert_eq!(snap.end, EndReason::Completed);
    let window = |from: u64, to: u64| -> Vec<u32> {
        samples
            .iter()
            .filter(|(t, _)| *t >= Duration::from_millis(from) && *t < Duration::from_millis(to))
            .map(|(_, n)| *n)
            .collect()
    };
    let max = |v: Vec<u32>| v.into_iter().max().unwrap_or(0);
    assert!(seen.max_inflight.load(Ordering::SeqCst) <= 8);
    // Ramping up: a few users early on, never the whole crowd.
    assert!(max(window(0, 400)) <= 4, "{samples:?}");
    // Holding: all 8 users are in flight at some point.
    assert_eq!(max(window(2400, 3800)), 8, "{samples:?}");
    // Ramping down, then gone.
    assert!(max(window(5000, 5600)) <= 5, "{samples:?}");
    assert!(max(window(6200, 6400)) <= 1, "{samples:?}");
    assert!(snap.requests[0].count > 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iterations_are_exact_across_users() {
    let (base, seen) = server().await;
    let f = flow(
        "f",
        1,
        vec![
            get(lit(&format!("{base}/one")), 0),
            get(lit(&format!("{base}/slow/3")), 1),
        ],
    );
    let p = plan(closed(7, None, Some(53)), vec![f], 2);
    let snap = finish(start(p, config()).unwrap()).await;
    assert_eq!(snap.end, EndReason::IterationsDone);
    assert_eq!(snap.iterations, 53);
    assert_eq!(seen.count("/one"), 53);
    assert_eq!(seen.count("/slow/"), 53);
    assert_eq!(snap.requests[0].count, 53);
    assert_eq!(snap.requests[1].count, 53);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_users_steers_the_user_count() {
    let (base, seen) = server().await;
    let f = flow("f", 1, vec![get(lit(&format!("{base}/slow/20")), 0)]);
    let run = start(
        plan(closed(2, Some(Duration::from_secs(60)), None), vec![f], 1),
        config(),
    )
    .unwrap();
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
    assert!(seen.inflight.load(Ordering::SeqCst) <= 1);
    assert!(seen.max_inflight.load(Ordering::SeqCst) <= 6);
    control.send(Control::Stop).unwrap();
    let snap = finish(run).await;
    assert_eq!(snap.end, EndReason::Stopped);
    assert_eq!(snap.active_users, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_stats_and_stop() {
    let (base, _seen) = server().await;
    let f = flow("f", 1, vec![get(lit(&format!("{base}/slow/5")), 0)]);
    let run = start(
        plan(closed(2, Some(Duration::from_secs(60)), None), vec![f], 1),
        config(),
    )
    .unwrap();
    let before = until(&run, "requests in a snapshot", |s| {
        s.requests[0].count >= 20 && s.elapsed >= Duration::from_secs(2)
    })
    .await;
    assert!(!before.series.is_empty());
    run.control().send(Control::ResetStats).unwrap();
    let after = until(&run, "a snapshot after the reset", |s| {
        s.elapsed < Duration::from_millis(1500) && s.requests[0].count > 0
    })
    .await;
    assert!(after.requests[0].count < before.requests[0].count);
    assert!(after.series.len() <= 2, "{:?}", after.series);
    let stopped_at = Instant::now();
    run.control().send(Control::Stop).unwrap();
    let snap = finish(run).await;
    assert!(stopped_at.elapsed() < Duration::from_secs(3));
    assert_eq!(snap.end, EndReason::Stopped);
    assert!(snap.elapsed < before.elapsed + Duration::from_secs(3));
    assert_eq!(snap.requests[0].failures, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupt_abandons_stalled_requests_after_the_grace_period() {
    let (base, seen) = server().await;
    let f = flow("f", 1, vec![get(lit(&format!("{base}/slow/60000")), 0)]);
    let run = start(
        plan(closed(2, Some(Duration::from_secs(60)), None), vec![f], 1),
        config(),
    )
    .unwrap();
    until_seen("both stalled requests in flight", || {
        seen.inflight.load(Ordering::SeqCst) == 2
    })
    .await;
    let t0 = Instant::now();
    run.control().send(Control::Interrupt).unwrap();
    let snap = finish(run).await;
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_secs(4) && took < Duration::from_secs(9),
        "{took:?}"
    );
    assert_eq!(snap.end, EndReason::Interrupted);
    // The abandoned requests were never recorded, neither as successes nor failures.
    assert_eq!(snap.requests[0].count, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_wakes_thinking_users_and_teardown_runs_once() {
    let (base, seen) = server().await;
    let mut f = flow("f", 1, vec![get(lit(&format!("{base}/step")), 1)]);
    f.setup = vec![get(lit(&format!("{base}/setup")), 0)];
    f.teardown = vec![get(lit(&format!("{base}/teardown")), 2)];
    f.think = Some(Think {
        min: Duration::from_secs(30),
        max: Duration::from_secs(40),
    });
    let run = start(
        plan(closed(3, Some(Duration::from_secs(60)), None), vec![f], 3),
        config(),
    )
    .unwrap();
    until_seen("3 users stepping", || seen.count("/step") == 3).await;
    let t0 = Instant::now();
    run.control().send(Control::Stop).unwrap();
    let snap = finish(run).await;
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    assert_eq!(snap.end, EndReason::Stopped);
    assert_eq!(seen.count("/setup"), 3);
    assert_eq!(seen.count("/step"), 3);
    assert_eq!(seen.count("/teardown"), 3);
    assert_eq!(snap.requests[2].count, 3);
    // Users were stopped while thinking, in the middle of their first iteration.
    assert_eq!(snap.iterations, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pace_spaces_iterations() {
    let (base, seen) = server().await;
    let mut f = flow("f", 1, vec![get(lit(&format!("{base}/p")), 0)]);
    f.pace = Some(Duration::from_millis(400));
    let p = plan(
        closed(1, Some(Duration::from_millis(1800)), None),
        vec![f],
        1,
    );
    let snap = finish(start(p, config()).unwrap()).await;
    // Iterations start at 0, 0.4, 0.8, 1.2 and 1.6 s.
    let n = seen.count("/p");
    assert!((4..=5).contains(&n), "{n}");
    assert!(snap.iterations >= 4);
}

// ---------------------------------------------------------------------------------
// Feeders

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unique_feeder_ends_the_run_when_exhausted() {
    let (base, seen) = server().await;
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("accounts.csv");
    std::fs::write(&csv, "user,password\nu0,p\nu1,p\nu2,p\nu3,p\nu4,p\n").unwrap();
    let Step::Call(mut step) = get(
        Template {
            segments: vec![
                Segment::Literal(format!("{base}/login/")),
                Segment::Feeder {
                    feeder: FeederId(0),
                    column: 0,
                },
            ],
        },
        0,
    ) else {
        unreachable!()
    };
    step.feeders = vec![FeederId(0)];
    let f = flow("f", 1, vec![Step::Call(step)]);
    let mut p = plan(closed(3, Some(Duration::from_secs(60)), None), vec![f], 1);
    Arc::get_mut(&mut p).unwrap().feeders = vec![Feeder {
        name: "accounts".into(),
        path: csv.clone(),
        columns: vec!["user".into(), "password".into()],
        pick: Pick::Unique,
    }];
    let snap = finish(start(p.clone(), config()).unwrap()).await;
    assert_eq!(
        snap.end,
        EndReason::FeederExhausted {
            feeder: "accounts".into()
        }
    );
    let mut logins: Vec<String> = seen.hits();
    logins.sort();
    assert_eq!(
        logins,
        [
            "/login/u0",
            "/login/u1",
            "/login/u2",
            "/login/u3",
            "/login/u4"
        ]
    );
    assert_eq!(snap.requests[0].count, 5);

    // A data file that vanished before the run is a run error (exit code 3).
    std::fs::remove_file(&csv).unwrap();
    let err = start(p, config()).unwrap_err();
    assert!(matches!(err, RunError::Feeder(_)), "{err}");
    assert!(err.to_string().contains("accounts.csv"), "{err}");
}

#[tokio::test]
async fn a_plan_without_flows_is_a_run_error() {
    let p = plan(closed(1, Some(Duration::from_secs(1)), None), Vec::new(), 0);
    assert!(matches!(start(p, config()), Err(RunError::NoFlows)));
}

// ---------------------------------------------------------------------------------
// Open model

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_model_keeps_the_rate() {
    let (base, seen) = server().await;
    let f = flow("f", 1, vec![get(lit(&format!("{base}/x")), 0)]);
    let p = plan(
        open(RateShape::Fixed(50.0), 20, Duration::from_secs(2)),
        vec![f],
        1,
    );
    let snap = finish(start(p, config()).unwrap()).await;
    assert_eq!(snap.end, EndReason::Completed);
    // Arrivals are scheduled exactly: 50/s for 2 s is 100.
    assert!((98..=100).contains(&snap.iterations), "{}", snap.iterations);
    assert_eq!(snap.dropped, 0);
    assert_eq!(seen.count("/x") as u64, snap.requests[0].count);
    assert_eq!(snap.target_rate, Some(50.0));
    // The generator watched itself.
    assert!(snap.generator.cpu_seconds > 0.0);
    assert!(snap.generator.lag_max_ms > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_model_iterations_are_exact() {
    let (base, seen) = server().await;
    let f = flow("f", 1, vec![get(lit(&format!("{base}/i")), 0)]);
    let mut load = open(RateShape::Fixed(100.0), 10, Duration::from_secs(60));
    load.iterations = Some(25);
    let snap = finish(start(plan(load, vec![f], 1), config()).unwrap()).await;
    assert_eq!(snap.end, EndReason::IterationsDone);
    assert_eq!(snap.iterations, 25);
    assert_eq!(seen.count("/i"), 25);
    assert!(snap.elapsed < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_rate_changes_the_arrival_rate() {
    let (base, seen) = server().await;
    let f = flow("f", 1, vec![get(lit(&format!("{base}/r")), 0)]);
    let p = plan(
        open(RateShape::Fixed(5.0), 50, Duration::from_secs(60)),
        vec![f],
        1,
    );
    let run = start(p, config()).unwrap();
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
    let f = flow("f", 1, vec![get(lit(&format!("{base}/slow/700")), 0)]);
    let p = plan(
        open(RateShape::Fixed(40.0), 4, Duration::from_secs(2)),
        vec![f],
        1,
    );
    let snap = finish(start(p, config()).unwrap()).await;
    assert_eq!(snap.end, EndReason::Completed);
    // 80 arrivals; at most 4 run at once and each takes 0.7 s: about 12 run.
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
    let f = flow("f", 1, vec![get(lit(&format!("{base}/slow/300")), 0)]);
    let p = plan(
        open(RateShape::Fixed(5.0), 1, Duration::from_secs(2)),
        vec![f],
        1,
    );
    let snap = finish(start(p, config()).unwrap()).await;
    assert_eq!(snap.dropped + snap.requests[0].count, 10);
    assert!(seen.max_inflight.load(Ordering::SeqCst) <= 1);
    let p50 = snap.requests[0].percentile_ms(50.0);
    assert!((300.0..400.0).contains(&p50), "{p50}");
}

// ---------------------------------------------------------------------------------
// A plan as a user writes it, through the compiler

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compiled_plan_runs_as_written() {
    let (base, seen) = server().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ids.csv"), "id\n1\n2\n3\n").unwrap();
    let yaml = format!(
        r#"
name: compiled
target: {base}
data:
  ids: {{ csv: ids.csv, pick: sequential }}
load: {{ users: 4, iterations: 30 }}
flows:
  - name: browse
    weight: 3
    think: 1ms..3ms
    setup:
      - get: /setup
    steps:
      - get: /item/{{{{ ids.id }}}}
        name: item
      - think: 1ms
      - get: /again/{{{{ ids.id }}}}
        name: again
  - name: buy
    steps:
      - get: /buy?u={{{{ user() }}}}
        name: buy
"#
    );
    let path = dir.path().join("plan.yaml");
    let plan = compile_str(&yaml, &path, &CompileOptions::default()).unwrap();
    let snap = finish(start(Arc::new(plan), config()).unwrap()).await;
    assert_eq!(snap.end, EndReason::IterationsDone);
    assert_eq!(snap.iterations, 30);
    // Users 0, 1 and 3 browse (A A B A); user 2 buys.
    assert_eq!(seen.count("/setup"), 3);
    let items = seen.count("/item/");
    let buys = seen.count("/buy?u=2");
    assert_eq!(items + buys, 30);
    assert_eq!(seen.count("/buy"), buys);
    // Both requests of an iteration see the same row.
    let hits = seen.hits();
    let items: Vec<&String> = hits.iter().filter(|h| h.starts_with("/item/")).collect();
    let agains: Vec<&String> = hits.iter().filter(|h| h.starts_with("/again/")).collect();
    assert_eq!(items.len(), agains.len());
    let ids = |v: &[&String]| -> Vec<String> {
        let mut ids: Vec<String> = v
            .iter()
            .map(|h| h.rsplit('/').next().unwrap().into())
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(&items), ids(&agains));
    assert_eq!(snap.total().failures, 0);
}
