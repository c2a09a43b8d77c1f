//! Unit tests of SLO evaluation: every metric and operator, scoped and unscoped, and
//! the no-requests case.

use super::*;
use crate::compile::graph::{CmpOp, Metric};
use crate::report::fixture::{self, CART, LIST, LOGIN};

fn one(slo: Slo) -> SloVerdict {
    let plan = fixture::plan(vec![slo]);
    let mut v = evaluate(&plan, &fixture::snapshot());
    assert_eq!(v.len(), 1);
    v.remove(0)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= b.abs() * 0.002 + 1e-9
}

#[test]
fn every_metric_is_measured_over_all_requests() {
    // 100 requests at 10..=19 ms and 20 at 100 ms, over 10 s, 3 failed.
    let cases = [
        (Metric::Min, 10.0),
        (Metric::Max, 100.0),
        (Metric::Mean, (100.0 * 14.5 + 20.0 * 100.0) / 120.0),
        (Metric::Percentile(50.0), 15.0),
        (Metric::Percentile(90.0), 100.0),
        (Metric::Percentile(99.9), 100.0),
        (Metric::ErrorRate, 3.0 / 120.0),
        (Metric::Rps, 12.0),
        (Metric::Requests, 120.0),
        (Metric::Failures, 3.0),
        (Metric::Dropped, 0.0),
    ];
    for (metric, expected) in cases {
        let v = one(fixture::slo(None, "m", metric, CmpOp::Lt, 1e9));
        let got = v.value.expect("defined");
        assert!(close(got, expected), "{metric:?}: {got} != {expected}");
        assert!(v.passed, "{metric:?}");
        assert_eq!(v.request, None);
        assert_eq!(v.unit, metric_unit(metric));
    }
}

#[test]
fn scoped_slo_measures_only_its_request() {
    let v = one(fixture::slo(
        Some(CART),
        "p95 < 50ms",
        Metric::Percentile(95.0),
        CmpOp::Lt,
        50.0,
    ));
    assert_eq!(v.request.as_deref(), Some("add to cart"));
    assert!(close(v.value.unwrap(), 100.0));
    assert!(!v.passed);
    assert_eq!(v.note, None);
    assert_eq!(v.label(), "add to cart: p95 < 50ms");

    let v = one(fixture::slo(
        Some(LIST),
        "max",
        Metric::Max,
        CmpOp::Le,
        19.1,
    ));
    assert!(close(v.value.unwrap(), 19.0));
    assert!(v.passed, "{v:?}");
    let v = one(fixture::slo(
        Some(CART),
        "f",
        Metric::Failures,
        CmpOp::Eq,
        3.0,
    ));
    assert!(v.passed);
    let v = one(fixture::slo(Some(CART), "rps", Metric::Rps, CmpOp::Ge, 2.0));
    assert!(v.passed, "{v:?}");
    let v = one(fixture::slo(
        Some(LIST),
        "e",
        Metric::ErrorRate,
        CmpOp::Eq,
        0.0,
    ));
    assert!(v.passed);
}

#[test]
fn every_operator_at_and_around_the_threshold() {
    // 120 requests in total.
    let cases = [
        (CmpOp::Lt, 121.0, true),
        (CmpOp::Lt, 120.0, false),
        (CmpOp::Le, 120.0, true),
        (CmpOp::Le, 119.0, false),
        (CmpOp::Gt, 119.0, true),
        (CmpOp::Gt, 120.0, false),
        (CmpOp::Ge, 120.0, true),
        (CmpOp::Ge, 121.0, false),
        (CmpOp::Eq, 120.0, true),
        (CmpOp::Eq, 121.0, false),
    ];
    for (op, t, passed) in cases {
        let v = one(fixture::slo(None, "requests", Metric::Requests, op, t));
        assert_eq!(v.passed, passed, "requests {} {t}", op.as_str());
        assert_eq!(v.op, op.as_str());
        assert_eq!(v.threshold, t);
    }
}

#[test]
fn a_request_that_was_never_sent_fails_every_threshold() {
    for metric in [
        Metric::Failures,
        Metric::Requests,
        Metric::ErrorRate,
        Metric::Percentile(95.0),
        Metric::Rps,
    ] {
        // `failures == 0` would hold over nothing; it must not pass silently.
        let v = one(fixture::slo(Some(LOGIN), "x", metric, CmpOp::Ge, 0.0));
        assert!(!v.passed, "{metric:?}");
        assert_eq!(v.note.as_deref(), Some(NO_REQUESTS_NOTE));
        assert!(v.summary().contains("no requests were made"));
    }
    let v = one(fixture::slo(
        Some(LOGIN),
        "p95",
        Metric::Percentile(95.0),
        CmpOp::Lt,
        1.0,
    ));
    assert_eq!(v.value, None);
    assert_eq!(v.display_value(), "n/a");
}

#[test]
fn a_run_without_any_request_fails_the_implied_slo() {
    let plan = fixture::plan(vec![fixture::slo(
        None,
        "failures == 0",
        Metric::Failures,
        CmpOp::Eq,
        0.0,
    )]);
    let snap = crate::metrics::snapshot::Snapshot::empty(3, None);
    let v = evaluate(&plan, &snap);
    assert!(!v[0].passed);
    assert!(!all_passed(&v));
}

#[test]
fn dropped_is_measured_even_without_requests() {
    let plan = fixture::plan(vec![fixture::slo(
        None,
        "dropped == 0",
        Metric::Dropped,
        CmpOp::Eq,
        0.0,
    )]);
    let mut snap = crate::metrics::snapshot::Snapshot::empty(3, None);
    assert!(evaluate(&plan, &snap)[0].passed);
    snap.dropped = 4;
    let v = evaluate(&plan, &snap);
    assert!(!v[0].passed);
    assert_eq!(v[0].value, Some(4.0));
}

#[test]
fn values_and_limits_render_in_their_unit() {
    let v = one(fixture::slo(
        None,
        "error_rate < 1%",
        Metric::ErrorRate,
        CmpOp::Lt,
        0.01,
    ));
    assert_eq!(v.display_value(), "2.50%");
    assert_eq!(v.display_threshold(), "1%");
    assert!(!v.passed);
    assert_eq!(v.summary(), "measured 2.50%, limit < 1%");
    assert_eq!(metric_name(Metric::Percentile(99.9)), "p99.9");
    assert_eq!(metric_name(Metric::Percentile(95.0)), "p95");
    assert_eq!(format_in_unit(12.0, SloUnit::PerSecond), "12/s");
    assert_eq!(format_in_unit(0.26, SloUnit::Ms), "0.3ms");
    assert_eq!(format_in_unit(7.0, SloUnit::Count), "7");
    assert_eq!(format_in_unit(1000.0, SloUnit::Ms), "1s");
    assert_eq!(format_in_unit(1234.5, SloUnit::Ms), "1.23s");
}

#[test]
fn a_measured_second_never_reads_like_its_limit() {
    let mut snap = fixture::snapshot();
    snap.requests = vec![Default::default(); snap.requests.len()];
    for _ in 0..20 {
        snap.requests[0].record(std::time::Duration::from_millis(1002), 10, Ok(()));
    }
    let plan = fixture::plan(vec![fixture::slo(
        None,
        "p95 < 1s",
        Metric::Percentile(95.0),
        CmpOp::Lt,
        1000.0,
    )]);
    let v = &evaluate(&plan, &snap)[0];
    assert!(!v.passed);
    assert_eq!(v.summary(), "measured 1.00s, limit < 1s");
    assert_eq!(measured_in_unit(0.4, SloUnit::Ms), "400µs");
    assert_eq!(measured_in_unit(12.0, SloUnit::PerSecond), "12.0/s");
}

#[test]
fn verdicts_keep_the_plan_position() {
    let v = one(fixture::slo(
        None,
        "p99 < 1s",
        Metric::Percentile(99.0),
        CmpOp::Lt,
        1000.0,
    ));
    assert_eq!((v.line, v.column), (Some(10), Some(5)));
}
