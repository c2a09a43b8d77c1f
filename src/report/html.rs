//! The self-contained HTML report (`--html FILE`): the dashboard's page with the
//! run's final data, styles and chart code inlined, so it opens offline from a file.
//!
//! The page, its assets and its data model live in [`super::page`], which the live
//! dashboard serves too, so the report and the dashboard always look alike.

use std::path::{Path, PathBuf};

use super::page::{self, view};
use super::{RunResult, Sink, SinkError, write_report};
use crate::compile::graph::CompiledPlan;
use crate::metrics::snapshot::Snapshot;

/// The report for one finished run, as one HTML document.
pub fn render(plan: &CompiledPlan, snap: &Snapshot) -> String {
    let data = format!(
        r#"{{"meta":{},"state":{},"points":{}}}"#,
        view::meta(plan, 1, false),
        view::state(plan, snap, None),
        view::points_json(&snap.series, None),
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
pub fn write(path: &Path, plan: &CompiledPlan, snap: &Snapshot) -> Result<(), SinkError> {
    write_report("html", path, render(plan, snap).as_bytes())
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
        write(&self.path, &result.plan, &result.snapshot)
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
        let html = render(&plan, &fixture::snapshot());
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
    }
}
