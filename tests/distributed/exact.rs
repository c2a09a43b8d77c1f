//! The merge is exact: two workers speaking the real protocol send known units to a
//! real coordinator, and the report's percentiles equal those of one histogram that
//! holds every request, to HDR precision (no machine speed involved).

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use swarm::dist::proto::{self, Cmd, Down, Event, PATH, Up};
use swarm::metrics::delta::Delta;
use swarm::metrics::stats::{RequestStats, percentile_ms};
use tokio_tungstenite::tungstenite::Message;

use crate::cluster::{Coordinator, LIMIT, plan, read_json};
use crate::common::serial;

/// The latency of request `k` of worker `w` in second `s`: spread over 1 ms-3 s,
/// different on each worker, so percentiles depend on every unit.
fn latency(w: u64, s: u64, k: u64) -> Duration {
    Duration::from_micros(1_000 + (k * 7_919 + s * 104_729 + w * 1_299_709) % 3_000_000)
}

const PER_SECOND: u64 = 400;

fn unit(w: u64, s: u64) -> Delta {
    let mut d = Delta::new(1);
    d.second = s;
    for k in 0..PER_SECOND {
        d.requests[0].record(latency(w, s, k), 10, Ok(()));
    }
    d
}

/// A worker that sends `seconds` known units, then ends when told to stop.
async fn fake_worker(url: String, w: u64, seconds: u64) {
    let addr = url.trim_start_matches("http://").to_owned();
    let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let (ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}{PATH}"), tcp)
        .await
        .unwrap();
    let (mut tx, mut rx) = ws.split();
    let msg = |m: &Up| Message::Binary(proto::encode(m).into());
    let hello = Up::Hello {
        name: format!("fake-{w}"),
        version: "test".into(),
        threads: 1,
    };
    tx.send(msg(&hello)).await.unwrap();
    let (downs_tx, mut downs) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(Ok(m)) = rx.next().await {
            if let Message::Binary(b) = m
                && let Ok(down) = proto::decode::<Down>(&b)
                && downs_tx.send(down).is_err()
            {
                break;
            }
        }
    });
    let within = Duration::from_secs(20);
    let Ok(Some(Down::Plan(plan))) = tokio::time::timeout(within, downs.recv()).await else {
        panic!("no plan")
    };
    let (run, thread) = (plan.run, plan.first);
    let ready = Up::Ready {
        run,
        fingerprint: plan.fingerprint,
    };
    tx.send(msg(&ready)).await.unwrap();
    let Ok(Some(Down::Start { in_ms, .. })) = tokio::time::timeout(within, downs.recv()).await
    else {
        panic!("no start")
    };
    let origin = Instant::now() + Duration::from_millis(in_ms);
    for s in 1..=seconds {
        tokio::time::sleep_until((origin + Duration::from_secs(s)).into()).await;
        let unit = swarm::metrics::wire::encode(&unit(w, s));
        tx.send(msg(&Up::Unit {
            run,
            unit,
            through: s,
        }))
        .await
        .unwrap();
    }
    let stop = tokio::time::timeout(within, async {
        while let Some(down) = downs.recv().await {
            if matches!(down, Down::Cmd { cmd: Cmd::Stop, .. }) {
                return;
            }
        }
    });
    stop.await.expect("the coordinator stops the worker");
    let stopping = Up::Event {
        run,
        thread,
        event: Event::Stopping { active: 0 },
    };
    tx.send(msg(&stopping)).await.unwrap();
    tx.send(msg(&Up::Done { run })).await.unwrap();
    let _ = tx.close().await;
}

#[test]
fn merged_percentiles_equal_those_of_all_requests_in_one_histogram() {
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    let plan = plan(
        dir.path(),
        "http://127.0.0.1:9",
        "{ users: 1, duration: 3s }",
        "/ok",
        &[],
    );
    let json = dir.path().join("run.json");
    let coordinator = Coordinator::start(&plan, 2, &["--json", json.to_str().unwrap()]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let a = tokio::spawn(fake_worker(coordinator.url.clone(), 0, 3));
        let b = tokio::spawn(fake_worker(coordinator.url.clone(), 1, 3));
        a.await.unwrap();
        b.await.unwrap();
    });
    let (code, out, err) = coordinator.proc.finish(LIMIT);
    assert_eq!(code, 0, "{out}\n{err}");
    let report = read_json(&json);
    let mut all = RequestStats::default();
    for w in 0..2 {
        for s in 1..=3 {
            all.merge(&unit(w, s).requests[0]);
        }
    }
    assert_eq!(report["total"]["count"], all.count);
    let got = &report["total"]["latency_ms"];
    for (field, q) in [("p50", 50.0), ("p90", 90.0), ("p95", 95.0), ("p99", 99.0)] {
        let want = percentile_ms(&all.latency, q);
        let have = got[field].as_f64().unwrap();
        assert!(
            (have - want).abs() < 1e-9,
            "{field}: merged {have}, all in one {want}"
        );
    }
    assert_eq!(
        got["max"].as_f64().unwrap(),
        all.latency.max() as f64 / 1000.0
    );
}
