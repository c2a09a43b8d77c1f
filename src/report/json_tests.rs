//! Unit tests of the JSON report: content, round trip, schema drift and validation.

use super::*;
use crate::metrics::slo::evaluate;
use crate::report::fixture;

const SCHEMA_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/report.schema.json");

fn report() -> JsonReport {
    let plan = fixture::plan(vec![
        fixture::p95_under_300ms(),
        fixture::cart_without_failures(),
    ]);
    let snap = fixture::snapshot();
    let verdicts = evaluate(&plan, &snap);
    JsonReport::build(&plan, &snap, &verdicts, std::time::SystemTime::UNIX_EPOCH)
}

#[test]
fn the_report_carries_the_run() {
    let r = report();
    assert_eq!(r.version, 1);
    assert_eq!(r.plan.name, "shop");
    assert_eq!(r.plan.file, "plans/shop.yaml");
    assert_eq!(r.duration_s, 10.0);
    assert_eq!(r.end.reason, EndKind::Completed);
    assert!(!r.passed);
    assert_eq!(r.total.name, AGGREGATED);
    assert_eq!(r.total.count, 120);
    assert_eq!(r.total.failures, 3);
    assert_eq!(r.requests.len(), 3);
    let cart = &r.requests[1];
    assert_eq!(cart.name, "add to cart");
    assert_eq!(cart.method.as_deref(), Some("POST"));
    assert_eq!(cart.rps, 2.0);
    assert_eq!(cart.mean_bytes, 250.0);
    assert_eq!(cart.failure_reasons.len(), 2);
    assert_eq!(cart.failure_reasons[0].reason, "HTTP 500");
    assert_eq!(cart.failure_reasons[0].kind, FailureKindName::Status);
    assert_eq!(cart.failure_reasons[0].count, 2);
    assert_eq!(cart.failure_reasons[1].reason, "expected status 201");
    let versions: Vec<(&str, u64)> = cart
        .versions
        .iter()
        .map(|(v, n)| (v.as_str(), *n))
        .collect();
    assert_eq!(versions, [("HTTP/1.1", 2), ("HTTP/2", 18)]);
    assert!(r.requests[0].versions.is_empty());
    assert!((r.requests[0].latency_ms.p99_9 - 19.0).abs() < 0.1);
    assert_eq!(r.series.len(), 3);
    assert_eq!(r.slos.len(), 2);
    assert!(r.slos[0].passed);
    assert!(!r.slos[1].passed);
    assert!(r.started_at.ends_with('Z'), "{}", r.started_at);
}

#[test]
fn the_json_names_fields_as_documented() {
    let v: serde_json::Value = serde_json::from_str(&report().to_json()).unwrap();
    assert_eq!(v["version"], 1);
    assert_eq!(v["end"]["reason"], "completed");
    assert_eq!(v["requests"][1]["failure_reasons"][0]["kind"], "status");
    assert_eq!(v["requests"][1]["versions"]["HTTP/2"], 18);
    assert!(
        v["requests"][0].get("versions").is_none(),
        "absent when none"
    );
    assert!(v["total"]["latency_ms"]["p99.9"].is_number());
    assert_eq!(v["slos"][1]["request"], "add to cart");
    assert_eq!(v["slos"][1]["unit"], "count");
}

#[test]
fn the_report_round_trips() {
    let r = report();
    let back: JsonReport = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(back, r);
}

#[test]
fn end_reasons_say_why() {
    let e = EndInfo::from_reason(&EndReason::FeederExhausted {
        feeder: "accounts".into(),
    });
    assert_eq!(e.reason, EndKind::FeederExhausted);
    assert_eq!(e.feeder.as_deref(), Some("accounts"));
    assert!(e.message.contains("accounts"), "{}", e.message);
}

#[test]
fn rfc3339_is_utc_with_millis() {
    let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
    assert_eq!(rfc3339(t), "2023-11-14T22:13:20.123Z");
}

/// The checked-in schema is exactly what the types generate. To regenerate it:
/// `SWARM_UPDATE_SCHEMAS=1 cargo test --lib report::json`.
#[test]
fn the_checked_in_schema_matches_the_types() {
    let generated = serde_json::to_string_pretty(&report_schema()).unwrap() + "\n";
    if std::env::var_os("SWARM_UPDATE_SCHEMAS").is_some() {
        std::fs::write(SCHEMA_PATH, &generated).unwrap();
    }
    let on_disk = std::fs::read_to_string(SCHEMA_PATH)
        .expect("schemas/report.schema.json exists (SWARM_UPDATE_SCHEMAS=1 writes it)");
    assert!(
        on_disk == generated,
        "schemas/report.schema.json is out of date: run SWARM_UPDATE_SCHEMAS=1 cargo test --lib report::json"
    );
}

#[test]
fn the_report_validates_against_the_schema() {
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(SCHEMA_PATH).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let instance: serde_json::Value = serde_json::from_str(&report().to_json()).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&instance)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // And the schema is strict enough to catch a wrong type.
    let mut broken = instance.clone();
    broken["total"]["count"] = serde_json::json!("many");
    assert!(!validator.is_valid(&broken));
}
