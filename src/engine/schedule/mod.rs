//! Scheduling: the controller that runs a plan's load model and the threads
//! that carry it out.
//!
//! The controller is one task on the caller's runtime. It follows the load shape
//! (closed: a user count over time; open: an arrival rate), takes [`Control`]
//! messages, merges the threads' deltas into the [`Aggregator`], publishes a
//! [`Snapshot`] about every second, and decides when the run ends. Threads (see
//! `thread`) run the users; they talk to the controller only through channels.

pub mod closed;
mod marks;
pub mod open;
pub(crate) mod thread;
mod tickets;
pub mod weights;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::sleep_until;

use self::closed::UsersCurve;
use self::marks::Watermarks;
use self::open::RateCurve;
use self::thread::{ThreadModel, ThreadSetup};
use self::tickets::{Sends, Tickets};
use self::weights::FlowTable;
use super::RunError;
use super::control::Control;
use super::feeder::Feeders;
use super::link::{Events, RunClock, ThreadCmd, ThreadEvent};
use super::session::Protocols;
use crate::compile::graph::{CompiledPlan, LoadModel};
use crate::metrics::aggregate::Aggregator;
use crate::metrics::capacity::CapacityReport;
use crate::metrics::delta::Delta;
use crate::metrics::generator::GeneratorMonitor;
use crate::metrics::snapshot::{EndReason, Snapshot};
use crate::metrics::window::WindowJudge;

/// How long users get, once the run ends, to finish their in-flight request and
/// their teardown; what still runs after it is abandoned and not recorded.
pub const GRACE: Duration = Duration::from_secs(5);

/// How often the controller steers the closed model's user count.
const STEER_EVERY: Duration = Duration::from_millis(50);

/// How long after a whole second the controller publishes a snapshot (threads flush
/// on the second; this leaves their deltas time to arrive). The second itself is
/// final once every source sent all its units for it, which may be later.
const PUBLISH_DELAY: Duration = Duration::from_millis(250);

/// How many seconds a second waits, at most, for a source of units that has not
/// passed it (a stuck thread). Then it is final without that source's unit, which,
/// if it comes, counts in the totals only (and a warning says so). Machines are
/// declared lost well before (`dist::coordinator::UNITS_WITHIN`).
pub(crate) const FINAL_WITHIN_S: u64 = 15;

/// The controller's end of one thread: its commands, where its emptied units go back
/// for reuse, what it last said about its users, and the thread itself (none when the
/// thread runs on another machine).
pub(crate) struct ThreadLink {
    pub cmds: mpsc::UnboundedSender<ThreadCmd>,
    pub recycle: std::sync::mpsc::Sender<Delta>,
    /// Users (closed) or iterations (open) running, as of the thread's last report.
    active: u32,
    pub thread: Option<std::thread::JoinHandle<()>>,
}

/// Which of a run's threads one process runs: `count` threads from the run-wide
/// index `first`, of `total` in the whole run. Users, arrivals and the pool are
/// shared by run-wide index, so the parts of a run on many machines add up exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Part {
    pub first: usize,
    pub count: usize,
    pub total: usize,
}

/// The threads a run of `plan` uses when `threads` are available: the open model
/// uses no more threads than `max_users` (each thread owns a share of the pool).
pub(crate) fn thread_count(plan: &CompiledPlan, threads: usize) -> usize {
    match &plan.load.model {
        LoadModel::Closed(_) => threads,
        LoadModel::Open(open) => threads.min(open.max_users.max(1) as usize),
    }
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
    clock: RunClock,
    planned: Option<Duration>,
    shape: Shape,
    links: Vec<ThreadLink>,
    /// `iterations`: the tickets.
    tickets: Option<Tickets>,
    events: mpsc::UnboundedReceiver<(usize, ThreadEvent)>,
    control: mpsc::UnboundedReceiver<Control>,
    snapshots: watch::Sender<Arc<Snapshot>>,
    agg: Aggregator,
    monitor: GeneratorMonitor,
    /// A capacity search's record, as the session last sent it.
    search: Option<Arc<CapacityReport>>,
    /// Threads on other machines: their generator verdict (naming the machine).
    saturated: Option<watch::Receiver<Option<String>>>,
    /// How far every source of units got: what may be finalised.
    marks: Watermarks,
    /// The last second published (a snapshot sent after its end).
    published: u64,
    /// The units that came after their second was final, as last warned about.
    late_warned: u64,
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
    let clock = RunClock::now();
    let threads = thread_count(&plan, threads);
    let (event_tx, event_rx) = mpsc::unbounded_channel();
    let part = Part {
        first: 0,
        count: threads,
        total: threads,
    };
    let links = spawn_threads(&plan, &protocols, &feeders, part, clock, &event_tx)?;
    drop(event_tx);
    let ends = ControllerEnds {
        events: event_rx,
        control,
        snapshots,
    };
    let marks = Watermarks::threads(links.len());
    Ok(Controller::new(&plan, clock, links, ends, None, marks))
}

/// Starts the threads `part` names, on this machine.
pub(crate) fn spawn_threads(
    plan: &Arc<CompiledPlan>,
    protocols: &Protocols,
    feeders: &Arc<Feeders>,
    part: Part,
    clock: RunClock,
    events: &Events,
) -> Result<Vec<ThreadLink>, RunError> {
    let planned = plan.load.total_duration();
    let threads = part.total;
    let weights: Vec<u32> = plan.flows.iter().map(|f| f.weight).collect();
    let flows = Arc::new(FlowTable::new(&weights));
    let mut links: Vec<ThreadLink> = Vec::with_capacity(part.count);
    for index in part.first..part.first + part.count {
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (recycle_tx, recycle_rx) = std::sync::mpsc::channel();
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
            clock,
            limited: plan.load.iterations.is_some(),
            flows: flows.clone(),
            model,
            cmds: cmd_rx,
            events: events.clone(),
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
            recycle: recycle_tx,
            active: 0,
            thread: Some(thread),
        });
    }
    Ok(links)
}

/// The controller's ends of the channels of a run: the threads' events, the control
/// messages, and where snapshots go.
pub(crate) struct ControllerEnds {
    pub events: mpsc::UnboundedReceiver<(usize, ThreadEvent)>,
    pub control: mpsc::UnboundedReceiver<Control>,
    pub snapshots: watch::Sender<Arc<Snapshot>>,
}

/// A controller for threads that run on other machines, each machine `count` threads
/// from run-wide index `first` (`parts`): its links carry the commands to channels
/// whose receiving ends are returned, for a transport to carry. Each machine sends
/// its units and its watermark under its first thread. `saturated` is the generator
/// verdict of those machines (the controller's own CPU says nothing about them).
pub(crate) fn remote(
    plan: &Arc<CompiledPlan>,
    parts: &[(usize, usize)],
    clock: RunClock,
    ends: ControllerEnds,
    saturated: watch::Receiver<Option<String>>,
) -> (Controller, Vec<mpsc::UnboundedReceiver<ThreadCmd>>) {
    let total: usize = parts.iter().map(|(_, n)| n).sum();
    let mut receivers = Vec::with_capacity(total);
    let links = (0..total)
        .map(|_| {
            let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
            receivers.push(cmd_rx);
            ThreadLink {
                cmds: cmd_tx,
                // Units from other machines are decoded, not reused.
                recycle: std::sync::mpsc::channel().0,
                active: 0,
                thread: None,
            }
        })
        .collect();
    let marks = Watermarks::machines(parts, total);
    let controller = Controller::new(plan, clock, links, ends, Some(saturated), marks);
    (controller, receivers)
}

impl Controller {
    fn new(
        plan: &CompiledPlan,
        clock: RunClock,
        links: Vec<ThreadLink>,
        ends: ControllerEnds,
        saturated: Option<watch::Receiver<Option<String>>>,
        marks: Watermarks,
    ) -> Controller {
        let shape = match &plan.load.model {
            LoadModel::Closed(load) => Shape::Closed {
                curve: UsersCurve::new(load),
                sent: None,
            },
            LoadModel::Open(open) => Shape::Open {
                curve: RateCurve::new(&open.rate),
            },
        };
        let threads = links.len();
        let mut tickets = plan.load.iterations.map(|n| Tickets::new(n, threads));
        let first = tickets.as_mut().map(Tickets::start).unwrap_or_default();
        let mut agg = Aggregator::new(plan.requests.len());
        // A search judges every line on each step's hold instead (`run::search`): a
        // failing step is what it looks for, not a reason to stop.
        if plan.load.search.is_none()
            && let Some(judge) = WindowJudge::new(plan)
        {
            agg.judge_windows(judge);
        }
        let controller = Controller {
            clock,
            planned: plan.load.total_duration(),
            shape,
            links,
            tickets,
            events: ends.events,
            control: ends.control,
            snapshots: ends.snapshots,
            agg,
            // Threads on other machines: the monitor judges this process's CPU
            // against its own cores, and the machines' verdict replaces it.
            monitor: GeneratorMonitor::new(if saturated.is_some() {
                usize::MAX
            } else {
                threads
            }),
            saturated,
            search: None,
            marks,
            published: 0,
            late_warned: 0,
        };
        controller.send(first);
        controller
    }

    /// Runs the run to its end and returns the final snapshot. A run whose origin
    /// lies ahead (threads on other machines start together then) waits for it.
    pub(crate) async fn run(mut self) -> Result<Arc<Snapshot>, RunError> {
        let origin = tokio::time::Instant::from_std(self.clock.origin);
        sleep_until(origin).await;
        let end_at = self.planned.map(|d| origin + d);
        let mut second = 1u64;
        let mut steer = tokio::time::interval(STEER_EVERY);
        steer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let closed = matches!(self.shape, Shape::Closed { .. });
        let mut control_open = true;
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
                _ = sleep_until(end_at.unwrap_or(publish_at)), if end_at.is_some() => {
                    break EndReason::Completed;
                }
                event = self.events.recv() => match event {
                    Some((thread, event)) => {
                        if let Some(reason) = self.on_event(thread, event) {
                            break reason;
                        }
                    }
                    // Every thread is gone before being told to stop: one panicked.
                    // `finish` reports it when joining the threads.
                    None => break EndReason::Stopped,
                },
                _ = steer.tick(), if closed => self.steer(),
                _ = sleep_until(publish_at) => {
                    if let Some(reason) = self.publish(second) {
                        break reason;
                    }
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
        self.clock.origin.elapsed()
    }

    fn send(&self, sends: Sends) {
        for (thread, cmd) in sends {
            if let Some(l) = self.links.get(thread) {
                let _ = l.cmds.send(cmd);
            }
        }
    }

    /// Handles what a thread said; returns why the run must end, if it must.
    fn on_event(&mut self, thread: usize, event: ThreadEvent) -> Option<EndReason> {
        match event {
            ThreadEvent::Second(delta) => {
                self.marks.unit(thread, delta.second);
                self.merge(thread, delta);
                return self.seal();
            }
            ThreadEvent::Unit(unit) => {
                self.agg.merge_unit(&unit);
                if let Some(l) = self.links.get_mut(thread) {
                    l.active = unit.active;
                }
                return self.seal();
            }
            ThreadEvent::Through(second) => {
                self.marks.through(thread, second);
                return self.seal();
            }
            ThreadEvent::Completed(n) => {
                if self.tickets.as_mut().is_some_and(|t| t.completed(n)) {
                    return Some(EndReason::IterationsDone);
                }
            }
            ThreadEvent::NeedTickets { starving } => {
                if let Some(t) = self.tickets.as_mut() {
                    let sends = t.need(thread, starving);
                    self.send(sends);
                }
            }
            ThreadEvent::Returned(n) => {
                if let Some(t) = self.tickets.as_mut() {
                    let sends = t.returned(n);
                    self.send(sends);
                }
            }
            ThreadEvent::End(reason) => return Some(reason),
            ThreadEvent::Stopping { active } => {
                if let Some(l) = self.links.get_mut(thread) {
                    l.active = active;
                }
            }
        }
        None
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
            Control::Search(record) => self.search = Some(record),
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
        let active = delta.active;
        let back = self.agg.merge_owned(delta);
        if let Some(l) = self.links.get_mut(thread) {
            l.active = active;
            if let Some(back) = back {
                let _ = l.recycle.send(back);
            }
        }
    }

    /// Users (closed) or iterations (open) running, as the threads last reported.
    fn active(&self) -> u32 {
        self.links.iter().map(|l| l.active).sum()
    }

    fn render(&mut self, end: EndReason) -> Snapshot {
        let now = self.elapsed();
        self.render_at(now, end)
    }

    fn render_at(&mut self, now: Duration, end: EndReason) -> Snapshot {
        let mut snap = self.agg.snapshot(now, self.planned);
        snap.end = end;
        snap.search = self.search.clone();
        snap.active_users = self.active();
        match &self.shape {
            Shape::Closed { curve, .. } => snap.target_users = curve.target_at(now),
            Shape::Open { curve } => snap.target_rate = Some(curve.rate_at(now)),
        }
        let offset = self.agg.offset();
        let (interval, total) = self.agg.lag();
        snap.generator = self
            .monitor
            .sample(now.saturating_sub(offset), interval, total);
        self.agg.lag_sampled();
        if let Some(remote) = &self.saturated {
            snap.generator.saturated = remote.borrow().clone();
        }
        snap
    }

    /// `second` is over: a snapshot with the seconds that are final by now. Returns
    /// why the run must end, if an aborting SLO line failed.
    fn publish(&mut self, second: u64) -> Option<EndReason> {
        let active = self.active();
        self.agg.close_second(second, active);
        self.published = self.published.max(second);
        let complete = self.marks.complete();
        let mut through = complete.min(second);
        if second > complete.saturating_add(FINAL_WITHIN_S) {
            // A source is stuck: its seconds cannot wait for it forever.
            through = second - FINAL_WITHIN_S;
            if self.agg.finalized() < through {
                tracing::warn!(second = through, "finalised without a stuck thread's unit");
            }
        }
        self.agg.seal(through);
        self.warn_late();
        let snap = self.render(EndReason::Running);
        self.snapshots.send_replace(Arc::new(snap));
        self.agg.aborted()
    }

    /// Finalises the published seconds every source has now passed, and publishes
    /// them at once rather than at the next second.
    fn seal(&mut self) -> Option<EndReason> {
        let through = self.marks.complete().min(self.published);
        if through <= self.agg.finalized() {
            return None;
        }
        self.agg.seal(through);
        let snap = self.render(EndReason::Running);
        self.snapshots.send_replace(Arc::new(snap));
        self.agg.aborted()
    }

    /// Says once more whenever units came after their second was final.
    fn warn_late(&mut self) {
        let late = self.agg.late();
        if late > self.late_warned {
            eprintln!(
                "warning: {late} requests were measured in seconds already final (a thread \
                 {FINAL_WITHIN_S} s behind): they count in the totals, not in the per-second series"
            );
            self.late_warned = late;
        }
    }

    /// Stops the threads, waits for their last deltas, and renders the final snapshot.
    async fn finish(
        mut self,
        reason: EndReason,
        ended: Duration,
    ) -> Result<Arc<Snapshot>, RunError> {
        self.broadcast(ThreadCmd::Stop);
        // The last series point shows the users as the run ended, not after the
        // drain: each thread tells how many it had when the stop reached it.
        let mut at_stop: Vec<Option<u32>> = vec![None; self.links.len()];
        // Threads drop their event senders when they exit; allow the grace period
        // plus a margin for the final flush.
        let deadline = tokio::time::Instant::now() + GRACE + Duration::from_secs(2);
        loop {
            tokio::select! {
                event = self.events.recv() => match event {
                    Some((thread, ThreadEvent::Second(delta))) => self.merge(thread, delta),
                    Some((_, ThreadEvent::Unit(unit))) => self.agg.merge_unit(&unit),
                    Some((thread, ThreadEvent::Stopping { active })) => {
                        if let Some(a) = at_stop.get_mut(thread) {
                            *a = Some(active);
                        }
                    }
                    // The run is over: tickets and end requests no longer matter.
                    Some(_) => {}
                    None => break,
                },
                _ = sleep_until(deadline) => break,
            }
        }
        let active_at_end = at_stop.iter().flatten().sum();
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
        self.warn_late();
        let snap = Arc::new(self.render_at(ended, reason));
        self.snapshots.send_replace(snap.clone());
        Ok(snap)
    }
}
