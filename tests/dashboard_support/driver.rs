//! A small load driver for the dashboard tests: real HTTP users against the demo
//! target, steered by `Control` messages and publishing `Snapshot`s the way the engine
//! does (a watch channel, about every half second, and a final snapshot). It keeps the
//! dashboard's tests independent of the engine's scheduling details.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use swarm::engine::control::Control;
use swarm::metrics::snapshot::{EndReason, SeriesPoint, Snapshot};
use swarm::metrics::stats::RequestStats;
use tokio::sync::{mpsc, oneshot, watch};

pub struct Driver {
    pub snapshots: watch::Receiver<Arc<Snapshot>>,
    pub control: mpsc::UnboundedSender<Control>,
    pub done: oneshot::Receiver<Arc<Snapshot>>,
}

type Shared = Arc<Mutex<Vec<RequestStats>>>;

/// Starts `users` users that request `GET /products?page=N` (request 0) and
/// `GET /health` (request 1) against `base` until `duration` elapses or a stop.
pub fn start(base: String, users: u32, duration: Duration) -> Driver {
    let (snap_tx, snap_rx) = watch::channel(Arc::new(Snapshot::empty(2, Some(duration))));
    let (control_tx, mut control_rx) = mpsc::unbounded_channel();
    let (done_tx, done_rx) = oneshot::channel();
    tokio::spawn(async move {
        let stats: Shared = Arc::new(Mutex::new(vec![RequestStats::default(); 2]));
        let http = super::client();
        let mut pool: Vec<Arc<AtomicBool>> = Vec::new();
        let resize = |pool: &mut Vec<Arc<AtomicBool>>, n: u32| {
            while pool.len() > n as usize {
                if let Some(stop) = pool.pop() {
                    stop.store(true, Ordering::Relaxed);
                }
            }
            while pool.len() < n as usize {
                let stop = Arc::new(AtomicBool::new(false));
                tokio::spawn(user(
                    http.clone(),
                    base.clone(),
                    stats.clone(),
                    stop.clone(),
                ));
                pool.push(stop);
            }
        };
        resize(&mut pool, users);
        let mut target = users;
        let mut started = Instant::now();
        let mut series: Vec<SeriesPoint> = Vec::new();
        let mut last_counts = (0u64, 0u64);
        let mut interval = RequestStats::default();
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let end = loop {
            tokio::select! {
                _ = tick.tick() => {
                    if started.elapsed() >= duration {
                        break EndReason::Completed;
                    }
                }
                msg = control_rx.recv() => match msg {
                    Some(Control::SetUsers { users, .. }) => {
                        target = users;
                        resize(&mut pool, users);
                    }
                    Some(Control::Stop) | None => break EndReason::Stopped,
                    Some(Control::Interrupt) => break EndReason::Interrupted,
                    Some(Control::ResetStats) => {
                        stats.lock().unwrap().iter_mut().for_each(RequestStats::reset);
                        series.clear();
                        last_counts = (0, 0);
                        started = Instant::now();
                        continue;
                    }
                    Some(Control::SetRate { .. }) => continue,
                }
            }
            let requests = stats.lock().unwrap().clone();
            let mut total = RequestStats::default();
            requests.iter().for_each(|r| total.merge(r));
            interval.reset();
            // The interval's latencies are approximated by the whole run's: enough
            // for charts in a test.
            interval.merge(&total);
            let elapsed = started.elapsed();
            series.push(SeriesPoint {
                t: elapsed.as_secs_f64(),
                width: 0.5,
                requests: total.count - last_counts.0,
                failures: total.failures - last_counts.1,
                p50_ms: interval.percentile_ms(50.0),
                p95_ms: interval.percentile_ms(95.0),
                p99_ms: interval.percentile_ms(99.0),
                users: pool.len() as u32,
                dropped: 0,
            });
            last_counts = (total.count, total.failures);
            snap_tx.send_replace(Arc::new(snapshot(
                requests,
                elapsed,
                duration,
                pool.len() as u32,
                target,
                &series,
                EndReason::Running,
            )));
        };
        resize(&mut pool, 0);
        let requests = stats.lock().unwrap().clone();
        let last = Arc::new(snapshot(
            requests,
            started.elapsed(),
            duration,
            0,
            target,
            &series,
            end,
        ));
        snap_tx.send_replace(last.clone());
        let _ = done_tx.send(last);
    });
    Driver {
        snapshots: snap_rx,
        control: control_tx,
        done: done_rx,
    }
}

fn snapshot(
    requests: Vec<RequestStats>,
    elapsed: Duration,
    planned: Duration,
    active: u32,
    target: u32,
    series: &[SeriesPoint],
    end: EndReason,
) -> Snapshot {
    let mut s = Snapshot::empty(0, Some(planned));
    s.requests = requests;
    s.elapsed = elapsed;
    s.active_users = active;
    s.target_users = target;
    s.series = series.to_vec();
    s.end = end;
    s
}

async fn user(http: reqwest::Client, base: String, stats: Shared, stop: Arc<AtomicBool>) {
    let mut page = 0u64;
    for _ in 0..1_000_000u32 {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        page = page % 5 + 1;
        for (id, url) in [
            (0usize, format!("{base}/products?page={page}")),
            (1, format!("{base}/health")),
        ] {
            let t = Instant::now();
            let result = http.get(&url).send().await;
            let (bytes, outcome) = match result {
                Ok(r) if r.status().is_success() => {
                    (r.bytes().await.map(|b| b.len() as u64).unwrap_or(0), Ok(()))
                }
                Ok(r) => (
                    0,
                    Err(swarm::metrics::failure::FailureKind::Status(
                        r.status().as_u16(),
                    )),
                ),
                Err(_) => (0, Err(swarm::metrics::failure::FailureKind::Refused)),
            };
            stats.lock().unwrap()[id].record(t.elapsed(), bytes, outcome);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
