//! Mergeable per-request statistics: counts, bytes, failure reasons and an HDR
//! latency histogram. These are what threads record into, what snapshots carry and
//! what distributed workers send; merging two of them loses nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

use super::failure::FailureKind;

/// Lowest latency a histogram tracks, in microseconds.
pub const LATENCY_LOW_US: u64 = 1;
/// Highest latency a histogram tracks, in microseconds (one hour); larger values are clamped.
pub const LATENCY_HIGH_US: u64 = 3_600_000_000;
/// Significant digits kept by latency histograms.
pub const LATENCY_SIGFIG: u8 = 3;

/// A new, empty latency histogram: microseconds, 1 µs to 1 h, 3 significant digits.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(LATENCY_LOW_US, LATENCY_HIGH_US, LATENCY_SIGFIG)
        .expect("constant histogram bounds are valid")
}

/// Records `latency` into `hist`, clamped to the histogram's range.
#[inline]
pub fn record_latency(hist: &mut Histogram<u64>, latency: Duration) {
    // In u64, not `as_micros`' u128: every request pays for this.
    let us = latency
        .as_secs()
        .saturating_mul(1_000_000)
        .saturating_add(u64::from(latency.subsec_micros()))
        .clamp(LATENCY_LOW_US, LATENCY_HIGH_US);
    hist.saturating_record(us);
}

/// The value at `percentile` (0–100) of a histogram of microseconds, in
/// milliseconds; 0 when it is empty.
pub fn percentile_ms(h: &Histogram<u64>, percentile: f64) -> f64 {
    if h.is_empty() {
        return 0.0;
    }
    h.value_at_percentile(percentile) as f64 / 1000.0
}

/// The HTTP version a reply came in: counted per request name, so the reports say
/// which version each request used (`http.version: auto` may negotiate either).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HttpVersionUsed {
    Http10,
    Http11,
    Http2,
}

impl HttpVersionUsed {
    /// Every version, in the order of [`RequestStats::versions`].
    pub const ALL: [HttpVersionUsed; 3] = [
        HttpVersionUsed::Http10,
        HttpVersionUsed::Http11,
        HttpVersionUsed::Http2,
    ];

    /// How reports name it: `HTTP/1.1`, `HTTP/2`.
    pub fn label(self) -> &'static str {
        match self {
            HttpVersionUsed::Http10 => "HTTP/1.0",
            HttpVersionUsed::Http11 => "HTTP/1.1",
            HttpVersionUsed::Http2 => "HTTP/2",
        }
    }
}

/// Statistics for one request name.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestStats {
    /// Requests completed (successful or failed).
    pub count: u64,
    /// Requests that failed, for any reason.
    pub failures: u64,
    /// Response body bytes received.
    pub bytes: u64,
    /// Latency of every request sent, failed ones included, in microseconds. A
    /// request that failed before it was sent (zero latency) is counted, but has no
    /// latency to pull the percentiles down.
    pub latency: Histogram<u64>,
    /// Failures by typed reason.
    pub reasons: BTreeMap<FailureKind, u64>,
    /// Replies by HTTP version, indexed as [`HttpVersionUsed::ALL`]; a call that got
    /// no HTTP reply counts under none.
    pub versions: [u64; 3],
}

impl Default for RequestStats {
    fn default() -> Self {
        RequestStats {
            count: 0,
            failures: 0,
            bytes: 0,
            latency: latency_histogram(),
            reasons: BTreeMap::new(),
            versions: [0; 3],
        }
    }
}

impl RequestStats {
    /// Records one completed request.
    #[inline]
    pub fn record(&mut self, latency: Duration, bytes: u64, outcome: Result<(), FailureKind>) {
        self.count += 1;
        self.bytes += bytes;
        if !(latency.is_zero() && outcome.is_err()) {
            record_latency(&mut self.latency, latency);
        }
        if let Err(kind) = outcome {
            self.failures += 1;
            *self.reasons.entry(kind).or_insert(0) += 1;
        }
    }

    /// Counts one reply in HTTP version `v`.
    #[inline]
    pub fn version(&mut self, v: HttpVersionUsed) {
        self.versions[v as usize] += 1;
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &RequestStats) {
        for (total, n) in self.versions.iter_mut().zip(other.versions) {
            *total += n;
        }
        self.count += other.count;
        self.failures += other.failures;
        self.bytes += other.bytes;
        // Both histograms share the same bounds, so adding cannot fail.
        let _ = self.latency.add(&other.latency);
        for (kind, n) in &other.reasons {
            *self.reasons.entry(*kind).or_insert(0) += n;
        }
    }

    /// Empties the stats, keeping the histogram's allocation.
    pub fn reset(&mut self) {
        self.count = 0;
        self.failures = 0;
        self.bytes = 0;
        self.latency.reset();
        self.reasons.clear();
        self.versions = [0; 3];
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The latency at `percentile` (0–100), in milliseconds; 0 when empty.
    pub fn percentile_ms(&self, percentile: f64) -> f64 {
        percentile_ms(&self.latency, percentile)
    }

    pub fn mean_ms(&self) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        self.latency.mean() / 1000.0
    }

    pub fn min_ms(&self) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        self.latency.min() as f64 / 1000.0
    }

    pub fn max_ms(&self) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        self.latency.max() as f64 / 1000.0
    }

    /// Failed / all requests, as a fraction; 0 when nothing ran.
    pub fn error_rate(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.failures as f64 / self.count as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::failure::{CheckFailure, TransportFailure};

    #[test]
    fn merge_adds_everything() {
        let mut a = RequestStats::default();
        a.record(Duration::from_millis(10), 100, Ok(()));
        let mut b = RequestStats::default();
        b.record(
            Duration::from_millis(30),
            50,
            Err(FailureKind::Transport(TransportFailure::Timeout)),
        );
        b.record(
            Duration::from_millis(30),
            50,
            Err(FailureKind::Transport(TransportFailure::Timeout)),
        );
        a.merge(&b);
        assert_eq!(a.count, 3);
        assert_eq!(a.failures, 2);
        assert_eq!(a.bytes, 200);
        assert_eq!(
            a.reasons[&FailureKind::Transport(TransportFailure::Timeout)],
            2
        );
        assert!((a.max_ms() - 30.0).abs() < 0.1);
        assert!((a.error_rate() - 2.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn latency_is_clamped_to_range() {
        let mut s = RequestStats::default();
        s.record(Duration::from_secs(10_000), 0, Ok(()));
        s.record(Duration::ZERO, 0, Ok(()));
        assert_eq!(s.count, 2);
        assert!(s.max_ms() >= 3_599_000.0);
    }

    #[test]
    fn a_request_never_sent_is_counted_without_a_latency() {
        let mut s = RequestStats::default();
        s.record(Duration::from_millis(40), 0, Ok(()));
        s.record(
            Duration::ZERO,
            0,
            Err(FailureKind::Check(CheckFailure::Unset(
                crate::compile::graph::SlotId(0),
            ))),
        );
        assert_eq!((s.count, s.failures, s.latency.len()), (2, 1, 1));
        assert!(
            (s.percentile_ms(0.0) - 40.0).abs() < 0.1,
            "p0 is the sent one"
        );
    }
}
