//! The comparison of a run with a baseline run, as every report carries it: which
//! metrics of which request names moved, and whether any regressed past the
//! tolerance. Computed once by [`super::baseline::compare`] and stored in the report
//! ([`super::json::JsonReport::baseline`]); the sinks only read it.

use std::fmt::Write as _;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::metrics::figures::{self, trim_float};

/// Latency differences at or below this many milliseconds never count as a regression.
pub const LATENCY_FLOOR_MS: f64 = 1.0;
/// Error-rate increases at or below this fraction (0.1 percentage point) never count.
pub const ERROR_RATE_FLOOR: f64 = 0.001;

/// A compared metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BaselineMetric {
    P50,
    P95,
    P99,
    ErrorRate,
    Rps,
    /// A capacity search's answer (users or arrivals per second): lower is worse.
    Capacity,
}

impl BaselineMetric {
    pub const ALL: [BaselineMetric; 5] = [
        BaselineMetric::P50,
        BaselineMetric::P95,
        BaselineMetric::P99,
        BaselineMetric::ErrorRate,
        BaselineMetric::Rps,
    ];

    pub fn name(self) -> &'static str {
        match self {
            BaselineMetric::P50 => "p50",
            BaselineMetric::P95 => "p95",
            BaselineMetric::P99 => "p99",
            BaselineMetric::ErrorRate => "error_rate",
            BaselineMetric::Rps => "rps",
            BaselineMetric::Capacity => "capacity",
        }
    }

    /// Whether going from `old` to `new` is a regression past `tol` (see the module doc).
    pub fn regressed(self, old: f64, new: f64, tol: f64) -> bool {
        match self {
            BaselineMetric::P50 | BaselineMetric::P95 | BaselineMetric::P99 => {
                new > old * (1.0 + tol) && new - old > LATENCY_FLOOR_MS
            }
            BaselineMetric::ErrorRate => new - old > (old * tol).max(ERROR_RATE_FLOOR),
            BaselineMetric::Rps | BaselineMetric::Capacity => new < old * (1.0 - tol),
        }
    }

    /// A measured `v` as the reports show it: `12.3ms`, `1.50%`, `20.1/s`.
    pub fn format(self, v: f64) -> String {
        match self {
            BaselineMetric::P50 | BaselineMetric::P95 | BaselineMetric::P99 => {
                figures::duration_ms(v)
            }
            BaselineMetric::ErrorRate => figures::percent(v),
            BaselineMetric::Rps => figures::per_second(v),
            BaselineMetric::Capacity => trim_float(v, 2),
        }
    }
}

/// One metric of one request, then and now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MetricComparison {
    pub metric: BaselineMetric,
    /// The baseline's value (ms, a fraction, or per second).
    pub baseline: f64,
    /// This run's value.
    pub current: f64,
    /// `(current − baseline) / baseline`; 0 when both are 0, absent when only the
    /// baseline is 0.
    pub change: Option<f64>,
    pub regressed: bool,
}

/// One request name in both runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RequestComparison {
    pub name: String,
    /// Empty when either run made no request of this name (see `note`).
    pub metrics: Vec<MetricComparison>,
    pub note: Option<String>,
}

/// The outcome of the baseline gate; part of the JSON report, the summary and the console.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BaselineComparison {
    /// The baseline report's file, as given.
    pub file: String,
    /// When the baseline run started (RFC 3339).
    pub baseline_started_at: String,
    /// The tolerance, as a fraction (10% is 0.1).
    pub tolerance: f64,
    /// Whether any metric regressed past the tolerance.
    pub regressed: bool,
    /// The request names in both runs, in this run's order.
    pub requests: Vec<RequestComparison>,
    /// Request names only the baseline has (not compared).
    pub only_in_baseline: Vec<String>,
    /// Request names only this run has (not compared).
    pub only_in_run: Vec<String>,
}

impl BaselineComparison {
    /// The regressed metrics, as `(request name, comparison)`.
    pub fn regressions(&self) -> impl Iterator<Item = (&str, &MetricComparison)> {
        self.requests.iter().flat_map(|r| {
            r.metrics
                .iter()
                .filter(|m| m.regressed)
                .map(move |m| (r.name.as_str(), m))
        })
    }
}

/// Describes one regression: `p95 120ms → 180ms (+50%)`.
pub fn describe(m: &MetricComparison) -> String {
    let mut s = format!(
        "{} {} → {}",
        m.metric.name(),
        m.metric.format(m.baseline),
        m.metric.format(m.current)
    );
    if let Some(change) = m.change {
        let _ = write!(s, " ({})", signed_pct(change));
    }
    s
}

/// `+12.5%`, `-3%`.
pub fn signed_pct(change: f64) -> String {
    let sign = if change > 0.0 { "+" } else { "" };
    format!("{sign}{}%", trim_float(change * 100.0, 1))
}
