//! Scheduling: the controller that runs a plan's load model and the threads
//! that carry it out.
//!
//! The controller is one task on the caller's runtime. It follows the load shape
//! (closed: a user count over time; open: an arrival rate), takes [`Control`]
//! messages, merges the threads' deltas into the [`Aggregator`], publishes a
//! [`Snapshot`] about every second, and decides when the run ends. Threads (see
//! `thread`) run the users; they talk to the controller only through channels.

pub mod closed;
pub mod open;
pub(crate) mod thread;
pub mod weights;

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, mpsc, watch};
use tokio::time::sleep_until;

use self::closed::UsersCurve;
use self::open::RateCurve;
use self::thread::{ThreadCmd, ThreadModel, ThreadSetup};
use self::weights::FlowTable;
use super::RunError;
use super::control::Control;
use super::feeder::Feeders;
use super::session::Protocols;
use crate::compile::graph::{CompiledPlan, LoadModel};
use crate::metrics::aggregate::{Aggregator, Delta};
use crate::metrics::generator::GeneratorMonitor;
use crate::metrics::snapshot::{EndReason, Snapshot};

/// How long users get, once the run ends, to finish their in-flight request and
/// their teardown; what still runs after it is abandoned and not recorded.
pub const GRACE: Duration = Duration::from_secs(5);

/// How often the controller steers the closed model's user count.
const STEER_EVERY: Duration = Duration::from_millis(50);

/// How long after a whole second the controller publishes it (threads flush on the
/// second; this leaves their deltas time to arrive).
const PUBLISH_DELAY: Duration = Duration::from_millis(250);

/// What the controller and every thread share: atomics, and the end request.
#[derive(Debug)]
pub(crate) struct RunShared {
    /// When the run started: elapsed time, arrival times and flush seconds count from here.
    pub origin: Instant,
    /// `iterations`: the run-wide iteration limit.
    pub iterations: Option<u64>,
    /// Iterations handed out so far (only under `iterations`).
    pub issued: AtomicU64,
    /// Iterations completed so far (only under `iterations`).
    pub completed: AtomicU64,
    end: Mutex<Option<EndReason>>,
    end_notify: Notify,
}

impl RunShared {
    /// Asks the controller to end the run; the first reason wins.
    pub fn request_end(&self, reason: EndReason) {
        let mut end = self.end.lock().unwrap_or_else(|e| e.into_inner());
        if end.is_none() {
            *end = Some(reason);
            self.end_notify.notify_one();
        }
    }

    #[cfg(test)]
    pub(crate) fn for_tests() -> RunShared {
        RunShared {
            origin: Instant::now(),
            iterations: None,
            issued: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            end: Mutex::new(None),
            end_notify: Notify::new(),
        }
    }

    fn end_reason(&self) -> Option<EndReason> {
        self.end.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// What a thread publishes to the controller without a message.
#[derive(Debug, Default)]
pub(crate) struct ThreadShared {
    /// Closed: users running; open: iterations running.
    pub active: AtomicU32,
}

struct ThreadLink {
    cmds: mpsc::UnboundedSender<ThreadCmd>,
    shared: Arc<ThreadShared>,
    recycle: std::sync::mpsc::Sender<Delta>,
    thread: Option<std::thread::JoinHandle<()>>,
}

enum Shape {
    Closed {
        curve: UsersCurve,
        sent: Option<u32>,
    },
    Open {
        curve: RateCurve,
    },
}

/// The controller of one run.
pub(crate) struct Controller {
    run: Arc<RunShared>,
    planned: Option<Duration>,
    shape: Shape,
    links: Vec<ThreadLink>,
    deltas: mpsc::UnboundedReceiver<(usize, Delta)>,
    control: mpsc::UnboundedReceiver<Control>,
    snapshots: watch::Sender<Arc<Snapshot>>,
    agg: Aggregator,
    monitor: GeneratorMonitor,
}

/// Starts the threads and returns the controller, ready to [`Controller::run`].
pub(crate) fn launch(
    plan: Arc<CompiledPlan>,
    protocols: Protocols,
    feeders: Arc<Feeders>,
    threads: usize,
    control: mpsc::UnboundedReceiver<Control>,
    snapshots: watch::Sender<Arc<Snapshot>>,
) -> Result<Controller, RunError> {
    let planned = plan.load.total_duration();
    let run = Arc::new(RunShared {
        origin: Instant::now(),
        iterations: plan.load.iterations,
        issued: AtomicU64::new(0),
        completed: AtomicU64::new(0),
        end: Mutex::new(None),
        end_notify: Notify::new(),
    });
    let weights: Vec<u32> = plan.flows.iter().map(|f| f.weight).collect();
    let flows = Arc::new(FlowTable::new(&weights));
    let (shape, threads) = match &plan.load.model {
        LoadModel::Closed(load) => (
            Shape::Closed {
                curve: UsersCurve::new(load),
                sent: None,
            },
            threads,
        ),
        LoadModel::Open(open) => (
            Shape::Open {
                curve: RateCurve::new(&open.rate),
            },
            threads.min(open.max_users.max(1) as usize),
        ),
    };
    let (delta_tx, delta_rx) = mpsc::unbounded_channel();
    let mut links: Vec<ThreadLink> = Vec::with_capacity(threads);
    for index in 0..threads {
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (recycle_tx, recycle_rx) = std::sync::mpsc::channel();
        let shared = Arc::new(ThreadShared::default());
        let model = match &plan.load.model {
            LoadModel::Closed(_) => ThreadModel::Closed,
            LoadModel::Open(open) => {
                let (base, extra) = (
                    open.max_users / threads as u32,
                    open.max_users % threads as u32,
                );
                ThreadModel::Open {
                    curve: RateCurve::new(&open.rate),
                    max_users: base + u32::from((index as u32) < extra),
                    end: planned.map(|d| d.as_secs_f64()),
                }
            }
        };
        let setup = ThreadSetup {
            index,
            threads,
            plan: plan.clone(),
            protocols: protocols.clone(),
            feeders: feeders.clone(),
            run: run.clone(),
            shared: shared.clone(),
            flows: flows.clone(),
            model,
            cmds: cmd_rx,
            deltas: delta_tx.clone(),
            recycled: recycle_rx,
        };
        let thread = match thread::spawn(setup) {
            Ok(t) => t,
            Err(e) => {
                // Stop the threads already started before reporting.
                for l in &links {
                    let _ = l.cmds.send(ThreadCmd::Stop);
                }
                return Err(RunError::Thread(e));
            }
        };
        links.push(ThreadLink {
            cmds: cmd_tx,
            shared,
            recycle: recycle_tx,
            thread: Some(thread),
        });
    }
    Ok(Controller {
        run,
        planned,
        shape,
        links,
        deltas: delta_rx,
        control,
        snapshots,
        agg: Aggregator::new(plan.requests.len()),
        monitor: GeneratorMonitor::new(threads),
    })
}

impl Controller {
    /// Runs the run to its end and returns the final snapshot.
    pub(crate) async fn run(mut self) -> Result<Arc<Snapshot>, RunError> {
        let origin = tokio::time::Instant::from_std(self.run.origin);
        let end_at = self.planned.map(|d| origin + d);
        let mut second = 1u64;
        let mut steer = tokio::time::interval(STEER_EVERY);
        steer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let closed = matches!(self.shape, Shape::Closed { .. });
        let mut control_open = true;
        let run = self.run.clone();
        let reason = loop {
            let publish_at = origin + Duration::from_secs(second) + PUBLISH_DELAY;
            tokio::select! {
                biased;
                msg = self.control.recv(), if control_open => match msg {
                    Some(Control::Stop) => break EndReason::Stopped,
                    Some(Control::Interrupt) => break EndReason::Interrupted,
                    Some(msg) => self.apply(msg),
                    None => control_open = false,
                },
                _ = run.end_notify.notified() => {
                    if let Some(reason) = run.end_reason() {
                        break reason;
                    }
                }
                _ = sleep_until(end_at.unwrap_or(publish_at)), if end_at.is_some() => {
                    break EndReason::Completed;
                }
                delta = self.deltas.recv() => match delta {
                    Some((thread, delta)) => self.merge(thread, delta),
                    // Every thread is gone before being told to stop: one panicked.
                    // `finish` reports it when joining the threads.
                    None => break EndReason::Stopped,
                },
                _ = steer.tick(), if closed => self.steer(),
                _ = sleep_until(publish_at) => {
                    self.publish(second);
                    let now = self.elapsed().as_secs();
                    second = (second + 1).max(now);
                }
            }
        };
        // The run ended now (or exactly at its planned end): requests that finish
        // while the users drain are counted, but the drain is not run time.
        let ended = match (reason.clone(), self.planned) {
            (EndReason::Completed, Some(planned)) => planned.min(self.elapsed()),
            _ => self.elapsed(),
        };
        self.finish(reason, ended).await
    }

    fn elapsed(&self) -> Duration {
        self.run.origin.elapsed()
    }

    fn broadcast(&self, cmd: ThreadCmd) {
        for l in &self.links {
            let _ = l.cmds.send(cmd.clone());
        }
    }

    fn apply(&mut self, msg: Control) {
        let now = self.elapsed();
        match msg {
            Control::SetUsers { users, spawn_rate } => {
                if let Shape::Closed { curve, .. } = &mut self.shape {
                    *curve = curve.steer(now, users, spawn_rate);
                    self.steer();
                }
            }
            Control::SetRate { rate } => {
                if let Shape::Open { curve } = &mut self.shape {
                    curve.set_rate(now, rate);
                    self.broadcast(ThreadCmd::SetRate { at: now, rate });
                }
            }
            Control::ResetStats => {
                self.agg.reset(now);
                self.monitor.reset();
                self.broadcast(ThreadCmd::Reset(self.agg.epoch()));
            }
            Control::Stop | Control::Interrupt => {}
        }
    }

    /// Closed model: tells the threads the user count the curve wants now.
    fn steer(&mut self) {
        let now = self.elapsed();
        if let Shape::Closed { curve, sent } = &mut self.shape {
            let target = curve.target_at(now);
            if *sent != Some(target) {
                *sent = Some(target);
                for l in &self.links {
                    let _ = l.cmds.send(ThreadCmd::SetUsers(target));
                }
            }
        }
    }

    fn merge(&mut self, thread: usize, delta: Delta) {
        self.agg.merge(&delta);
        if let Some(l) = self.links.get(thread) {
            let _ = l.recycle.send(delta);
        }
    }

    fn active(&self) -> u32 {
        self.links
            .iter()
            .map(|l| l.shared.active.load(Ordering::Relaxed))
            .sum()
    }

    fn render(&mut self, upto: u64, end: EndReason) -> Snapshot {
        let now = self.elapsed();
        self.render_at(now, upto, end)
    }

    fn render_at(&mut self, now: Duration, upto: u64, end: EndReason) -> Snapshot {
        let mut snap = self.agg.snapshot(now, self.planned, upto);
        snap.end = end;
        snap.active_users = self.active();
        match &self.shape {
            Shape::Closed { curve, .. } => snap.target_users = curve.target_at(now),
            Shape::Open { curve } => snap.target_rate = Some(curve.rate_at(now)),
        }
        let offset = self.agg.offset();
        let (interval, total) = self.agg.take_lag();
        snap.generator = self
            .monitor
            .sample(now.saturating_sub(offset), &interval, total);
        snap
    }

    fn publish(&mut self, second: u64) {
        let active = self.active();
        self.agg.close_second(second, active);
        let snap = self.render(second, EndReason::Running);
        self.snapshots.send_replace(Arc::new(snap));
    }

    /// Stops the threads, waits for their last deltas, and renders the final snapshot.
    async fn finish(
        mut self,
        reason: EndReason,
        ended: Duration,
    ) -> Result<Arc<Snapshot>, RunError> {
        // The last series point shows the users as the run ended, not after the drain.
        let active_at_end = self.active();
        self.broadcast(ThreadCmd::Stop);
        // Threads drop their delta senders when they exit; allow the grace period
        // plus a margin for the final flush.
        let deadline = tokio::time::Instant::now() + GRACE + Duration::from_secs(2);
        loop {
            tokio::select! {
                d = self.deltas.recv() => match d {
                    Some((thread, delta)) => self.merge(thread, delta),
                    None => break,
                },
                _ = sleep_until(deadline) => break,
            }
        }
        let threads: Vec<_> = self
            .links
            .iter_mut()
            .filter_map(|l| l.thread.take())
            .collect();
        let panicked = tokio::task::spawn_blocking(move || {
            threads.into_iter().map(|t| t.join()).any(|r| r.is_err())
        })
        .await
        .unwrap_or(true);
        if panicked {
            return Err(RunError::ThreadPanicked);
        }
        self.agg.finish(ended, active_at_end);
        let snap = Arc::new(self.render_at(ended, u64::MAX, reason));
        self.snapshots.send_replace(snap.clone());
        Ok(snap)
    }
}
