use std::sync::Arc;

use super::*;
use crate::compile::graph::{Search, SearchAxis};
use crate::metrics::capacity::{CapacityAnswer, SearchOutcome, StepPhase};
use crate::metrics::slo::SloVerdict;
use crate::report::RunResult;
use crate::report::baseline::{Baseline, compare};
use crate::report::fixture;

fn step(level: f64, phase: StepPhase, p95: f64) -> CapacityStep {
    let passed = p95 < 300.0;
    CapacityStep {
        level,
        phase,
        outcome: if passed {
            StepOutcome::Pass
        } else {
            StepOutcome::Fail
        },
        hold_s: 30.0,
        achieved_rps: level * 0.99,
        requests: (level * 30.0) as u64,
        error_rate: 0.0,
        p50_ms: p95 / 2.0,
        p95_ms: p95,
        p99_ms: p95 * 1.5,
        dropped: 0,
        sent: Some(1.0),
        slos: vec![SloVerdict {
            text: "p95 < 300ms".into(),
            request: None,
            metric: "p95".into(),
            op: "<".into(),
            value: Some(p95),
            threshold: 300.0,
            unit: crate::metrics::slo::SloUnit::Ms,
            passed,
            note: None,
            line: Some(10),
            column: Some(5),
        }],
        saturated: None,
    }
}

/// A search that found 1,100/s, with 1,150/s failing on its p95.
pub(crate) fn record(capacity: f64) -> CapacityReport {
    let spec = Search {
        axis: SearchAxis::Rate,
        low: 400.0,
        high: 5000.0,
        step: 2.0,
        precision: 0.05,
        warmup: std::time::Duration::from_secs(10),
        hold: std::time::Duration::from_secs(30),
        confirm: 1,
        require: Some(800.0),
    };
    let mut r = CapacityReport::new(&spec);
    r.steps = vec![
        step(400.0, StepPhase::Grow, 40.0),
        step(800.0, StepPhase::Grow, 90.0),
        step(1600.0, StepPhase::Grow, 2000.0),
        step(1200.0, StepPhase::Bisect, 400.0),
        step(1000.0, StepPhase::Bisect, 120.0),
        step(1100.0, StepPhase::Bisect, 200.0),
        step(1150.0, StepPhase::Bisect, 310.0),
        step(1100.0, StepPhase::Confirm, 210.0),
    ];
    r.answer = Some(CapacityAnswer {
        outcome: SearchOutcome::Found,
        capacity: Some(capacity),
        failed_at: Some(1150.0),
        broke_first: vec!["p95 < 300ms".into()],
        require: Some(800.0),
        trusted: true,
        passed: true,
        message: "capacity 1,100/s (bracket 1,100/s..1,150/s); p95 < 300ms broke first, at 1,150/s"
            .into(),
    });
    r
}

fn result(record: CapacityReport) -> RunResult {
    fixture::result(vec![fixture::p95_under_300ms()], |s| {
        s.search = Some(Arc::new(record));
    })
}

#[test]
fn the_console_shows_every_step_and_the_answer() {
    let r = result(record(1100.0));
    let text = super::super::console::render(&r.report);
    assert!(
        text.contains("Capacity search (arrival_rate 400/s..5,000/s, step 2x, precision 5%"),
        "{text}"
    );
    assert!(
        text.contains("Answer: capacity 1,100/s (bracket 1,100/s..1,150/s); p95 < 300ms broke first, at 1,150/s"),
        "{text}"
    );
    let rows: Vec<&str> = text.lines().filter(|l| l.contains(" bisect ")).collect();
    assert_eq!(rows.len(), 4, "{text}");
    assert!(
        rows[3].contains("1,150/s") && rows[3].contains("✗ 310ms") && rows[3].ends_with("FAIL")
    );
    assert!(text.ends_with("✓ shop: capacity 1,100/s (bracket 1,100/s..1,150/s); p95 < 300ms broke first, at 1,150/s\n"), "{text}");
    // The verdicts are the deciding step's: the confirmation at 1,100/s.
    assert_eq!(r.report.slos[0].value, Some(210.0));
    assert!(r.passed());
}

#[test]
fn junit_has_one_case_per_step_and_one_for_the_answer() {
    let r = result(record(1100.0));
    let xml = super::super::junit::render(&r.report).unwrap();
    assert_eq!(
        xml.matches("classname=\"shop.capacity\"").count(),
        9,
        "{xml}"
    );
    assert!(
        xml.contains("step 7: 1,150/s (bisect): fail (p95 &lt; 300ms)"),
        "{xml}"
    );
    // A failing step is what a search looks for: only the answer fails the suite.
    assert!(!xml.contains("type=\"capacity\""), "{xml}");
    let mut failed = record(1100.0);
    if let Some(a) = failed.answer.as_mut() {
        a.passed = false;
    }
    let xml = super::super::junit::render(&result(failed).report).unwrap();
    assert_eq!(xml.matches("type=\"capacity\"").count(), 1, "{xml}");
}

#[test]
fn a_capacity_that_dropped_past_the_tolerance_fails_the_baseline() {
    let before = Baseline {
        path: "before.json".into(),
        report: result(record(1100.0)).report,
    };
    let now = result(record(900.0)).report;
    let cmp = compare(&before, &now, 0.10);
    assert!(cmp.regressed, "{cmp:?}");
    let (name, m) = cmp.regressions().next().unwrap();
    assert_eq!((name, m.baseline, m.current), ("capacity", 1100.0, 900.0));
    let within = compare(&before, &result(record(1050.0)).report, 0.10);
    assert!(!within.regressed);
    let summary = super::super::summary::render(&now);
    assert!(
        summary.contains("**Capacity:** capacity 1,100/s"),
        "{summary}"
    );
}

/// The HTML report and the dashboard draw each step's offered and achieved load,
/// and the first latency line's value against its limit.
#[test]
fn the_page_gets_each_step_and_the_latency_line() {
    let v = super::super::page::view::search_view(&record(1100.0));
    assert_eq!(v["axis"], "arrival_rate");
    assert_eq!(v["line"], serde_json::json!(["p95 < 300ms", 300.0]));
    let steps = v["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 8);
    assert_eq!(steps[6][0], 1150.0);
    assert_eq!(steps[6][7], "fail");
    assert_eq!(steps[6][9], 310.0);
    assert!(
        v["answer"]
            .as_str()
            .unwrap()
            .starts_with("capacity 1,100/s")
    );
}
