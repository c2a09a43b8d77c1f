//! The dashboard's shared state: the runs it has shown, the current one, and for each
//! run a task that turns engine snapshots into frames (computed once, whatever the
//! number of open pages).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use tokio::sync::{mpsc, oneshot, watch};

use super::{Launcher, LiveRun};
use crate::compile::graph::CompiledPlan;
use crate::engine::control::Control;
use crate::metrics::snapshot::{EndReason, Snapshot};
use crate::report::page::view;

/// One snapshot as the pages get it.
pub(crate) struct Frame {
    /// Bumped when the series restarts (stats reset), so pages drop what they have.
    pub epoch: u64,
    /// The state JSON (everything but the series).
    pub state: String,
    pub snapshot: Arc<Snapshot>,
    /// When the run (or, after a stats reset, the series) started: fixed when the
    /// frame's epoch began, so a report downloaded long after the run says when it ran.
    pub started: SystemTime,
}

/// A run the dashboard shows or has shown.
pub(crate) struct RunEntry {
    pub id: u32,
    pub plan: Arc<CompiledPlan>,
    /// The meta JSON, sent once per page and run.
    pub meta: String,
    pub control: mpsc::UnboundedSender<Control>,
    pub frames: watch::Receiver<Arc<Frame>>,
    /// Publishes a final snapshot from outside the engine's stream ([`Hub::finish_current`]).
    finals: mpsc::UnboundedSender<Arc<Snapshot>>,
}

impl RunEntry {
    /// The latest frame: the snapshot reports are built from, and when it started.
    pub fn latest(&self) -> Arc<Frame> {
        self.frames.borrow().clone()
    }

    pub fn is_running(&self) -> bool {
        self.frames.borrow().snapshot.end == EndReason::Running
    }
}

/// The state every request handler shares.
pub struct Hub {
    pub(crate) token: Option<String>,
    pub(crate) launcher: Option<Arc<dyn Launcher>>,
    /// The plan the page describes while no run has started (interactive mode).
    pub(crate) idle_meta: String,
    runs: Mutex<Vec<Arc<RunEntry>>>,
    current: watch::Sender<Option<Arc<RunEntry>>>,
    closed: watch::Sender<bool>,
    /// A run on many machines: its workers table.
    workers: Mutex<Option<crate::dist::Workers>>,
}

impl Hub {
    pub(crate) fn new(
        token: Option<String>,
        launcher: Option<Arc<dyn Launcher>>,
        plan: Arc<CompiledPlan>,
    ) -> Arc<Hub> {
        let interactive = launcher.is_some();
        Arc::new(Hub {
            token,
            launcher,
            idle_meta: view::meta(&plan, 0, interactive).to_string(),
            runs: Mutex::new(Vec::new()),
            current: watch::Sender::new(None),
            closed: watch::Sender::new(false),
            workers: Mutex::new(None),
        })
    }

    pub(crate) fn interactive(&self) -> bool {
        self.launcher.is_some()
    }

    /// Subscribes to the current run (a page's stream).
    pub(crate) fn subscribe(&self) -> watch::Receiver<Option<Arc<RunEntry>>> {
        self.current.subscribe()
    }

    /// Resolves when the dashboard shuts down (ends the pages' streams).
    pub(crate) fn closed(&self) -> watch::Receiver<bool> {
        self.closed.subscribe()
    }

    pub(crate) fn close(&self) {
        self.closed.send_replace(true);
    }

    pub(crate) fn current(&self) -> Option<Arc<RunEntry>> {
        self.current.borrow().clone()
    }

    pub(crate) fn run(&self, id: u32) -> Option<Arc<RunEntry>> {
        let runs = self.runs.lock().unwrap_or_else(PoisonError::into_inner);
        runs.iter().find(|r| r.id == id).cloned()
    }

    /// Shows a new run and makes it the current one.
    pub(crate) fn add_run(self: &Arc<Self>, run: LiveRun) -> Arc<RunEntry> {
        let mut runs = self.runs.lock().unwrap_or_else(PoisonError::into_inner);
        let id = runs.len() as u32 + 1;
        let first = run.snapshots.borrow().clone();
        let (frames_tx, frames_rx) = watch::channel(Arc::new(Frame {
            epoch: 0,
            state: view::state(&run.plan, &first, None).to_string(),
            started: start_of(&first),
            snapshot: first,
        }));
        let (finals_tx, finals_rx) = mpsc::unbounded_channel();
        let entry = Arc::new(RunEntry {
            id,
            plan: run.plan.clone(),
            meta: view::meta(&run.plan, id, self.interactive()).to_string(),
            control: run.control,
            frames: frames_rx,
            finals: finals_tx,
        });
        runs.push(entry.clone());
        drop(runs);
        tokio::spawn(produce_frames(
            run.plan,
            run.snapshots,
            run.done,
            finals_rx,
            frames_tx,
        ));
        self.current.send_replace(Some(entry.clone()));
        entry
    }

    /// Publishes `snapshot` as the final state of the current run.
    pub(crate) fn show_workers(&self, workers: crate::dist::Workers) {
        *self.workers.lock().unwrap_or_else(PoisonError::into_inner) = Some(workers);
    }

    /// The workers table, empty for a run on one machine.
    pub(crate) fn workers(&self) -> Vec<crate::dist::WorkerRow> {
        let workers = self.workers.lock().unwrap_or_else(PoisonError::into_inner);
        workers.as_ref().map(|w| w.rows()).unwrap_or_default()
    }

    /// The workers as the reports list them, empty for a run on one machine.
    pub(crate) fn worker_reports(&self) -> Vec<crate::report::json::WorkerReport> {
        let workers = self.workers.lock().unwrap_or_else(PoisonError::into_inner);
        workers.as_ref().map(|w| w.report()).unwrap_or_default()
    }

    pub(crate) fn finish_current(&self, snapshot: Arc<Snapshot>) {
        if let Some(run) = self.current() {
            let _ = run.finals.send(snapshot);
        }
    }
}

/// Turns one run's snapshots into frames, until the final snapshot arrives (from
/// `done` or [`Hub::finish_current`]) or the dashboard goes away.
///
/// A run that fails (a thread panicked) ends its snapshot stream without a final
/// snapshot, its last one still saying running. The run is then shown as stopped, so
/// the page does not spin forever and `swarm ui` can start another run.
async fn produce_frames(
    plan: Arc<CompiledPlan>,
    mut snapshots: watch::Receiver<Arc<Snapshot>>,
    done: Option<oneshot::Receiver<Arc<Snapshot>>>,
    mut finals: mpsc::UnboundedReceiver<Arc<Snapshot>>,
    frames: watch::Sender<Arc<Frame>>,
) {
    let mut prev: Option<Arc<Snapshot>> = None;
    let mut epoch = 0u64;
    let mut started = None;
    let mut done = done;
    let mut publish = |snap: Arc<Snapshot>, prev: &mut Option<Arc<Snapshot>>| {
        if let Some(p) = prev.as_ref() {
            let restarted = snap.elapsed < p.elapsed
                || snap.series.last().map(|x| x.t) < p.series.last().map(|x| x.t)
                || count(&snap) < count(p);
            if restarted {
                epoch += 1;
                started = None;
                *prev = None;
            }
        }
        let state = view::state(&plan, &snap, prev.as_deref()).to_string();
        frames.send_replace(Arc::new(Frame {
            epoch,
            state,
            started: *started.get_or_insert_with(|| start_of(&snap)),
            snapshot: snap.clone(),
        }));
        *prev = Some(snap);
    };
    // The last snapshot the engine sent, marked stopped if it still says running.
    let last_ended = |snapshots: &watch::Receiver<Arc<Snapshot>>| {
        Snapshot::ended(snapshots.borrow().clone(), EndReason::Stopped)
    };
    let first = snapshots.borrow_and_update().clone();
    publish(first, &mut prev);
    let mut stream_open = true;
    loop {
        tokio::select! {
            changed = snapshots.changed(), if stream_open => {
                if changed.is_err() {
                    stream_open = false;
                    // Without `done` (`swarm check --ui`), the caller's `finish` may
                    // still come and replace this; meanwhile the run is not running.
                    let running = prev.as_ref().is_some_and(|p| p.end == EndReason::Running);
                    if done.is_none() && running {
                        publish(last_ended(&snapshots), &mut prev);
                    }
                    continue;
                }
                let snap = snapshots.borrow_and_update().clone();
                publish(snap, &mut prev);
            }
            final_snap = async {
                match done.as_mut() {
                    Some(rx) => rx.await,
                    None => std::future::pending().await,
                }
            }, if done.is_some() => {
                // A dropped sender: the run failed without a final snapshot.
                let snap = final_snap.unwrap_or_else(|_| last_ended(&snapshots));
                publish(snap, &mut prev);
                break;
            }
            final_snap = finals.recv() => {
                if let Some(snap) = final_snap {
                    publish(snap, &mut prev);
                }
                break;
            }
        }
    }
}

/// When the run of a snapshot just received started. Only right while the snapshot is
/// fresh: later, "now" is no longer the moment it was taken.
fn start_of(snap: &Snapshot) -> SystemTime {
    SystemTime::now()
        .checked_sub(snap.elapsed)
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// Requests so far, without merging histograms.
fn count(snap: &Snapshot) -> u64 {
    snap.requests.iter().map(|r| r.count).sum()
}
