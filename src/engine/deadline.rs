//! Per-thread request deadlines: what a request's `timeout` costs on an engine thread.
//!
//! A tokio timer per request (`tokio::time::timeout`) enters the runtime's timer wheel
//! when the request first waits and leaves it when the request ends, each time under
//! the timer driver's lock: about 500 instructions a request (issue 15), for a timer
//! that almost never fires. An engine thread instead keeps the deadlines of its
//! requests in a list of its own ([`sweeper`], spawned once per thread), which no other
//! thread touches: a request adds its deadline when it first waits and takes it out
//! when it ends (a slab slot each way, no lock, no clock read). The thread's sweeper
//! task sleeps on one tokio timer until the earliest deadline it knows of, marks the
//! requests whose deadline has passed and wakes only those; a marked request fails
//! as a timeout when it is polled, as under `tokio::time::timeout` (the request is
//! polled first, so a response ready at the deadline still counts), and dropping it
//! drops its connection.
//!
//! Requests that end in time leave the sweeper asleep: it wakes at most once per
//! earliest deadline, finds it gone, and sleeps until the next earliest one. A
//! request whose deadline comes before the one the sweeper sleeps until (a shorter
//! `timeout`, or the first request after a quiet spell) wakes it to re-arm.
//!
//! Off an engine thread (a runtime without a sweeper: tests, one-off requests) a
//! request falls back to a tokio timer, with the same behaviour.

use std::cell::RefCell;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use slab::Slab;
use tokio::time::Sleep;

/// The deadlines of the requests in flight on this thread.
struct List {
    entries: Slab<Entry>,
    /// When the sweeper next looks at the list; `None` while it waits for an entry.
    armed: Option<Instant>,
    /// A sweeper runs on this thread ([`sweeper`]).
    running: bool,
    /// The sweeper's waker, once it has been polled.
    waker: Option<Waker>,
}

struct Entry {
    deadline: Instant,
    /// The request's task, woken when the deadline passes.
    waker: Waker,
    overdue: bool,
}

thread_local! {
    static LIST: RefCell<List> = const {
        RefCell::new(List {
            entries: Slab::new(),
            armed: None,
            running: false,
            waker: None,
        })
    };
}

/// The request took longer than its deadline allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Elapsed;

/// `fut` bounded by `deadline` (`None`: unbounded), as `tokio::time::timeout_at`.
pub(crate) fn timeout_at<F: Future + Unpin>(deadline: Option<Instant>, fut: F) -> Timeout<F> {
    Timeout {
        fut,
        deadline,
        timer: Timer::Unset,
    }
}

/// A future bounded by a deadline ([`timeout_at`]).
pub(crate) struct Timeout<F> {
    fut: F,
    deadline: Option<Instant>,
    timer: Timer,
}

/// How a [`Timeout`] learns that its deadline passed.
enum Timer {
    /// Not waiting yet (or without a deadline).
    Unset,
    /// In this thread's list, at this key.
    Listed(usize),
    /// No sweeper on this thread: a tokio timer of its own.
    Tokio(Pin<Box<Sleep>>),
}

impl<F: Future + Unpin> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        // The request first: a response ready at the deadline counts.
        if let Poll::Ready(v) = Pin::new(&mut this.fut).poll(cx) {
            return Poll::Ready(Ok(v));
        }
        let Some(deadline) = this.deadline else {
            return Poll::Pending;
        };
        let overdue = match &mut this.timer {
            Timer::Listed(key) => LIST.with_borrow_mut(|list| list.poll(*key, cx.waker())),
            Timer::Tokio(sleep) => sleep.as_mut().poll(cx).is_ready(),
            Timer::Unset => match LIST.with_borrow_mut(|list| list.insert(deadline, cx.waker())) {
                Some(key) => {
                    this.timer = Timer::Listed(key);
                    false
                }
                None => {
                    let mut sleep = Box::pin(tokio::time::sleep_until(deadline.into()));
                    let overdue = sleep.as_mut().poll(cx).is_ready();
                    this.timer = Timer::Tokio(sleep);
                    overdue
                }
            },
        };
        if overdue {
            Poll::Ready(Err(Elapsed))
        } else {
            Poll::Pending
        }
    }
}

impl<F> Drop for Timeout<F> {
    fn drop(&mut self) {
        if let Timer::Listed(key) = self.timer {
            // `try_with`: a request dropped while its thread exits finds no list.
            let _ = LIST.try_with(|list| list.borrow_mut().entries.try_remove(key));
        }
    }
}

impl List {
    /// Adds a deadline; `None` when no sweeper runs on this thread.
    fn insert(&mut self, deadline: Instant, waker: &Waker) -> Option<usize> {
        if !self.running {
            return None;
        }
        if self.armed.is_none_or(|at| deadline < at) {
            self.armed = Some(deadline);
            if let Some(sweeper) = &self.waker {
                sweeper.wake_by_ref();
            }
        }
        Some(self.entries.insert(Entry {
            deadline,
            waker: waker.clone(),
            overdue: false,
        }))
    }

    /// Whether entry `key` is overdue; else keeps the waker of the task polling it.
    fn poll(&mut self, key: usize, waker: &Waker) -> bool {
        let Some(entry) = self.entries.get_mut(key) else {
            return false;
        };
        if !entry.overdue && !entry.waker.will_wake(waker) {
            entry.waker.clone_from(waker);
        }
        entry.overdue
    }

    /// Marks and wakes the entries due by `now`; arms for the earliest one left.
    fn sweep(&mut self, now: Instant) {
        let mut next: Option<Instant> = None;
        for (_, entry) in &mut self.entries {
            if entry.overdue {
                continue;
            }
            if entry.deadline <= now {
                entry.overdue = true;
                entry.waker.wake_by_ref();
            } else if next.is_none_or(|at| entry.deadline < at) {
                next = Some(entry.deadline);
            }
        }
        self.armed = next;
    }
}

/// This thread's sweeper, to spawn on the thread's `LocalSet` with the users: from
/// this call until the future is dropped, requests that start waiting on this thread
/// keep their deadlines in the thread's list. Does nothing when another sweeper
/// already runs on this thread.
pub(crate) fn sweeper() -> impl Future<Output = ()> {
    let first = LIST.with_borrow_mut(|list| !std::mem::replace(&mut list.running, true));
    // Not `then_some(Running)`: that would make (and drop) a guard either way.
    let running = if first { Some(Running) } else { None };
    async move {
        if running.is_some() {
            sweep().await;
        }
    }
}

/// A sweeper runs on this thread; when it is dropped, later requests fall back to
/// tokio timers (those already listed are dropped with the thread's tasks).
struct Running;

impl Drop for Running {
    fn drop(&mut self) {
        let _ = LIST.try_with(|list| {
            let mut list = list.borrow_mut();
            list.running = false;
            list.waker = None;
            list.armed = None;
        });
    }
}

/// Sleeps until the earliest deadline, marks and wakes the overdue requests, and
/// sleeps again; never returns.
async fn sweep() {
    let mut sleep: Option<Pin<Box<Sleep>>> = None;
    poll_fn(|cx| {
        loop {
            let armed = LIST.with_borrow_mut(|list| {
                match &mut list.waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    slot => *slot = Some(cx.waker().clone()),
                }
                list.armed
            });
            let Some(at) = armed else {
                return Poll::Pending;
            };
            let timer = sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at.into())));
            if timer.deadline() != at.into() {
                timer.as_mut().reset(at.into());
            }
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            // Whatever was due when the timer fired is overdue, even if the clock
            // reads a hair earlier: each turn retires at least the entry armed for.
            let now = Instant::now().max(at);
            LIST.with_borrow_mut(|list| list.sweep(now));
        }
    })
    .await
}

#[cfg(test)]
#[path = "deadline_tests.rs"]
mod tests;
