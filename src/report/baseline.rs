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

pub use super::comparison::{
    BaselineComparison, BaselineMetric, ERROR_RATE_FLOOR, LATENCY_FLOOR_MS, MetricComparison,
    RequestComparison, describe, signed_pct,
};
use super::json::{JsonReport, REPORT_VERSION, RequestReport};
use super::{RunResult, Sink, SinkError};
use crate::compile::graph::CompiledPlan;
use crate::metrics::figures::trim_float;

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

/// Compares `current` with `baseline`, request name by request name.
pub fn compare(baseline: &Baseline, current: &JsonReport, tolerance: f64) -> BaselineComparison {
    let old = &baseline.report;
    if current.search.is_some() {
        return compare_capacity(baseline, current, tolerance);
    }
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

/// A capacity search against its baseline: the capacity alone. The statistics of a
/// search's last hold depend on the level it ran at, so they are not compared.
fn compare_capacity(baseline: &Baseline, current: &JsonReport, tol: f64) -> BaselineComparison {
    let capacity = |r: &JsonReport| {
        (r.search.as_ref())
            .and_then(|s| s.answer.as_ref())
            .and_then(|a| a.capacity)
    };
    let old = &baseline.report;
    let comparison = match (capacity(old), capacity(current)) {
        (Some(was), now) => {
            let now = now.unwrap_or(0.0);
            RequestComparison {
                name: "capacity".into(),
                metrics: vec![MetricComparison {
                    metric: BaselineMetric::Capacity,
                    baseline: was,
                    current: now,
                    change: relative_change(was, now),
                    regressed: BaselineMetric::Capacity.regressed(was, now, tol),
                }],
                note: None,
            }
        }
        (None, _) => RequestComparison {
            name: "capacity".into(),
            metrics: Vec::new(),
            note: Some("the baseline found no capacity".into()),
        },
    };
    BaselineComparison {
        file: baseline.path.display().to_string(),
        baseline_started_at: old.started_at.clone(),
        tolerance: tol,
        regressed: comparison.metrics.iter().any(|m| m.regressed),
        requests: vec![comparison],
        only_in_baseline: Vec::new(),
        only_in_run: Vec::new(),
    }
}

/// The value of `metric` in one request's report.
fn metric_value(metric: BaselineMetric, r: &RequestReport) -> f64 {
    match metric {
        BaselineMetric::P50 => r.latency_ms.p50,
        BaselineMetric::P95 => r.latency_ms.p95,
        BaselineMetric::P99 => r.latency_ms.p99,
        BaselineMetric::ErrorRate => r.error_rate,
        BaselineMetric::Rps => r.rps,
        // Not a request's figure: a search's capacity is compared on its own
        // (`compare_capacity`), never through a request.
        BaselineMetric::Capacity => 0.0,
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
                let (b, c) = (metric_value(metric, old), metric_value(metric, new));
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

/// The baseline gate as a sink: prints the report's comparison on stdout (unless
/// `quiet`) and fails with [`SinkError::Gate`] (exit 1) when a metric regressed. A
/// report without a comparison passes.
#[derive(Debug, Clone, Default)]
pub struct BaselineSink {
    pub quiet: bool,
}

impl Sink for BaselineSink {
    fn emit(&mut self, result: &RunResult) -> Result<(), SinkError> {
        let Some(cmp) = &result.report.baseline else {
            return Ok(());
        };
        if !self.quiet {
            use std::io::Write as _;
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(stdout, "\n{}", render_text(cmp));
        }
        if !cmp.regressed {
            return Ok(());
        }
        let list: Vec<String> = cmp
            .regressions()
            .map(|(name, m)| format!("{name}: {}", describe(m)))
            .collect();
        Err(SinkError::Gate {
            sink: "baseline",
            message: format!(
                "regression against {} past {}%: {}",
                cmp.file,
                trim_float(cmp.tolerance * 100.0, 1),
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
