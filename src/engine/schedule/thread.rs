//! An engine thread: one current-thread tokio runtime with a `LocalSet`, running its
//! share of the virtual users as local tasks, one [`Recorder`] they all share, and a
//! loop that follows the controller's commands, starts open-model arrivals on time,
//! flushes a delta to the aggregator on every whole second of the run, and probes
//! its own scheduling lag. It shares no memory with the controller: run-wide state
//! (tickets, completions, active users, the end) goes through `engine::link`.
//!
//! Users are spread over threads round-robin: closed-model user `u` lives on thread
//! `u % threads`; open-model arrival `k` is started by thread `k % threads`, which
//! owns `max_users / threads` of the pool (the remainder going to the first threads).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio::time::{Instant, sleep_until};

use super::GRACE;
use super::open::RateCurve;
use super::weights::FlowTable;
use crate::compile::graph::CompiledPlan;
use crate::engine::deadline;
use crate::engine::feeder::Feeders;
use crate::engine::link::{Events, RunClock, ThreadCmd, ThreadState};
use crate::engine::recorder::Recorder;
use crate::engine::session::Protocols;
use crate::engine::user::{User, UserEnv, UserSignal, closed_user, pooled_iteration, retire};
use crate::metrics::delta::{Delta, second_start_unix_ms};

/// How often a thread probes its own event loop for lag.
const PROBE: Duration = Duration::from_millis(20);

/// The most overdue arrivals started at once when the run stops.
const MAX_BACKLOG: usize = 10_000;
/// Overdue arrivals started in one go before the thread looks at its commands again.
const BATCH: usize = 63;

/// A deadline that never comes (about a year away).
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(365 * 24 * 3600)
}

/// The load model as a thread sees it.
#[derive(Debug)]
pub(crate) enum ThreadModel {
    Closed,
    Open {
        curve: RateCurve,
        /// This thread's share of `max_users`.
        max_users: u32,
        /// No arrival at or after this many seconds since the origin.
        end: Option<f64>,
    },
}

/// Everything a thread needs.
pub(crate) struct ThreadSetup {
    pub index: usize,
    pub threads: usize,
    pub plan: Arc<CompiledPlan>,
    pub protocols: Protocols,
    pub feeders: Arc<Feeders>,
    pub clock: RunClock,
    /// `iterations` is set: iterations need tickets.
    pub limited: bool,
    pub flows: Arc<FlowTable>,
    pub model: ThreadModel,
    pub cmds: mpsc::UnboundedReceiver<ThreadCmd>,
    pub events: Events,
    pub recycled: std::sync::mpsc::Receiver<Delta>,
}

/// Starts the thread.
pub(crate) fn spawn(setup: ThreadSetup) -> std::io::Result<std::thread::JoinHandle<()>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name(format!("swarm-thread-{}", setup.index))
        .spawn(move || {
            let local = tokio::task::LocalSet::new();
            local.block_on(&rt, run(setup));
            // Tasks still running past the grace period are abandoned here, inside
            // the runtime, so their connections close cleanly.
            let _guard = rt.enter();
            drop(local);
        })
}

async fn run(w: ThreadSetup) {
    let ThreadSetup {
        index,
        threads,
        plan,
        protocols,
        feeders,
        clock,
        limited,
        flows,
        model,
        mut cmds,
        events,
        recycled,
    } = w;
    // The requests' timeouts on this thread: one list and one timer for all of them.
    tokio::task::spawn_local(deadline::sweeper());
    let requests = plan.requests.len();
    let origin = Instant::from_std(clock.origin);
    let env = Rc::new(UserEnv {
        plan,
        protocols,
        feeders,
        recorder: RefCell::new(Recorder::new(requests, recycled)),
        state: ThreadState::new(index, events, limited),
        halt: Cell::new(false),
        halt_notify: Notify::new(),
        live: Cell::new(0),
        drained: Notify::new(),
    });
    let mut flush = Flusher {
        epoch: 0,
        second: Instant::now().duration_since(origin).as_secs() + 1,
        origin,
        wall: clock.wall,
    };
    let mut closed: Vec<Rc<UserSignal>> = Vec::new();
    let mut open = match model {
        ThreadModel::Closed => None,
        ThreadModel::Open {
            curve,
            max_users,
            end,
        } => Some(OpenPool {
            curve,
            end,
            next: Some(index as u64),
            stride: threads as u64,
            cap: max_users,
            users: 0,
            next_user: index as u32,
            user_stride: threads as u32,
            idle: Rc::new(RefCell::new(
                (0..env.plan.flows.len()).map(|_| Vec::new()).collect(),
            )),
            busy: Rc::new(Cell::new(0)),
            starved: false,
        }),
    };
    // The timers live across loop turns and are reset, not rebuilt, when they fire.
    let mut probe_at = Instant::now() + PROBE;
    let probe = sleep_until(probe_at);
    let flush_timer = sleep_until(flush.due());
    let arrival_timer = sleep_until(probe_at);
    tokio::pin!(probe, flush_timer, arrival_timer);
    loop {
        let arrival = open.as_ref().and_then(|o| o.next_due(origin));
        if let Some(at) = arrival
            && arrival_timer.deadline() != at
        {
            arrival_timer.as_mut().reset(at);
        }
        // Commands first (a Stop must never starve behind a backlog of arrivals),
        // then the once-a-second flush, then arrivals, then the lag probe.
        tokio::select! {
            biased;
            cmd = cmds.recv() => match cmd {
                Some(ThreadCmd::SetUsers(n)) => {
                    set_users(&env, &flows, &mut closed, n, index, threads);
                }
                Some(ThreadCmd::SetRate { at, rate }) => {
                    if let Some(o) = open.as_mut() {
                        o.curve.set_rate(at, rate);
                    }
                }
                Some(ThreadCmd::Reset(epoch)) => {
                    flush.epoch = epoch;
                    env.recorder.borrow_mut().clear();
                }
                Some(cmd @ (ThreadCmd::Tickets(_) | ThreadCmd::LastCall | ThreadCmd::Reclaim)) => {
                    env.state.tickets(&cmd);
                    // Arrivals held for want of a ticket go on (the next turn).
                    if let Some(o) = open.as_mut() {
                        o.starved = false;
                    }
                }
                Some(ThreadCmd::Stop) | None => {
                    env.state.stopping();
                    // Arrivals that were due before the stop still start.
                    if let Some(o) = open.as_mut() {
                        o.dispatch_due(&env, &flows, origin, MAX_BACKLOG);
                    }
                    break;
                }
            },
            _ = &mut flush_timer => {
                flush.send(&env);
                flush_timer.as_mut().reset(flush.due());
            }
            _ = &mut arrival_timer, if arrival.is_some() => {
                if let (Some(o), Some(at)) = (open.as_mut(), arrival) {
                    o.dispatch(&env, &flows, at);
                    // Catch up on a backlog in small batches, then look at commands.
                    o.dispatch_due(&env, &flows, origin, BATCH);
                }
                // Fired: the next turn sets the next arrival (or it stays disabled).
                arrival_timer.as_mut().reset(far_future());
            }
            _ = &mut probe => {
                let now = Instant::now();
                env.recorder.borrow_mut().lag(now.saturating_duration_since(probe_at));
                probe_at = now + PROBE;
                probe.as_mut().reset(probe_at);
            }
        }
    }

    // The run is ending: users stop after their in-flight request and run their
    // teardown; whatever still runs after the grace period is abandoned, unrecorded.
    env.halt(closed.drain(..));
    if let Some(o) = open.as_mut() {
        o.retire_idle(&env);
    }
    let deadline = Instant::now() + GRACE;
    while env.live.get() > 0 {
        tokio::select! {
            _ = env.drained.notified() => {}
            _ = sleep_until(flush.due()) => flush.send(&env),
            _ = sleep_until(deadline) => break,
        }
    }
    flush.second = Instant::now().duration_since(origin).as_secs() + 1;
    flush.send(&env);
}

/// Sends the recorder's delta on every whole second of the run.
struct Flusher {
    epoch: u64,
    /// The second the next delta ends at.
    second: u64,
    origin: Instant,
    wall: std::time::SystemTime,
}

impl Flusher {
    fn due(&self) -> Instant {
        self.origin + Duration::from_secs(self.second)
    }

    fn send(&mut self, env: &UserEnv) {
        let start = second_start_unix_ms(self.wall, self.second);
        let mut delta = env
            .recorder
            .borrow_mut()
            .take(self.epoch, self.second, start);
        delta.active = env.state.active();
        env.state.send_second(delta);
        // After a stall, skip the seconds that were missed rather than flushing
        // empty deltas in a burst.
        let now = Instant::now().duration_since(self.origin).as_secs();
        self.second = (self.second + 1).max(now + 1);
    }
}

/// How many of the first `total` users (round-robin) live on thread `index`.
fn share(total: u32, index: usize, threads: usize) -> usize {
    let (total, index) = (total as usize, index);
    if total > index {
        (total - index - 1) / threads + 1
    } else {
        0
    }
}

/// Closed model: starts or stops this thread's users to follow the run-wide count.
/// The most recently started users stop first.
fn set_users(
    env: &Rc<UserEnv>,
    flows: &FlowTable,
    closed: &mut Vec<Rc<UserSignal>>,
    total: u32,
    index: usize,
    threads: usize,
) {
    if env.halt.get() {
        return;
    }
    let mine = share(total, index, threads);
    while closed.len() < mine {
        let u = (index + threads * closed.len()) as u32;
        let user = User::new(u, flows.flow_for(u64::from(u)), env);
        closed.push(user.signal.clone());
        env.spawn(closed_user(env.clone(), user));
    }
    while closed.len() > mine {
        if let Some(signal) = closed.pop() {
            signal.stop();
        }
    }
}

/// Open model: this thread's arrivals and its share of the user pool.
struct OpenPool {
    curve: RateCurve,
    end: Option<f64>,
    /// The next arrival number this thread starts; `None` past the last number.
    next: Option<u64>,
    stride: u64,
    /// Most users (and so running iterations) on this thread.
    cap: u32,
    /// Users in the pool, busy or idle.
    users: u32,
    next_user: u32,
    user_stride: u32,
    /// Idle users, per flow.
    idle: Rc<RefCell<Vec<Vec<User>>>>,
    /// Iterations running.
    busy: Rc<Cell<u32>>,
    /// `iterations`: the next arrival waits for a ticket from the controller.
    starved: bool,
}

impl OpenPool {
    /// When the next arrival is due, if any.
    fn next_due(&self, origin: Instant) -> Option<Instant> {
        if self.starved {
            return None;
        }
        let t = self.curve.time_of(self.next?)?;
        if self.end.is_some_and(|end| t >= end) {
            return None;
        }
        // A rate steered down to almost nothing puts the arrival past any clock: none.
        origin.checked_add(Duration::try_from_secs_f64(t).ok()?)
    }

    /// Starts the arrivals already due, at most `max` of them.
    fn dispatch_due(&mut self, env: &Rc<UserEnv>, flows: &FlowTable, origin: Instant, max: usize) {
        let now = Instant::now();
        for _ in 0..max {
            match self.next_due(origin) {
                Some(at) if at <= now => self.dispatch(env, flows, at),
                _ => break,
            }
        }
    }

    /// Starts the arrival due at `scheduled`, or counts it as dropped. Under
    /// `iterations`, an arrival without a ticket waits for one (the controller is
    /// asked); when the controller has none left, it waits for the run's end.
    fn dispatch(&mut self, env: &Rc<UserEnv>, flows: &FlowTable, scheduled: Instant) {
        let Some(k) = self.next else { return };
        if self.busy.get() < self.cap && !env.state.take_ticket() {
            self.starved = true;
            return;
        }
        self.next = k.checked_add(self.stride);
        env.recorder
            .borrow_mut()
            .lag(Instant::now().saturating_duration_since(scheduled));
        if self.busy.get() >= self.cap {
            env.recorder.borrow_mut().dropped();
            return;
        }
        let flow = flows.flow_for(k);
        let pooled = self.idle.borrow_mut()[flow].pop();
        let mut user = match pooled {
            Some(user) => user,
            None => {
                if self.users >= self.cap {
                    self.evict_idle(env);
                }
                self.users += 1;
                let u = self.next_user;
                self.next_user = self.next_user.wrapping_add(self.user_stride);
                User::new(u, flow, env)
            }
        };
        self.busy.set(self.busy.get() + 1);
        env.state.started();
        let (idle, busy, task_env) = (self.idle.clone(), self.busy.clone(), env.clone());
        env.spawn(async move {
            let scheduled = scheduled.into_std();
            pooled_iteration(&task_env, &mut user, scheduled).await;
            task_env.state.stopped();
            busy.set(busy.get() - 1);
            if task_env.halt.get() {
                retire(task_env, user).await;
            } else {
                idle.borrow_mut()[user.flow].push(user);
            }
        });
    }

    /// Makes room for a user of another flow: an idle user leaves (its teardown runs).
    fn evict_idle(&mut self, env: &Rc<UserEnv>) {
        let evicted = self
            .idle
            .borrow_mut()
            .iter_mut()
            .find_map(|users| users.pop());
        if let Some(user) = evicted {
            self.users -= 1;
            env.spawn(retire(env.clone(), user));
        }
    }

    /// At the end of the run, every idle user leaves.
    fn retire_idle(&mut self, env: &Rc<UserEnv>) {
        let idle: Vec<User> = self
            .idle
            .borrow_mut()
            .iter_mut()
            .flat_map(|users| users.drain(..))
            .collect();
        for user in idle {
            env.spawn(retire(env.clone(), user));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::graph::RateShape;

    fn pool(rate: f64, next: Option<u64>) -> OpenPool {
        OpenPool {
            curve: RateCurve::new(&RateShape::Fixed(rate)),
            end: None,
            next,
            stride: 1,
            cap: 1,
            users: 0,
            next_user: 0,
            user_stride: 1,
            idle: Rc::default(),
            busy: Rc::default(),
            starved: false,
        }
    }

    #[test]
    fn arrivals_beyond_any_clock_are_none_rather_than_a_panic() {
        let origin = Instant::now();
        assert_eq!(
            pool(2.0, Some(4)).next_due(origin),
            Some(origin + Duration::from_secs(2))
        );
        // Past the last arrival number, or waiting for a ticket: no arrival due.
        assert_eq!(pool(1.0, None).next_due(origin), None);
        let mut starved = pool(2.0, Some(4));
        starved.starved = true;
        assert_eq!(starved.next_due(origin), None);
        // Arrival 2^64 at 1/s, or the next one at a rate steered to almost nothing,
        // lies past what an `Instant` can hold.
        assert_eq!(pool(1.0, Some(u64::MAX)).next_due(origin), None);
        assert_eq!(pool(1e-20, Some(1)).next_due(origin), None);
        assert_eq!(pool(0.5, Some(u64::MAX / 2)).next_due(origin), None);
    }

    #[test]
    fn users_are_shared_round_robin() {
        assert_eq!(share(5, 0, 2), 3);
        assert_eq!(share(5, 1, 2), 2);
        assert_eq!(share(1, 1, 2), 0);
        assert_eq!(share(0, 0, 2), 0);
        let total: usize = (0..3).map(|i| share(10, i, 3)).sum();
        assert_eq!(total, 10);
    }
}
