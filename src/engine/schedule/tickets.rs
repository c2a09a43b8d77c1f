//! `iterations: N` on the controller's side: the N iteration tickets, handed to the
//! threads in blocks and never more than N in all.
//!
//! Blocks shrink as the tickets run out (a quarter of what is left per thread, at
//! least 1), so few tickets sit unspent on a thread when others need them. When a
//! thread starves while the controller has none left, the controller asks every
//! thread to give back its unspent tickets and hands them to the starving threads;
//! so a thread whose users left (a ramp-down) cannot strand tickets, and exactly N
//! iterations run. Once every ticket is out, threads report each completed iteration
//! at once, so the run ends as soon as the N-th one finishes.

use crate::engine::link::ThreadCmd;

/// Largest block handed out at once.
const MAX_BLOCK: u64 = 4096;

#[derive(Debug)]
pub(crate) struct Tickets {
    limit: u64,
    /// Tickets not handed out (or given back).
    remaining: u64,
    completed: u64,
    /// Threads starving for a ticket, to be served first.
    waiting: Vec<bool>,
    last_call: bool,
}

/// Commands for threads, by index.
pub(crate) type Sends = Vec<(usize, ThreadCmd)>;

impl Tickets {
    pub fn new(limit: u64, threads: usize) -> Tickets {
        Tickets {
            limit,
            remaining: limit,
            completed: 0,
            waiting: vec![false; threads],
            last_call: false,
        }
    }

    fn block(&self) -> u64 {
        let per = self.remaining / (self.waiting.len() as u64 * 4);
        per.clamp(1, MAX_BLOCK).min(self.remaining)
    }

    fn grant(&mut self, thread: usize, out: &mut Sends) {
        let n = self.block();
        self.remaining -= n;
        self.waiting[thread] = false;
        out.push((thread, ThreadCmd::Tickets(n)));
        if self.remaining == 0 && !self.last_call {
            self.last_call = true;
            out.extend((0..self.waiting.len()).map(|t| (t, ThreadCmd::LastCall)));
        }
    }

    /// The first blocks, one per thread, so no user waits for its first ticket.
    pub fn start(&mut self) -> Sends {
        let mut out = Vec::new();
        for t in 0..self.waiting.len() {
            if self.remaining > 0 {
                self.grant(t, &mut out);
            }
        }
        out
    }

    /// A thread asks for tickets.
    pub fn need(&mut self, thread: usize, starving: bool) -> Sends {
        let mut out = Vec::new();
        if thread >= self.waiting.len() {
            return out;
        }
        if self.remaining > 0 {
            self.grant(thread, &mut out);
        } else if starving {
            self.waiting[thread] = true;
            let others = (0..self.waiting.len()).filter(|&t| t != thread);
            out.extend(others.map(|t| (t, ThreadCmd::Reclaim)));
        } else {
            out.push((thread, ThreadCmd::Tickets(0)));
        }
        out
    }

    /// A thread gave back `n` unspent tickets: the starving threads get them.
    pub fn returned(&mut self, n: u64) -> Sends {
        self.remaining += n;
        let mut out = Vec::new();
        for t in 0..self.waiting.len() {
            if self.remaining == 0 {
                break;
            }
            if self.waiting[t] {
                self.grant(t, &mut out);
            }
        }
        out
    }

    /// Counts completed iterations; true once all N have completed.
    pub fn completed(&mut self, n: u64) -> bool {
        self.completed += n;
        self.completed >= self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn granted(sends: &Sends) -> u64 {
        sends
            .iter()
            .map(|(_, c)| match c {
                ThreadCmd::Tickets(n) => *n,
                _ => 0,
            })
            .sum()
    }

    #[test]
    fn never_more_than_n_and_blocks_shrink() {
        let mut t = Tickets::new(1000, 2);
        let mut total = granted(&t.start());
        // A quarter of what is left per thread: 1000/8, then 875/8.
        assert_eq!(total, 125 + 109);
        let mut last = u64::MAX;
        while t.remaining > 0 {
            let n = granted(&t.need(0, false));
            assert!(n <= last, "blocks shrink");
            last = n;
            total += n;
        }
        assert_eq!(total, 1000);
        assert_eq!(granted(&t.need(1, false)), 0);
    }

    #[test]
    fn a_starving_thread_gets_the_tickets_another_gives_back() {
        let mut t = Tickets::new(3, 2);
        let first = t.start();
        assert_eq!(granted(&first), 2);
        let sends = t.need(0, false);
        assert_eq!(granted(&sends), 1);
        // The last ticket is out: every thread hears the last call.
        assert_eq!(
            sends
                .iter()
                .filter(|(_, c)| *c == ThreadCmd::LastCall)
                .count(),
            2
        );
        // Thread 1 starves; thread 0 is asked to give back, and does (2 unspent).
        assert_eq!(t.need(1, true), vec![(0, ThreadCmd::Reclaim)]);
        let sends = t.returned(2);
        assert_eq!(sends, vec![(1, ThreadCmd::Tickets(1))]);
        assert!(!t.completed(2));
        assert!(t.completed(1));
    }
}
