//! Snapshots: the engine's picture of a run at one moment. The progress bar, the
//! reports, the dashboard and the distributed coordinator all consume snapshots; none
//! of them reaches into the engine.

use std::sync::Arc;
use std::time::Duration;

use super::capacity::CapacityReport;
use super::stats::RequestStats;
use super::window::WorstWindows;
use super::wire::PackedHistogram;

/// Why a run ended (or that it has not yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// Still running.
    Running,
    /// The planned duration or stages elapsed.
    Completed,
    /// `iterations` were all run.
    IterationsDone,
    /// A `unique` feeder ran out of rows.
    FeederExhausted { feeder: String },
    /// Stopped by a control message (dashboard, API).
    Stopped,
    /// Ctrl-C or SIGTERM.
    Interrupted,
    /// An SLO line with `abort: true` failed.
    Aborted {
        /// The line's index in the plan's SLOs.
        slo: usize,
        /// The line as people read it, e.g. `error_rate < 5%`.
        line: String,
        /// The second of the run at which it failed.
        at: u64,
    },
}

/// One point of the per-second time series (see [`super::series`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SeriesPoint {
    /// Seconds since the run started (the end of this point's interval).
    pub t: f64,
    /// Length of the interval this point covers, in seconds (1 unless downsampled).
    pub width: f64,
    pub requests: u64,
    pub failures: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    /// Active users (closed model) or running iterations (open model) at `t`.
    pub users: u32,
    /// Open-model arrivals dropped in this interval.
    pub dropped: u64,
    /// The latencies of this interval's requests, whole: what merges exactly when
    /// points are downsampled or machines' series are combined. `p50_ms` to `p99_ms`
    /// are read from it when the point is made.
    pub latency: PackedHistogram,
}

/// How the load generator itself is doing. When it is saturated, latencies include
/// the generator's own delays and the results cannot be trusted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GeneratorHealth {
    /// Process CPU time used so far (user + system), in seconds.
    pub cpu_seconds: f64,
    /// CPU use over the last interval, in percent of one core.
    pub cpu_percent: f64,
    /// Scheduling lag (actual minus scheduled start of a request or arrival), p99, ms.
    pub lag_p99_ms: f64,
    /// Largest scheduling lag seen, ms.
    pub lag_max_ms: f64,
    /// The generator could not keep up; the reason, for people.
    pub saturated: Option<String>,
}

/// The state of a run at one moment. Cumulative since the start (or the last reset).
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Time since the first user started.
    pub elapsed: Duration,
    /// The planned length of the run, if time-bounded.
    pub planned: Option<Duration>,
    pub end: EndReason,
    /// Users (closed) or running iterations (open) right now.
    pub active_users: u32,
    /// The user count the scheduler is steering towards (closed model).
    pub target_users: u32,
    /// The arrival rate the scheduler is steering towards (open model), per second.
    pub target_rate: Option<f64>,
    /// Flow iterations completed.
    pub iterations: u64,
    /// Open-model arrivals that found `max_users` busy.
    pub dropped: u64,
    /// Per request name, indexed by [`RequestId`](crate::compile::graph::RequestId).
    pub requests: Vec<RequestStats>,
    /// One point per second (older points may be downsampled).
    pub series: Vec<SeriesPoint>,
    pub generator: GeneratorHealth,
    /// The worst window so far of each windowed SLO line (`window: 30s`), by SLO
    /// index: the final verdict of such a line is its worst window's.
    pub windows: WorstWindows,
    /// The statistics' epoch: bumped by each reset, so a reader can tell the
    /// snapshots taken after a reset from those before it.
    pub epoch: u64,
    /// A capacity search's steps so far and, once it ended, its answer.
    pub search: Option<Arc<CapacityReport>>,
}

impl Snapshot {
    /// An empty snapshot for a plan with `requests` request names.
    pub fn empty(requests: usize, planned: Option<Duration>) -> Self {
        Snapshot {
            elapsed: Duration::ZERO,
            planned,
            end: EndReason::Running,
            active_users: 0,
            target_users: 0,
            target_rate: None,
            iterations: 0,
            dropped: 0,
            requests: vec![RequestStats::default(); requests],
            series: Vec::new(),
            generator: GeneratorHealth::default(),
            windows: Vec::new(),
            epoch: 0,
            search: None,
        }
    }

    /// `snapshot` marked with why the run ended, unless it already says so: the last
    /// snapshot seen of a run that failed or was cut short was taken mid-run.
    pub fn ended(snapshot: Arc<Snapshot>, end: EndReason) -> Arc<Snapshot> {
        if snapshot.end != EndReason::Running {
            return snapshot;
        }
        let mut s = Snapshot::clone(&snapshot);
        s.end = end;
        Arc::new(s)
    }

    /// All request names aggregated.
    pub fn total(&self) -> RequestStats {
        let mut total = RequestStats::default();
        for r in &self.requests {
            total.merge(r);
        }
        total
    }

    /// Mean requests per second over the elapsed time.
    pub fn rps(&self, stats: &RequestStats) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs <= 0.0 {
            0.0
        } else {
            stats.count as f64 / secs
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ended_marks_only_a_running_snapshot() {
        let running = Arc::new(Snapshot::empty(1, None));
        assert_eq!(
            Snapshot::ended(running.clone(), EndReason::Stopped).end,
            EndReason::Stopped
        );
        assert_eq!(
            running.end,
            EndReason::Running,
            "the original is left alone"
        );
        let mut done = Snapshot::empty(1, None);
        done.end = EndReason::Completed;
        let done = Arc::new(done);
        let same = Snapshot::ended(done.clone(), EndReason::Stopped);
        assert!(Arc::ptr_eq(&same, &done));
    }
}
