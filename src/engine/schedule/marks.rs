//! Watermarks: which seconds of the run every source of units has sent all of its
//! units for, so the controller makes a second final (a series point, a second the
//! windowed SLO lines judge) only once nothing more can arrive for it.
//!
//! A source is a local thread (its units come in order, so each unit is its own
//! watermark) or another machine's threads (which send their watermark explicitly,
//! under the first of their run-wide indices, because a machine may send a second in
//! parts). A source that sends nothing more (a machine done or lost) stops holding
//! seconds back.

/// The watermark of every source of a run's units.
#[derive(Debug)]
pub(crate) struct Watermarks {
    /// By thread: the source it belongs to, if it sends units.
    source_of: Vec<Option<usize>>,
    /// By source: the last second it sent every unit for (`u64::MAX`: no more).
    through: Vec<u64>,
    /// Units are their own watermark (local threads) rather than explicit marks.
    implicit: bool,
}

impl Watermarks {
    /// Local threads: each is a source, and its units say how far it got.
    pub(crate) fn threads(threads: usize) -> Watermarks {
        Watermarks {
            source_of: (0..threads).map(Some).collect(),
            through: vec![0; threads],
            implicit: true,
        }
    }

    /// Machines, each running `count` threads from run-wide index `first`, of `total`,
    /// and reporting under `first`. A machine with no threads sends no units.
    pub(crate) fn machines(parts: &[(usize, usize)], total: usize) -> Watermarks {
        let mut source_of = vec![None; total];
        let mut through = Vec::with_capacity(parts.len());
        for &(first, count) in parts {
            if count > 0
                && let Some(slot) = source_of.get_mut(first)
            {
                *slot = Some(through.len());
                through.push(0);
            }
        }
        Watermarks {
            source_of,
            through,
            implicit: false,
        }
    }

    /// A unit for `second` came from `thread`.
    pub(crate) fn unit(&mut self, thread: usize, second: u64) {
        if self.implicit {
            self.raise(thread, second);
        }
    }

    /// `thread`'s machine sent every unit up to `second` (`u64::MAX`: all of them).
    pub(crate) fn through(&mut self, thread: usize, second: u64) {
        self.raise(thread, second);
    }

    fn raise(&mut self, thread: usize, second: u64) {
        if let Some(Some(source)) = self.source_of.get(thread)
            && let Some(t) = self.through.get_mut(*source)
        {
            *t = (*t).max(second);
        }
    }

    /// The last second every source sent all its units for (`u64::MAX` once none
    /// sends any more, or when there is none).
    pub(crate) fn complete(&self) -> u64 {
        self.through.iter().copied().min().unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_is_complete_once_every_source_passed_it() {
        let mut local = Watermarks::threads(2);
        local.unit(0, 3);
        assert_eq!(local.complete(), 0);
        local.unit(1, 2);
        assert_eq!(local.complete(), 2);
        local.unit(1, 1); // never backwards
        assert_eq!(local.complete(), 2);

        // Two machines (threads 0-1 and 2-4) and one with no threads.
        let mut remote = Watermarks::machines(&[(0, 2), (2, 3), (5, 0)], 5);
        remote.unit(0, 4); // a unit alone says nothing: it may be a part
        assert_eq!(remote.complete(), 0);
        remote.through(0, 4);
        remote.through(2, 3);
        assert_eq!(remote.complete(), 3);
        remote.through(3, 9); // not a reporting index
        assert_eq!(remote.complete(), 3);
        remote.through(2, u64::MAX); // lost or done
        assert_eq!(remote.complete(), 4);
    }
}
