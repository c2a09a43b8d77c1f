//! The coordinator's merging, driven by many simulated workers over the real protocol
//! on loopback: a second is published only once every worker's unit for it is in, so
//! no snapshot (the dashboard's points) and no final series holds a partial second,
//! and a unit that comes seconds late still lands in its own second.
//!
//! Nothing here depends on the machine's speed: the late unit is held back until the
//! coordinator has visibly published the seconds after it (its snapshots say so).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use super::OnLoss;
use super::coordinator::{Coordinator, CoordinatorConfig, PlanSource};
use super::proto::{self, Cmd, Down, Event, PATH, Up};
use crate::compile::CompileOptions;
use crate::metrics::delta::Delta;
use crate::metrics::snapshot::Snapshot;
use crate::metrics::wire;

const WORKERS: usize = 40;
const SECONDS: u64 = 8;
/// Requests in each worker's unit of each second.
const PER_UNIT: u64 = 7;
/// The worker whose unit for [`LATE_SECOND`] comes late.
const SLOW: usize = 0;
const LATE_SECOND: u64 = 2;

fn unit(second: u64) -> Vec<u8> {
    let mut d = Delta::new(1);
    d.second = second;
    d.active = 1;
    for k in 0..PER_UNIT {
        d.requests[0].record(Duration::from_micros(900 + k * 1_111), 10, Ok(()));
    }
    wire::encode(&d)
}

fn unit_msg(run: proto::RunId, second: u64, through: u64) -> Message {
    let up = Up::Unit {
        run,
        unit: unit(second),
        through,
    };
    Message::Binary(proto::encode(&up).into())
}

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

async fn next_down(ws: &mut Ws) -> Down {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Binary(b)))) => return proto::decode(&b).unwrap(),
            Ok(Some(Ok(_))) => continue,
            other => panic!("no message from the coordinator: {other:?}"),
        }
    }
}

/// One simulated worker: joins, then sends a unit for each second of the run on
/// that second, except the slow one's unit for [`LATE_SECOND`], which it sends once
/// the coordinator's snapshots are 3 s past it (well after the old cut-off).
async fn worker(
    addr: String,
    index: usize,
    snaps: watch::Receiver<Option<watch::Receiver<Arc<Snapshot>>>>,
) {
    let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}{PATH}"), tcp)
        .await
        .unwrap();
    let hello = Up::Hello {
        name: format!("sim-{index}"),
        version: "test".into(),
        threads: 1,
    };
    ws.send(Message::Binary(proto::encode(&hello).into()))
        .await
        .unwrap();
    let Down::Plan(plan) = next_down(&mut ws).await else {
        panic!("no plan")
    };
    let (run, thread) = (plan.run, plan.first);
    let ready = Up::Ready {
        run,
        fingerprint: plan.fingerprint,
    };
    ws.send(Message::Binary(proto::encode(&ready).into()))
        .await
        .unwrap();
    let Down::Start { in_ms, .. } = next_down(&mut ws).await else {
        panic!("no start")
    };
    let origin = tokio::time::Instant::now() + Duration::from_millis(in_ms);
    let (mut tx, mut rx) = ws.split();
    // Commands and pings are read (tungstenite answers the pings) until the stop.
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let mut stop = Some(stop_tx);
        while let Some(Ok(m)) = rx.next().await {
            if let Message::Binary(b) = m
                && let Ok(Down::Cmd { cmd: Cmd::Stop, .. }) = proto::decode::<Down>(&b)
                && let Some(s) = stop.take()
            {
                let _ = s.send(());
            }
        }
    });
    let mut through = 0;
    for s in 1..=SECONDS {
        tokio::time::sleep_until(origin + Duration::from_secs(s)).await;
        if index == SLOW && s == LATE_SECOND {
            continue;
        }
        if index != SLOW || s < LATE_SECOND {
            through = s;
        }
        tx.send(unit_msg(run, s, through)).await.unwrap();
        if index == SLOW && s == LATE_SECOND + 3 {
            // Held back until the coordinator's run is visibly past it.
            let mut snaps = snaps.clone();
            let mut run_snaps = snaps.wait_for(Option::is_some).await.unwrap().clone();
            let run_snaps = run_snaps.as_mut().unwrap();
            let past = Duration::from_secs(LATE_SECOND + 3) + Duration::from_millis(500);
            tokio::time::timeout(
                Duration::from_secs(60),
                run_snaps.wait_for(|snap| snap.elapsed >= past),
            )
            .await
            .expect("the coordinator publishes every second")
            .unwrap();
            through = s;
            tx.send(unit_msg(run, LATE_SECOND, through)).await.unwrap();
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(30), &mut stop_rx).await;
    let stopping = Up::Event {
        run,
        thread,
        event: Event::Stopping { active: 0 },
    };
    let _ = tx
        .send(Message::Binary(proto::encode(&stopping).into()))
        .await;
    let _ = tx
        .send(Message::Binary(proto::encode(&Up::Done { run }).into()))
        .await;
    let _ = tx.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_is_merged_once_every_workers_unit_is_in_however_late() {
    let plan = Arc::new(
        crate::testing::TestPlan::new()
            .closed(1, Duration::from_secs(SECONDS))
            .flow("- get: /a\n  name: a")
            .compile(),
    );
    let config = CoordinatorConfig {
        addr: "127.0.0.1:0".into(),
        workers: WORKERS,
        token: None,
        timeout: Duration::from_secs(60),
        on_loss: OnLoss::Fail,
        tls: None,
        insecure: false,
    };
    let coordinator = Coordinator::bind(config).await.unwrap();
    let addr = coordinator.local_addr().to_string();
    let (snaps_tx, snaps_rx) = watch::channel(None);
    let workers: Vec<_> = (0..WORKERS)
        .map(|i| tokio::spawn(worker(addr.clone(), i, snaps_rx.clone())))
        .collect();
    let source = PlanSource::for_test("test.yaml", "", CompileOptions::default());
    let run = tokio::time::timeout(Duration::from_secs(120), coordinator.run(plan, source))
        .await
        .expect("the workers join")
        .unwrap();
    let mut snaps = run.handle.snapshots();
    snaps_tx.send_replace(Some(snaps.clone()));
    // Every point any snapshot shows while the run goes on (the dashboard sends each
    // point once) must hold every worker's unit for its second.
    let partial = Arc::new(AtomicU64::new(0));
    let seen = partial.clone();
    let watcher = tokio::spawn(async move {
        let mut shown = 0.0;
        while snaps.changed().await.is_ok() {
            let snap = snaps.borrow_and_update().clone();
            let last = shown;
            for p in snap.series.iter().filter(|p| p.t > last) {
                shown = p.t;
                if (p.width - 1.0).abs() < 1e-9 && p.requests != WORKERS as u64 * PER_UNIT {
                    eprintln!("point at {}s shown with {} requests", p.t, p.requests);
                    seen.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    });
    let snap = tokio::time::timeout(Duration::from_secs(120), run.handle.wait())
        .await
        .expect("the run ends")
        .unwrap();
    for w in workers {
        w.await.unwrap();
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), watcher).await;
    let expected = WORKERS as u64 * PER_UNIT;
    assert_eq!(snap.total().count, expected * SECONDS, "the run's total");
    let whole: Vec<(f64, u64)> = snap
        .series
        .iter()
        .filter(|p| (p.width - 1.0).abs() < 1e-9)
        .map(|p| (p.t, p.requests))
        .collect();
    assert!(whole.len() as u64 >= SECONDS - 1, "{whole:?}");
    assert!(
        whole.iter().all(|(_, n)| *n == expected),
        "every whole second holds {expected} requests: {whole:?}"
    );
    assert_eq!(
        partial.load(Ordering::Relaxed),
        0,
        "no snapshot showed a partial second"
    );
}
