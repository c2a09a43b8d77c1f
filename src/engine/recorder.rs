//! Per-thread recording: every virtual user on a thread records into that
//! thread's one [`Recorder`] (shared through an `Rc`, never a lock): one HDR
//! histogram per request name per thread, never one per user. About once a second
//! the thread takes the recorded [`Delta`] and sends it to the aggregator, which sends
//! the emptied delta back for reuse, so recording allocates nothing in steady state.

use std::sync::mpsc::Receiver;
use std::time::Duration;

use crate::compile::graph::RequestId;
use crate::metrics::delta::Delta;
use crate::metrics::failure::FailureKind;
use crate::metrics::stats::{HttpVersionUsed, record_latency};

/// What one thread measured since its last flush.
#[derive(Debug)]
pub struct Recorder {
    current: Delta,
    requests: usize,
    /// Deltas the aggregator has merged and sent back, to be reused.
    recycled: Receiver<Delta>,
}

impl Recorder {
    /// A recorder for `requests` request names; emptied deltas come back on `recycled`.
    pub fn new(requests: usize, recycled: Receiver<Delta>) -> Recorder {
        Recorder {
            current: Delta::new(requests),
            requests,
            recycled,
        }
    }

    /// Records one completed request under its request name, with the HTTP version
    /// its reply came in, if it got an HTTP reply.
    #[inline]
    pub fn request(
        &mut self,
        id: RequestId,
        latency: Duration,
        bytes: u64,
        result: Result<(), FailureKind>,
        version: Option<HttpVersionUsed>,
    ) {
        if let Some(stats) = self.current.requests.get_mut(id.0 as usize) {
            stats.record(latency, bytes, result);
            if let Some(v) = version {
                stats.version(v);
            }
        }
    }

    /// Counts one completed flow iteration.
    #[inline]
    pub fn iteration(&mut self) {
        self.current.iterations += 1;
    }

    /// Counts one open-model arrival dropped because `max_users` were busy.
    pub fn dropped(&mut self) {
        self.current.dropped += 1;
    }

    /// Records one scheduling-lag sample (how late a timer or an arrival fired).
    #[inline]
    pub fn lag(&mut self, lag: Duration) {
        record_latency(&mut self.current.lag, lag);
    }

    /// Takes what was recorded, labelled with `epoch`, `second` and its wall-clock
    /// start, leaving an empty recorder behind (a recycled delta when one is available).
    pub fn take(&mut self, epoch: u64, second: u64, start_unix_ms: u64) -> Delta {
        let fresh = match self.recycled.try_recv() {
            Ok(mut d) => {
                d.clear();
                d
            }
            Err(_) => Delta::new(self.requests),
        };
        let mut delta = std::mem::replace(&mut self.current, fresh);
        delta.epoch = epoch;
        delta.second = second;
        delta.start_unix_ms = start_unix_ms;
        delta
    }

    /// Discards what was recorded (after a stats reset).
    pub fn clear(&mut self) {
        self.current.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_hands_over_and_reuses_deltas() {
        let (back, recycled) = std::sync::mpsc::channel();
        let mut r = Recorder::new(2, recycled);
        r.request(
            RequestId(1),
            Duration::from_millis(3),
            7,
            Ok(()),
            Some(HttpVersionUsed::Http2),
        );
        r.request(RequestId(9), Duration::from_millis(3), 7, Ok(()), None); // unknown: ignored
        r.iteration();
        r.dropped();
        r.lag(Duration::from_micros(500));
        let d = r.take(2, 5, 4_000);
        assert_eq!((d.epoch, d.second, d.start_unix_ms), (2, 5, 4_000));
        assert_eq!(d.requests[1].count, 1);
        assert_eq!(d.requests[1].versions, [0, 0, 1]);
        assert_eq!((d.iterations, d.dropped, d.lag.len()), (1, 1, 1));
        back.send(d).unwrap();
        let next = r.take(2, 6, 5_000);
        assert_eq!(next.requests[1].count, 0);
        // The recycled delta is now the current one, and comes back cleared.
        r.iteration();
        let again = r.take(2, 7, 6_000);
        assert_eq!(again.iterations, 1);
        assert_eq!(again.requests[1].count, 0);
        assert!(again.lag.is_empty());
    }
}
