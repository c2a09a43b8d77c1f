//! The JUnit XML report (`--junit FILE`), for CI systems that show test results: one
//! testsuite named after the plan, one testcase per SLO (measured value and limit in
//! the failure message and in properties), and one testcase per request name that had
//! failures, listing the reasons with their counts. Generator health goes into the
//! suite's properties, and so do the HTTP versions each request name's replies came
//! in (`versions.NAME`: `HTTP/2=40, HTTP/1.1=2`), and a failing request's testcase. Rendered from the [`JsonReport`] with quick-junit.

use std::path::PathBuf;

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use super::json::JsonReport;
use super::{RunResult, Sink, SinkError, write_report};
use crate::metrics::slo::SloVerdict;

/// Writes the JUnit report to a file.
pub struct JunitSink {
    pub path: PathBuf,
}

impl Sink for JunitSink {
    fn emit(&mut self, result: &RunResult) -> Result<(), SinkError> {
        let xml = render(&result.report).map_err(|message| SinkError::Render {
            sink: "junit",
            message,
        })?;
        write_report("junit", &self.path, xml.as_bytes())
    }
}

/// The report as JUnit XML.
pub fn render(report: &JsonReport) -> Result<String, String> {
    let mut suite = TestSuite::new(report.plan.name.as_str());
    let started = chrono::DateTime::parse_from_rfc3339(&report.started_at).ok();
    if let Some(t) = started {
        suite.set_timestamp(t);
    }
    suite.set_time(report.duration());
    let g = &report.generator;
    suite.add_properties([
        Property::new("plan.file", report.plan.file.as_str()),
        Property::new("target", report.plan.target.as_str()),
        Property::new("end", report.end.message.as_str()),
        Property::new("iterations", report.iterations.to_string()),
        Property::new("dropped", report.dropped.to_string()),
        Property::new("generator.cpu_seconds", format!("{:.2}", g.cpu_seconds)),
        Property::new("generator.lag_p99_ms", format!("{:.2}", g.lag_p99_ms)),
        Property::new("generator.lag_max_ms", format!("{:.2}", g.lag_max_ms)),
        Property::new("generator.saturated", g.saturated.is_some().to_string()),
    ]);
    if let Some(why) = &g.saturated {
        suite.add_property(Property::new("generator.saturated_reason", why.as_str()));
    }
    for r in report.requests.iter().filter(|r| !r.versions.is_empty()) {
        suite.add_property(Property::new(
            format!("versions.{}", r.name),
            versions(&r.versions),
        ));
    }
    for (i, gap) in report.worker_gaps().iter().enumerate() {
        suite.add_property(Property::new(format!("workers.gap.{i}"), gap.as_str()));
    }
    let classname = format!("{}.slo", report.plan.name);
    for v in &report.slos {
        suite.add_test_case(slo_case(v, &classname));
    }
    if let Some(search) = &report.search {
        let classname = format!("{}.capacity", report.plan.name);
        for case in super::capacity::junit_cases(search, &classname) {
            suite.add_test_case(case);
        }
    }
    let classname = format!("{}.requests", report.plan.name);
    for r in report.requests.iter().filter(|r| r.failures > 0) {
        let reasons: Vec<String> = r
            .failure_reasons
            .iter()
            .map(|f| format!("{} × {}", f.count, f.reason))
            .collect();
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
        status
            .set_message(format!(
                "{} of {} requests failed: {}",
                r.failures,
                r.count,
                reasons.join(", ")
            ))
            .set_type("request failures")
            .set_description(reasons.join("\n"));
        let mut case = TestCase::new(r.name.as_str(), status);
        case.set_classname(classname.as_str());
        case.add_properties([
            Property::new("type", r.method.as_deref().unwrap_or_default()),
            Property::new("requests", r.count.to_string()),
            Property::new("failures", r.failures.to_string()),
            Property::new("error_rate", format!("{:.4}", r.error_rate)),
        ]);
        if !r.versions.is_empty() {
            case.add_property(Property::new("versions", versions(&r.versions)));
        }
        suite.add_test_case(case);
    }
    let mut junit = Report::new("swarm");
    if let Some(t) = started {
        junit.set_timestamp(t);
    }
    junit.set_time(report.duration());
    junit.add_test_suite(suite);
    junit.to_string().map_err(|e| e.to_string())
}

/// Replies by HTTP version, most first: `HTTP/2=40, HTTP/1.1=2`.
fn versions(by_version: &std::collections::BTreeMap<String, u64>) -> String {
    let mut all: Vec<(&String, &u64)> = by_version.iter().collect();
    all.sort_by_key(|(_, n)| std::cmp::Reverse(**n));
    let all: Vec<String> = all.iter().map(|(v, n)| format!("{v}={n}")).collect();
    all.join(", ")
}

fn slo_case(v: &SloVerdict, classname: &str) -> TestCase {
    let status = if v.passed {
        TestCaseStatus::success()
    } else {
        let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
        s.set_message(format!("{}: {}", v.label(), v.summary()))
            .set_type("slo");
        s
    };
    let mut case = TestCase::new(v.label(), status);
    case.set_classname(classname);
    case.add_properties([
        Property::new("metric", v.metric.as_str()),
        Property::new("op", v.op.as_str()),
        Property::new("value", v.display_value()),
        Property::new("limit", v.display_threshold()),
    ]);
    if let Some(note) = &v.note {
        case.add_property(Property::new("note", note.as_str()));
    }
    if let (Some(line), Some(column)) = (v.line, v.column) {
        case.add_property(Property::new("plan.line", line.to_string()));
        case.add_property(Property::new("plan.column", column.to_string()));
    }
    case
}

#[cfg(test)]
#[path = "junit_tests.rs"]
mod tests;
