//! SLO evaluation: turns the plan's compiled SLOs and a run's final snapshot into
//! verdicts, each with the measured value next to its limit. The verdicts decide the
//! exit code and feed every report.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::figures::{self, trim_float};
use super::snapshot::{EndReason, Snapshot};
use super::stats::RequestStats;
use crate::compile::graph::{CompiledPlan, Metric, Slo};

/// The note on an SLO whose scope made no request at all.
pub const NO_REQUESTS_NOTE: &str = "no requests were made";

/// The unit of an SLO's measured value and threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SloUnit {
    /// Milliseconds (latency metrics).
    Ms,
    /// A fraction between 0 and 1 (`error_rate`; 1% is 0.01).
    Ratio,
    /// Requests per second (`rps`).
    PerSecond,
    /// A plain count (`requests`, `failures`, `dropped`).
    Count,
}

/// The outcome of one SLO.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SloVerdict {
    /// The condition as written, without the request name, e.g. `p95 < 300ms`.
    pub text: String,
    /// The request name the SLO is scoped to; absent for an SLO over all requests.
    pub request: Option<String>,
    /// The metric, e.g. `p95`, `p99.9`, `mean`, `error_rate`, `rps`.
    pub metric: String,
    /// The comparison: `<`, `<=`, `>`, `>=` or `==`.
    pub op: String,
    /// The measured value, in `unit`; absent when it is undefined (a latency or an
    /// error rate over no requests at all).
    pub value: Option<f64>,
    /// The limit, in `unit`.
    pub threshold: f64,
    pub unit: SloUnit,
    pub passed: bool,
    /// Why the verdict is what it is, when the numbers alone do not say it.
    pub note: Option<String>,
    /// Where the SLO is written in the plan (1-based); absent for the implied SLO.
    pub line: Option<u32>,
    pub column: Option<u32>,
}

impl SloVerdict {
    /// The SLO as a person reads it: `list products: p95 < 200ms` or `p95 < 300ms`.
    pub fn label(&self) -> String {
        match &self.request {
            Some(name) => format!("{name}: {}", self.text),
            None => self.text.clone(),
        }
    }

    /// The measured value with its unit and three significant digits (see
    /// [`figures`]), e.g. `123ms`, `1.00s`, `0.520%`, `18.3/s`, `7`; `n/a` when
    /// undefined.
    pub fn display_value(&self) -> String {
        match self.value {
            Some(v) => measured_in_unit(v, self.unit),
            None => "n/a".into(),
        }
    }

    /// The limit with its unit, as written: `1s`, `1%`.
    pub fn display_threshold(&self) -> String {
        format_in_unit(self.threshold, self.unit)
    }

    /// One line for messages: `measured 1.00s, limit < 1s`, plus the note.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "measured {}, limit {} {}",
            self.display_value(),
            self.op,
            self.display_threshold()
        );
        if let Some(note) = &self.note {
            s.push_str(" (");
            s.push_str(note);
            s.push(')');
        }
        s
    }
}

/// Formats a measured `v` in `unit`, with three significant digits.
pub fn measured_in_unit(v: f64, unit: SloUnit) -> String {
    match unit {
        SloUnit::Ms => figures::duration_ms(v),
        SloUnit::Ratio => figures::percent(v),
        SloUnit::PerSecond => figures::per_second(v),
        SloUnit::Count => trim_float(v, 0),
    }
}

/// Formats a limit `v` in `unit` as the plan would write it.
pub fn format_in_unit(v: f64, unit: SloUnit) -> String {
    match unit {
        // Seconds read better from a second up: `1s`, `1.25s`.
        SloUnit::Ms if v.abs() >= 1000.0 => format!("{}s", trim_float(v / 1000.0, 2)),
        SloUnit::Ms => format!("{}ms", trim_float(v, 1)),
        SloUnit::Ratio => format!("{}%", trim_float(v * 100.0, 2)),
        SloUnit::PerSecond => format!("{}/s", trim_float(v, 1)),
        SloUnit::Count => trim_float(v, 0),
    }
}

/// The metric's name as written in a plan: `p95`, `p99.9`, `error_rate`...
pub fn metric_name(metric: Metric) -> String {
    match metric {
        Metric::Min => "min".into(),
        Metric::Mean => "mean".into(),
        Metric::Max => "max".into(),
        Metric::Percentile(p) => format!("p{}", trim_float(p, 3)),
        Metric::ErrorRate => "error_rate".into(),
        Metric::Rps => "rps".into(),
        Metric::Requests => "requests".into(),
        Metric::Failures => "failures".into(),
        Metric::Dropped => "dropped".into(),
    }
}

/// The unit a metric is measured in.
pub fn metric_unit(metric: Metric) -> SloUnit {
    match metric {
        Metric::Min | Metric::Mean | Metric::Max | Metric::Percentile(_) => SloUnit::Ms,
        Metric::ErrorRate => SloUnit::Ratio,
        Metric::Rps => SloUnit::PerSecond,
        Metric::Requests | Metric::Failures | Metric::Dropped => SloUnit::Count,
    }
}

/// Evaluates every SLO of `plan` against `snap` (normally the final snapshot). A
/// windowed line's verdict is its worst window's; a line that aborted the run failed.
pub fn evaluate(plan: &CompiledPlan, snap: &Snapshot) -> Vec<SloVerdict> {
    let mut verdicts = evaluate_cumulative(plan, snap);
    super::window::apply_worst(&plan.slos, &snap.windows, &mut verdicts);
    if let EndReason::Aborted { slo, at, .. } = snap.end
        && let Some(v) = verdicts.get_mut(slo)
    {
        v.passed = false;
        let note = format!("failed {at} s into the run, which it stopped");
        v.note = Some(match v.note.take() {
            Some(n) => format!("{note}; {n}"),
            None => note,
        });
    }
    verdicts
}

/// Every SLO of `plan` over the whole of `snap`, windows or not: what a capacity
/// search's step is judged on (its snapshot covers its hold only).
pub fn evaluate_cumulative(plan: &CompiledPlan, snap: &Snapshot) -> Vec<SloVerdict> {
    let total = snap.total();
    plan.slos
        .iter()
        .map(|slo| {
            let (name, stats) = match slo.request {
                Some(id) => (
                    plan.requests.get(id.0 as usize).map(|r| r.name.clone()),
                    snap.requests.get(id.0 as usize),
                ),
                None => (None, Some(&total)),
            };
            evaluate_one(slo, name, stats, snap)
        })
        .collect()
}

/// One SLO over `stats` (the scope's statistics; `None` when the snapshot has no
/// entry for the request, which counts as no requests).
fn evaluate_one(
    slo: &Slo,
    request: Option<String>,
    stats: Option<&RequestStats>,
    snap: &Snapshot,
) -> SloVerdict {
    let empty = RequestStats::default();
    let stats = stats.unwrap_or(&empty);
    let value = measure(slo.metric, stats, snap);
    // `dropped` counts arrivals, not requests: it is meaningful even when nothing
    // was sent. Every other threshold over no requests would hold or fail by
    // accident (`failures == 0` would hold), so it fails and says why.
    let no_requests = stats.count == 0 && slo.metric != Metric::Dropped;
    let (passed, note) = match value {
        _ if no_requests => (false, Some(NO_REQUESTS_NOTE.to_string())),
        Some(v) => (slo.op.holds(v, slo.threshold), None),
        None => (false, Some(NO_REQUESTS_NOTE.to_string())),
    };
    SloVerdict {
        text: slo.text.clone(),
        request,
        metric: metric_name(slo.metric),
        op: slo.op.as_str().to_string(),
        value,
        threshold: slo.threshold,
        unit: metric_unit(slo.metric),
        passed,
        note,
        line: slo.line,
        column: slo.column,
    }
}

/// The metric's value over `stats` in the run so far; `None` when it is undefined.
fn measure(metric: Metric, stats: &RequestStats, snap: &Snapshot) -> Option<f64> {
    measure_over(metric, stats, snap.elapsed.as_secs_f64(), snap.dropped)
}

/// The metric's value over `stats`, made in `seconds` (for `rps`) while `dropped`
/// arrivals were dropped; `None` when it is undefined over no requests. The one
/// definition of every metric, for the whole run and for windows alike.
pub fn measure_over(
    metric: Metric,
    stats: &RequestStats,
    seconds: f64,
    dropped: u64,
) -> Option<f64> {
    let latency_defined = stats.count > 0;
    match metric {
        Metric::Min => latency_defined.then(|| stats.min_ms()),
        Metric::Mean => latency_defined.then(|| stats.mean_ms()),
        Metric::Max => latency_defined.then(|| stats.max_ms()),
        Metric::Percentile(p) => latency_defined.then(|| stats.percentile_ms(p)),
        Metric::ErrorRate => latency_defined.then(|| stats.error_rate()),
        Metric::Rps => Some(if seconds > 0.0 {
            stats.count as f64 / seconds
        } else {
            0.0
        }),
        Metric::Requests => Some(stats.count as f64),
        Metric::Failures => Some(stats.failures as f64),
        Metric::Dropped => Some(dropped as f64),
    }
}

/// Whether every verdict passed (true for none).
pub fn all_passed(verdicts: &[SloVerdict]) -> bool {
    verdicts.iter().all(|v| v.passed)
}

#[cfg(test)]
#[path = "slo_tests.rs"]
mod tests;
