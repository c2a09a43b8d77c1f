//! The measurement unit: what one engine thread (and, later, one worker machine)
//! measured over one second of the run. Threads record into it, the aggregator merges
//! it, and [`super::wire`] carries it across a network. Merging two units loses
//! nothing: counts add, HDR histograms add bucket by bucket.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;

use super::stats::{RequestStats, latency_histogram};

/// What one engine thread measured since its previous delta.
#[derive(Debug, Clone, PartialEq)]
pub struct Delta {
    /// The stats epoch (bumped by every reset); stale deltas are discarded.
    pub epoch: u64,
    /// The whole second of the run (since the origin) at the end of the covered interval.
    pub second: u64,
    /// Wall-clock start of that second, in milliseconds since the Unix epoch, so units
    /// from machines whose runs started apart can be lined up.
    pub start_unix_ms: u64,
    /// Per request name, indexed by `RequestId`.
    pub requests: Vec<RequestStats>,
    /// Flow iterations completed.
    pub iterations: u64,
    /// Open-model arrivals dropped because `max_users` iterations were running.
    pub dropped: u64,
    /// Users (closed model) or iterations (open model) running when the unit was taken.
    pub active: u32,
    /// Scheduling lag samples, in microseconds.
    pub lag: Histogram<u64>,
}

impl Delta {
    /// An empty delta for a plan with `requests` request names.
    pub fn new(requests: usize) -> Delta {
        Delta {
            epoch: 0,
            second: 0,
            start_unix_ms: 0,
            requests: vec![RequestStats::default(); requests],
            iterations: 0,
            dropped: 0,
            active: 0,
            lag: latency_histogram(),
        }
    }

    /// Empties the delta, keeping its allocations.
    pub fn clear(&mut self) {
        for r in &mut self.requests {
            if !r.is_empty() {
                r.reset();
            }
        }
        self.iterations = 0;
        self.dropped = 0;
        self.active = 0;
        // Clearing a whole histogram writes all of its 190 KB.
        if !self.lag.is_empty() {
            self.lag.reset();
        }
    }

    /// Adds `other` (a unit of the same plan) into `self`, exactly. Labels (epoch,
    /// second, start) are `self`'s; the earlier start wins so the merged unit covers
    /// both. Active users add up: units of one second come from different threads.
    pub fn merge(&mut self, other: &Delta) {
        for (total, d) in self.requests.iter_mut().zip(&other.requests) {
            if !d.is_empty() {
                total.merge(d);
            }
        }
        if self.start_unix_ms == 0
            || (other.start_unix_ms != 0 && other.start_unix_ms < self.start_unix_ms)
        {
            self.start_unix_ms = other.start_unix_ms;
        }
        self.iterations += other.iterations;
        self.dropped += other.dropped;
        self.active += other.active;
        // Same bounds on both sides: adding cannot fail.
        let _ = self.lag.add(&other.lag);
    }

    /// Every request name's stats merged into one.
    pub fn all(&self) -> RequestStats {
        let mut all = RequestStats::default();
        for r in &self.requests {
            if !r.is_empty() {
                all.merge(r);
            }
        }
        all
    }
}

/// Milliseconds since the Unix epoch of `origin + second - 1 s`: the wall-clock start
/// of the run's whole second `second` (seconds count from 1).
pub fn second_start_unix_ms(origin: SystemTime, second: u64) -> u64 {
    let start = origin + Duration::from_secs(second.saturating_sub(1));
    start
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::failure::{FailureKind, TransportFailure};

    #[test]
    fn merge_adds_everything_and_keeps_the_earlier_start() {
        let mut a = Delta::new(2);
        a.start_unix_ms = 2_000;
        a.requests[0].record(Duration::from_millis(5), 10, Ok(()));
        a.active = 3;
        let mut b = Delta::new(2);
        b.start_unix_ms = 1_000;
        b.requests[1].record(
            Duration::from_millis(9),
            0,
            Err(FailureKind::Transport(TransportFailure::Timeout)),
        );
        b.iterations = 4;
        b.dropped = 1;
        b.active = 2;
        a.merge(&b);
        assert_eq!(a.start_unix_ms, 1_000);
        assert_eq!((a.iterations, a.dropped, a.active), (4, 1, 5));
        let all = a.all();
        assert_eq!((all.count, all.failures, all.bytes), (2, 1, 10));
        assert_eq!(all.latency.max(), b.requests[1].latency.max());
    }

    #[test]
    fn seconds_start_one_second_apart() {
        let origin = UNIX_EPOCH + Duration::from_millis(1_700_000_000_250);
        assert_eq!(second_start_unix_ms(origin, 1), 1_700_000_000_250);
        assert_eq!(second_start_unix_ms(origin, 3), 1_700_000_002_250);
    }
}
