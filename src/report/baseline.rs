//! The baseline regression gate (`--baseline REPORT [--max-regression PCT]`): loads an
//! earlier JSON report, checks that it belongs to the same plan before anything is
//! sent, and compares this run's per-request p50/p95/p99, error rate and throughput
//! with it. A regression past the tolerance fails the run (exit 1).
//!
//! The rules, for one request name present in both runs with requests in both
//! (`tol` is the tolerance as a fraction, 10% = 0.10):
//!
//! - a latency (p50, p95, p99) regresses when `new > old × (1 + tol)` and
//!   `new − old > 1 ms` ([`LATENCY_FLOOR_MS`]), so sub-millisecond jitter on fast
//!   endpoints never fails a build;
//! - the error rate regresses when `new − old > max(old × tol, 0.1 points)`
//!   ([`ERROR_RATE_FLOOR`]): relative to the old rate, but a clean baseline (0%)
//!   tolerates a stray failure in a thousand requests rather than failing on the first;
//! - the throughput (mean requests per second) regresses when `new < old × (1 − tol)`.
//!
//! Request names in only one of the runs are listed, never compared. A baseline of
//! another plan (different `name`), of an unknown report version, unreadable, or
//! sharing no request name with the plan is an error (exit 2), never a silent pass.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::json::{JsonReport, REPORT_VERSION, RequestReport};
use super::{RunResult, Sink, SinkError};
use crate::compile::graph::CompiledPlan;
use crate::metrics::slo::trim_float;

/// Latency differences at or below this many milliseconds never count as a regression.
pub const LATENCY_FLOOR_MS: f64 = 1.0;
/// Error-rate increases at or below this fraction (0.1 percentage point) never count.
pub const ERROR_RATE_FLOOR: f64 = 0.001;

/// Why a baseline cannot be used. Each is an invalid command line (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("cannot read the baseline report {path}: {source}")]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the baseline {path} is not a swarm JSON report: {message}")]
    Malformed { path: PathBuf, message: String },
    #[error(
        "the baseline {path} is a report of version {found}; this swarm reads version {expected}"
    )]
    UnknownVersion {
        path: PathBuf,
        found: String,
        expected: u32,
    },
    #[error("the baseline {path} is a report of plan `{found}`, not of `{expected}`")]
    OtherPlan {
        path: PathBuf,
        found: String,
        expected: String,
    },
    #[error(
        "the baseline {path} shares no request name with the plan (baseline: {baseline}; plan: {plan})"
    )]
    NoMatchingRequests {
        path: PathBuf,
        baseline: String,
        plan: String,
    },
    #[error("invalid --max-regression `{0}`: expected a percentage such as 10%")]
    BadTolerance(String),
}

/// An earlier run's report, loaded and version-checked.
#[derive(Debug, Clone)]
pub struct Baseline {
    pub path: PathBuf,
    pub report: JsonReport,
}

/// Parses `--max-regression`: `10%`, `10` (percent) or `2.5%`; returns a fraction.
pub fn parse_tolerance(text: &str) -> Result<f64, BaselineError> {
    let bad = || BaselineError::BadTolerance(text.to_string());
    let number = text.trim().trim_end_matches('%').trim();
    let pct: f64 = number.parse().map_err(|_| bad())?;
    if !pct.is_finite() || !(0.0..=1000.0).contains(&pct) {
        return Err(bad());
    }
    Ok(pct / 100.0)
}

/// Reads and version-checks a baseline report.
pub fn load(path: &Path) -> Result<Baseline, BaselineError> {
    let text = std::fs::read_to_string(path).map_err(|source| BaselineError::Unreadable {
        path: path.to_path_buf(),
        source,
    })?;
    let malformed = |message: String| BaselineError::Malformed {
        path: path.to_path_buf(),
        message,
    };
    // The version is checked first, so a report of a future format says so instead of
    // failing on whatever field changed.
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| malformed(e.to_string()))?;
    match value.get("version") {
        Some(v) if v.as_u64() == Some(u64::from(REPORT_VERSION)) => {}
        Some(v) => {
            return Err(BaselineError::UnknownVersion {
                path: path.to_path_buf(),
                found: v.to_string(),
                expected: REPORT_VERSION,
            });
        }
        None => return Err(malformed("it has no `version` field".into())),
    }
    let report: JsonReport = serde_json::from_value(value).map_err(|e| malformed(e.to_string()))?;
    Ok(Baseline {
        path: path.to_path_buf(),
        report,
    })
}

/// Checks, before anything is sent, that `baseline` was made by the same plan: same
/// `name`, and at least one request name in common.
pub fn check_plan(baseline: &Baseline, plan: &CompiledPlan) -> Result<(), BaselineError> {
    let names: Vec<&str> = plan.requests.iter().map(|r| r.name.as_str()).collect();
    check_names(baseline, &plan.name, &names)
}

fn check_names(baseline: &Baseline, plan_name: &str, names: &[&str]) -> Result<(), BaselineError> {
    let report = &baseline.report;
    if report.plan.name != plan_name {
        return Err(BaselineError::OtherPlan {
            path: baseline.path.clone(),
            found: report.plan.name.clone(),
            expected: plan_name.to_string(),
        });
    }
    if !report
        .requests
        .iter()
        .any(|r| names.contains(&r.name.as_str()))
    {
        let list = |it: &mut dyn Iterator<Item = &str>| {
            let v: Vec<String> = it.map(|n| format!("`{n}`")).collect();
            if v.is_empty() {
                "none".to_string()
            } else {
                v.join(", ")
            }
        };
        return Err(BaselineError::NoMatchingRequests {
            path: baseline.path.clone(),
            baseline: list(&mut report.requests.iter().map(|r| r.name.as_str())),
            plan: list(&mut names.iter().copied()),
        });
    }
    Ok(())
}

/// A compared metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BaselineMetric {
    P50,
    P95,
    P99,
    ErrorRate,
    Rps,
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
        }
    }

    fn value(self, r: &RequestReport) -> f64 {
        match self {
            BaselineMetric::P50 => r.latency_ms.p50,
            BaselineMetric::P95 => r.latency_ms.p95,
            BaselineMetric::P99 => r.latency_ms.p99,
            BaselineMetric::ErrorRate => r.error_rate,
            BaselineMetric::Rps => r.rps,
        }
    }

    /// Whether going from `old` to `new` is a regression past `tol` (see the module doc).
    pub fn regressed(self, old: f64, new: f64, tol: f64) -> bool {
        match self {
            BaselineMetric::P50 | BaselineMetric::P95 | BaselineMetric::P99 => {
                new > old * (1.0 + tol) && new - old > LATENCY_FLOOR_MS
            }
            BaselineMetric::ErrorRate => new - old > (old * tol).max(ERROR_RATE_FLOOR),
            BaselineMetric::Rps => new < old * (1.0 - tol),
        }
    }

    /// `v` as the reports show it: `12.3ms`, `1.5%`, `20.1/s`.
    pub fn format(self, v: f64) -> String {
        match self {
            BaselineMetric::ErrorRate => format!("{}%", trim_float(v * 100.0, 2)),
            BaselineMetric::Rps => format!("{}/s", trim_float(v, 1)),
            _ => format!("{}ms", trim_float(v, 1)),
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

/// Compares `current` with `baseline`, request name by request name.
pub fn compare(baseline: &Baseline, current: &JsonReport, tolerance: f64) -> BaselineComparison {
    let old = &baseline.report;
    let mut requests = Vec::new();
    let mut only_in_run = Vec::new();
    for new in &current.requests {
        let Some(prev) = old.requests.iter().find(|r| r.name == new.name) else {
            only_in_run.push(new.name.clone());
            continue;
        };
        requests.push(compare_request(prev, new, tolerance));
    }
    let only_in_baseline = old
        .requests
        .iter()
        .filter(|r| !current.requests.iter().any(|n| n.name == r.name))
        .map(|r| r.name.clone())
        .collect();
    let regressed = requests
        .iter()
        .any(|r| r.metrics.iter().any(|m| m.regressed));
    BaselineComparison {
        file: baseline.path.display().to_string(),
        baseline_started_at: old.started_at.clone(),
        tolerance,
        regressed,
        requests,
        only_in_baseline,
        only_in_run,
    }
}

fn compare_request(old: &RequestReport, new: &RequestReport, tol: f64) -> RequestComparison {
    let note = match (old.count, new.count) {
        (0, 0) => Some("no requests in either run"),
        (0, _) => Some("no requests in the baseline"),
        (_, 0) => {
            // It had traffic and has none now: a step that stopped being sent (a broken
            // flow, a capture that no longer matches) is the worst regression of all,
            // whatever the tolerance, so it fails the gate rather than going unnoticed.
            return RequestComparison {
                name: new.name.clone(),
                metrics: vec![MetricComparison {
                    metric: BaselineMetric::Rps,
                    baseline: old.rps,
                    current: new.rps,
                    change: relative_change(old.rps, new.rps),
                    regressed: true,
                }],
                note: Some("no requests in this run".to_string()),
            };
        }
        _ => None,
    };
    let metrics = if note.is_some() {
        Vec::new()
    } else {
        BaselineMetric::ALL
            .iter()
            .map(|&metric| {
                let (b, c) = (metric.value(old), metric.value(new));
                MetricComparison {
                    metric,
                    baseline: b,
                    current: c,
                    change: relative_change(b, c),
                    regressed: metric.regressed(b, c, tol),
                }
            })
            .collect()
    };
    RequestComparison {
        name: new.name.clone(),
        metrics,
        note: note.map(str::to_string),
    }
}

/// The baseline gate as a sink: prints the comparison on stdout (unless `quiet`) and
/// fails with [`SinkError::Gate`] (exit 1) when a metric regressed.
#[derive(Debug, Clone)]
pub struct BaselineSink {
    pub comparison: BaselineComparison,
    pub quiet: bool,
}

impl Sink for BaselineSink {
    fn emit(&mut self, _result: &RunResult) -> Result<(), SinkError> {
        if !self.quiet {
            use std::io::Write as _;
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(stdout, "\n{}", render_text(&self.comparison));
        }
        if !self.comparison.regressed {
            return Ok(());
        }
        let list: Vec<String> = self
            .comparison
            .regressions()
            .map(|(name, m)| format!("{name}: {}", describe(m)))
            .collect();
        Err(SinkError::Gate {
            sink: "baseline",
            message: format!(
                "regression against {} past {}%: {}",
                self.comparison.file,
                trim_float(self.comparison.tolerance * 100.0, 1),
                list.join("; ")
            ),
        })
    }
}

/// `(new − old) / old`; 0 when both are 0, and `None` from 0 to anything else.
fn relative_change(old: f64, new: f64) -> Option<f64> {
    if old != 0.0 {
        Some((new - old) / old)
    } else if new == 0.0 {
        Some(0.0)
    } else {
        None
    }
}

/// The comparison as plain text for the console.
pub fn render_text(cmp: &BaselineComparison) -> String {
    let mut out = format!(
        "Baseline: {} (tolerance {}%): {}\n",
        cmp.file,
        trim_float(cmp.tolerance * 100.0, 1),
        if cmp.regressed {
            "REGRESSED"
        } else {
            "no regression"
        }
    );
    let width = cmp
        .requests
        .iter()
        .map(|r| r.name.chars().count())
        .max()
        .unwrap_or(0)
        .max(7);
    for r in &cmp.requests {
        if let Some(note) = &r.note {
            let _ = writeln!(out, "  {:width$}  {note}", r.name);
        }
        for m in &r.metrics {
            let change = m.change.map(signed_pct).unwrap_or_else(|| "n/a".into());
            let _ = writeln!(
                out,
                "  {:width$}  {:<10} {:>10} -> {:>10}  {:>8}{}",
                r.name,
                m.metric.name(),
                m.metric.format(m.baseline),
                m.metric.format(m.current),
                change,
                if m.regressed { "  REGRESSED" } else { "" }
            );
        }
    }
    if !cmp.only_in_baseline.is_empty() {
        let _ = writeln!(
            out,
            "  only in the baseline (not compared): {}",
            cmp.only_in_baseline.join(", ")
        );
    }
    if !cmp.only_in_run.is_empty() {
        let _ = writeln!(
            out,
            "  new in this run (not compared): {}",
            cmp.only_in_run.join(", ")
        );
    }
    out
}

#[cfg(test)]
#[path = "baseline_tests.rs"]
mod tests;
