//! The aggregator: merges the per-thread deltas that threads send about once
//! a second into cumulative totals and a per-second time series, and renders
//! [`Snapshot`]s. It runs on one task; nothing here is shared between threads.
//!
//! Deltas are labelled with the second of the run they cover (threads flush on whole
//! seconds since the run's origin), so a delta that arrives late still lands in its
//! own series point. Points stay open (with a histogram, so their percentiles are
//! exact) for a few seconds, then are finalised. The series is kept bounded: once it
//! holds more than `max_points`, the oldest half is downsampled by merging
//! neighbours.

use std::collections::VecDeque;
use std::time::Duration;

use hdrhistogram::Histogram;

use super::snapshot::{GeneratorHealth, SeriesPoint, Snapshot};
use super::stats::{RequestStats, latency_histogram};

/// The default bound on the number of series points a snapshot carries.
pub const MAX_SERIES_POINTS: usize = 600;

/// How many seconds a series point stays open for late deltas.
const OPEN_SECONDS: u64 = 3;

/// What one thread measured since its previous delta.
#[derive(Debug, Clone)]
pub struct Delta {
    /// The stats epoch (bumped by every reset); stale deltas are discarded.
    pub epoch: u64,
    /// The whole second of the run (since the origin) at the end of the covered interval.
    pub second: u64,
    /// Per request name, indexed by `RequestId`.
    pub requests: Vec<RequestStats>,
    /// Flow iterations completed.
    pub iterations: u64,
    /// Open-model arrivals dropped because `max_users` iterations were running.
    pub dropped: u64,
    /// Scheduling lag samples, in microseconds.
    pub lag: Histogram<u64>,
}

impl Delta {
    /// An empty delta for a plan with `requests` request names.
    pub fn new(requests: usize) -> Delta {
        Delta {
            epoch: 0,
            second: 0,
            requests: vec![RequestStats::default(); requests],
            iterations: 0,
            dropped: 0,
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
        self.lag.reset();
    }
}

/// A series point still accepting late deltas.
#[derive(Debug)]
struct OpenPoint {
    second: u64,
    all: RequestStats,
    dropped: u64,
    users: u32,
}

/// Cumulative totals and the time series of a run.
#[derive(Debug)]
pub struct Aggregator {
    epoch: u64,
    /// Seconds since the origin at which the stats were last reset.
    offset: f64,
    requests: Vec<RequestStats>,
    iterations: u64,
    dropped: u64,
    lag_total: Histogram<u64>,
    lag_interval: Histogram<u64>,
    open: VecDeque<OpenPoint>,
    /// The last second already moved from `open` into `series`.
    finalized: u64,
    series: Vec<SeriesPoint>,
    max_points: usize,
}

impl Aggregator {
    pub fn new(requests: usize) -> Aggregator {
        Aggregator::with_max_points(requests, MAX_SERIES_POINTS)
    }

    /// An aggregator whose series holds at most `max_points` points (at least 4).
    pub fn with_max_points(requests: usize, max_points: usize) -> Aggregator {
        Aggregator {
            epoch: 0,
            offset: 0.0,
            requests: vec![RequestStats::default(); requests],
            iterations: 0,
            dropped: 0,
            lag_total: latency_histogram(),
            lag_interval: latency_histogram(),
            open: VecDeque::new(),
            finalized: 0,
            series: Vec::new(),
            max_points: max_points.max(4),
        }
    }

    /// The current stats epoch: threads tag their deltas with it.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Flow iterations completed since the start (or the last reset).
    pub fn iterations(&self) -> u64 {
        self.iterations
    }

    /// Adds a thread's delta. Deltas of an older epoch (before a reset) are ignored.
    pub fn merge(&mut self, delta: &Delta) {
        if delta.epoch != self.epoch {
            return;
        }
        for (total, d) in self.requests.iter_mut().zip(&delta.requests) {
            if !d.is_empty() {
                total.merge(d);
            }
        }
        self.iterations += delta.iterations;
        self.dropped += delta.dropped;
        let _ = self.lag_total.add(&delta.lag);
        let _ = self.lag_interval.add(&delta.lag);
        // A delta later than its point's finalisation lands in the oldest open point,
        // so the series stays in time order.
        let point = self.point(delta.second.max(self.finalized + 1));
        for d in &delta.requests {
            if !d.is_empty() {
                point.all.merge(d);
            }
        }
        point.dropped += delta.dropped;
    }

    /// The open point for `second`, created in order when missing.
    fn point(&mut self, second: u64) -> &mut OpenPoint {
        let pos = match self.open.iter().position(|p| p.second >= second) {
            Some(i) if self.open[i].second == second => i,
            Some(i) => {
                self.open.insert(i, OpenPoint::new(second));
                i
            }
            None => {
                self.open.push_back(OpenPoint::new(second));
                self.open.len() - 1
            }
        };
        &mut self.open[pos]
    }

    /// Marks `second` as published with `users` active, and finalises the points that
    /// are old enough to receive no more deltas.
    pub fn close_second(&mut self, second: u64, users: u32) {
        self.point(second).users = users;
        while self
            .open
            .front()
            .is_some_and(|p| p.second + OPEN_SECONDS <= second)
        {
            if let Some(p) = self.open.pop_front() {
                self.finalized = p.second;
                let point = p.render(self.offset, None);
                self.push_final(point);
            }
        }
    }

    /// Finalises every open point; the run ended `elapsed` after the origin. What
    /// threads recorded after that (requests finishing while the run drained) is
    /// folded into the last point.
    pub fn finish(&mut self, elapsed: Duration, users: u32) {
        let end = elapsed.as_secs_f64();
        let last = (end.ceil() as u64).max(1);
        while self.open.back().is_some_and(|p| p.second > last) {
            if let Some(late) = self.open.pop_back() {
                let point = self.point(last);
                point.all.merge(&late.all);
                point.dropped += late.dropped;
            }
        }
        if let Some(p) = self.open.back_mut() {
            p.users = users;
        }
        while let Some(p) = self.open.pop_front() {
            self.finalized = p.second;
            let point = p.render(self.offset, Some(end));
            self.push_final(point);
        }
    }

    fn push_final(&mut self, point: SeriesPoint) {
        self.series.push(point);
        if self.series.len() > self.max_points {
            downsample(&mut self.series);
        }
    }

    /// Zeroes every statistic and the series: a new epoch starts `at` after the origin.
    pub fn reset(&mut self, at: Duration) {
        self.epoch += 1;
        self.offset = at.as_secs_f64();
        for r in &mut self.requests {
            r.reset();
        }
        self.iterations = 0;
        self.dropped = 0;
        self.lag_total.reset();
        self.lag_interval.reset();
        self.open.clear();
        self.finalized = 0;
        self.series.clear();
    }

    /// The scheduling lag since the previous call (then emptied) and since the start.
    pub fn take_lag(&mut self) -> (Histogram<u64>, &Histogram<u64>) {
        let interval = self.lag_interval.clone();
        self.lag_interval.reset();
        (interval, &self.lag_total)
    }

    /// Seconds since the origin at which the stats were last reset.
    pub fn offset(&self) -> Duration {
        Duration::from_secs_f64(self.offset)
    }

    /// Renders a snapshot. `elapsed` is the time since the origin; `upto` the last
    /// published second. The caller fills in users, targets, the end reason and health.
    pub fn snapshot(&self, elapsed: Duration, planned: Option<Duration>, upto: u64) -> Snapshot {
        let offset = self.offset();
        let mut series = self.series.clone();
        let end = elapsed.as_secs_f64();
        series.extend(
            self.open
                .iter()
                .filter(|p| p.second <= upto)
                .map(|p| p.render(self.offset, Some(end))),
        );
        Snapshot {
            elapsed: elapsed.saturating_sub(offset),
            planned: planned.map(|p| p.saturating_sub(offset)),
            end: super::snapshot::EndReason::Running,
            active_users: 0,
            target_users: 0,
            target_rate: None,
            iterations: self.iterations,
            dropped: self.dropped,
            requests: self.requests.clone(),
            series,
            generator: GeneratorHealth::default(),
        }
    }
}

impl OpenPoint {
    fn new(second: u64) -> OpenPoint {
        OpenPoint {
            second,
            all: RequestStats::default(),
            dropped: 0,
            users: 0,
        }
    }

    /// The point as published; `end` caps its time at the run's end.
    fn render(&self, offset: f64, end: Option<f64>) -> SeriesPoint {
        let mut t = self.second as f64;
        if let Some(end) = end {
            t = t.min(end);
        }
        let start = ((self.second as f64) - 1.0).max(offset);
        let width = (t - start).max(0.0);
        SeriesPoint {
            t: (t - offset).max(0.0),
            width,
            requests: self.all.count,
            failures: self.all.failures,
            p50_ms: self.all.percentile_ms(50.0),
            p95_ms: self.all.percentile_ms(95.0),
            p99_ms: self.all.percentile_ms(99.0),
            users: self.users,
            dropped: self.dropped,
        }
    }
}

/// Halves the resolution of the oldest half of `series`, merging neighbours: counts
/// add up, widths too, the time is the later point's, p50 is the request-weighted
/// mean, and p95/p99 keep the larger value (so spikes stay visible).
fn downsample(series: &mut Vec<SeriesPoint>) {
    let half = series.len() / 2;
    let mut merged = Vec::with_capacity(series.len());
    let mut old = series.drain(..half - half % 2);
    while let (Some(a), Some(b)) = (old.next(), old.next()) {
        merged.push(merge_points(&a, &b));
    }
    drop(old);
    merged.append(series);
    *series = merged;
}

fn merge_points(a: &SeriesPoint, b: &SeriesPoint) -> SeriesPoint {
    let n = a.requests + b.requests;
    let p50 = if n == 0 {
        0.0
    } else {
        (a.p50_ms * a.requests as f64 + b.p50_ms * b.requests as f64) / n as f64
    };
    SeriesPoint {
        t: b.t,
        width: a.width + b.width,
        requests: n,
        failures: a.failures + b.failures,
        p50_ms: p50,
        p95_ms: a.p95_ms.max(b.p95_ms),
        p99_ms: a.p99_ms.max(b.p99_ms),
        users: b.users,
        dropped: a.dropped + b.dropped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::failure::{FailureKind, TransportFailure};

    fn delta(second: u64, n: u64, ms: u64) -> Delta {
        let mut d = Delta::new(2);
        d.second = second;
        for _ in 0..n {
            d.requests[0].record(Duration::from_millis(ms), 10, Ok(()));
        }
        d.requests[1].record(
            Duration::from_millis(ms),
            0,
            Err(FailureKind::Transport(TransportFailure::Timeout)),
        );
        d.iterations = n;
        d
    }

    #[test]
    fn merges_totals_and_points_by_second() {
        let mut agg = Aggregator::new(2);
        agg.merge(&delta(1, 10, 5));
        agg.merge(&delta(2, 5, 50));
        // A late delta for second 1 still lands in point 1.
        agg.merge(&delta(1, 10, 5));
        agg.close_second(1, 3);
        agg.close_second(2, 4);
        let s = agg.snapshot(Duration::from_secs(2), None, 2);
        assert_eq!(s.requests[0].count, 25);
        assert_eq!(s.requests[1].failures, 3);
        assert_eq!(s.iterations, 25);
        assert_eq!(s.series.len(), 2);
        assert_eq!(s.series[0].requests, 22);
        assert_eq!(s.series[0].failures, 2);
        assert_eq!(s.series[0].users, 3);
        assert_eq!(s.series[1].requests, 6);
        assert!((s.series[1].p50_ms - 50.0).abs() < 0.1);
        assert!((s.series[1].t - 2.0).abs() < 1e-9);
    }

    #[test]
    fn reset_discards_old_epochs() {
        let mut agg = Aggregator::new(2);
        agg.merge(&delta(1, 10, 5));
        agg.reset(Duration::from_millis(1500));
        agg.merge(&delta(2, 10, 5)); // epoch 0: stale
        let mut d = delta(2, 4, 5);
        d.epoch = agg.epoch();
        agg.merge(&d);
        agg.finish(Duration::from_millis(2500), 1);
        let s = agg.snapshot(
            Duration::from_millis(2500),
            Some(Duration::from_secs(10)),
            2,
        );
        assert_eq!(s.requests[0].count, 4);
        assert_eq!(s.elapsed, Duration::from_secs(1));
        assert_eq!(s.planned, Some(Duration::from_millis(8500)));
        assert_eq!(s.series.len(), 1);
        assert!((s.series[0].t - 0.5).abs() < 1e-9);
        assert!((s.series[0].width - 0.5).abs() < 1e-9);
    }

    #[test]
    fn very_late_deltas_keep_the_series_in_order() {
        let mut agg = Aggregator::new(2);
        for s in 1..=6 {
            agg.merge(&delta(s, 1, 5));
            agg.close_second(s, 1);
        }
        // Second 1 was finalised long ago; its straggler joins the oldest open point.
        agg.merge(&delta(1, 4, 5));
        agg.finish(Duration::from_secs(6), 1);
        let s = agg.snapshot(Duration::from_secs(6), None, 6);
        assert!(
            s.series.windows(2).all(|w| w[0].t < w[1].t),
            "{:?}",
            s.series
        );
        let total: u64 = s.series.iter().map(|p| p.requests).sum();
        assert_eq!(total, 6 * 2 + 5);
    }

    #[test]
    fn late_deltas_fold_into_the_last_point() {
        let mut agg = Aggregator::new(2);
        agg.merge(&delta(10, 3, 5));
        agg.merge(&delta(11, 2, 5));
        agg.finish(Duration::from_millis(9_990), 0);
        let s = agg.snapshot(Duration::from_millis(9_990), None, 11);
        assert_eq!(s.series.len(), 1);
        assert_eq!(s.series[0].requests, 7);
        assert!((s.series[0].t - 9.99).abs() < 1e-9);
    }

    #[test]
    fn series_stays_bounded() {
        let mut agg = Aggregator::with_max_points(1, 10);
        let mut total = 0;
        for s in 1..=200 {
            let mut d = Delta::new(1);
            d.second = s;
            d.requests[0].record(Duration::from_millis(1), 0, Ok(()));
            total += 1;
            agg.merge(&d);
            agg.close_second(s, 1);
        }
        agg.finish(Duration::from_secs(200), 1);
        let snap = agg.snapshot(Duration::from_secs(200), None, 200);
        assert!(snap.series.len() <= 10, "{}", snap.series.len());
        let sum: u64 = snap.series.iter().map(|p| p.requests).sum();
        assert_eq!(sum, total);
        let width: f64 = snap.series.iter().map(|p| p.width).sum();
        assert!((width - 200.0).abs() < 1e-6, "{width}");
        assert!((snap.series.last().unwrap().t - 200.0).abs() < 1e-9);
        assert!(snap.series.windows(2).all(|w| w[0].t < w[1].t));
    }
}
