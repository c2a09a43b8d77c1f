//! The self-contained HTML report (`--html FILE`): the dashboard's page with the
//! run's final data, styles and chart code inlined, so it opens offline from a file.
//!
//! The page and its assets live in `src/dashboard/assets/`; the live dashboard serves
//! the same files, so the report and the dashboard always look alike.

pub mod view;

use std::path::{Path, PathBuf};

use super::{RunResult, Sink, SinkError, write_report};

use crate::compile::graph::CompiledPlan;
use crate::metrics::snapshot::Snapshot;

/// The page, shared with the live dashboard.
pub const INDEX_HTML: &str = include_str!("../dashboard/assets/index.html");
pub const STYLE_CSS: &str = include_str!("../dashboard/assets/style.css");
pub const CHARTS_JS: &str = include_str!("../dashboard/assets/charts.js");
pub const APP_JS: &str = include_str!("../dashboard/assets/app.js");

/// Where the page template takes its styles and scripts.
const STYLE_SLOT: &str = "<!--swarm:style-->";
const SCRIPT_SLOT: &str = "<!--swarm:script-->";

/// The report for one finished run, as one HTML document.
pub fn render(plan: &CompiledPlan, snap: &Snapshot) -> String {
    let data = format!(
        r#"{{"meta":{},"state":{},"points":{}}}"#,
        view::meta(plan, 1, false),
        view::state(plan, snap, None),
        view::points_json(&snap.series, None),
    );
    let style = format!("<style>\n{STYLE_CSS}\n</style>");
    let script = format!(
        "<script type=\"application/json\" id=\"swarm-data\">{}</script>\n<script>\n{}\n{}\n</script>",
        data.replace('<', "\\u003c"),
        escape_script(CHARTS_JS),
        escape_script(APP_JS),
    );
    INDEX_HTML
        .replace(STYLE_SLOT, &style)
        .replace(SCRIPT_SLOT, &script)
}

/// The live page: the same template, with styles and scripts as separate files so the
/// dashboard can forbid inline script in its Content-Security-Policy.
pub fn live_page() -> String {
    INDEX_HTML
        .replace(
            STYLE_SLOT,
            r#"<link rel="stylesheet" href="/assets/style.css">"#,
        )
        .replace(
            SCRIPT_SLOT,
            r#"<script src="/assets/charts.js"></script>
<script src="/assets/app.js"></script>"#,
        )
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

/// Makes script code safe inside a `<script>` element: `</` cannot close it early.
/// (JSON data is escaped more simply: every `<` becomes `\u003c`.)
fn escape_script(code: &str) -> String {
    code.replace("</", "<\\/")
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
        let data = html
            .split(r#"<script type="application/json" id="swarm-data">"#)
            .nth(1)
            .and_then(|rest| rest.split("</script>").next())
            .expect("the data element");
        let data: serde_json::Value = serde_json::from_str(data).expect("the data is JSON");
        assert_eq!(data["meta"]["name"], plan.name.as_str());
        assert_eq!(data["state"]["state"], "completed");
        assert_eq!(data["points"].as_array().map(Vec::len), Some(3));
    }

    #[test]
    fn script_text_cannot_close_its_element() {
        let s = escape_script(r#"{"name":"</script><script>alert(1)</script>"}"#);
        assert!(!s.contains("</script"));
        assert!(s.contains(r"<\/script"));
    }
}
