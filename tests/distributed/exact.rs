//! The merge is exact, to HDR precision, with no machine speed involved:
//! - two workers speaking the real protocol send known units to a real coordinator,
//!   and the report's percentiles equal those of one histogram holding every request;
//! - two real `swarm worker`s run a plan through relays that decode every unit they
//!   send on the way, and the coordinator's report equals the union of those units
//!   exactly (and agrees with a single-process run of the same load where timing
//!   cannot differ: the count, and latencies no lower than the target's delay).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use swarm::dist::proto::{self, Cmd, Down, Event, PATH, Up};
use swarm::metrics::delta::Delta;
use swarm::metrics::stats::{RequestStats, percentile_ms};
use tokio_tungstenite::tungstenite::Message;

use crate::cluster::{Coordinator, LIMIT, Target, plan, read_json, swarm, worker};
use crate::common::{code, describe, output_within, serial};

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
        tx.send(msg(&Up::Unit { run, unit })).await.unwrap();
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

/// The report's latency figures against those of `stats`, to the last bit the JSON
/// carries (`percentile_ms` is the report's own function, on the same histogram).
fn assert_latency_equal(report: &serde_json::Value, stats: &RequestStats, what: &str) {
    assert_eq!(report["count"], stats.count, "{what}: count");
    let got = &report["latency_ms"];
    let want = [
        ("min", stats.min_ms()),
        ("mean", stats.mean_ms()),
        ("max", stats.max_ms()),
        ("p50", stats.percentile_ms(50.0)),
        ("p90", stats.percentile_ms(90.0)),
        ("p95", stats.percentile_ms(95.0)),
        ("p99", stats.percentile_ms(99.0)),
        ("p99.9", stats.percentile_ms(99.9)),
    ];
    for (field, want) in want {
        let have = got[field].as_f64().unwrap();
        assert!(
            (have - want).abs() < 1e-9,
            "{what}: {field} merged {have}, the workers' units {want}"
        );
    }
}

/// A WebSocket relay between real workers and the coordinator at `upstream`: every
/// message passes unchanged, both ways, and every unit a worker sends is decoded on
/// the way and added into `seen` (all request names together). Returns the URL a
/// worker is given.
fn relay(upstream: &str, seen: Arc<Mutex<RequestStats>>) -> String {
    let upstream = upstream.trim_start_matches("http://").to_owned();
    let addr = crate::common::listen(move |listener| async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (upstream, seen) = (upstream.clone(), seen.clone());
            tokio::spawn(async move {
                let Ok(worker) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                let tcp = tokio::net::TcpStream::connect(&upstream).await.unwrap();
                let url = format!("ws://{upstream}{PATH}");
                let (coordinator, _) = tokio_tungstenite::client_async(url, tcp).await.unwrap();
                let (mut to_worker, mut from_worker) = worker.split();
                let (mut to_coordinator, mut from_coordinator) = coordinator.split();
                let up = async {
                    while let Some(Ok(m)) = from_worker.next().await {
                        if let Message::Binary(b) = &m
                            && let Ok(Up::Unit { unit, .. }) = proto::decode::<Up>(b)
                        {
                            let delta = swarm::metrics::wire::decode(&unit, 1).expect("a unit");
                            seen.lock().unwrap().merge(&delta.all());
                        }
                        if to_coordinator.send(m).await.is_err() {
                            break;
                        }
                    }
                    let _ = to_coordinator.close().await;
                };
                let down = async {
                    while let Some(Ok(m)) = from_coordinator.next().await {
                        if to_worker.send(m).await.is_err() {
                            break;
                        }
                    }
                    let _ = to_worker.close().await;
                };
                tokio::join!(up, down);
            });
        }
    });
    format!("http://{addr}")
}

/// Real workers, real requests, real latencies: whatever the machine's speed made
/// them, the coordinator's report is the union of what the workers measured,
/// bucket for bucket. A single-process run of the same load cannot measure the same
/// latencies on a shared machine, so against it only what timing cannot change is
/// compared: the count, and no latency below the target's 20 ms.
#[test]
fn percentiles_equal_the_union_of_the_workers_units_and_match_a_single_process_run() {
    let _turn = serial();
    let target = Target::start();
    let dir = tempfile::tempdir().unwrap();
    let plan = plan(
        dir.path(),
        &target.url(),
        "{ users: 4, iterations: 200 }",
        "/slow",
        &[],
    );
    let single = dir.path().join("single.json");
    let out = output_within(
        swarm().arg("check").arg(&plan).args([
            "--progress",
            "none",
            "--json",
            single.to_str().unwrap(),
        ]),
        LIMIT,
    );
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let merged = dir.path().join("merged.json");
    let coordinator = Coordinator::start(&plan, 2, &["--json", merged.to_str().unwrap()]);
    let seen = Arc::new(Mutex::new(RequestStats::default()));
    let via = relay(&coordinator.url, seen.clone());
    let a = worker(&via, "a", &[]);
    let b = worker(&via, "b", &[]);
    let (code, out, err) = coordinator.proc.finish(LIMIT);
    assert_eq!(code, 0, "{out}\n{err}");
    for w in [a, b] {
        assert_eq!(w.finish(Duration::from_secs(20)).0, 0);
    }
    let (single, merged) = (read_json(&single), read_json(&merged));
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.count, 200, "the relays saw every request's unit");
    assert_latency_equal(&merged["total"], &seen, "total");
    assert_latency_equal(&merged["requests"][0], &seen, "probe");
    assert_eq!(single["total"]["count"], merged["total"]["count"]);
    for report in [&single, &merged] {
        let min = report["total"]["latency_ms"]["min"].as_f64().unwrap();
        assert!(min >= 19.9, "below the target's 20 ms: {min}");
    }
}
