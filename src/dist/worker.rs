//! `swarm worker URL`: joins a coordinator, compiles the plan it sends (in a private
//! temporary folder, with its data files), proves by fingerprint that it compiled the
//! same plan, checks that the target resolves from here, runs its share of the run's
//! threads from the common origin, and relays: commands in, events and one merged
//! unit per second out, plus a status (users, requests/s, CPU, lag, its own
//! generator verdict).
//!
//! A worker never outlives its coordinator's attention: when the connection closes,
//! errs, or stays silent for [`SILENCE`] (the coordinator pings every second), it
//! stops its users at once and exits with an error, so no load is left behind.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use hdrhistogram::Histogram;
use tokio::time::timeout;

use super::LinkError;
use super::coordinator::is_plain_relative;
use super::proto::{Down, Event, PlanMsg, RunId, Status, Up};
use super::transport::{self, Incoming, Socket};
use crate::compile::CompileOptions;
use crate::compile::graph::CompiledPlan;
use crate::engine::config::EngineConfig;
use crate::engine::remote::{Part, PartRun, RunClock, ThreadEvent};
use crate::engine::schedule::GRACE;
use crate::metrics::delta::Delta;
use crate::metrics::generator::GeneratorMonitor;
use crate::metrics::snapshot::EndReason;
use crate::metrics::stats::latency_histogram;
use crate::metrics::wire;

/// Silence from the coordinator (which pings every second) past this is its loss.
pub const SILENCE: Duration = Duration::from_secs(5);
/// How long a worker keeps trying to reach a coordinator that is not listening yet.
const CONNECT_FOR: Duration = Duration::from_secs(30);
/// How long the start may take to come once the worker is ready.
const START_WITHIN: Duration = Duration::from_secs(120);
/// A second's unit goes out when every thread sent its part, or this long after the
/// first part came, whichever is first (a late part goes out on its own; the
/// coordinator waits for it, since the watermark has not passed its second).
const UNIT_WAIT: Duration = Duration::from_millis(150);

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub url: url::Url,
    pub token: Option<String>,
    pub name: String,
    /// Certificate authorities trusted for an `https://` coordinator, besides the
    /// webpki roots (DER).
    pub ca: Vec<rustls::pki_types::CertificateDer<'static>>,
    /// Accept any certificate from the coordinator.
    pub insecure: bool,
    /// The engine's settings (threads; the target's TLS follows the coordinator's
    /// `--insecure`).
    pub engine: EngineConfig,
}

/// Why a worker stopped before its run ended normally.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("{0}")]
    Link(#[from] LinkError),
    #[error("the coordinator refused this worker: {0}")]
    Refused(String),
    #[error("this worker cannot run the plan: {0}")]
    Plan(String),
    #[error("lost the coordinator: {0}; the load was stopped")]
    Lost(String),
    #[error("the URL must be http://host:port or https://host:port, not `{0}`")]
    Url(String),
}

/// Joins the coordinator and runs its part; `Ok` once the run ended normally.
pub async fn run(config: WorkerConfig) -> Result<(), WorkerError> {
    let tls = match config.url.scheme() {
        "http" => None,
        "https" => Some(Arc::new(
            crate::engine::http::tls::client_config(
                config.insecure,
                &config.ca,
                crate::compile::graph::HttpVersion::Http1,
            )
            .map_err(|e| WorkerError::Link(LinkError::Tls(std::io::Error::other(e))))?,
        )),
        _ => return Err(WorkerError::Url(config.url.to_string())),
    };
    if config.url.host_str().is_none() {
        return Err(WorkerError::Url(config.url.to_string()));
    }
    // A coordinator that is not up yet (a worker pod started before it) is tried
    // again for a while; a refusal is final.
    let deadline = tokio::time::Instant::now() + CONNECT_FOR;
    let mut socket = loop {
        let attempt = timeout(
            transport::HANDSHAKE,
            transport::connect(&config.url, config.token.as_deref(), tls.clone()),
        )
        .await
        .map_err(|_| LinkError::Timeout)?;
        match attempt {
            Err(e @ LinkError::Connect { .. }) if tokio::time::Instant::now() < deadline => {
                tracing::info!("{e}; trying again");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            other => break other?,
        }
    };
    let threads = match config.engine.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let hello = Up::Hello {
        name: config.name.clone(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        threads: threads as u32,
    };
    transport::send(&mut socket, &hello).await?;
    tracing::info!(url = %config.url, "joined the coordinator; waiting for the plan");
    eprintln!("joined {}; waiting for the run", config.url);

    // The coordinator may wait minutes for the other workers: no silence bound here,
    // but a closed connection ends the wait.
    let msg = loop {
        match transport::recv::<Down>(&mut socket).await {
            Ok(Incoming::Alive) => continue,
            Ok(Incoming::Msg(msg)) => break msg,
            Err(e) => return Err(WorkerError::Lost(e.to_string())),
        }
    };
    let plan_msg = match msg {
        Down::Plan(p) => p,
        Down::Refused { reason } => return Err(WorkerError::Refused(reason)),
        _ => {
            return Err(WorkerError::Lost(
                "it sent something other than the plan".into(),
            ));
        }
    };
    let run = plan_msg.run;
    let folder = Folder::new(run);
    let plan = match prepare(&plan_msg, &folder).await {
        Ok(plan) => Arc::new(plan),
        Err(error) => {
            let _ = transport::send(
                &mut socket,
                &Up::Failed {
                    run,
                    error: error.clone(),
                },
            )
            .await;
            return Err(WorkerError::Plan(error));
        }
    };
    let ready = Up::Ready {
        run,
        fingerprint: plan.fingerprint.0,
    };
    transport::send(&mut socket, &ready).await?;
    tracing::info!(fingerprint = %plan.fingerprint, "compiled the plan; ready");

    let start = timeout(START_WITHIN, async {
        loop {
            match transport::recv::<Down>(&mut socket).await {
                Ok(Incoming::Alive) => continue,
                other => return other,
            }
        }
    })
    .await
    .map_err(|_| WorkerError::Lost(format!("no start within {}s", START_WITHIN.as_secs())))?;
    let (in_ms, wall_unix_ms) = match start.map_err(|e| WorkerError::Lost(e.to_string()))? {
        Incoming::Msg(Down::Start {
            run: r,
            in_ms,
            wall_unix_ms,
        }) if r == run => (in_ms, wall_unix_ms),
        Incoming::Msg(Down::Refused { reason }) => return Err(WorkerError::Refused(reason)),
        _ => {
            return Err(WorkerError::Lost(
                "it sent something other than the start".into(),
            ));
        }
    };
    let clock = RunClock {
        origin: Instant::now() + Duration::from_millis(in_ms.min(60_000)),
        wall: UNIX_EPOCH + Duration::from_millis(wall_unix_ms),
    };
    let part = Part {
        first: plan_msg.first as usize,
        count: plan_msg.count as usize,
        total: plan_msg.total as usize,
    };
    let mut engine = config.engine.clone();
    engine.http.insecure = plan_msg.insecure;
    let threads = crate::engine::remote::start_part(
        plan.clone(),
        engine,
        part,
        clock,
        plan_msg.index as usize,
        plan_msg.workers as usize,
    );
    let threads = match threads {
        Ok(t) => t,
        Err(e) => {
            let error = e.to_string();
            let _ = transport::send(
                &mut socket,
                &Up::Failed {
                    run,
                    error: error.clone(),
                },
            )
            .await;
            return Err(WorkerError::Plan(error));
        }
    };
    tracing::info!(
        first = part.first,
        count = part.count,
        total = part.total,
        "running threads {}..{} of {}",
        part.first,
        part.first + part.count,
        part.total
    );
    Relay::new(socket, run, threads).run().await
}

/// The worker's private folder for the plan and its data files, removed on drop.
struct Folder(PathBuf);

impl Folder {
    fn new(run: RunId) -> Folder {
        let id: String = run.iter().take(6).map(|b| format!("{b:02x}")).collect();
        Folder(std::env::temp_dir().join(format!("swarm-worker-{}-{id}", std::process::id())))
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes the plan and its data files, compiles them as the coordinator did, checks
/// the fingerprint and that the target resolves from here.
async fn prepare(msg: &PlanMsg, folder: &Folder) -> Result<CompiledPlan, String> {
    let file = std::path::Path::new(&msg.file);
    let name = match file.file_name() {
        Some(n) if is_plain_relative(file) => n.to_owned(),
        _ => {
            return Err(format!(
                "the plan's file name `{}` is not a plain name",
                msg.file
            ));
        }
    };
    std::fs::create_dir_all(&folder.0).map_err(|e| format!("cannot create a folder: {e}"))?;
    let path = folder.0.join(name);
    std::fs::write(&path, &msg.text).map_err(|e| format!("cannot write the plan: {e}"))?;
    for (rel, bytes) in &msg.files {
        let rel_path = std::path::Path::new(rel);
        if !is_plain_relative(rel_path) {
            return Err(format!("data file `{rel}` would leave the plan's folder"));
        }
        let dest = folder.0.join(rel_path);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("cannot create a folder: {e}"))?;
        }
        std::fs::write(&dest, bytes).map_err(|e| format!("cannot write `{rel}`: {e}"))?;
    }
    let opts = CompileOptions {
        vars: msg.vars.clone(),
        target: msg.target.clone(),
        users: msg.users,
        duration: msg.duration_ms.map(Duration::from_millis),
        env: msg.env.clone(),
        // `--demo`'s provided values name the coordinator's loopback demo; the
        // coordinator's `--var` overrides arrive in `vars`.
        provided: Vec::new(),
    };
    let plan = crate::compile::compile_file(&path, &opts).map_err(|e| e.to_string())?;
    if plan.fingerprint.0 != msg.fingerprint {
        return Err(format!(
            "the plan compiled here to fingerprint {}, the coordinator's is {}",
            plan.fingerprint,
            crate::compile::fingerprint::Fingerprint(msg.fingerprint)
        ));
    }
    resolve_target(&plan.target).await?;
    Ok(plan)
}

/// The target's host must resolve from this machine.
async fn resolve_target(target: &str) -> Result<(), String> {
    let Ok(url) = url::Url::parse(target) else {
        return Ok(());
    };
    let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
        return Ok(());
    };
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    match timeout(
        Duration::from_secs(10),
        tokio::net::lookup_host((host.as_str(), port)),
    )
    .await
    {
        Ok(Ok(addrs)) => match addrs.count() {
            0 => Err(format!(
                "the target `{target}` resolves to no address from here"
            )),
            _ => Ok(()),
        },
        Ok(Err(e)) => Err(format!(
            "the target `{target}` does not resolve from here: {e}"
        )),
        Err(_) => Err(format!("the target `{target}` did not resolve within 10s")),
    }
}

/// A second's parts, merged as they come.
struct Pending {
    unit: Delta,
    parts: usize,
    since: tokio::time::Instant,
    /// The thread (local index) whose unit holds the merge, to give it back.
    owner: usize,
}

/// The running part: relays between the threads and the coordinator.
struct Relay {
    socket: Socket,
    run: RunId,
    part: Part,
    threads: PartRun,
    pending: BTreeMap<(u64, u64), Pending>,
    /// By local thread: the last second it sent a unit for (each thread's units come
    /// in order). Their least is the watermark every unit carries.
    seen: Vec<u64>,
    monitor: GeneratorMonitor,
    lag_interval: Histogram<u64>,
    lag_total: Histogram<u64>,
    origin: Instant,
    status: Status,
}

impl Relay {
    fn new(socket: Socket, run: RunId, threads: PartRun) -> Relay {
        Relay {
            socket,
            run,
            part: threads.part,
            monitor: GeneratorMonitor::new(threads.part.count),
            seen: vec![0; threads.part.count],
            threads,
            pending: BTreeMap::new(),
            lag_interval: latency_histogram(),
            lag_total: latency_histogram(),
            origin: Instant::now(),
            status: Status::default(),
        }
    }

    async fn run(mut self) -> Result<(), WorkerError> {
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        let mut status_at = tokio::time::Instant::now() + Duration::from_secs(1);
        let mut heard = tokio::time::Instant::now();
        let lost = loop {
            tokio::select! {
                incoming = tokio::time::timeout_at(heard + SILENCE, transport::recv::<Down>(&mut self.socket)) => {
                    match incoming {
                        Err(_) => break format!("nothing heard for {}s", SILENCE.as_secs()),
                        Ok(Err(e)) => break e.to_string(),
                        Ok(Ok(Incoming::Alive)) => heard = tokio::time::Instant::now(),
                        Ok(Ok(Incoming::Msg(msg))) => {
                            heard = tokio::time::Instant::now();
                            if let Err(why) = self.on_message(msg) {
                                break why;
                            }
                        }
                    }
                }
                event = self.threads.events.recv() => match event {
                    Some((thread, event)) => {
                        if let Err(e) = self.on_event(thread, event).await {
                            break e.to_string();
                        }
                    }
                    None => {
                        // Every thread ended: the last units, then done.
                        if let Err(e) = self.flush(true).await {
                            break e.to_string();
                        }
                        let done = Up::Done { run: self.run };
                        if let Err(e) = transport::send(&mut self.socket, &done).await {
                            break e.to_string();
                        }
                        let _ = timeout(Duration::from_secs(2), self.socket.close(None)).await;
                        self.join().await;
                        tracing::info!("the run ended; done");
                        return Ok(());
                    }
                },
                _ = tick.tick() => {
                    if let Err(e) = self.flush(false).await {
                        break e.to_string();
                    }
                    if tokio::time::Instant::now() >= status_at {
                        status_at += Duration::from_secs(1);
                        if let Err(e) = self.send_status().await {
                            break e.to_string();
                        }
                    }
                }
            }
        };
        eprintln!("lost the coordinator: {lost}; stopping the load");
        self.stop_now().await;
        Err(WorkerError::Lost(lost))
    }

    /// A message from the coordinator; an error is why the worker must stop.
    fn on_message(&mut self, msg: Down) -> Result<(), String> {
        match msg {
            Down::Cmd { run, thread, cmd } if run == self.run => {
                let local = (thread as usize).checked_sub(self.part.first);
                match local.and_then(|i| self.threads.cmds.get(i)) {
                    Some(tx) => {
                        if matches!(cmd, super::proto::Cmd::Reset(_)) {
                            self.monitor.reset();
                            self.status.saturated = None;
                        }
                        let _ = tx.send(cmd.into());
                        Ok(())
                    }
                    None => Err(format!(
                        "a command for thread {thread}, not one of this worker's"
                    )),
                }
            }
            Down::Refused { reason } => Err(format!("refused: {reason}")),
            _ => Err("a message of another run or out of place".into()),
        }
    }

    async fn on_event(&mut self, thread: usize, event: ThreadEvent) -> Result<(), LinkError> {
        let event = match event {
            ThreadEvent::Second(delta) => {
                self.collect(thread.saturating_sub(self.part.first), delta);
                return self.flush(false).await;
            }
            ThreadEvent::Completed(n) => Event::Completed(n),
            ThreadEvent::NeedTickets { starving } => Event::NeedTickets { starving },
            ThreadEvent::Returned(n) => Event::Returned(n),
            ThreadEvent::End(EndReason::FeederExhausted { feeder }) => {
                Event::FeederExhausted { feeder }
            }
            ThreadEvent::End(_) | ThreadEvent::Unit(_) | ThreadEvent::Through(_) => return Ok(()),
            ThreadEvent::Stopping { active } => Event::Stopping { active },
        };
        let msg = Up::Event {
            run: self.run,
            thread: thread as u32,
            event,
        };
        transport::send(&mut self.socket, &msg).await
    }

    /// Merges a thread's unit into its second's.
    fn collect(&mut self, local: usize, delta: Delta) {
        if let Some(seen) = self.seen.get_mut(local) {
            *seen = (*seen).max(delta.second);
        }
        let _ = self.lag_interval.add(&delta.lag);
        let _ = self.lag_total.add(&delta.lag);
        let key = (delta.epoch, delta.second);
        match self.pending.get_mut(&key) {
            Some(p) => {
                p.unit.merge(&delta);
                p.parts += 1;
                if let Some(back) = self.threads.recycle.get(local) {
                    let _ = back.send(delta);
                }
            }
            None => {
                self.pending.insert(
                    key,
                    Pending {
                        unit: delta,
                        parts: 1,
                        since: tokio::time::Instant::now(),
                        owner: local,
                    },
                );
            }
        }
    }

    /// Sends the seconds whose parts are all in, or waited long enough (all of
    /// them when `all`), each with the watermark: every second up to it was sent.
    async fn flush(&mut self, all: bool) -> Result<(), LinkError> {
        let now = tokio::time::Instant::now();
        let count = self.part.count.max(1);
        let through = if all {
            u64::MAX
        } else {
            self.seen.iter().copied().min().unwrap_or(0)
        };
        let ready: Vec<(u64, u64)> = self
            .pending
            .iter()
            .filter(|(k, p)| {
                all || k.1 <= through
                    || p.parts >= count
                    || now.duration_since(p.since) >= UNIT_WAIT
            })
            .map(|(k, _)| *k)
            .collect();
        for key in ready {
            if let Some(p) = self.pending.remove(&key) {
                self.status.requests_per_s =
                    p.unit.requests.iter().map(|r| r.count).sum::<u64>() as f64;
                self.status.users = p.unit.active;
                let msg = Up::Unit {
                    run: self.run,
                    unit: wire::encode(&p.unit),
                    through,
                };
                tracing::debug!(second = key.1, "unit sent");
                transport::send(&mut self.socket, &msg).await?;
                if let Some(back) = self.threads.recycle.get(p.owner) {
                    let _ = back.send(p.unit);
                }
            }
        }
        Ok(())
    }

    async fn send_status(&mut self) -> Result<(), LinkError> {
        let at = self.origin.elapsed();
        let health = self.monitor.sample(at, &self.lag_interval, &self.lag_total);
        self.lag_interval.reset();
        self.status.cpu_percent = health.cpu_percent;
        self.status.lag_p99_ms = health.lag_p99_ms;
        self.status.saturated = health.saturated;
        let msg = Up::Status {
            run: self.run,
            status: self.status.clone(),
        };
        transport::send(&mut self.socket, &msg).await
    }

    /// The coordinator is gone: every user stops now; the threads get the grace
    /// period to drain, then the worker leaves.
    async fn stop_now(&mut self) {
        for tx in &self.threads.cmds {
            let _ = tx.send(crate::engine::remote::ThreadCmd::Stop);
        }
        let deadline = tokio::time::Instant::now() + GRACE + Duration::from_secs(1);
        while let Ok(Some(_)) = tokio::time::timeout_at(deadline, self.threads.events.recv()).await
        {
        }
    }

    async fn join(&mut self) {
        let threads = std::mem::take(&mut self.threads.threads);
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
    }
}

/// The default worker name: the host name and the process id.
pub fn default_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "worker".into());
    format!("{host}-{}", std::process::id())
}
