//! The page's data model: what the dashboard streams and the HTML report embeds.
//!
//! Only names, numbers and SLO text leave the process: header values, bodies and
//! variables (which may hold secrets from the environment) never do. Keys are short
//! and numbers rounded because a frame is sent every second to every open page.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::compile::graph::{CompiledPlan, LoadModel, RateShape, Slo};
use crate::metrics::capacity::{CapacityAxis, CapacityReport, StepOutcome, StepPhase};
use crate::metrics::series;
use crate::metrics::slo::SloUnit;
use crate::metrics::snapshot::{EndReason, SeriesPoint, Snapshot};
use crate::metrics::stats::RequestStats;
use crate::report::json::{EndInfo, WorkerReport};

/// Series points a page is sent at most; longer series are downsampled.
pub const MAX_POINTS: usize = 1200;

/// Values compact to 3 decimals, which is plenty for ms and rates on a chart.
fn r3(v: f64) -> f64 {
    if v.is_finite() {
        (v * 1000.0).round() / 1000.0
    } else {
        0.0
    }
}

/// The plan's description for the page: names and shapes, never values of variables
/// or headers. The target keeps only scheme, host, port and path.
pub fn meta(plan: &CompiledPlan, run: u32, interactive: bool) -> Value {
    let requests: Vec<Value> = plan
        .requests
        .iter()
        .map(|r| json!([r.call.label(), r.name]))
        .collect();
    let slos: Vec<Value> = plan
        .slos
        .iter()
        .map(|s| slo_label(plan, s).into())
        .collect();
    let flows: Vec<Value> = plan
        .flows
        .iter()
        .map(|f| json!({ "name": f.name, "weight": f.weight }))
        .collect();
    let load = match &plan.load.model {
        LoadModel::Closed(c) => {
            let (users, spawn_rate) = match c {
                crate::compile::graph::ClosedLoad::Fixed { users, spawn_rate } => {
                    (*users, *spawn_rate)
                }
                crate::compile::graph::ClosedLoad::Stages(st) => {
                    (st.iter().map(|s| s.users).max().unwrap_or(0), None)
                }
            };
            json!({ "model": "closed", "users": users, "spawn_rate": spawn_rate })
        }
        LoadModel::Open(o) => {
            let rate = match &o.rate {
                RateShape::Fixed(r) => *r,
                RateShape::Stages(st) => st.iter().map(|s| s.rate).fold(0.0, f64::max),
            };
            json!({ "model": "open", "rate": rate, "max_users": o.max_users })
        }
    };
    json!({
        "run": run,
        "interactive": interactive,
        "name": plan.name,
        "target": public_target(&plan.target),
        "requests": requests,
        "slos": slos,
        "flows": flows,
        "load": load,
        "duration": plan.load.total_duration().map(|d| d.as_secs_f64()),
        "iterations": plan.load.iterations,
    })
}

/// `request name: p95 < 300ms` or `p95 < 300ms`.
pub fn slo_label(plan: &CompiledPlan, slo: &Slo) -> String {
    match slo.request.and_then(|r| plan.requests.get(r.0 as usize)) {
        Some(r) => format!("{}: {}", r.name, slo.text),
        None => slo.text.clone(),
    }
}

/// The target without credentials or query string.
fn public_target(target: &str) -> String {
    match url::Url::parse(target) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.set_fragment(None);
            u.to_string()
        }
        Err(_) => String::new(),
    }
}

/// One SLO's verdict as the page shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct SloView {
    pub value: Option<f64>,
    pub display_value: String,
    pub display_limit: String,
    pub passed: bool,
}

/// Evaluates the plan's SLOs against a snapshot (live: against what was measured so far).
pub fn slo_views(plan: &CompiledPlan, snap: &Snapshot) -> Vec<SloView> {
    crate::metrics::slo::evaluate(plan, snap)
        .into_iter()
        .map(|v| SloView {
            value: v.value,
            display_value: v.display_value(),
            display_limit: format!("{} {}", v.op, v.display_threshold()),
            passed: v.passed,
        })
        .collect()
}

/// The state of a run at one moment, without the series (sent separately, as deltas).
/// `prev` is the snapshot before, for the per-request current rates.
pub fn state(plan: &CompiledPlan, snap: &Snapshot, prev: Option<&Snapshot>) -> Value {
    let window = prev
        .map(|p| snap.elapsed.saturating_sub(p.elapsed).as_secs_f64())
        .filter(|w| *w > 0.0);
    let row = |id: i64, s: &RequestStats, before: Option<(u64, u64)>| {
        let ended = snap.end != EndReason::Running;
        let secs = snap.elapsed.as_secs_f64();
        let (cur_rps, cur_fps) = match (window, before) {
            // After the run, the columns show the run's means.
            _ if ended && secs > 0.0 => (s.count as f64 / secs, s.failures as f64 / secs),
            (Some(w), Some((c, f))) if s.count >= c => (
                (s.count - c) as f64 / w,
                s.failures.saturating_sub(f) as f64 / w,
            ),
            _ => (0.0, 0.0),
        };
        let avg_size = if s.count > 0 {
            s.bytes as f64 / s.count as f64
        } else {
            0.0
        };
        json!([
            id,
            s.count,
            s.failures,
            r3(s.percentile_ms(50.0)),
            r3(s.percentile_ms(95.0)),
            r3(s.percentile_ms(99.0)),
            r3(s.mean_ms()),
            r3(s.min_ms()),
            r3(s.max_ms()),
            r3(avg_size),
            r3(cur_rps),
            r3(cur_fps),
        ])
    };
    let rows: Vec<Value> = snap
        .requests
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let before = prev
                .and_then(|p| p.requests.get(i))
                .map(|p| (p.count, p.failures));
            row(i as i64, s, before)
        })
        .collect();
    let total = snap.total();
    // Sums, not `total()`: merging every histogram again would be wasted work.
    let total_before = prev.map(|p| {
        p.requests
            .iter()
            .fold((0, 0), |(c, f), r| (c + r.count, f + r.failures))
    });
    let mut failures: Vec<(u64, Value)> = Vec::new();
    for (i, s) in snap.requests.iter().enumerate() {
        for (kind, n) in &s.reasons {
            failures.push((*n, json!([i, kind.describe(plan), n])));
        }
    }
    failures.sort_by_key(|f| std::cmp::Reverse(f.0));
    let slos: Vec<Value> = slo_views(plan, snap)
        .into_iter()
        .map(|v| json!([v.value.map(r3), v.passed, v.display_value, v.display_limit]))
        .collect();
    let (state, detail) = end_state(&snap.end);
    let g = &snap.generator;
    json!({
        "state": state,
        "detail": detail,
        "elapsed": r3(snap.elapsed.as_secs_f64()),
        "planned": snap.planned.map(|d| r3(d.as_secs_f64())),
        "users": snap.active_users,
        "target_users": snap.target_users,
        "target_rate": snap.target_rate.map(r3),
        "iterations": snap.iterations,
        "dropped": snap.dropped,
        "gen": {
            "cpu": r3(g.cpu_percent),
            "lag_p99": r3(g.lag_p99_ms),
            "lag_max": r3(g.lag_max_ms),
            "saturated": g.saturated,
        },
        "rows": rows,
        "total": row(-1, &total, total_before),
        "rps": r3(snap.rps(&total)),
        "failures": failures.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
        "slos": slos,
        "search": snap.search.as_deref().map(search_view),
    })
}

/// The workers of a run on many machines, as the page's workers table reads them
/// (the live dashboard serves the same keys, with live figures, at `/api/workers`):
/// a report has no live figures, so those are null.
pub fn workers(workers: &[WorkerReport]) -> Value {
    workers
        .iter()
        .map(|w| {
            json!({
                "name": w.name,
                "address": w.address,
                "threads": w.threads,
                "state": w.state,
                "users": null,
                "rps": null,
                "cpu_percent": null,
                "lag_p99_ms": null,
                "saturated": w.saturated,
                "lost_at_s": w.lost_at_s,
                "error": w.error,
            })
        })
        .collect()
}

/// A capacity search for the page: each step as `[level, achieved, p50, p95, p99,
/// error rate, dropped, verdict, phase, line value]`, where the line is the first
/// latency SLO line (its label and limit in `line`), the answer for people.
pub fn search_view(r: &CapacityReport) -> Value {
    // The first latency line, by its index among the steps' verdicts.
    let line = r.steps.first().and_then(|s| {
        s.slos
            .iter()
            .position(|v| v.unit == SloUnit::Ms)
            .map(|i| (i, s.slos[i].label(), s.slos[i].threshold))
    });
    let steps: Vec<Value> = r
        .steps
        .iter()
        .map(|s| {
            let verdict = match s.outcome {
                StepOutcome::Pass => "pass",
                StepOutcome::Fail => "fail",
                StepOutcome::Untrusted => "untrusted",
            };
            let phase = match s.phase {
                StepPhase::Grow => "grow",
                StepPhase::Bisect => "bisect",
                StepPhase::Confirm => "confirm",
            };
            let value = line
                .as_ref()
                .and_then(|(i, ..)| s.slos.get(*i))
                .and_then(|v| v.value)
                .map(r3);
            json!([
                r3(s.level),
                r3(s.achieved_rps),
                r3(s.p50_ms),
                r3(s.p95_ms),
                r3(s.p99_ms),
                r3(s.error_rate),
                s.dropped,
                verdict,
                phase,
                value,
            ])
        })
        .collect();
    json!({
        "axis": match r.axis { CapacityAxis::Users => "users", CapacityAxis::ArrivalRate => "arrival_rate" },
        "answer": crate::report::capacity::answer(r),
        "passed": r.answer.as_ref().map(|a| a.passed),
        "line": line.map(|(_, label, limit)| json!([label, r3(limit)])),
        "steps": steps,
    })
}

/// The page's name for an end reason (its badge), and the reason for people in the
/// words of the JSON report and the console (empty while running).
pub fn end_state(end: &EndReason) -> (&'static str, String) {
    let state = match end {
        EndReason::Running => return ("running", String::new()),
        EndReason::Completed | EndReason::IterationsDone | EndReason::FeederExhausted { .. } => {
            "completed"
        }
        EndReason::Stopped => "stopped",
        EndReason::Interrupted => "interrupted",
        EndReason::Aborted { .. } => "aborted",
    };
    (state, EndInfo::from_reason(end).message)
}

/// A compact series point: `[t, width, requests, failures, p50, p95, p99, users, dropped]`.
pub fn point_json(p: &SeriesPoint, out: &mut String) {
    let _ = write!(
        out,
        "[{},{},{},{},{},{},{},{},{}]",
        r3(p.t),
        r3(p.width),
        p.requests,
        p.failures,
        r3(p.p50_ms),
        r3(p.p95_ms),
        r3(p.p99_ms),
        p.users,
        p.dropped
    );
}

/// The points after `after` (seconds), as a JSON array; all of them (downsampled to
/// [`MAX_POINTS`]) when `after` is `None`.
pub fn points_json(series: &[SeriesPoint], after: Option<f64>) -> String {
    let mut out = String::from("[");
    let push = |p: &SeriesPoint, out: &mut String| {
        if out.len() > 1 {
            out.push(',');
        }
        point_json(p, out);
    };
    match after {
        Some(t) => series
            .iter()
            .filter(|p| p.t > t)
            .for_each(|p| push(p, &mut out)),
        None => series::downsample(series, MAX_POINTS)
            .iter()
            .for_each(|p| push(p, &mut out)),
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(t: f64, requests: u64, p95: f64) -> SeriesPoint {
        SeriesPoint {
            t,
            width: 1.0,
            requests,
            p95_ms: p95,
            ..SeriesPoint::default()
        }
    }

    #[test]
    fn end_details_are_the_json_reports_words() {
        assert_eq!(end_state(&EndReason::Running), ("running", String::new()));
        // A run that failed is marked stopped: nothing says the dashboard stopped it.
        assert_eq!(
            end_state(&EndReason::Stopped),
            ("stopped", "stopped".into())
        );
        let feeder = EndReason::FeederExhausted {
            feeder: "accounts".into(),
        };
        for end in [
            EndReason::Completed,
            EndReason::IterationsDone,
            feeder,
            EndReason::Stopped,
            EndReason::Interrupted,
            EndReason::Aborted {
                slo: 0,
                line: "p95 < 1s".into(),
                at: 12,
            },
        ] {
            assert_eq!(end_state(&end).1, EndInfo::from_reason(&end).message);
        }
    }

    #[test]
    fn points_after_a_time_are_only_the_new_ones() {
        let series: Vec<SeriesPoint> = (1..=5).map(|i| point(i as f64, i, 1.0)).collect();
        let json: Vec<Vec<f64>> = serde_json::from_str(&points_json(&series, Some(3.0))).unwrap();
        assert_eq!(json.len(), 2);
        assert_eq!(json[0][0], 4.0);
        let all: Vec<Vec<f64>> = serde_json::from_str(&points_json(&series, None)).unwrap();
        assert_eq!(all.len(), 5);
    }

    #[test]
    fn hundreds_of_names_and_an_hour_of_series_stay_small() {
        use crate::report::fixture;
        let mut plan = fixture::plan(Vec::new());
        let info = plan.requests[0].clone();
        plan.requests = (0..300)
            .map(|i| crate::compile::graph::RequestInfo {
                name: format!("request number {i}"),
                ..info.clone()
            })
            .collect();
        let mut snap = Snapshot::empty(300, None);
        snap.elapsed = std::time::Duration::from_secs(3600);
        for (i, r) in snap.requests.iter_mut().enumerate() {
            for j in 0..20u64 {
                r.record(
                    std::time::Duration::from_micros(500 + 37 * j + i as u64),
                    800,
                    Ok(()),
                );
            }
        }
        snap.series = (1..=3600).map(|t| point(t as f64, 300, 2.5)).collect();
        let state = state(&plan, &snap, None).to_string();
        assert!(state.len() < 64 * 1024, "a frame is {} bytes", state.len());
        let points = points_json(&snap.series, None);
        let points: Vec<Vec<f64>> = serde_json::from_str(&points).unwrap();
        assert!(points.len() <= MAX_POINTS);
        let meta = meta(&plan, 1, false).to_string();
        assert!(meta.contains("request number 299"));
    }

    #[test]
    fn targets_lose_credentials_and_queries() {
        assert_eq!(
            public_target("http://bob:secret@127.0.0.1:8080/api?key=abc"),
            "http://127.0.0.1:8080/api"
        );
    }
}
