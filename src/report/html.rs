//! The self-contained HTML report (`--html FILE`): the dashboard's page with the
//! run's final data, styles and chart code inlined, so it opens offline from a file.
//!
//! The page, its assets and its data model live in [`super::page`], which the live
//! dashboard serves too, so the report and the dashboard always look alike.

use std::path::{Path, PathBuf};

use super::json::WorkerReport;
use super::page::{self, view};
use super::{RunResult, Sink, SinkError, write_report};
use crate::compile::graph::CompiledPlan;
use crate::metrics::snapshot::Snapshot;

/// The report for one finished run, as one HTML document. `workers` are those of a
/// run on many machines (empty for one machine): the page lists them and marks the
/// gap a lost one left.
pub fn render(plan: &CompiledPlan, snap: &Snapshot, workers: &[WorkerReport]) -> String {
    let data = format!(
        r#"{{"meta":{},"state":{},"points":{},"workers":{}}}"#,
        view::meta(plan, 1, false),
        view::state(plan, snap, None),
        view::points_json(&snap.series, None),
        view::workers(workers),
    );
    page::inline(&data)
}

/// The run data a report embeds (what [`render`] put in its data element), read back
/// from the page: for checking a written report without a browser.
pub fn embedded_data(page: &str) -> Option<serde_json::Value> {
    let data = page
        .split(r#"<script type="application/json" id="swarm-data">"#)
        .nth(1)?
        .split("</script>")
        .next()?;
    serde_json::from_str(data).ok()
}

/// Writes the report to `path` atomically.
pub fn write(
    path: &Path,
    plan: &CompiledPlan,
    snap: &Snapshot,
    workers: &[WorkerReport],
) -> Result<(), SinkError> {
    write_report("html", path, render(plan, snap, workers).as_bytes())
}

/// `--html FILE`: the self-contained HTML report, as a [`Sink`].
#[derive(Debug, Clone)]
pub struct HtmlSink {
    pub path: PathBuf,
}

impl HtmlSink {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        HtmlSink { path: path.into() }
    }
}

impl Sink for HtmlSink {
    fn emit(&mut self, result: &RunResult) -> Result<(), SinkError> {
        write(
            &self.path,
            &result.plan,
            &result.snapshot,
            &result.report.workers,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;

    #[test]
    fn the_report_embeds_its_data_and_nothing_from_the_network() {
        let mut plan = fixture::plan(Vec::new());
        plan.name = "shop </script><script>alert(1)</script>".into();
        let html = render(&plan, &fixture::snapshot(), &[]);
        // Only the two script elements the page itself has are closed.
        assert_eq!(html.matches("</script>").count(), 2);
        assert!(html.contains(r#"id="swarm-data""#));
        assert!(html.contains("list products"));
        for external in ["src=\"http", "href=\"http", "/assets/"] {
            assert!(!html.contains(external), "{external}");
        }
        let data = embedded_data(&html).expect("the data element holds JSON");
        assert_eq!(data["meta"]["name"], plan.name.as_str());
        assert_eq!(data["state"]["state"], "completed");
        assert_eq!(data["points"].as_array().map(Vec::len), Some(3));
        assert_eq!(data["workers"], serde_json::json!([]));
    }

    #[test]
    fn the_report_embeds_the_workers_and_when_one_was_lost() {
        let plan = fixture::plan(Vec::new());
        let worker = |name: &str, lost: Option<f64>| WorkerReport {
            name: name.into(),
            address: "127.0.0.1:4000".into(),
            threads: 2,
            state: if lost.is_some() { "lost" } else { "done" }.into(),
            lost_at_s: lost,
            error: lost.map(|_| "the connection closed".into()),
            saturated: None,
        };
        let workers = [worker("w1", None), worker("w2", Some(2.5))];
        let html = render(&plan, &fixture::snapshot(), &workers);
        let data = embedded_data(&html).unwrap();
        let rows = data["workers"].as_array().unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1]["name"], "w2");
        assert_eq!(rows[1]["state"], "lost");
        assert_eq!(rows[1]["lost_at_s"], 2.5);
        assert_eq!(rows[1]["error"], "the connection closed");
        assert_eq!(rows[0]["lost_at_s"], serde_json::Value::Null);
    }
}
