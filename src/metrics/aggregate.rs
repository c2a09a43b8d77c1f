//! The aggregator: merges the measurement units ([`Delta`]s) that threads send about
//! once a second into cumulative totals, a per-second time series and a ring of the
//! most recent seconds, and renders [`Snapshot`]s. It runs on one task; nothing here
//! is shared between threads.
//!
//! Units are labelled with the second of the run they cover (threads flush on whole
//! seconds since the run's origin), so a unit that arrives late still lands in its
//! own second. A second stays open (as one merged unit, so everything in it is exact)
//! until the controller seals it, once every source of units has sent all of its
//! units for it (see `engine::schedule::marks`); only then is it finalised: it
//! becomes a series point, which keeps the second's whole latency histogram, and,
//! when a ring of recent seconds is kept ([`Aggregator::keep_recent`]), its merged
//! unit joins the ring, encoded. Snapshots show finalised seconds only, so no reader
//! ever sees a second that is still filling. The series is kept bounded by
//! [`series::downsample`], which merges histograms, so it stays exact too.
//!
//! A unit for a second already final (its source was past the controller's bound)
//! still counts in the totals, never in another second: it is counted as late.

use std::collections::VecDeque;
use std::time::Duration;

use hdrhistogram::Histogram;

pub use super::delta::Delta;
use super::series;
use super::snapshot::{GeneratorHealth, SeriesPoint, Snapshot};
use super::stats::{RequestStats, latency_histogram};
use super::window::WindowJudge;
use super::wire;

/// The default bound on the number of series points a snapshot carries.
pub const MAX_SERIES_POINTS: usize = 600;

/// A second still accepting late units: their merge, and the users at its end.
#[derive(Debug)]
struct OpenPoint {
    second: u64,
    unit: Delta,
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
    /// Finalised units, kept for reuse by the next open seconds.
    spare: Vec<Delta>,
    /// The last second already moved from `open` into `series`.
    finalized: u64,
    series: Vec<SeriesPoint>,
    max_points: usize,
    /// The last finalised seconds' merged units, encoded (a few KB each, where the
    /// unit in memory takes a histogram's 190 KB per request name), oldest first.
    recent: VecDeque<(u64, Vec<u8>)>,
    keep_recent: usize,
    /// The windowed and aborting SLO lines, fed each second as it is finalised.
    judge: Option<WindowJudge>,
    /// The last second the judge was given.
    judged: u64,
    /// Requests of units that came after their second was final: in the totals, in
    /// no second of the series.
    late: u64,
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
            spare: Vec::new(),
            finalized: 0,
            series: Vec::new(),
            max_points: max_points.max(4),
            recent: VecDeque::new(),
            keep_recent: 0,
            judge: None,
            judged: 0,
            late: 0,
        }
    }

    /// Judges windowed and aborting SLO lines with `judge`, one finalised second at a
    /// time (once sealed: when no more units can arrive for it).
    pub fn judge_windows(&mut self, judge: WindowJudge) {
        self.judge = Some(judge);
    }

    /// The aborting line that failed, as the reason the run must end.
    pub fn aborted(&self) -> Option<super::snapshot::EndReason> {
        let judge = self.judge.as_ref()?;
        let abort = judge.abort()?;
        Some(super::snapshot::EndReason::Aborted {
            slo: abort.slo,
            line: judge.label(abort.slo).to_string(),
            // The judge counts seconds since the (last) reset.
            at: abort.at,
        })
    }

    /// Keeps the last `seconds` finalised seconds (at least 1) for [`Self::trailing`].
    /// Without this call no ring is kept: encoding each second's unit costs a pass
    /// over its histograms that a run without a reader of the ring should not pay.
    pub fn keep_recent(&mut self, seconds: usize) {
        self.keep_recent = seconds.max(1);
        while self.recent.len() > self.keep_recent {
            self.recent.pop_front();
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

    /// Adds a unit. Units of an older epoch (before a reset) are ignored.
    pub fn merge(&mut self, delta: &Delta) {
        if delta.epoch != self.epoch {
            return;
        }
        self.add_to_totals(delta);
        if delta.second <= self.finalized {
            // Its second is final: the totals have it, the series cannot.
            self.late += delta.all().count;
            return;
        }
        let point = self.point(delta.second);
        point.unit.merge(delta);
    }

    /// Adds a unit, as [`Self::merge`], keeping it: the first unit of a second becomes
    /// that second's merged unit instead of being copied into a cleared one (two
    /// whole histograms copied and two cleared per second saved). Returns a unit the
    /// sender may reuse once cleared: the one given when it was merged into an
    /// existing second (or ignored), else a finalised one when there is one.
    pub fn merge_owned(&mut self, delta: Delta) -> Option<Delta> {
        if delta.epoch != self.epoch {
            return Some(delta);
        }
        self.add_to_totals(&delta);
        if delta.second <= self.finalized {
            // Its second is final: the totals have it, the series cannot.
            self.late += delta.all().count;
            return Some(delta);
        }
        let second = delta.second;
        let pos = match self.open.iter().position(|p| p.second >= second) {
            Some(i) if self.open[i].second == second => {
                let point = &mut self.open[i];
                point.unit.merge(&delta);
                return Some(delta);
            }
            Some(i) => i,
            None => self.open.len(),
        };
        // What `new_point` and a merge into its cleared unit would have made.
        let mut unit = delta;
        unit.second = second;
        self.open.insert(
            pos,
            OpenPoint {
                second,
                unit,
                users: 0,
            },
        );
        self.spare.pop()
    }

    /// Adds a unit to the run's totals and the lag histograms.
    fn add_to_totals(&mut self, delta: &Delta) {
        for (total, d) in self.requests.iter_mut().zip(&delta.requests) {
            if !d.is_empty() {
                total.merge(d);
            }
        }
        self.iterations += delta.iterations;
        self.dropped += delta.dropped;
        let _ = self.lag_total.add(&delta.lag);
        let _ = self.lag_interval.add(&delta.lag);
    }

    /// Adds a unit as it came over the network (its histograms as buckets), exactly
    /// as [`Self::merge`] adds the same unit decoded: no histogram is built for it.
    pub fn merge_unit(&mut self, unit: &wire::Unit) {
        if unit.epoch != self.epoch {
            return;
        }
        for (total, r) in self.requests.iter_mut().zip(&unit.requests) {
            r.add_to(total);
        }
        self.iterations += unit.iterations;
        self.dropped += unit.dropped;
        unit.lag.add_to(&mut self.lag_total);
        unit.lag.add_to(&mut self.lag_interval);
        if unit.second <= self.finalized {
            self.late += unit.requests_total();
            return;
        }
        let point = self.point(unit.second);
        unit.add_to(&mut point.unit);
    }

    /// Requests that came after their second was final (in the totals only).
    pub fn late(&self) -> u64 {
        self.late
    }

    /// The last finalised second.
    pub fn finalized(&self) -> u64 {
        self.finalized
    }

    /// The open point for `second`, created in order when missing.
    fn point(&mut self, second: u64) -> &mut OpenPoint {
        let pos = match self.open.iter().position(|p| p.second >= second) {
            Some(i) if self.open[i].second == second => i,
            Some(i) => {
                let p = self.new_point(second);
                self.open.insert(i, p);
                i
            }
            None => {
                let p = self.new_point(second);
                self.open.push_back(p);
                self.open.len() - 1
            }
        };
        &mut self.open[pos]
    }

    fn new_point(&mut self, second: u64) -> OpenPoint {
        let requests = self.requests.len();
        let mut unit = self.spare.pop().unwrap_or_else(|| Delta::new(requests));
        unit.clear();
        unit.epoch = self.epoch;
        unit.second = second;
        unit.start_unix_ms = 0;
        OpenPoint {
            second,
            unit,
            users: 0,
        }
    }

    /// Marks `second` as over, with `users` active at its end (a second with no unit
    /// still gets its point). It stays open until [`Self::seal`].
    pub fn close_second(&mut self, second: u64, users: u32) {
        if second > self.finalized {
            self.point(second).users = users;
        }
    }

    /// Finalises the open seconds up to `through`: no more units can come for them.
    pub fn seal(&mut self, through: u64) {
        while self.open.front().is_some_and(|p| p.second <= through) {
            if let Some(p) = self.open.pop_front() {
                self.finalize(p, None);
            }
        }
        self.finalized = self.finalized.max(through);
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
                point.unit.merge(&late.unit);
                self.spare.push(late.unit);
            }
        }
        if let Some(p) = self.open.back_mut() {
            p.users = users;
        }
        while let Some(p) = self.open.pop_front() {
            self.finalize(p, Some(end));
        }
    }

    /// Moves an open second into the series and the ring of recent units.
    fn finalize(&mut self, p: OpenPoint, end: Option<f64>) {
        self.finalized = p.second;
        let point = p.render(self.offset, end);
        self.series.push(point);
        if self.series.len() > self.max_points {
            self.series = series::downsample(&self.series, self.max_points);
        }
        if let Some(judge) = self.judge.as_mut() {
            // A second in which no thread sent anything still passes in the windows.
            for _ in self.judged + 1..p.second {
                judge.push(&[], 0);
            }
            judge.push(&p.unit.requests, p.unit.dropped);
            self.judged = p.second;
        }
        let mut unit = p.unit;
        unit.active = p.users;
        if self.keep_recent > 0 {
            self.recent.push_back((p.second, wire::encode(&unit)));
            if self.recent.len() > self.keep_recent {
                self.recent.pop_front();
            }
        }
        self.spare.push(unit);
    }

    /// The finalised seconds after `after` (a second of the run), merged into one unit,
    /// exactly: what a trailing window of SLO judgement sees. At most the ring's
    /// seconds (see [`Self::keep_recent`]) are kept; `None` when it holds none.
    pub fn trailing(&self, after: u64) -> Option<Delta> {
        let mut merged: Option<Delta> = None;
        for (_, bytes) in self.recent.iter().filter(|(s, _)| *s > after) {
            // The ring holds units this aggregator encoded itself.
            let Ok(unit) = wire::decode(bytes, self.requests.len()) else {
                continue;
            };
            match merged.as_mut() {
                Some(m) => {
                    m.merge(&unit);
                    // Across seconds, the users active are the last second's.
                    m.active = unit.active;
                }
                None => merged = Some(unit),
            }
        }
        merged
    }

    /// The encoded units of the finalised seconds after `after`, oldest first, with
    /// the second each covers.
    pub fn recent(&self, after: u64) -> impl Iterator<Item = (u64, &[u8])> {
        self.recent
            .iter()
            .filter(move |(s, _)| *s > after)
            .map(|(s, b)| (*s, b.as_slice()))
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
        let open: Vec<Delta> = self.open.drain(..).map(|p| p.unit).collect();
        self.spare.extend(open);
        self.finalized = 0;
        self.series.clear();
        self.recent.clear();
        // The first second after the reset is the one it happened in.
        self.judged = at.as_secs();
        if let Some(judge) = self.judge.as_mut() {
            judge.reset();
        }
    }

    /// The scheduling lag since the previous [`Self::lag_sampled`] and since the start.
    pub fn lag(&self) -> (&Histogram<u64>, &Histogram<u64>) {
        (&self.lag_interval, &self.lag_total)
    }

    /// Starts the next lag interval. (Read in place and emptied after, the interval's
    /// histogram is not copied: a whole histogram is 190 KB.)
    pub fn lag_sampled(&mut self) {
        if !self.lag_interval.is_empty() {
            self.lag_interval.reset();
        }
    }

    /// Seconds since the origin at which the stats were last reset.
    pub fn offset(&self) -> Duration {
        Duration::from_secs_f64(self.offset)
    }

    /// Renders a snapshot, whose series holds the finalised seconds only. `elapsed` is
    /// the time since the origin. The caller fills in users, targets, the end reason
    /// and health.
    pub fn snapshot(&self, elapsed: Duration, planned: Option<Duration>) -> Snapshot {
        let offset = self.offset();
        let series = self.series.clone();
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
            windows: self
                .judge
                .as_ref()
                .map(WindowJudge::worst)
                .unwrap_or_default(),
            epoch: self.epoch,
            search: None,
        }
    }
}

impl OpenPoint {
    /// The point as published; `end` caps its time at the run's end.
    fn render(&self, offset: f64, end: Option<f64>) -> SeriesPoint {
        let mut t = self.second as f64;
        if let Some(end) = end {
            t = t.min(end);
        }
        let start = ((self.second as f64) - 1.0).max(offset);
        let width = (t - start).max(0.0);
        let merged;
        let all = match only_busy(&self.unit.requests) {
            Some(one) => one,
            None => {
                merged = self.unit.all();
                &merged
            }
        };
        let mut point = SeriesPoint {
            requests: all.count,
            failures: all.failures,
            dropped: self.unit.dropped,
            ..SeriesPoint::default()
        };
        series::set_latency(&mut point, &all.latency);
        point.t = (t - offset).max(0.0);
        point.width = width;
        point.users = self.users;
        point
    }
}

/// The stats of the only request name that ran anything (or of the first, when none
/// did): then they are what [`Delta::all`] would merge, without a new histogram.
fn only_busy(requests: &[RequestStats]) -> Option<&RequestStats> {
    let mut busy = requests.iter().filter(|r| !r.is_empty());
    match (busy.next(), busy.next()) {
        (Some(one), None) => Some(one),
        (None, _) => requests.first(),
        (Some(_), Some(_)) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::failure::{FailureKind, TransportFailure};
    use crate::metrics::snapshot::EndReason;

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

    /// A unit merged as it came over the network (buckets, no histogram) leaves the
    /// aggregator exactly as the same unit decoded whole.
    #[test]
    fn units_merged_as_buckets_equal_units_merged_whole() {
        let (mut whole, mut buckets) = (Aggregator::new(2), Aggregator::new(2));
        for (s, n, ms) in [(1, 10, 5), (1, 3, 700), (2, 40, 12), (3, 1, 3_000)] {
            let mut d = delta(s, n, ms);
            crate::metrics::stats::record_latency(&mut d.lag, Duration::from_micros(s * 77));
            d.start_unix_ms = 1_000 * s;
            d.active = 3;
            let bytes = wire::encode(&d);
            whole.merge(&wire::decode(&bytes, 2).unwrap());
            buckets.merge_unit(&wire::decode_unit(&bytes, 2).unwrap());
        }
        for agg in [&mut whole, &mut buckets] {
            agg.close_second(3, 1);
            agg.seal(3);
        }
        let (a, b) = (
            whole.snapshot(Duration::from_secs(3), None),
            buckets.snapshot(Duration::from_secs(3), None),
        );
        assert_eq!(a.requests, b.requests);
        assert_eq!(a.series, b.series);
        assert_eq!(whole.lag().1, buckets.lag().1);
        assert_eq!(whole.trailing(0), buckets.trailing(0));
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
        agg.seal(2);
        let s = agg.snapshot(Duration::from_secs(2), None);
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

    /// The engine's path: units kept instead of copied add up exactly as copies do,
    /// late, stale and several per second included, and units come back for reuse.
    #[test]
    fn kept_units_merge_as_copies_do() {
        let mut copied = Aggregator::new(2);
        let mut kept = Aggregator::new(2);
        let mut back = 0;
        let mut feed = |d: Delta, copied: &mut Aggregator, kept: &mut Aggregator| {
            copied.merge(&d);
            back += usize::from(kept.merge_owned(d).is_some());
        };
        for s in 1..=8 {
            // Two threads a second, the second one slower.
            feed(delta(s, s, 5), &mut copied, &mut kept);
            feed(delta(s, 2, 40 * s), &mut copied, &mut kept);
            if s == 6 {
                // Second 1 is final by now: this one counts in the totals only.
                feed(delta(1, 4, 900), &mut copied, &mut kept);
                // An older epoch's unit is ignored, and handed back.
                let mut stale = delta(s, 1, 5);
                stale.epoch = 7;
                feed(stale, &mut copied, &mut kept);
            }
            copied.close_second(s, 2);
            kept.close_second(s, 2);
            // Every source is two seconds behind at most.
            copied.seal(s.saturating_sub(2));
            kept.seal(s.saturating_sub(2));
        }
        copied.finish(Duration::from_millis(7_500), 1);
        kept.finish(Duration::from_millis(7_500), 1);
        let a = copied.snapshot(Duration::from_millis(7_500), None);
        let b = kept.snapshot(Duration::from_millis(7_500), None);
        assert_eq!(a.requests, b.requests);
        assert_eq!(a.series, b.series);
        assert_eq!((a.iterations, a.dropped), (b.iterations, b.dropped));
        assert_eq!(kept.lag(), copied.lag());
        // The late unit: its 4 requests of the first name and 1 of the second.
        assert_eq!((kept.late(), copied.late()), (5, 5));
        // Every second's second unit, the late and the stale one come straight back,
        // and finalised units once seconds close.
        assert!(back >= 8 + 2, "{back} units came back");
    }

    /// A second in which one request name ran is drawn from that name's histogram
    /// as it stands, the same as merging every name would give.
    #[test]
    fn a_second_of_one_request_name_draws_that_name() {
        let mut agg = Aggregator::new(3);
        let mut d = Delta::new(3);
        d.second = 1;
        for ms in [3, 9, 27] {
            d.requests[1].record(Duration::from_millis(ms), 1, Ok(()));
        }
        let all = d.all();
        agg.merge_owned(d);
        agg.close_second(1, 1);
        agg.seal(1);
        let s = agg.snapshot(Duration::from_secs(1), None);
        let mut want = SeriesPoint {
            requests: 3,
            ..SeriesPoint::default()
        };
        series::set_latency(&mut want, &all.latency);
        let got = &s.series[0];
        assert_eq!((got.requests, got.failures), (3, 0));
        assert_eq!(got.latency, want.latency);
        assert_eq!(got.p99_ms, want.p99_ms);
        assert!((got.p50_ms - 9.0).abs() < 0.1, "{got:?}");
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
        let s = agg.snapshot(Duration::from_millis(2500), Some(Duration::from_secs(10)));
        assert_eq!(s.requests[0].count, 4);
        assert_eq!(s.elapsed, Duration::from_secs(1));
        assert_eq!(s.planned, Some(Duration::from_millis(8500)));
        assert_eq!(s.series.len(), 1);
        assert!((s.series[0].t - 0.5).abs() < 1e-9);
        assert!((s.series[0].width - 0.5).abs() < 1e-9);
    }

    #[test]
    fn a_unit_for_a_final_second_counts_in_the_totals_only() {
        let mut agg = Aggregator::new(2);
        for s in 1..=6 {
            agg.merge(&delta(s, 1, 5));
            agg.close_second(s, 1);
        }
        // Nothing is final before it is sealed, whatever the time.
        assert!(agg.snapshot(Duration::from_secs(6), None).series.is_empty());
        agg.seal(4);
        assert_eq!(agg.snapshot(Duration::from_secs(6), None).series.len(), 4);
        // Second 1 is final: its straggler moves to no other second.
        agg.merge(&delta(1, 4, 5));
        assert_eq!(agg.late(), 5);
        agg.finish(Duration::from_secs(6), 1);
        let s = agg.snapshot(Duration::from_secs(6), None);
        assert!(s.series.iter().all(|p| p.requests == 2), "{:?}", s.series);
        assert_eq!(s.requests[0].count, 6 + 4);
    }

    #[test]
    fn late_deltas_fold_into_the_last_point() {
        let mut agg = Aggregator::new(2);
        agg.merge(&delta(10, 3, 5));
        agg.merge(&delta(11, 2, 5));
        agg.finish(Duration::from_millis(9_990), 0);
        let s = agg.snapshot(Duration::from_millis(9_990), None);
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
            agg.seal(s);
        }
        agg.finish(Duration::from_secs(200), 1);
        let snap = agg.snapshot(Duration::from_secs(200), None);
        assert!(snap.series.len() <= 10, "{}", snap.series.len());
        let sum: u64 = snap.series.iter().map(|p| p.requests).sum();
        assert_eq!(sum, total);
        let width: f64 = snap.series.iter().map(|p| p.width).sum();
        assert!((width - 200.0).abs() < 1e-6, "{width}");
        assert!((snap.series.last().unwrap().t - 200.0).abs() < 1e-9);
        assert!(snap.series.windows(2).all(|w| w[0].t < w[1].t));
    }

    #[test]
    fn trailing_windows_merge_the_recent_seconds_exactly() {
        let mut agg = Aggregator::new(2);
        agg.keep_recent(5);
        let deltas: Vec<Delta> = (1..=10).map(|s| delta(s, s, s * 10)).collect();
        for d in &deltas {
            agg.merge(d);
            agg.close_second(d.second, 2);
            agg.seal(d.second.saturating_sub(3));
        }
        // Seconds 1 to 7 are final; the ring kept the last five of them.
        let seconds: Vec<u64> = agg.recent(0).map(|(s, _)| s).collect();
        assert_eq!(seconds, [3, 4, 5, 6, 7]);
        let window = agg.trailing(4).unwrap();
        let mut expected = Delta::new(2);
        for d in &deltas[4..7] {
            expected.merge(d);
        }
        assert_eq!(window.requests, expected.requests);
        assert_eq!(window.iterations, 5 + 6 + 7);
        assert_eq!(window.second, 5, "labelled with its first second");
        assert_eq!(window.active, 2, "the users of its last second");
        assert!(agg.trailing(7).is_none());
        agg.reset(Duration::from_secs(10));
        assert!(agg.trailing(0).is_none());
    }

    /// The judge sees each second once it is final, quiet seconds included, and a
    /// reset starts its windows and its abort grace again.
    #[test]
    fn finalised_seconds_feed_the_window_judge() {
        let plan = crate::testing::TestPlan::new()
            .flow("- get: /a\n  name: a\n- get: /b\n  name: b")
            .slo("{ line: \"a: requests >= 15\", window: 2s }")
            .slo("{ line: \"b: failures == 0\", abort: true }")
            .compile();
        let mut agg = Aggregator::new(2);
        agg.judge_windows(WindowJudge::new(&plan).unwrap());
        // Ten busy seconds, a silent one (no unit, and the controller, late, never
        // published it), then busy again.
        for s in (1..=10).chain(12..=16) {
            agg.merge(&delta(s, 10, 5));
            agg.close_second(s, 1);
            agg.seal(s.saturating_sub(3));
        }
        // Seconds 1 to 13 are final: 13 seconds judged, the silent 11th among them.
        let worst = agg.snapshot(Duration::from_secs(16), None).windows;
        let w = worst[0].1.as_ref().unwrap();
        // Only the windows with the silent second in them fall short.
        assert_eq!(
            (w.value, w.passed, w.ended_at),
            (Some(10.0), false, 11),
            "{w:?}"
        );
        let abort = agg
            .aborted()
            .expect("b failed every second; past the grace");
        assert!(
            matches!(&abort, EndReason::Aborted { slo: 1, line, at: 11 } if line == "b: failures == 0"),
            "{abort:?}"
        );
        agg.reset(Duration::from_millis(16_500));
        assert_eq!(agg.aborted(), None, "the grace starts again");
        let mut d = delta(17, 1, 5);
        d.epoch = agg.epoch();
        agg.merge(&d);
        agg.finish(Duration::from_secs(17), 1);
        let worst = agg.snapshot(Duration::from_secs(17), None).windows;
        let w = worst[0].1.as_ref().unwrap();
        assert_eq!(w.value, Some(1.0), "only the second after the reset: {w:?}");
    }

    #[test]
    fn downsampled_points_keep_exact_percentiles() {
        let mut agg = Aggregator::with_max_points(2, 4);
        // Ten seconds: nine fast, one slow with a tenth of all the requests.
        for s in 1..=10 {
            let d = if s == 5 {
                delta(s, 10, 800)
            } else {
                delta(s, 10, 4)
            };
            agg.merge(&d);
            agg.close_second(s, 1);
            agg.seal(s);
        }
        agg.finish(Duration::from_secs(10), 1);
        let snap = agg.snapshot(Duration::from_secs(10), None);
        assert!(snap.series.len() <= 4, "{}", snap.series.len());
        let merged = series::merge_points(&snap.series);
        let mut all = RequestStats::default();
        for r in &snap.requests {
            all.merge(r);
        }
        assert_eq!(merged.requests, all.count);
        assert_eq!(merged.latency.unpack().unwrap(), all.latency);
    }
}
