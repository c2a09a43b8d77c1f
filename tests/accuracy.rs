//! Measurement accuracy, proven against loopback targets with known behaviour: a
//! fixed delay, exact arrival rates, a ramp, a stall (coordinated omission), exact
//! iteration counts, and percentiles checked against an exact computation.
//!
//! The plans are built as execution graphs directly, so these tests depend on the
//! engine alone. The long scenarios (10 s each) run concurrently inside one test, and
//! every load is small: they prove timing, so they must not compete for the CPU. For
//! the same reason the tests of this file take turns (`serial`).

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use http::Method;
use swarm::compile::graph::*;
use swarm::engine::config::EngineConfig;
use swarm::metrics::snapshot::Snapshot;
use swarm::metrics::stats::RequestStats;

/// The tests take turns: run in parallel, they would compete for the CPU and measure
/// each other (a 50 ms delay must show a p50 of at most 52 ms). A tokio mutex, so the
/// async tests can hold the guard across their awaits; it is never poisoned.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    TURN.lock().await
}

/// A loopback target: counts requests and applies `behaviour` before answering.
struct Target {
    addr: SocketAddr,
    requests: Arc<AtomicU64>,
}

type Behaviour = Arc<dyn Fn(Instant) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

async fn target(behaviour: Behaviour) -> Target {
    let requests = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&requests);
    let app = Router::new().route(
        "/",
        get(move || {
            let counter = Arc::clone(&counter);
            let behaviour = Arc::clone(&behaviour);
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                behaviour(Instant::now()).await;
                r#"{"status":"ok"}"#
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Target { addr, requests }
}

/// Waits until `until`, to the microsecond: tokio's timer only has millisecond
/// resolution (and rounds up), so the last millisecond is spent yielding.
async fn exactly(until: Instant) {
    if let Some(early) = until.checked_sub(Duration::from_millis(2)) {
        tokio::time::sleep_until(early.into()).await;
    }
    while Instant::now() < until {
        tokio::task::yield_now().await;
    }
}

fn immediate() -> Behaviour {
    Arc::new(|_| Box::pin(async {}))
}

fn plan(target: &Target, load: Load) -> CompiledPlan {
    let url = format!("http://{}/", target.addr);
    CompiledPlan {
        name: "accuracy".into(),
        source: PathBuf::from("accuracy.yaml"),
        target: url.clone(),
        load,
        flows: vec![Flow {
            name: "f".into(),
            weight: 1,
            think: None,
            pace: None,
            setup: Vec::new(),
            steps: vec![Step::Call(Box::new(Call {
                request: RequestId(0),
                kind: CallKind::Http(HttpCall {
                    method: Method::GET,
                    url: Template::literal(url),
                    headers: Vec::new(),
                    query: Vec::new(),
                    body: None,
                }),
                timeout: Duration::from_secs(30),
                expect: Expect {
                    status: Some(StatusExpect {
                        id: ExpectId(0),
                        allowed: vec![StatusPattern::Exact(200)],
                    }),
                    ..Expect::default()
                },
                captures: Vec::new(),
                feeders: Vec::new(),
            }))],
            teardown: Vec::new(),
        }],
        requests: vec![RequestInfo {
            name: "GET /".into(),
            call: CallType::Http(Method::GET),
        }],
        expectations: vec![ExpectInfo {
            request: RequestId(0),
            description: "status 200".into(),
        }],
        captures: Vec::new(),
        slots: Vec::new(),
        feeders: Vec::new(),
        slos: Vec::new(),
        fingerprint: Default::default(),
    }
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

fn open(rate: RateShape, max_users: u32, duration: Option<Duration>) -> Load {
    Load {
        model: LoadModel::Open(OpenLoad { rate, max_users }),
        duration,
        iterations: None,
        search: None,
    }
}

/// Runs a plan to its end on one thread and returns the final snapshot.
async fn run(plan: CompiledPlan) -> Arc<Snapshot> {
    let config = EngineConfig {
        threads: 1,
        ..EngineConfig::default()
    };
    let handle = swarm::engine::start(Arc::new(plan), config).expect("the run starts");
    tokio::time::timeout(Duration::from_secs(60), handle.wait())
        .await
        .expect("the run ends within 60 s")
        .expect("the run completes")
}

fn ms(stats: &RequestStats, p: f64) -> f64 {
    stats.percentile_ms(p)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_fixed_delay_is_measured_as_it_is() {
    let _turn = serial().await;
    let delay: Behaviour =
        Arc::new(|arrived| Box::pin(exactly(arrived + Duration::from_millis(50))));
    let target = target(delay).await;
    let snap = run(plan(&target, closed(5, Some(Duration::from_secs(3)), None))).await;
    let total = snap.total();
    assert!(total.count >= 100, "too few requests: {}", total.count);
    assert_eq!(total.failures, 0, "{:?}", total.reasons);
    let (p50, p99) = (ms(&total, 50.0), ms(&total, 99.0));
    assert!((50.0..=52.0).contains(&p50), "p50 = {p50} ms");
    assert!((50.0..=100.0).contains(&p99), "p99 = {p99} ms");
    assert!(total.min_ms() >= 50.0, "min = {} ms", total.min_ms());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn iterations_run_exactly_n_across_users() {
    let _turn = serial().await;
    let target = target(immediate()).await;
    let snap = run(plan(
        &target,
        closed(7, Some(Duration::from_secs(30)), Some(1000)),
    ))
    .await;
    assert_eq!(snap.iterations, 1000);
    assert_eq!(snap.total().count, 1000);
    assert_eq!(target.requests.load(Ordering::SeqCst), 1000);
}

/// The three 10-second scenarios, run at once; every failure is reported together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rates_ramps_and_stalls_are_honoured() {
    let _turn = serial().await;
    let results = tokio::join!(
        tokio::spawn(fixed_rate()),
        tokio::spawn(ramp()),
        tokio::spawn(coordinated_omission()),
    );
    let failures: Vec<String> = [results.0, results.1, results.2]
        .into_iter()
        .filter_map(|r| match r {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e),
            Err(e) => Some(format!("panicked: {e}")),
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// 200/s for 10 s: 2,000 iterations ± 1%.
async fn fixed_rate() -> Result<(), String> {
    let target = target(immediate()).await;
    let load = open(RateShape::Fixed(200.0), 100, Some(Duration::from_secs(10)));
    let snap = run(plan(&target, load)).await;
    let n = snap.iterations;
    if !(1980..=2020).contains(&n) || snap.dropped != 0 {
        return Err(format!(
            "200/s for 10 s: {n} iterations, {} dropped (want 2000 ± 1%, 0)",
            snap.dropped
        ));
    }
    Ok(())
}

/// A ramp from 0 to 100/s over 10 s: 500 iterations ± 2%.
async fn ramp() -> Result<(), String> {
    let target = target(immediate()).await;
    let stages = RateShape::Stages(vec![RateStage {
        duration: Duration::from_secs(10),
        rate: 100.0,
    }]);
    let snap = run(plan(&target, open(stages, 100, None))).await;
    let n = snap.iterations;
    if !(490..=510).contains(&n) {
        return Err(format!(
            "ramp 0 → 100/s over 10 s: {n} iterations (want 500 ± 2%)"
        ));
    }
    Ok(())
}

/// wrk2's test: 100/s for 10 s; 3 s in, the target stalls for 2 s. With at most 50
/// iterations running, the first 50 arrivals of the stall wait it out (each recorded
/// with its full wait, from its scheduled start) and the other 150 are dropped.
async fn coordinated_omission() -> Result<(), String> {
    let first = Arc::new(OnceLock::<Instant>::new());
    let stall: Behaviour = Arc::new(move |now| {
        let t0 = *first.get_or_init(|| now);
        let (from, to) = (t0 + Duration::from_secs(3), t0 + Duration::from_secs(5));
        Box::pin(async move {
            if now >= from && now < to {
                tokio::time::sleep_until(to.into()).await;
            }
        })
    });
    let target = target(stall).await;
    let load = open(RateShape::Fixed(100.0), 50, Some(Duration::from_secs(10)));
    let snap = run(plan(&target, load)).await;
    let total = snap.total();
    let p99 = ms(&total, 99.0);
    let mut problems = Vec::new();
    if p99 < 1500.0 {
        problems.push(format!("p99 = {p99} ms (want >= 1500)"));
    }
    if !(140..=160).contains(&snap.dropped) {
        problems.push(format!("{} dropped (want 150 ± 10)", snap.dropped));
    }
    let seen = snap.iterations + snap.dropped;
    if !(990..=1010).contains(&seen) {
        problems.push(format!("{seen} arrivals (want 1000 ± 1%)"));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("coordinated omission: {}", problems.join(", ")))
    }
}

/// The percentiles the reports show agree with an exact computation over the recorded
/// samples, to HDR's precision (3 significant digits), after the per-thread merge.
#[test]
fn percentiles_agree_with_an_exact_computation() {
    let _turn = TURN.blocking_lock();
    // A deterministic spread from 100 µs to about 3 s, in several "threads".
    let mut samples: Vec<u64> = Vec::new();
    let mut threads = vec![RequestStats::default(); 3];
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for i in 0..30_000u64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let us = 100 + (x % 1_000) * (1 + (x >> 20) % 3_000);
        samples.push(us);
        threads[(i % 3) as usize].record(Duration::from_micros(us), 0, Ok(()));
    }
    let mut merged = RequestStats::default();
    for t in &threads {
        merged.merge(t);
    }
    let snapshot = Snapshot {
        requests: vec![merged],
        ..Snapshot::empty(1, None)
    };
    let total = snapshot.total();
    samples.sort_unstable();
    for p in [1.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9, 100.0] {
        let rank = ((p / 100.0 * samples.len() as f64).ceil() as usize).max(1);
        let exact_ms = samples[rank - 1] as f64 / 1000.0;
        let reported = total.percentile_ms(p);
        let error = (reported - exact_ms).abs() / exact_ms;
        assert!(
            error <= 1e-3,
            "p{p}: reported {reported} ms, exact {exact_ms} ms ({:.4}% off)",
            error * 100.0
        );
    }
    assert_eq!(total.count, 30_000);
    let exact_max = *samples.last().unwrap() as f64 / 1000.0;
    assert!((total.max_ms() - exact_max).abs() / exact_max <= 1e-3);
}
