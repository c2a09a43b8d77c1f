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
#[path = "aggregate_tests.rs"]
mod tests;
