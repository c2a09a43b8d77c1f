//! The virtual-user loop: `setup` once, `steps` again and again, `teardown` once when
//! the user stops; flow `think` between steps, explicit think steps, and `pace`.
//! Also one open-model iteration on a pooled user. Users of one thread share
//! a [`UserEnv`] through an `Rc`; nothing here takes a lock.
//!
//! Stopping: a user checks its stop signal between steps, so a stopping user finishes
//! its current request, not its whole iteration; sleeps wake on a stop. Under
//! `iterations`, a user stopped by a ramp-down finishes its iteration (none is cut
//! short); only the end of the run ([`UserEnv::halt`]) interrupts an iteration.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::RngExt;
use tokio::sync::Notify;

use super::feeder::{Feeders, Take};
use super::link::ThreadState;
use super::parallel::execute_group;
use super::recorder::Recorder;
use super::request::{Outcome, VuContext, execute};
use super::session::Protocols;
use crate::compile::graph::{Call, CompiledPlan, FeederId, Flow, Step, Think};
use crate::metrics::snapshot::EndReason;

/// What every user of one thread shares.
pub(crate) struct UserEnv {
    pub plan: Arc<CompiledPlan>,
    /// Each protocol's settings, from which every user gets its sessions.
    pub protocols: Protocols,
    pub feeders: Arc<Feeders>,
    pub recorder: RefCell<Recorder>,
    /// This thread's side of the run-wide state: tickets, completions, active users.
    pub state: ThreadState,
    /// The run is ending: every user stops after its in-flight request.
    pub halt: Cell<bool>,
    pub halt_notify: Notify,
    /// User tasks (and pooled iterations) still running on this thread.
    pub live: Cell<u32>,
    /// Notified when `live` drops to 0.
    pub drained: Notify,
}

impl UserEnv {
    /// Stops every user on this thread after its in-flight request. `closed` are
    /// the signals of the closed model's users still running: a thinking user of
    /// theirs waits on its own signal alone ([`pause`]), so the end of the run
    /// reaches it there. The open model's users heed only the halt.
    pub fn halt(&self, closed: impl IntoIterator<Item = Rc<UserSignal>>) {
        self.halt.set(true);
        self.halt_notify.notify_waiters();
        for signal in closed {
            signal.stop();
        }
    }

    /// Spawns a user task on this thread, counted in `live` until it ends, however it
    /// ends: a task that panics is dropped, and the count with it.
    ///
    /// The count rides in a combinator beside the task rather than in an `async`
    /// block around it: awaiting `task` inside a block would keep both the captured
    /// task and the awaited one in the block's state, doubling every user's memory.
    pub fn spawn(self: &Rc<Self>, task: impl Future<Output = ()> + 'static) {
        tokio::task::spawn_local(self.counted(task));
    }

    /// `task`, counted in `live` from now until it is dropped, finished or not.
    fn counted<F: Future<Output = ()>>(
        self: &Rc<Self>,
        task: F,
    ) -> impl Future<Output = ()> + use<F> {
        use futures_util::FutureExt;
        self.live.set(self.live.get() + 1);
        let live = Live(self.clone());
        task.map(move |()| drop(live))
    }
}

/// One task counted in [`UserEnv::live`]; uncounted when dropped.
struct Live(Rc<UserEnv>);

impl Drop for Live {
    fn drop(&mut self) {
        let env = &self.0;
        let live = env.live.get().saturating_sub(1);
        env.live.set(live);
        if live == 0 {
            env.drained.notify_one();
        }
    }
}

impl UserEnv {
    /// Under `iterations`, takes the right to start one more iteration (a ticket):
    /// at once when this thread holds one, else after waiting for the controller.
    /// False when the user is stopped (or the run ends) first.
    async fn ticket(&self, user: &User) -> bool {
        loop {
            if self.state.take_ticket() {
                return true;
            }
            // Registered before looking again: a grant in between is not missed.
            let granted = self.state.granted.notified();
            if should_stop(self, user, Heed::All) {
                return false;
            }
            tokio::select! {
                _ = granted => {}
                _ = self.halt_notify.notified() => return false,
                _ = user.signal.notify.notified() => return false,
            }
        }
    }

    fn iteration_done(&self) {
        self.recorder.borrow_mut().iteration();
        self.state.iteration_done();
    }
}

/// One user's stop signal (ramp-down, `SetUsers`).
#[derive(Debug, Default)]
pub(crate) struct UserSignal {
    stop: Cell<bool>,
    notify: Notify,
}

impl UserSignal {
    pub fn stop(&self) {
        self.stop.set(true);
        self.notify.notify_one();
    }
}

/// A virtual user: its context (sessions per protocol, captures) and flow.
pub(crate) struct User {
    pub ctx: VuContext,
    pub flow: usize,
    /// `setup` has run.
    pub ready: bool,
    pub signal: Rc<UserSignal>,
    /// Iterations this user started.
    pub iterations: u64,
}

impl User {
    pub fn new(index: u32, flow: usize, env: &UserEnv) -> User {
        User {
            ctx: VuContext::new(index, &env.plan, &env.protocols),
            flow,
            ready: false,
            signal: Rc::new(UserSignal::default()),
            iterations: 0,
        }
    }
}

/// How a run of steps ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ran {
    Done,
    Stopped,
    /// A `unique` feeder ran out; the run is ending.
    Exhausted,
}

/// Which stops interrupt a run of steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Heed {
    /// The end of the run and the user's own stop signal.
    All,
    /// Only the end of the run (an iteration that must not be cut short).
    Halt,
    /// Nothing: teardown is how a user stops; only the grace period's end cuts it.
    Never,
}

fn should_stop(env: &UserEnv, user: &User, heed: Heed) -> bool {
    match heed {
        Heed::All => env.halt.get() || user.signal.stop.get(),
        Heed::Halt => env.halt.get(),
        Heed::Never => false,
    }
}

/// The closed model's user task: setup, iterations until stopped, teardown.
///
/// Not an `async fn`: an `async fn` moves its arguments from the future's initial
/// state into locals, so the future would hold the `User` twice; an `async` block
/// keeps the one it captured.
#[allow(clippy::manual_async_fn)] // the async fn it suggests holds the user twice
pub(crate) fn closed_user(env: Rc<UserEnv>, mut user: User) -> impl Future<Output = ()> {
    async move {
        env.state.started();
        let flow = &env.plan.flows[user.flow];
        // Under `iterations`, a ramp-down lets the iteration finish.
        let heed = if env.state.limited() {
            Heed::Halt
        } else {
            Heed::All
        };
        let mut ran = setup(&env, &mut user, flow, Heed::All).await;
        if ran == Ran::Done && !flow.steps.is_empty() {
            let repeat = Repeat::UntilStopped { pace: flow.pace };
            ran = run_steps(&env, &mut user, &flow.steps, flow.think, heed, None, repeat).await;
        }
        if ran != Ran::Exhausted {
            teardown(&env, &mut user, flow).await;
        }
        env.state.stopped();
    }
}

/// The open model: one iteration on a pooled user, due at `scheduled`. Runs the
/// flow's setup first if this user has not yet. The caller took the iteration token.
pub(crate) async fn pooled_iteration(env: &Rc<UserEnv>, user: &mut User, scheduled: Instant) {
    let flow = &env.plan.flows[user.flow];
    let mut start = scheduled;
    let mut ran = Ran::Done;
    if !user.ready {
        let began = Instant::now();
        // Only the end of the run stops a pooled user: nothing holds its signal.
        ran = setup(env, user, flow, Heed::Halt).await;
        // The setup's time is the new user's own, not the arrival's wait: it moves the
        // start later by its length, but a late dispatch still counts from `scheduled`
        // (a generator behind its schedule mostly starts new users to catch up).
        start += began.elapsed();
    }
    if ran == Ran::Done {
        iteration(env, user, flow, Heed::Halt, Some(start)).await;
    }
}

/// Runs a pooled user's teardown as it leaves the pool.
pub(crate) async fn retire(env: Rc<UserEnv>, mut user: User) {
    let flow = &env.plan.flows[user.flow];
    teardown(&env, &mut user, flow).await;
}

async fn setup(env: &UserEnv, user: &mut User, flow: &Flow, heed: Heed) -> Ran {
    if user.ready {
        return Ran::Done;
    }
    if should_stop(env, user, heed) {
        // Stopped before it began: nothing to set up, nothing to tear down.
        return Ran::Stopped;
    }
    user.ready = true;
    clear_rows(user);
    run_steps(env, user, &flow.setup, None, heed, None, Repeat::Once).await
}

async fn teardown(env: &UserEnv, user: &mut User, flow: &Flow) {
    if flow.teardown.is_empty() || !user.ready {
        return;
    }
    clear_rows(user);
    let _ = run_steps(
        env,
        user,
        &flow.teardown,
        None,
        Heed::Never,
        None,
        Repeat::Once,
    )
    .await;
    user.ready = false;
}

async fn iteration(
    env: &UserEnv,
    user: &mut User,
    flow: &Flow,
    heed: Heed,
    first_start: Option<Instant>,
) -> Ran {
    begin_iteration(user);
    let ran = run_steps(
        env,
        user,
        &flow.steps,
        flow.think,
        heed,
        first_start,
        Repeat::Once,
    )
    .await;
    if ran == Ran::Done {
        env.iteration_done();
    }
    ran
}

/// Counts a new iteration and drops the last one's feeder rows.
fn begin_iteration(user: &mut User) {
    user.ctx.iteration = user.iterations;
    user.iterations += 1;
    clear_rows(user);
}

fn clear_rows(user: &mut User) {
    for row in &mut user.ctx.rows {
        *row = None;
    }
}

/// Whether [`run_steps`] runs its steps once, or iteration after iteration as a
/// closed-model user does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Repeat {
    Once,
    /// Until the user is stopped (or the run ends), each iteration with its
    /// ticket and its `pace`. Looping here rather than around `run_steps` spares a
    /// state machine per iteration: about 80 instructions a request.
    UntilStopped {
        pace: Option<Duration>,
    },
}

/// Runs `steps` in order, with `think` after each request, once or iteration after
/// iteration ([`Repeat`]). `first_start` is when the first request counts from (the
/// open model's scheduled start).
///
/// Repeated, it returns [`Ran::Done`] when the user is stopped between iterations
/// (or its `pace` is cut short), as the closed model's loop did around it.
async fn run_steps(
    env: &UserEnv,
    user: &mut User,
    steps: &[Step],
    think: Option<Think>,
    heed: Heed,
    mut first_start: Option<Instant>,
    repeat: Repeat,
) -> Ran {
    // An open-model arrival that was due sends its first request even if the run
    // is stopping; anything else checks before every step.
    let due = first_start.is_some();
    loop {
        let mut paced = None;
        if let Repeat::UntilStopped { pace } = repeat {
            if should_stop(env, user, Heed::All) || !env.ticket(user).await {
                return Ran::Done;
            }
            paced = pace.map(|pace| Instant::now() + pace);
            begin_iteration(user);
        }
        for (i, step) in steps.iter().enumerate() {
            if (i > 0 || !due) && should_stop(env, user, heed) {
                return Ran::Stopped;
            }
            match step {
                Step::Think(t) => {
                    if !pause(env, user, Instant::now() + pick(*t), heed).await {
                        return Ran::Stopped;
                    }
                    continue;
                }
                Step::Call(call) => {
                    if !take_rows(env, user, &call.feeders) {
                        return Ran::Exhausted;
                    }
                    let start = first_start.take().unwrap_or_else(Instant::now);
                    let out = execute(call, &mut user.ctx, start).await;
                    record(env, call, out);
                }
                Step::Parallel(group) => {
                    if !take_rows(env, user, &group.feeders) {
                        return Ran::Exhausted;
                    }
                    let start = first_start.take().unwrap_or_else(Instant::now);
                    // Boxed: a group's state is not carried by every thinking user.
                    let outs = Box::pin(execute_group(group, &mut user.ctx, start)).await;
                    for (call, out) in group.calls.iter().zip(outs) {
                        record(env, call, out);
                    }
                }
            }
            // The flow's `think` follows a group as it follows one request.
            if let Some(t) = think
                && !pause(env, user, Instant::now() + pick(t), heed).await
            {
                return Ran::Stopped;
            }
        }
        if repeat == Repeat::Once {
            return Ran::Done;
        }
        env.iteration_done();
        if let Some(until) = paced
            && !pause(env, user, until, Heed::All).await
        {
            return Ran::Done;
        }
        // A flow whose requests all fail without waiting must still let others run.
        tokio::task::consume_budget().await;
    }
}

/// Records one measured exchange in the thread's recorder.
#[inline]
fn record(env: &UserEnv, call: &Call, out: Outcome) {
    env.recorder.borrow_mut().request(
        call.request,
        out.latency,
        out.bytes,
        out.result,
        out.version,
    );
}

/// Takes this iteration's row of each feeder in `feeders` that the user has none of
/// yet. False when a `unique` feeder ran out: the run is ending.
fn take_rows(env: &UserEnv, user: &mut User, feeders: &[FeederId]) -> bool {
    for f in feeders {
        let Some(slot) = user.ctx.rows.get_mut(f.0 as usize) else {
            continue;
        };
        if slot.is_none() {
            match env.feeders.take(*f) {
                Take::Row(row) => *slot = Some(row),
                Take::Exhausted => {
                    let feeder = env.plan.feeders[f.0 as usize].name.clone();
                    env.state.request_end(EndReason::FeederExhausted { feeder });
                    return false;
                }
            }
        }
    }
    true
}

/// A think time: constant, or uniform in `[min, max]`.
fn pick(t: Think) -> std::time::Duration {
    if t.max <= t.min {
        return t.min;
    }
    let lo = t.min.as_micros() as u64;
    let hi = t.max.as_micros() as u64;
    std::time::Duration::from_micros(rand::rng().random_range(lo..=hi))
}

/// Sleeps until `until` unless a stop comes first; records how late the timer fired
/// as scheduling lag. Returns false when stopped.
///
/// It waits on one notification, not on the halt and the user's signal both: every
/// thinking user carries what it waits on (64 bytes each). Under [`Heed::All`] the
/// user's own signal is enough, because the end of the run stops every closed-model
/// user's signal ([`UserEnv::halt`]) and open-model users think under
/// [`Heed::Halt`].
async fn pause(env: &UserEnv, user: &User, until: Instant, heed: Heed) -> bool {
    if should_stop(env, user, heed) {
        return false;
    }
    let now = Instant::now();
    if until <= now {
        return true;
    }
    let sleep = tokio::time::sleep_until(until.into());
    let stop = match heed {
        Heed::All => &user.signal.notify,
        Heed::Halt => &env.halt_notify,
        Heed::Never => {
            sleep.await;
            env.recorder
                .borrow_mut()
                .lag(Instant::now().saturating_duration_since(until));
            return true;
        }
    };
    tokio::select! {
        biased;
        _ = stop.notified() => false,
        _ = sleep => {
            env.recorder.borrow_mut().lag(Instant::now().saturating_duration_since(until));
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn future_size<F: Future>(_: &F) -> usize {
        std::mem::size_of::<F>()
    }

    fn env() -> Rc<UserEnv> {
        let plan = Arc::new(crate::report::fixture::plan(Vec::new()));
        let protocols = Protocols::new(&Default::default()).unwrap();
        Rc::new(UserEnv {
            plan: plan.clone(),
            protocols,
            feeders: Arc::new(Feeders::load(&plan).unwrap()),
            recorder: RefCell::new(Recorder::new(0, std::sync::mpsc::channel().1)),
            state: ThreadState::for_tests(),
            halt: Default::default(),
            halt_notify: Default::default(),
            live: Default::default(),
            drained: Default::default(),
        })
    }

    /// A thinking user's task must stay small: ten thousand of them should cost
    /// megabytes, not tens of megabytes. Boxing the request future is what keeps it
    /// so; this catches a change that puts it back inline.
    #[test]
    fn an_idle_user_task_stays_small() {
        let env = env();
        // The HTTP client boxes each exchange while it is in flight, so a user's task
        // does not carry the request future's space while it thinks. What is spawned
        // is the task with its `live` count: it must hold the user once, not twice.
        let task = env.counted(closed_user(env.clone(), User::new(0, 0, &env)));
        // 824 bytes with rustc 1.95 (856 while the HTTP session had a send future of
        // its own, 1016 while it held its render buffers, 2840 when both the spawn
        // wrapper and the async fn's arguments held the user twice): the bound
        // carries a margin for other compilers.
        let size = future_size(&task);
        assert!(size <= 960, "an idle user's task takes {size} bytes");
        // The render buffers come from the thread's pool while a request is made.
        let http = std::mem::size_of::<crate::engine::http::HttpSession>();
        assert!(http <= 96, "an idle user's HTTP session takes {http} bytes");
    }

    /// A thinking user waits on its timer and on one notification, not two: 64
    /// bytes per user, once the request in flight is no larger than a pause.
    #[test]
    fn a_pause_waits_on_one_notification() {
        let env = env();
        let user = User::new(0, 0, &env);
        let size = future_size(&pause(&env, &user, Instant::now(), Heed::All));
        let notified = future_size(&env.halt_notify.notified());
        let sleep = std::mem::size_of::<tokio::time::Sleep>();
        // 280 bytes with rustc 1.95 (336 with two notifications): the timer, one
        // notification, and the references and deadline beside them.
        assert!(
            size <= sleep + notified + 128,
            "a pause takes {size} bytes: more than a timer of {sleep} and one notification"
        );
    }
}
