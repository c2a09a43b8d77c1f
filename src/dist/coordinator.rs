//! The coordinator's admission: it listens for workers, checks each one's handshake
//! (token, protocol version, hello), waits for `--workers N` of them, sends each the
//! plan and its part, waits until every one proved by fingerprint that it compiled
//! the same plan, and starts them together on a common origin. From then on each
//! worker is relayed by its own task (`super::relay`).
//!
//! The other workers are served all along: connections are handled by tasks of their
//! own, a handshake has a deadline and a cap on how many run at once, and a worker that
//! comes once the run is set is refused with a sentence.

use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::timeout;

use super::proto::{Down, PlanMsg, RunId, Up};
use super::relay::{Driven, drive};
use super::transport::{self, Incoming, Socket};
use super::{OnLoss, WorkerRow, WorkerState, Workers};

pub use super::relay::{LOSS_AFTER, UNITS_WITHIN};
use crate::compile::CompileOptions;
use crate::compile::graph::CompiledPlan;
use crate::engine::remote::RunClock;
use crate::engine::{RunError, RunHandle};

/// How far ahead of the start message the run's origin lies: the workers' barrier.
const START_IN: Duration = Duration::from_millis(1500);
/// How long workers have to compile the plan and answer.
const READY_WITHIN: Duration = Duration::from_secs(60);
/// Handshakes running at once; more connections wait their turn.
const HANDSHAKES: usize = 32;
/// A send to a worker that takes longer than this (it stopped reading) loses it.
pub(super) const SEND_WITHIN: Duration = Duration::from_secs(5);

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
