//! Simulated workers for `bench/run.sh coordinator`: N WebSocket clients that join a
//! real coordinator with the real protocol, then each send, on every whole second of
//! the run, one real measurement unit (20 request names, 1,000 requests with spread
//! latencies, encoded by `metrics::wire`) and a status, as a `swarm worker` does. They
//! run no load, so the machine's CPU goes to the coordinator being measured.
//!
//! It reads the coordinator's CPU time and peak RSS from `/proc/PID`, and follows the
//! coordinator's dashboard stream to time each merged second's publication against
//! the end of that second, and to check that each merged second holds exactly what
//! the workers sent. It prints one line of JSON.
//!
//! With a sixth argument `BREACH`, every request of every unit from second `BREACH` on
//! fails (against a plan with an aborting SLO line), and it times the abort: from the
//! end of that second, when its units go out, to the coordinator's stop reaching the
//! first worker.
//!
//! Usage: `coordinator_sim WORKER_URL DASHBOARD_ADDR COORDINATOR_PID WORKERS SECONDS [BREACH]`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use swarm::dist::proto::{self, Down, Event, PATH, Status, Up};
use swarm::metrics::delta::Delta;
use swarm::metrics::failure::{FailureKind, ProtocolFailure};
use swarm::metrics::wire;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio_tungstenite::tungstenite::Message;

const NAMES: usize = 20;
const PER_NAME: u64 = 50;

fn unit(second: u64, failing: bool) -> Delta {
    let mut d = Delta::new(NAMES);
    d.second = second;
    d.active = 10;
    for (i, r) in d.requests.iter_mut().enumerate() {
        for k in 0..PER_NAME {
            let us = 1_000 + (k * 1_973 + i as u64 * 7_919) % 99_000;
            let outcome = match failing {
                true => Err(FailureKind::Protocol(ProtocolFailure::HttpStatus(500))),
                false => Ok(()),
            };
            r.record(Duration::from_micros(us), 512, outcome);
        }
    }
    d
}

/// utime + stime of `pid`, in seconds, and its peak RSS in KiB.
fn proc_figures(pid: u32) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (ticks as f64 / 100.0, hwm)
}

type Rx =
    futures_util::stream::SplitStream<tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>>;

async fn next_down(rx: &mut Rx, index: usize) -> Down {
    loop {
        match rx.next().await {
            Some(Ok(Message::Binary(b))) => return proto::decode::<Down>(&b).unwrap(),
            Some(Ok(_)) => continue,
            other => panic!("sim-{index}: {other:?}"),
        }
    }
}

async fn worker(
    url: String,
    index: usize,
    seconds: u64,
    breach: Option<u64>,
    origin_tx: tokio::sync::mpsc::Sender<Instant>,
    stop_at: Arc<std::sync::OnceLock<Instant>>,
) {
    let addr = url.trim_start_matches("http://").to_owned();
    let tcp = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let (ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}{PATH}"), tcp)
        .await
        .expect("handshake");
    let (mut tx, mut rx) = ws.split();
    let send = |m: &Up| Message::Binary(proto::encode(m).into());
    let hello = Up::Hello {
        name: format!("sim-{index}"),
        version: "sim".into(),
        threads: 1,
    };
    tx.send(send(&hello)).await.unwrap();
    let Down::Plan(plan) = next_down(&mut rx, index).await else {
        panic!("no plan")
    };
    let run = plan.run;
    let thread = plan.first;
    tx.send(send(&Up::Ready {
        run,
        fingerprint: plan.fingerprint,
    }))
    .await
    .unwrap();
    let Down::Start { in_ms, .. } = next_down(&mut rx, index).await else {
        panic!("no start")
    };
    let origin = Instant::now() + Duration::from_millis(in_ms);
    let _ = origin_tx.send(origin).await;
    // Commands and pings are read (tungstenite answers the pings) until the stop.
    let stopped = Arc::new(tokio::sync::Notify::new());
    let seen = stopped.clone();
    let is_stopped = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = is_stopped.clone();
    tokio::spawn(async move {
        while let Some(Ok(m)) = rx.next().await {
            if let Message::Binary(b) = m
                && let Ok(Down::Cmd {
                    cmd: proto::Cmd::Stop,
                    ..
                }) = proto::decode::<Down>(&b)
            {
                let _ = stop_at.set(Instant::now());
                flag.store(true, Ordering::Relaxed);
                seen.notify_one();
                break;
            }
        }
    });
    for s in 1..=seconds {
        tokio::time::sleep_until((origin + Duration::from_secs(s)).into()).await;
        if is_stopped.load(Ordering::Relaxed) {
            break;
        }
        let bytes = wire::encode(&unit(s, breach.is_some_and(|b| s >= b)));
        tx.send(send(&Up::Unit {
            run,
            unit: bytes,
            through: s,
        }))
        .await
        .unwrap();
        let status = Status {
            users: 10,
            requests_per_s: 1000.0,
            ..Status::default()
        };
        tx.send(send(&Up::Status { run, status })).await.unwrap();
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), stopped.notified()).await;
    let stop = Up::Event {
        run,
        thread,
        event: Event::Stopping { active: 0 },
    };
    let _ = tx.send(send(&stop)).await;
    let _ = tx.send(send(&Up::Done { run })).await;
    let _ = tx.close().await;
}

/// Follows the dashboard's stream: for each new point, when it came against the end
/// of its second, and whether it holds every worker's requests.
async fn follow(
    dash: String,
    origin: Instant,
    workers: u64,
    lags: Arc<std::sync::Mutex<Vec<f64>>>,
    wrong: Arc<AtomicU64>,
) {
    let Ok(mut tcp) = tokio::net::TcpStream::connect(&dash).await else {
        return;
    };
    let req =
        format!("GET /api/stream HTTP/1.1\r\nhost: {dash}\r\naccept: text/event-stream\r\n\r\n");
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut lines = BufReader::new(tcp).lines();
    let mut last_t = 0.0;
    while let Ok(Some(line)) = lines.next_line().await {
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(data) else {
            continue;
        };
        let Some(points) = v["points"].as_array() else {
            continue;
        };
        let now = Instant::now();
        for p in points {
            let t = p[0].as_f64().unwrap_or(0.0);
            if t <= last_t || p[1].as_f64() != Some(1.0) {
                continue;
            }
            last_t = t;
            let end = origin + Duration::from_secs_f64(t);
            lags.lock()
                .unwrap()
                .push(now.saturating_duration_since(end).as_secs_f64() * 1000.0);
            if p[2].as_u64() != Some(workers * NAMES as u64 * PER_NAME) {
                wrong.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (url, dash, pid, workers, seconds, breach) = match &args[..] {
        [u, d, p, w, s] => (u, d, p, w, s, None),
        [u, d, p, w, s, b] => (u, d, p, w, s, Some(b.parse::<u64>().unwrap())),
        _ => {
            eprintln!(
                "usage: coordinator_sim WORKER_URL DASHBOARD_ADDR COORDINATOR_PID WORKERS SECONDS [BREACH]"
            );
            std::process::exit(2);
        }
    };
    let (pid, workers, seconds): (u32, usize, u64) = (
        pid.parse().unwrap(),
        workers.parse().unwrap(),
        seconds.parse().unwrap(),
    );
    let (origin_tx, mut origin_rx) = tokio::sync::mpsc::channel(workers);
    let stop_at = Arc::new(std::sync::OnceLock::new());
    let tasks: Vec<_> = (0..workers)
        .map(|i| {
            let stop_at = stop_at.clone();
            tokio::spawn(worker(
                url.clone(),
                i,
                seconds,
                breach,
                origin_tx.clone(),
                stop_at,
            ))
        })
        .collect();
    let origin = origin_rx.recv().await.expect("the run started");
    let lags = Arc::new(std::sync::Mutex::new(Vec::new()));
    let wrong = Arc::new(AtomicU64::new(0));
    let follower = tokio::spawn(follow(
        dash.clone(),
        origin,
        workers as u64,
        lags.clone(),
        wrong.clone(),
    ));
    // CPU from the 2nd to the last whole second: the steady state, not the joins.
    tokio::time::sleep_until((origin + Duration::from_millis(1_500)).into()).await;
    let (cpu0, _) = proc_figures(pid);
    let t0 = Instant::now();
    tokio::time::sleep_until((origin + Duration::from_millis(seconds * 1000 - 500)).into()).await;
    let (cpu1, hwm) = proc_figures(pid);
    let wall = t0.elapsed().as_secs_f64();
    for t in tasks {
        let _ = t.await;
    }
    follower.abort();
    let mut lags = lags.lock().unwrap().clone();
    lags.sort_by(f64::total_cmp);
    let pct = |q: f64| {
        lags.get(((lags.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    let cpu = cpu1 - cpu0;
    let breach_to_abort_ms = breach.and_then(|b| {
        let at = *stop_at.get()?;
        Some(
            at.saturating_duration_since(origin + Duration::from_secs(b))
                .as_secs_f64()
                * 1000.0,
        )
    });
    println!(
        "{}",
        serde_json::json!({
            "workers": workers,
            "cpu_percent_of_one_core": cpu / wall * 100.0,
            "cpu_us_per_worker_second": cpu / wall / workers as f64 * 1e6,
            "peak_rss_mb": hwm as f64 / 1024.0,
            "merged_second_after_ms_p50": pct(0.5),
            "merged_second_after_ms_max": pct(1.0),
            "seconds_seen": lags.len(),
            "seconds_not_exact": wrong.load(Ordering::Relaxed),
            "breach_to_abort_ms": breach_to_abort_ms,
        })
    );
}
