use std::time::{Duration, UNIX_EPOCH};

use super::*;
use crate::report::fixture;

fn report() -> JsonReport {
    let plan = fixture::plan(Vec::new());
    JsonReport::build(&plan, &fixture::snapshot(), &[], UNIX_EPOCH)
}

fn baseline(report: JsonReport) -> Baseline {
    Baseline {
        path: PathBuf::from("previous.json"),
        report,
    }
}

#[test]
fn tolerance_parses_percentages() {
    assert_eq!(parse_tolerance("10%").unwrap(), 0.1);
    assert_eq!(parse_tolerance("10").unwrap(), 0.1);
    assert_eq!(parse_tolerance(" 2.5 % ").unwrap(), 0.025);
    assert_eq!(parse_tolerance("0%").unwrap(), 0.0);
    for bad in ["", "%", "-5%", "ten", "NaN%", "inf", "5000%"] {
        assert!(parse_tolerance(bad).is_err(), "{bad} should be rejected");
    }
}

#[test]
fn latency_rule_has_a_relative_tolerance_and_an_absolute_floor() {
    let p95 = BaselineMetric::P95;
    assert!(
        !p95.regressed(100.0, 110.0, 0.1),
        "exactly at the tolerance"
    );
    assert!(p95.regressed(100.0, 110.5, 0.1));
    assert!(!p95.regressed(2.0, 2.9, 0.1), "under the 1 ms floor");
    assert!(p95.regressed(2.0, 3.1, 0.1));
    assert!(
        !p95.regressed(100.0, 50.0, 0.1),
        "faster is never a regression"
    );
}

#[test]
fn error_rate_rule_tolerates_noise_on_a_clean_baseline() {
    let er = BaselineMetric::ErrorRate;
    assert!(!er.regressed(0.0, 0.0005, 0.1), "one failure in 2000");
    assert!(er.regressed(0.0, 0.005, 0.1));
    assert!(!er.regressed(0.05, 0.054, 0.1), "within 10% of 5%");
    assert!(er.regressed(0.05, 0.06, 0.1));
    assert!(!er.regressed(0.05, 0.0, 0.1));
}

#[test]
fn throughput_rule_is_relative() {
    let rps = BaselineMetric::Rps;
    assert!(!rps.regressed(100.0, 90.0, 0.1));
    assert!(rps.regressed(100.0, 89.0, 0.1));
    assert!(!rps.regressed(100.0, 150.0, 0.1));
}

#[test]
fn an_equal_run_does_not_regress() {
    let r = report();
    let cmp = compare(&baseline(r.clone()), &r, 0.1);
    assert!(!cmp.regressed);
    // `POST /login` made no request in either run: listed, not compared.
    assert_eq!(cmp.requests.len(), 3);
    assert_eq!(
        cmp.requests[2].note.as_deref(),
        Some("no requests in either run")
    );
    assert_eq!(cmp.requests[0].metrics.len(), 5);
    // `list products` had no failures in either run: from 0 to 0 is no change.
    assert!(
        cmp.requests[0]
            .metrics
            .iter()
            .all(|m| m.change == Some(0.0))
    );
    assert_eq!(cmp.regressions().count(), 0);
}

#[test]
fn a_slower_run_regresses_and_says_which_metric() {
    let old = report();
    let mut new = old.clone();
    new.requests[1].latency_ms.p95 *= 1.5;
    let cmp = compare(&baseline(old), &new, 0.1);
    assert!(cmp.regressed);
    let regressions: Vec<_> = cmp.regressions().collect();
    assert_eq!(regressions.len(), 1);
    assert_eq!(regressions[0].0, "add to cart");
    assert_eq!(regressions[0].1.metric, BaselineMetric::P95);
    assert_eq!(describe(regressions[0].1), "p95 100ms → 150ms (+50%)");
    // A looser tolerance lets the same run pass.
    let cmp = compare(&baseline(report()), &new, 0.6);
    assert!(!cmp.regressed);
}

#[test]
fn an_improving_run_does_not_regress() {
    let old = report();
    let mut new = old.clone();
    for r in &mut new.requests {
        r.latency_ms.p50 /= 2.0;
        r.latency_ms.p95 /= 2.0;
        r.latency_ms.p99 /= 2.0;
        r.error_rate = 0.0;
        r.rps *= 2.0;
    }
    let cmp = compare(&baseline(old), &new, 0.0);
    assert!(!cmp.regressed);
}

#[test]
fn a_request_with_traffic_before_and_none_now_regresses() {
    let old = report();
    let mut new = old.clone();
    new.requests[0].count = 0;
    new.requests[0].rps = 0.0;
    // Whatever the tolerance: a request that stopped being sent is never a pass.
    let cmp = compare(&baseline(old), &new, 10.0);
    assert!(cmp.regressed);
    let regressions: Vec<_> = cmp.regressions().collect();
    assert_eq!(regressions.len(), 1);
    assert_eq!(regressions[0].0, "list products");
    assert_eq!(regressions[0].1.metric, BaselineMetric::Rps);
    assert_eq!(
        cmp.requests[0].note.as_deref(),
        Some("no requests in this run")
    );
    let text = render_text(&cmp);
    assert!(text.contains("no requests in this run"), "{text}");
    assert!(text.contains("REGRESSED"), "{text}");
}

#[test]
fn unmatched_names_are_listed_not_compared() {
    let old = report();
    let mut new = old.clone();
    new.requests[0].name = "list products v2".into();
    let cmp = compare(&baseline(old), &new, 0.1);
    assert_eq!(cmp.only_in_baseline, vec!["list products".to_string()]);
    assert_eq!(cmp.only_in_run, vec!["list products v2".to_string()]);
    assert_eq!(cmp.requests.len(), 2);
    let text = render_text(&cmp);
    assert!(text.contains("only in the baseline (not compared): list products"));
}

#[test]
fn another_plan_or_no_common_request_is_an_error() {
    let b = baseline(report());
    assert!(check_names(&b, "shop", &["list products"]).is_ok());
    let err = check_names(&b, "checkout", &["list products"]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the baseline previous.json is a report of plan `shop`, not of `checkout`"
    );
    let err = check_names(&b, "shop", &["GET /other"]).unwrap_err();
    assert!(matches!(err, BaselineError::NoMatchingRequests { .. }));
    assert!(err.to_string().contains("plan: `GET /other`"), "{err}");
    let plan = fixture::plan(Vec::new());
    assert!(check_plan(&b, &plan).is_ok());
}

#[test]
fn load_reads_a_report_and_rejects_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.json");
    std::fs::write(&good, report().to_json()).unwrap();
    let b = load(&good).unwrap();
    assert_eq!(b.report.plan.name, "shop");
    assert_eq!(b.report.duration(), Duration::from_secs(10));

    let missing = dir.path().join("missing.json");
    assert!(matches!(
        load(&missing),
        Err(BaselineError::Unreadable { .. })
    ));

    let garbage = dir.path().join("garbage.json");
    std::fs::write(&garbage, "not json").unwrap();
    assert!(matches!(
        load(&garbage),
        Err(BaselineError::Malformed { .. })
    ));

    let future = dir.path().join("future.json");
    let mut v: serde_json::Value = serde_json::from_str(&report().to_json()).unwrap();
    v["version"] = 99.into();
    std::fs::write(&future, v.to_string()).unwrap();
    let err = load(&future).unwrap_err();
    assert!(matches!(err, BaselineError::UnknownVersion { .. }));
    assert!(err.to_string().contains("version 99"), "{err}");

    let unversioned = dir.path().join("unversioned.json");
    std::fs::write(&unversioned, r#"{"plan": {"name": "shop"}}"#).unwrap();
    assert!(matches!(
        load(&unversioned),
        Err(BaselineError::Malformed { .. })
    ));
}
