//! The coordinator: listens for workers, waits for `--workers N` of them, sends each
//! the plan and its part, waits until every one proved by fingerprint that it
//! compiled the same plan, starts them together on a common origin, then relays the
//! controller's commands to them and their units and events to the controller.
//!
//! Every worker has one task ([`drive`]). It refuses (and drops) a worker that sends
//! a malformed or oversized frame, a message of another run, a unit for a second the
//! run has not reached, a thread that is not its own, or more messages than any
//! worker sends; silence for [`LOSS_AFTER`] is a loss too, and so is a watermark
//! (the last second a worker sent all its units for) [`UNITS_WITHIN`] behind the
//! run: the controller makes a second final only once every live worker's watermark
//! passed it, so a worker that falls that far behind would hold the whole run back. The other workers are
//! served all along: connections are handled by tasks of their own, and a handshake
//! has a deadline and a cap on how many run at once.

use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::timeout;

use super::proto::{Down, Event, PlanMsg, RunId, Up};
use super::transport::{self, Incoming, Socket};
use super::{OnLoss, WorkerRow, WorkerState, Workers};
use crate::compile::CompileOptions;
use crate::compile::graph::CompiledPlan;
use crate::engine::control::Control;
use crate::engine::remote::{Events, RunClock, ThreadCmd, ThreadEvent};
use crate::engine::{RunError, RunHandle};
use crate::metrics::snapshot::EndReason;
use crate::metrics::wire;

/// A worker silent this long (no unit, status or pong) is lost.
pub const LOSS_AFTER: Duration = Duration::from_secs(3);
/// A worker whose units for a second have not all come this long after the second
/// ended is lost (the second is then final without it; the loss marks the gap).
pub const UNITS_WITHIN: Duration = Duration::from_secs(10);
/// How far ahead of the start message the run's origin lies: the workers' barrier.
const START_IN: Duration = Duration::from_millis(1500);
/// How long workers have to compile the plan and answer.
const READY_WITHIN: Duration = Duration::from_secs(60);
/// Handshakes running at once; more connections wait their turn.
const HANDSHAKES: usize = 32;
/// A worker sends a unit and a status a second, and events in bursts at most a few
/// thousand a second: past this many messages in one second it is misbehaving.
const MAX_MESSAGES_PER_S: u32 = 20_000;
/// A send to a worker that takes longer than this (it stopped reading) loses it.
const SEND_WITHIN: Duration = Duration::from_secs(5);

/// How the coordinator runs.
#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    pub addr: String,
    pub workers: usize,
    pub token: Option<String>,
    pub timeout: Duration,
    pub on_loss: OnLoss,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// `--insecure`, passed on to the workers.
    pub insecure: bool,
}

/// Why a run on many machines could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum DistError {
    #[error("could not listen for workers on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "only {joined} of {wanted} workers joined within {}s; nothing was sent",
        timeout.as_secs()
    )]
    TooFewWorkers {
        joined: usize,
        wanted: usize,
        timeout: Duration,
    },
    #[error("worker `{worker}` cannot run the plan: {error}")]
    WorkerFailed { worker: String, error: String },
    #[error("data file `{}` cannot be sent to workers: {reason}", path.display())]
    DataFile { path: PathBuf, reason: String },
    #[error("the plan file cannot be read again to send it: {0}")]
    Plan(#[source] std::io::Error),
    #[error(transparent)]
    Run(#[from] RunError),
}

/// A worker whose handshake is done.
struct Joined {
    socket: Socket,
    name: String,
    address: SocketAddr,
    threads: u32,
}

/// A coordinator listening for workers.
pub struct Coordinator {
    config: CoordinatorConfig,
    addr: SocketAddr,
    joined: mpsc::Receiver<Joined>,
    /// Places left for workers; 0 once the run is set or cancelled.
    slots: Arc<AtomicUsize>,
    accept: tokio::task::JoinHandle<()>,
}

/// The plan as the workers get it.
pub struct PlanSource {
    file: String,
    text: String,
    files: Vec<(String, Vec<u8>)>,
    opts: CompileOptions,
    env: Vec<(String, String)>,
}

impl PlanSource {
    /// Reads the plan file and its data files back for the workers, with the
    /// command line's overrides and the environment variables the plan names.
    pub fn read(plan: &CompiledPlan, opts: &CompileOptions) -> Result<PlanSource, DistError> {
        let text = std::fs::read_to_string(&plan.source).map_err(DistError::Plan)?;
        let dir = match plan.source.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        let dir = std::path::absolute(&dir).unwrap_or(dir);
        let mut files = Vec::new();
        for f in &plan.feeders {
            let bad = |reason: &str| DistError::DataFile {
                path: f.path.clone(),
                reason: reason.to_owned(),
            };
            let rel = f
                .path
                .strip_prefix(&dir)
                .map_err(|_| bad("it is outside the plan's folder"))?;
            if !is_plain_relative(rel) {
                return Err(bad("its path leaves the plan's folder"));
            }
            let bytes = std::fs::read(&f.path).map_err(|e| bad(&e.to_string()))?;
            files.push((rel.to_string_lossy().into_owned(), bytes));
        }
        let env = crate::compile::env_names(&text)
            .into_iter()
            .filter_map(|n| std::env::var(&n).ok().map(|v| (n, v)))
            .collect();
        let file = plan
            .source
            .file_name()
            .map_or_else(|| "plan.yaml".into(), |n| n.to_string_lossy().into_owned());
        Ok(PlanSource {
            file,
            text,
            files,
            opts: opts.clone(),
            env,
        })
    }
}

#[cfg(test)]
impl PlanSource {
    /// A plan source with no file behind it (the workers of a test only echo the
    /// fingerprint).
    pub(crate) fn for_test(file: &str, text: &str, opts: CompileOptions) -> PlanSource {
        PlanSource {
            file: file.into(),
            text: text.into(),
            files: Vec::new(),
            opts,
            env: Vec::new(),
        }
    }
}

/// A relative path with no `..`, root or prefix: it stays inside the folder it is
/// joined to.
pub(crate) fn is_plain_relative(path: &Path) -> bool {
    path.components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

/// A run on many machines, started.
pub struct DistRun {
    pub handle: RunHandle,
    pub workers: Workers,
    /// When the run's origin was, on the wall clock.
    pub started: SystemTime,
}

impl Coordinator {
    /// Listens on the configured address and starts accepting workers.
    pub async fn bind(config: CoordinatorConfig) -> Result<Coordinator, DistError> {
        let listener = TcpListener::bind(&config.addr)
            .await
            .map_err(|source| DistError::Bind {
                addr: config.addr.clone(),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| DistError::Bind {
            addr: config.addr.clone(),
            source,
        })?;
        let slots = Arc::new(AtomicUsize::new(config.workers));
        let (tx, joined) = mpsc::channel(config.workers.max(1));
        let accept = tokio::spawn(accept_loop(
            listener,
            config.tls.clone().map(tokio_rustls::TlsAcceptor::from),
            config.token.clone(),
            slots.clone(),
            tx,
        ));
        Ok(Coordinator {
            config,
            addr,
            joined,
            slots,
            accept,
        })
    }

    /// The address workers connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits for the workers, sends them the plan, and starts the run once every one
    /// is ready. Nothing is sent to the target before every worker is ready.
    pub async fn run(
        mut self,
        plan: Arc<CompiledPlan>,
        source: PlanSource,
    ) -> Result<DistRun, DistError> {
        let wanted = self.config.workers;
        let mut joined: Vec<Joined> = Vec::with_capacity(wanted);
        let deadline = tokio::time::Instant::now() + self.config.timeout;
        while joined.len() < wanted {
            match tokio::time::timeout_at(deadline, self.joined.recv()).await {
                Ok(Some(j)) => {
                    eprintln!(
                        "worker `{}` joined from {} ({} threads): {} of {wanted}",
                        j.name,
                        j.address,
                        j.threads,
                        joined.len() + 1
                    );
                    joined.push(j);
                }
                Ok(None) | Err(_) => {
                    self.close();
                    let reason = format!(
                        "the run was cancelled: only {} of {wanted} workers joined in time",
                        joined.len()
                    );
                    refuse_all(&mut joined, &reason).await;
                    return Err(DistError::TooFewWorkers {
                        joined: joined.len(),
                        wanted,
                        timeout: self.config.timeout,
                    });
                }
            }
        }
        // Latecomers are told the run is set; the port keeps answering them.
        self.close();
        let run: RunId = *uuid::Uuid::new_v4().as_bytes();
        let parts = split_threads(&plan, &joined);
        let ready = send_plans(
            &mut joined,
            &plan,
            &source,
            &parts,
            run,
            self.config.insecure,
        );
        if let Err(e) = ready.await {
            let reason = format!("the run was cancelled: {e}");
            refuse_all(&mut joined, &reason).await;
            return Err(e);
        }

        let workers = Workers::default();
        for j in &joined {
            workers.push(WorkerRow {
                name: j.name.clone(),
                address: j.address.to_string(),
                threads: j.threads,
                state: WorkerState::Running,
                status: Default::default(),
                lost: None,
            });
        }
        let started = SystemTime::now() + START_IN;
        let clock = RunClock {
            origin: Instant::now() + START_IN,
            wall: started,
        };
        let (saturated_tx, saturated_rx) = watch::channel(None);
        let mut remote =
            crate::engine::remote::start_coordinator(plan.clone(), &parts, clock, saturated_rx)?;
        let wall_unix_ms = started
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let saturated = Arc::new(saturated_tx);
        let mut cmds = remote.cmds.drain(..);
        for (index, (j, (first, count))) in joined.into_iter().zip(parts).enumerate() {
            let in_ms = clock
                .origin
                .saturating_duration_since(Instant::now())
                .as_millis() as u64;
            let mut socket = j.socket;
            let start = Down::Start {
                run,
                in_ms,
                wall_unix_ms,
            };
            let sent = transport::send(&mut socket, &start).await;
            let driven = Driven {
                socket,
                index,
                name: j.name,
                run,
                first,
                count,
                cmds: cmds.by_ref().take(count).collect(),
                events: remote.events.clone(),
                control: remote.handle.control(),
                requests: plan.requests.len(),
                stop_on_loss: self.config.on_loss == OnLoss::Fail || plan.load.iterations.is_some(),
                origin: clock.origin,
                workers: workers.clone(),
                saturated: saturated.clone(),
                through: 0,
            };
            tokio::spawn(drive(driven, sent.err().map(|e| e.to_string())));
        }
        // The port keeps answering latecomers (with a refusal) while the run goes on:
        // the accept loop is left running until the process ends.
        drop(std::mem::replace(&mut self.accept, tokio::spawn(async {})));
        Ok(DistRun {
            handle: remote.handle,
            workers,
            started,
        })
    }

    /// No more places: later workers are refused with a sentence.
    fn close(&self) {
        self.slots.store(0, Ordering::SeqCst);
    }
}

impl Drop for Coordinator {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Accepts connections for as long as the coordinator lives; each handshake runs in
/// a task of its own, a bounded number at once, each with a deadline.
async fn accept_loop(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    token: Option<String>,
    slots: Arc<AtomicUsize>,
    joined: mpsc::Sender<Joined>,
) {
    let handshakes = Arc::new(Semaphore::new(HANDSHAKES));
    let token: Option<Arc<str>> = token.map(Arc::from);
    loop {
        let Ok((tcp, address)) = listener.accept().await else {
            // Out of descriptors, say: try again shortly rather than spin.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let Ok(permit) = handshakes.clone().acquire_owned().await else {
            return;
        };
        let (tls, token, slots, joined) =
            (tls.clone(), token.clone(), slots.clone(), joined.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let greeted = timeout(transport::HANDSHAKE, async {
                let mut socket = transport::accept(tcp, tls.as_ref(), token.as_deref()).await?;
                let hello = transport::recv::<Up>(&mut socket).await;
                Ok::<_, transport::LinkError>((socket, hello))
            })
            .await;
            let (mut socket, hello) = match greeted {
                Ok(Ok(pair)) => pair,
                Ok(Err(e)) => {
                    tracing::warn!(%address, "refused a connection: {e}");
                    eprintln!("refused a connection from {address}: {e}");
                    return;
                }
                Err(_) => {
                    eprintln!(
                        "refused a connection from {address}: no handshake within {}s",
                        transport::HANDSHAKE.as_secs()
                    );
                    return;
                }
            };
            let (name, threads) = match hello {
                Ok(Incoming::Msg(Up::Hello {
                    name,
                    version,
                    threads,
                })) => {
                    tracing::info!(%address, %name, %version, threads, "worker said hello");
                    (name, threads)
                }
                Ok(_) => {
                    refuse(&mut socket, address, "the first message must be a hello").await;
                    return;
                }
                Err(e) => {
                    refuse(&mut socket, address, &e.to_string()).await;
                    return;
                }
            };
            let took = slots
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            if !took {
                let why = "the coordinator has all its workers (or its run was cancelled)";
                refuse(&mut socket, address, why).await;
                return;
            }
            let j = Joined {
                socket,
                name,
                address,
                threads: threads.clamp(1, 1024),
            };
            let _ = joined.send(j).await;
        });
    }
}

/// Tells a connection why it is refused, and logs it.
async fn refuse(socket: &mut Socket, address: SocketAddr, reason: &str) {
    eprintln!("refused a connection from {address}: {reason}");
    let msg = Down::Refused {
        reason: reason.to_owned(),
    };
    let _ = timeout(SEND_WITHIN, transport::send(socket, &msg)).await;
    let _ = timeout(SEND_WITHIN, socket.close(None)).await;
}

async fn refuse_all(joined: &mut [Joined], reason: &str) {
    for j in joined {
        let msg = Down::Refused {
            reason: reason.to_owned(),
        };
        let _ = timeout(SEND_WITHIN, transport::send(&mut j.socket, &msg)).await;
        let _ = timeout(SEND_WITHIN, j.socket.close(None)).await;
    }
}

/// Which run-wide threads each worker runs: `(first, count)` in join order, as many
/// as it offers, up to what the plan can use in all.
fn split_threads(plan: &CompiledPlan, joined: &[Joined]) -> Vec<(usize, usize)> {
    let offered: usize = joined.iter().map(|j| j.threads as usize).sum();
    let mut left = crate::engine::remote::usable_threads(plan, offered);
    let mut first = 0;
    joined
        .iter()
        .map(|j| {
            let count = (j.threads as usize).min(left);
            left -= count;
            let part = (first, count);
            first += count;
            part
        })
        .collect()
}

/// Sends every worker the plan and its part, and waits until each compiled it to the
/// coordinator's fingerprint (or says why it cannot run it).
async fn send_plans(
    joined: &mut [Joined],
    plan: &CompiledPlan,
    source: &PlanSource,
    parts: &[(usize, usize)],
    run: RunId,
    insecure: bool,
) -> Result<(), DistError> {
    let total: usize = parts.iter().map(|(_, n)| n).sum();
    let workers = joined.len() as u32;
    let waits = joined.iter_mut().zip(parts).enumerate().map(|(i, (j, &(first, count)))| {
        let msg = Down::Plan(Box::new(PlanMsg {
            run,
            file: source.file.clone(),
            text: source.text.clone(),
            files: source.files.clone(),
            vars: source.opts.vars.clone(),
            target: source.opts.target.clone(),
            users: source.opts.users,
            duration_ms: source.opts.duration.map(|d| d.as_millis() as u64),
            env: source.env.clone(),
            fingerprint: plan.fingerprint.0,
            first: first as u32,
            count: count as u32,
            total: total as u32,
            index: i as u32,
            workers,
            insecure,
        }));
        let expected = plan.fingerprint;
        async move {
            let failed = |error: String| DistError::WorkerFailed {
                worker: j.name.clone(),
                error,
            };
            transport::send(&mut j.socket, &msg)
                .await
                .map_err(|e| failed(e.to_string()))?;
            let answer = timeout(READY_WITHIN, async {
                loop {
                    match transport::recv::<Up>(&mut j.socket).await {
                        Ok(Incoming::Alive) => continue,
                        other => return other,
                    }
                }
            })
            .await
            .map_err(|_| failed(format!("no answer within {}s", READY_WITHIN.as_secs())))?;
            match answer.map_err(|e| failed(e.to_string()))? {
                Incoming::Msg(Up::Ready { run: r, fingerprint }) if r == run => {
                    if fingerprint == expected.0 {
                        Ok(())
                    } else {
                        Err(failed(format!(
                            "it compiled the plan to fingerprint {}, the coordinator to {expected}",
                            crate::compile::fingerprint::Fingerprint(fingerprint)
                        )))
                    }
                }
                Incoming::Msg(Up::Failed { run: r, error }) if r == run => Err(failed(error)),
                _ => Err(failed("it answered the plan with something else".into())),
            }
        }
    });
    for result in futures_util::future::join_all(waits).await {
        result?;
    }
    Ok(())
}

/// One worker's connection during the run.
struct Driven {
    socket: Socket,
    index: usize,
    name: String,
    run: RunId,
    /// Its run-wide threads: `count` from `first`; `cmds` has one receiver each.
    first: usize,
    count: usize,
    cmds: Vec<mpsc::UnboundedReceiver<ThreadCmd>>,
    events: Events,
    control: mpsc::UnboundedSender<Control>,
    requests: usize,
    /// A loss ends the run (`--on-worker-loss fail`, or `iterations`, whose tickets
    /// the lost worker took with it).
    stop_on_loss: bool,
    origin: Instant,
    workers: Workers,
    saturated: Arc<watch::Sender<Option<String>>>,
    /// The worker's watermark: it sent every unit up to this second.
    through: u64,
}

/// What to do after a message.
enum Next {
    Go,
    Done,
}

/// Relays between one worker and the controller until the worker is done or lost.
async fn drive(mut d: Driven, failed_start: Option<String>) {
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<(usize, ThreadCmd)>();
    for (i, mut rx) in std::mem::take(&mut d.cmds).into_iter().enumerate() {
        let (tx, thread) = (out_tx.clone(), d.first + i);
        tokio::spawn(async move {
            while let Some(cmd) = rx.recv().await {
                if tx.send((thread, cmd)).is_err() {
                    break;
                }
            }
        });
    }
    drop(out_tx);
    let mut keepalive = tokio::time::interval(Duration::from_secs(1));
    let mut heard = tokio::time::Instant::now();
    let mut window = (tokio::time::Instant::now(), 0u32);
    let mut commands_open = true;
    let outcome: Result<(), String> = match failed_start {
        Some(e) => Err(e),
        None => loop {
            tokio::select! {
                incoming = tokio::time::timeout_at(heard + LOSS_AFTER, transport::recv::<Up>(&mut d.socket)) => {
                    let now = tokio::time::Instant::now();
                    match incoming {
                        Err(_) => break Err(format!("nothing heard for {}s", LOSS_AFTER.as_secs())),
                        Ok(Err(e)) => break Err(e.to_string()),
                        Ok(Ok(Incoming::Alive)) => heard = now,
                        Ok(Ok(Incoming::Msg(up))) => {
                            heard = now;
                            if now.duration_since(window.0) >= Duration::from_secs(1) {
                                window = (now, 0);
                            }
                            window.1 += 1;
                            if window.1 > MAX_MESSAGES_PER_S {
                                break Err(refused(&mut d.socket, format!("more than {MAX_MESSAGES_PER_S} messages in a second")).await);
                            }
                            match d.on_message(up) {
                                Ok(Next::Go) => {}
                                Ok(Next::Done) => break Ok(()),
                                Err(why) => break Err(refused(&mut d.socket, why).await),
                            }
                        }
                    }
                }
                cmd = out_rx.recv(), if commands_open => match cmd {
                    Some((thread, cmd)) => {
                        let msg = Down::Cmd { run: d.run, thread: thread as u32, cmd: (&cmd).into() };
                        if let Err(e) = send_within(&mut d.socket, &msg).await {
                            break Err(e);
                        }
                    }
                    None => commands_open = false,
                },
                _ = keepalive.tick() => {
                    if let Some(why) = d.behind() {
                        break Err(refused(&mut d.socket, why).await);
                    }
                    if let Err(e) = timeout(SEND_WITHIN, transport::ping(&mut d.socket)).await.map_err(|_| "it stopped reading".to_owned()).and_then(|r| r.map_err(|e| e.to_string())) {
                        break Err(e);
                    }
                }
            }
        },
    };
    // Done or lost, it sends no more units: its seconds no longer wait for it.
    d.mark(u64::MAX);
    match outcome {
        Ok(()) => {
            tracing::info!(worker = %d.name, "worker done");
            d.workers.update(d.index, |r| r.state = WorkerState::Done);
            let _ = d.socket.close(None).await;
        }
        Err(why) => d.lost(why),
    }
}

async fn send_within(socket: &mut Socket, msg: &Down) -> Result<(), String> {
    match timeout(SEND_WITHIN, transport::send(socket, msg)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("it stopped reading".into()),
    }
}

/// Refuses a worker mid-run: tells it why, and returns the reason.
async fn refused(socket: &mut Socket, why: String) -> String {
    let msg = Down::Refused {
        reason: why.clone(),
    };
    let _ = timeout(SEND_WITHIN, transport::send(socket, &msg)).await;
    let _ = timeout(SEND_WITHIN, socket.close(None)).await;
    format!("refused: {why}")
}

impl Driven {
    /// Passes the worker's watermark on to the controller (a worker with no threads
    /// sends no units and holds nothing back).
    fn mark(&mut self, through: u64) {
        if self.count > 0 && through > self.through {
            self.through = through;
            let _ = self
                .events
                .send((self.first, ThreadEvent::Through(through)));
        }
    }

    /// Why the worker is too far behind with its units, if it is.
    fn behind(&self) -> Option<String> {
        let waiting = self.through.saturating_add(1);
        let due = self.origin + Duration::from_secs(waiting) + UNITS_WITHIN;
        (self.count > 0 && Instant::now() > due).then(|| {
            format!(
                "its units for second {waiting} did not all come within {}s",
                UNITS_WITHIN.as_secs()
            )
        })
    }

    /// Handles one message; an error is why the worker is refused.
    fn on_message(&mut self, up: Up) -> Result<Next, String> {
        let run = match &up {
            Up::Ready { run, .. }
            | Up::Failed { run, .. }
            | Up::Unit { run, .. }
            | Up::Event { run, .. }
            | Up::Status { run, .. }
            | Up::Done { run } => *run,
            Up::Hello { .. } => return Err("a second hello".into()),
        };
        if run != self.run {
            return Err("a message of another run (replayed?)".into());
        }
        match up {
            Up::Unit { unit, through, .. } => {
                let delta = wire::decode_unit(&unit, self.requests).map_err(|e| e.to_string())?;
                let now = self.origin.elapsed().as_secs();
                if delta.second > now + 2 {
                    return Err(format!(
                        "a unit for second {}, the run is at second {now}",
                        delta.second
                    ));
                }
                let rps = delta.requests_total() as f64;
                let users = delta.active;
                self.workers.update(self.index, |r| {
                    r.status.requests_per_s = rps;
                    r.status.users = users;
                });
                let _ = self.events.send((self.first, ThreadEvent::Unit(delta)));
                self.mark(through.min(now + 2));
            }
            Up::Event { thread, event, .. } => {
                let thread = thread as usize;
                if thread < self.first || thread >= self.first + self.count {
                    return Err(format!("an event of thread {thread}, not one of its own"));
                }
                let event = match event {
                    Event::Completed(n) => ThreadEvent::Completed(n),
                    Event::NeedTickets { starving } => ThreadEvent::NeedTickets { starving },
                    Event::Returned(n) => ThreadEvent::Returned(n),
                    Event::FeederExhausted { feeder } => {
                        ThreadEvent::End(EndReason::FeederExhausted { feeder })
                    }
                    Event::Stopping { active } => ThreadEvent::Stopping { active },
                };
                let _ = self.events.send((thread, event));
            }
            Up::Status { status, .. } => {
                if let Some(why) = &status.saturated
                    && self.saturated.borrow().is_none()
                {
                    let named = format!("worker `{}`: {why}", self.name);
                    eprintln!("warning: the generator saturated on {named}");
                    self.saturated.send_replace(Some(named));
                }
                self.workers.update(self.index, |r| {
                    r.status.cpu_percent = status.cpu_percent;
                    r.status.lag_p99_ms = status.lag_p99_ms;
                    if status.saturated.is_some() {
                        r.status.saturated = status.saturated;
                    }
                });
            }
            Up::Failed { error, .. } => return Err(error),
            Up::Done { .. } => return Ok(Next::Done),
            Up::Ready { .. } | Up::Hello { .. } => return Err("an unexpected message".into()),
        }
        Ok(Next::Go)
    }

    /// The worker is gone: mark it, and end the run or carry on without it.
    fn lost(self, why: String) {
        let at = self.origin.elapsed().as_secs_f64();
        eprintln!("worker `{}` lost at {at:.1}s: {why}", self.name);
        self.workers.update(self.index, |r| {
            r.state = WorkerState::Lost;
            r.lost = Some((at, why.clone()));
        });
        if self.stop_on_loss {
            let _ = self.control.send(Control::Stop);
        } else {
            // Its users are no longer running anywhere.
            for t in self.first..self.first + self.count {
                let _ = self.events.send((t, ThreadEvent::Stopping { active: 0 }));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_paths_stay_inside_the_plan_folder() {
        assert!(is_plain_relative(Path::new("data/ids.csv")));
        assert!(is_plain_relative(Path::new("./ids.csv")));
        assert!(!is_plain_relative(Path::new("../ids.csv")));
        assert!(!is_plain_relative(Path::new("data/../../x")));
        assert!(!is_plain_relative(Path::new("/etc/passwd")));
    }

    #[test]
    fn the_plan_names_its_environment_variables() {
        let names = crate::compile::env_names("a: ${API_KEY}\nb: ${REGION:-eu} ${API_KEY} ${}");
        assert_eq!(names, ["API_KEY", "REGION"]);
    }
}
