//! What the controller and an engine thread say to each other, and the thread's side
//! of the run-wide state. Nothing here is shared memory: a thread learns the run's
//! state only from [`ThreadCmd`]s and tells it only through [`ThreadEvent`]s, so the
//! same controller can later drive threads on other machines.
//!
//! Run-wide counts travel in batches, never per request or per iteration:
//! - `iterations: N`: the controller hands out iteration tickets in blocks
//!   ([`ThreadCmd::Tickets`]); a thread spends them locally and asks for more before it
//!   runs out. Completed iterations are reported with every second's unit, and at once
//!   only after the controller's last call (when every ticket is out), so the run
//!   still ends as soon as the N-th iteration finishes.
//! - Active users travel in every second's unit, and once more when a thread stops.
//! - The end of the run (a feeder ran out) is one message.

use std::cell::Cell;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{Notify, mpsc};

use crate::metrics::delta::Delta;
use crate::metrics::snapshot::EndReason;

/// When the run started, on the monotonic clock and on the wall clock.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunClock {
    /// Elapsed time, arrival times and flush seconds count from here.
    pub origin: Instant,
    /// The wall-clock time at `origin`: units carry their seconds' wall-clock start.
    pub wall: SystemTime,
}

impl RunClock {
    pub fn now() -> RunClock {
        RunClock {
            origin: Instant::now(),
            wall: SystemTime::now(),
        }
    }
}

/// A command from the controller to a thread.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ThreadCmd {
    /// Closed model: the run-wide user count to follow (this thread runs its share).
    SetUsers(u32),
    /// Open model: from `at` (since the origin) on, a constant rate.
    SetRate { at: Duration, rate: f64 },
    /// Zero the stats; deltas are tagged with the new epoch from now on.
    Reset(u64),
    /// `iterations`: this many more tickets to spend (0: none to spare now, ask
    /// again when starving).
    Tickets(u64),
    /// `iterations`: every ticket is out; report each completed iteration at once.
    LastCall,
    /// `iterations`: another thread waits for tickets; give back the unspent ones.
    Reclaim,
    /// Stop every user after its in-flight request, drain, flush and exit.
    Stop,
}

/// What a thread tells the controller; each comes with the thread's index.
#[derive(Debug)]
pub(crate) enum ThreadEvent {
    /// The unit of one second (also carries the users active as it was taken).
    Second(Delta),
    /// Iterations completed since the last report (only under `iterations`).
    Completed(u64),
    /// `iterations`: the thread is running low on tickets (`starving`: it has none
    /// left and an iteration waits for one).
    NeedTickets { starving: bool },
    /// `iterations`: unspent tickets given back after a [`ThreadCmd::Reclaim`].
    Returned(u64),
    /// The run must end (a `unique` feeder ran out).
    End(EndReason),
    /// The thread got the stop: the users it had running then.
    Stopping { active: u32 },
    /// The unit of one second of threads on another machine (reported under the first
    /// of them), as it came over the network.
    Unit(crate::metrics::wire::Unit),
    /// Threads on another machine (reported under the first of them) sent every unit
    /// for the seconds up to this one; `u64::MAX` once they send no more. A local
    /// thread never sends it: its units come in order, each one its own watermark.
    Through(u64),
}

/// The sending half of the threads' events.
pub(crate) type Events = mpsc::UnboundedSender<(usize, ThreadEvent)>;

/// The thread's side of the run-wide state. It lives on one thread (cells, no
/// atomics): the users of the thread update it, and the thread's loop applies the
/// controller's commands to it.
#[derive(Debug)]
pub(crate) struct ThreadState {
    index: usize,
    events: Events,
    /// `iterations` is set: iterations need tickets.
    limited: bool,
    /// Users (closed model) or iterations (open model) running.
    active: Cell<u32>,
    /// Tickets held and not yet spent.
    tickets: Cell<u64>,
    /// The size of the last block granted (for asking again in time).
    block: Cell<u64>,
    /// A [`ThreadEvent::NeedTickets`] is unanswered.
    asked: Cell<bool>,
    /// The controller has no tickets left: completions are reported at once.
    last_call: Cell<bool>,
    /// Completed iterations not yet reported.
    completed: Cell<u64>,
    /// Notified when tickets arrive, for the users waiting for one.
    pub granted: Notify,
}

impl ThreadState {
    pub fn new(index: usize, events: Events, limited: bool) -> ThreadState {
        ThreadState {
            index,
            events,
            limited,
            active: Cell::new(0),
            tickets: Cell::new(0),
            block: Cell::new(0),
            asked: Cell::new(false),
            last_call: Cell::new(false),
            completed: Cell::new(0),
            granted: Notify::new(),
        }
    }

    #[cfg(test)]
    pub(crate) fn for_tests() -> ThreadState {
        ThreadState::new(0, mpsc::unbounded_channel().0, false)
    }

    fn send(&self, event: ThreadEvent) {
        // The controller is gone only when the run is over; nothing to tell then.
        let _ = self.events.send((self.index, event));
    }

    /// Whether iterations need tickets (`iterations` is set).
    pub fn limited(&self) -> bool {
        self.limited
    }

    /// Users (closed) or iterations (open) running on this thread.
    pub fn active(&self) -> u32 {
        self.active.get()
    }

    pub fn started(&self) {
        self.active.set(self.active.get() + 1);
    }

    pub fn stopped(&self) {
        self.active.set(self.active.get().saturating_sub(1));
    }

    /// Takes the right to start one more iteration: always under no `iterations`,
    /// else when a ticket is held. Asks the controller for more when a quarter of the
    /// last block is left, so users rarely wait for a ticket.
    pub fn take_ticket(&self) -> bool {
        if !self.limited {
            return true;
        }
        let held = self.tickets.get();
        if held > 0 {
            self.tickets.set(held - 1);
        }
        if (held <= 1 || (held - 1) * 4 <= self.block.get()) && !self.asked.get() {
            self.asked.set(true);
            self.send(ThreadEvent::NeedTickets {
                starving: held == 0,
            });
        }
        held > 0
    }

    /// Counts one completed iteration.
    pub fn iteration_done(&self) {
        if self.limited {
            self.completed.set(self.completed.get() + 1);
            if self.last_call.get() {
                self.report_completed();
            }
        }
    }

    /// Reports the completed iterations not yet reported.
    pub fn report_completed(&self) {
        let n = self.completed.replace(0);
        if n > 0 {
            self.send(ThreadEvent::Completed(n));
        }
    }

    /// Asks the controller to end the run.
    pub fn request_end(&self, reason: EndReason) {
        self.send(ThreadEvent::End(reason));
    }

    /// Sends one second's unit.
    pub fn send_second(&self, delta: Delta) {
        self.report_completed();
        self.send(ThreadEvent::Second(delta));
    }

    /// The thread got the stop.
    pub fn stopping(&self) {
        self.report_completed();
        self.send(ThreadEvent::Stopping {
            active: self.active(),
        });
    }

    /// Applies a ticket command from the controller.
    pub fn tickets(&self, cmd: &ThreadCmd) {
        match cmd {
            ThreadCmd::Tickets(n) => {
                self.tickets.set(self.tickets.get() + n);
                if *n > 0 {
                    self.block.set(*n);
                }
                self.asked.set(false);
                self.granted.notify_waiters();
            }
            ThreadCmd::LastCall => {
                self.last_call.set(true);
                self.report_completed();
            }
            ThreadCmd::Reclaim => {
                let n = self.tickets.replace(0);
                if n > 0 {
                    self.send(ThreadEvent::Returned(n));
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_are_spent_locally_and_asked_for_in_time() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let s = ThreadState::new(3, tx, true);
        // None held: no iteration, and one request for more (not two).
        assert!(!s.take_ticket());
        assert!(!s.take_ticket());
        assert!(matches!(
            rx.try_recv(),
            Ok((3, ThreadEvent::NeedTickets { starving: true }))
        ));
        assert!(rx.try_recv().is_err());
        s.tickets(&ThreadCmd::Tickets(8));
        // 8 tickets: asks again when 2 are left, once.
        for _ in 0..6 {
            assert!(s.take_ticket());
        }
        assert!(matches!(
            rx.try_recv(),
            Ok((3, ThreadEvent::NeedTickets { starving: false }))
        ));
        assert!(s.take_ticket() && s.take_ticket() && !s.take_ticket());
        assert!(rx.try_recv().is_err());
        // Completions wait for the second's unit, until the last call.
        s.iteration_done();
        s.iteration_done();
        assert!(rx.try_recv().is_err());
        s.tickets(&ThreadCmd::LastCall);
        assert!(matches!(rx.try_recv(), Ok((3, ThreadEvent::Completed(2)))));
        s.iteration_done();
        assert!(matches!(rx.try_recv(), Ok((3, ThreadEvent::Completed(1)))));
        // Unspent tickets go back on a reclaim.
        s.tickets(&ThreadCmd::Tickets(5));
        s.tickets(&ThreadCmd::Reclaim);
        assert!(matches!(rx.try_recv(), Ok((3, ThreadEvent::Returned(5)))));
        assert!(!s.take_ticket(), "none left after giving them back");
    }

    #[test]
    fn without_iterations_everything_goes_and_nothing_is_sent() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let s = ThreadState::new(0, tx, false);
        assert!(s.take_ticket());
        s.iteration_done();
        s.started();
        assert_eq!(s.active(), 1);
        assert!(rx.try_recv().is_err());
    }
}
