//! The reports a page can download for a run: HTML, JSON, JUnit and the stats table
//! as CSV (Locust's column names, so existing spreadsheets keep working). They are
//! rendered from the same [`RunResult`] as `swarm check`'s report files.

use std::sync::Arc;
use std::time::SystemTime;

use crate::compile::graph::CompiledPlan;
use crate::metrics::snapshot::Snapshot;
use crate::metrics::stats::RequestStats;
use crate::report::json::WorkerReport;
use crate::report::{RunResult, html, junit};

pub(crate) struct Download {
    pub filename: String,
    pub mime: &'static str,
    pub body: String,
}

/// The report of `kind` (`html`, `json`, `junit`, `csv`) for a run that started at
/// `started` (fixed when the run began: a download may come long after it); `None`
/// for an unknown kind.
pub(crate) fn render(
    kind: &str,
    plan: &Arc<CompiledPlan>,
    snap: &Arc<Snapshot>,
    started: SystemTime,
    run: u32,
    workers: &[WorkerReport],
) -> Option<Download> {
    let stem: String = plan
        .name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let stem = format!("{}-run{run}", stem.trim_matches('-'));
    let result = || {
        let mut result = RunResult::new(plan.clone(), snap.clone(), started, None);
        result.report.workers = workers.to_vec();
        result
    };
    let (ext, mime, body) = match kind {
        "html" => (
            "html",
            "text/html; charset=utf-8",
            html::render(plan, snap, workers),
        ),
        "json" => ("json", "application/json", result().report.to_json()),
        "junit" => (
            "xml",
            "application/xml",
            junit::render(&result().report)
                .unwrap_or_else(|e| format!("<!-- junit rendering failed: {e} -->")),
        ),
        "csv" => ("csv", "text/csv; charset=utf-8", csv(plan, snap)),
        _ => return None,
    };
    Some(Download {
        filename: format!("{stem}.{ext}"),
        mime,
        body,
    })
}

const PERCENTILES: [(f64, &str); 11] = [
    (50.0, "50%"),
    (66.0, "66%"),
    (75.0, "75%"),
    (80.0, "80%"),
    (90.0, "90%"),
    (95.0, "95%"),
    (98.0, "98%"),
    (99.0, "99%"),
    (99.9, "99.9%"),
    (99.99, "99.99%"),
    (100.0, "100%"),
];

/// The stats table, one row per request name and an `Aggregated` row.
fn csv(plan: &CompiledPlan, snap: &Snapshot) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec![
        "Type",
        "Name",
        "Request Count",
        "Failure Count",
        "Median Response Time",
        "Average Response Time",
        "Min Response Time",
        "Max Response Time",
        "Average Content Size",
        "Requests/s",
        "Failures/s",
    ];
    header.extend(PERCENTILES.iter().map(|(_, h)| *h));
    let _ = w.write_record(&header);
    let secs = snap.elapsed.as_secs_f64().max(f64::MIN_POSITIVE);
    let row = |method: &str, name: &str, s: &RequestStats| {
        let mut r = vec![
            method.to_string(),
            name.to_string(),
            s.count.to_string(),
            s.failures.to_string(),
            format!("{:.3}", s.percentile_ms(50.0)),
            format!("{:.3}", s.mean_ms()),
            format!("{:.3}", s.min_ms()),
            format!("{:.3}", s.max_ms()),
            format!("{:.1}", s.bytes as f64 / s.count.max(1) as f64),
            format!("{:.3}", s.count as f64 / secs),
            format!("{:.3}", s.failures as f64 / secs),
        ];
        r.extend(
            PERCENTILES
                .iter()
                .map(|(p, _)| format!("{:.3}", s.percentile_ms(*p))),
        );
        r
    };
    for (i, stats) in snap.requests.iter().enumerate() {
        let (method, name) = plan
            .requests
            .get(i)
            .map_or(("", String::new()), |r| (r.call.label(), r.name.clone()));
        let _ = w.write_record(row(method, &name, stats));
    }
    let _ = w.write_record(row("", "Aggregated", &snap.total()));
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}
