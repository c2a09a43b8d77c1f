//! The Markdown job summary: the verdict, the SLO table (✓/✗, measured values and
//! limits), the per-request stats, the top failures by reason and the baseline
//! comparison. Written to `--summary FILE`, or appended to `$GITHUB_STEP_SUMMARY`
//! when that is set (GitHub collects one summary per step from that file); the
//! command line decides which and hands over a [`SummaryTarget`].

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::comparison::{self, BaselineComparison};
use super::json::{JsonReport, RequestReport};
use super::{RunResult, Sink, SinkError};
use crate::metrics::figures::{self, trim_float};

/// How many failure reasons the summary lists.
pub const TOP_FAILURES: usize = 10;

#[derive(Debug, thiserror::Error)]
#[error("cannot write the summary to {path}: {source}")]
pub struct SummaryError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// Where the summary goes: `--summary FILE` (replaced) or the job summary file
/// GitHub names in `$GITHUB_STEP_SUMMARY` (appended to).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryTarget {
    pub path: PathBuf,
    /// Append (the job summary, which every step adds to) rather than replace.
    pub append: bool,
}

/// Writes the summary of `report` (with its baseline comparison) to `target`.
pub fn write(target: &SummaryTarget, report: &JsonReport) -> Result<(), SummaryError> {
    write_to(&target.path, target.append, &render(report))
}

/// Writes `text` to `path`: appended (the job summary file, which GitHub gathers from
/// what each step appends), or replacing the file atomically.
pub fn write_to(path: &Path, append: bool, text: &str) -> Result<(), SummaryError> {
    let result = if append {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
    } else {
        super::write_atomic(path, text.as_bytes())
    };
    result.map_err(|source| SummaryError {
        path: path.to_path_buf(),
        source,
    })
}

/// The summary sink of `swarm check`: writes to its target, if it has one.
#[derive(Debug, Clone, Default)]
pub struct SummarySink {
    pub target: Option<SummaryTarget>,
}

impl SummarySink {
    pub fn new(target: Option<SummaryTarget>) -> Self {
        SummarySink { target }
    }
}

impl Sink for SummarySink {
    fn emit(&mut self, result: &RunResult) -> Result<(), SinkError> {
        let Some(target) = &self.target else {
            return Ok(());
        };
        write(target, &result.report).map_err(|e| SinkError::Write {
            sink: "summary",
            path: e.path,
            source: e.source,
        })
    }
}

/// The summary as Markdown.
pub fn render(report: &JsonReport) -> String {
    let baseline = report.baseline.as_ref();
    let mut out = String::new();
    let regressed = baseline.is_some_and(|b| b.regressed);
    let search = report.search.as_ref();
    let verdict = match (report.passed, regressed) {
        (true, false) if search.is_some() => "✅ capacity found",
        (false, false) if search.is_some() => "❌ failed: the capacity search's gate",
        (true, false) => "✅ passed",
        (false, false) => "❌ failed: SLOs not met",
        (true, true) => "❌ failed: regression against the baseline",
        (false, true) => "❌ failed: SLOs not met, and a regression against the baseline",
    };
    let _ = writeln!(out, "## swarm: {} — {verdict}\n", cell(&report.plan.name));
    let t = &report.total;
    let _ = writeln!(
        out,
        "`{}` against `{}` · {} · {} requests · {} failed ({}) · {}\n",
        code(&report.plan.file),
        code(&report.plan.target),
        seconds(report.duration_s),
        t.count,
        t.failures,
        pct(t.error_rate),
        figures::per_second(t.rps),
    );
    if !matches!(report.end.reason, super::json::EndKind::Completed) {
        let _ = writeln!(out, "The run ended early: {}.\n", cell(&report.end.message));
    }
    if let Some(why) = &report.generator.saturated {
        let _ = writeln!(
            out,
            "> [!WARNING]\n> The load generator was saturated ({}); latencies include its own delays.\n",
            cell(why)
        );
    }
    if let Some(r) = search {
        super::capacity::markdown(&mut out, r);
    }
    for gap in report.worker_gaps() {
        let _ = writeln!(out, "> [!WARNING]\n> A gap in the load: {}.\n", cell(&gap));
    }
    slo_table(&mut out, report);
    request_table(&mut out, report);
    top_failures(&mut out, report);
    if let Some(cmp) = baseline {
        baseline_section(&mut out, cmp);
    }
    out
}

fn slo_table(out: &mut String, report: &JsonReport) {
    out.push_str("### SLOs\n\n");
    if report.slos.is_empty() {
        out.push_str("No SLOs.\n\n");
        return;
    }
    out.push_str("| | SLO | measured | limit |\n|:-:|:--|--:|--:|\n");
    for v in &report.slos {
        let mark = if v.passed { "✓" } else { "✗" };
        let mut measured = v.display_value();
        if let Some(note) = &v.note {
            let _ = write!(measured, " ({note})");
        }
        let _ = writeln!(
            out,
            "| {mark} | {} | {} | {} {} |",
            cell(&v.label()),
            cell(&measured),
            cell(&v.op),
            cell(&v.display_threshold())
        );
    }
    out.push('\n');
}

fn request_table(out: &mut String, report: &JsonReport) {
    out.push_str("### Requests\n\n");
    out.push_str(
        "| request | requests | failed | error rate | rps | p50 | p95 | p99 | max |\n\
         |:--|--:|--:|--:|--:|--:|--:|--:|--:|\n",
    );
    let row = |out: &mut String, name: String, r: &RequestReport| {
        let l = &r.latency_ms;
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.count,
            r.failures,
            pct(r.error_rate),
            figures::sig3(r.rps),
            ms(l.p50),
            ms(l.p95),
            ms(l.p99),
            ms(l.max)
        );
    };
    for r in &report.requests {
        row(out, cell(&r.name), r);
    }
    row(
        out,
        format!("**{}**", cell(&report.total.name)),
        &report.total,
    );
    out.push('\n');
}

fn top_failures(out: &mut String, report: &JsonReport) {
    let mut all: Vec<(&str, &str, u64)> = report
        .requests
        .iter()
        .flat_map(|r| {
            r.failure_reasons
                .iter()
                .map(move |f| (r.name.as_str(), f.reason.as_str(), f.count))
        })
        .collect();
    if all.is_empty() {
        return;
    }
    // Most frequent first; the sort is stable, so ties keep the plan's order.
    all.sort_by_key(|&(_, _, n)| std::cmp::Reverse(n));
    out.push_str("### Top failures\n\n| request | reason | count |\n|:--|:--|--:|\n");
    for (name, reason, n) in all.iter().take(TOP_FAILURES) {
        let _ = writeln!(out, "| {} | {} | {n} |", cell(name), cell(reason));
    }
    if all.len() > TOP_FAILURES {
        let _ = writeln!(
            out,
            "\n…and {} more reasons (see the JSON report).",
            all.len() - TOP_FAILURES
        );
    }
    out.push('\n');
}

fn baseline_section(out: &mut String, cmp: &BaselineComparison) {
    let _ = writeln!(
        out,
        "### Baseline\n\nCompared with `{}` (started {}), tolerance {}%: {}\n",
        code(&cmp.file),
        cell(&cmp.baseline_started_at),
        trim_float(cmp.tolerance * 100.0, 1),
        if cmp.regressed {
            "**regressed**"
        } else {
            "no regression"
        }
    );
    out.push_str("| | request | metric | baseline | now | change |\n|:-:|:--|:--|--:|--:|--:|\n");
    for r in &cmp.requests {
        if let Some(note) = &r.note {
            let _ = writeln!(out, "| | {} | | | | {} |", cell(&r.name), cell(note));
            continue;
        }
        for m in &r.metrics {
            let change = m
                .change
                .map(comparison::signed_pct)
                .unwrap_or_else(|| "n/a".into());
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {change} |",
                if m.regressed { "✗" } else { "✓" },
                cell(&r.name),
                m.metric.name(),
                m.metric.format(m.baseline),
                m.metric.format(m.current)
            );
        }
    }
    out.push('\n');
    for (label, names) in [
        ("Only in the baseline", &cmp.only_in_baseline),
        ("New in this run", &cmp.only_in_run),
    ] {
        if !names.is_empty() {
            let names: Vec<String> = names.iter().map(|n| cell(n)).collect();
            let _ = writeln!(out, "{label} (not compared): {}.\n", names.join(", "));
        }
    }
}

/// Text made safe for a Markdown table cell: pipes escaped, no line breaks, and no
/// HTML (a `<` that could open a tag is escaped; `p95 < 300ms` stays readable).
pub(super) fn cell(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '|' => out.push_str("\\|"),
            '<' if chars
                .peek()
                .is_some_and(|n| n.is_ascii_alphabetic() || matches!(n, '/' | '!' | '?')) =>
            {
                out.push_str("&lt;")
            }
            '\r' | '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Text for inside backticks: no backticks or line breaks.
fn code(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '`' => '\'',
            '\r' | '\n' => ' ',
            c => c,
        })
        .collect()
}

fn ms(v: f64) -> String {
    figures::duration_ms(v)
}

fn pct(fraction: f64) -> String {
    figures::percent(fraction)
}

fn seconds(s: f64) -> String {
    figures::duration_ms(s * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_cannot_break_the_table_or_open_html() {
        assert_eq!(cell("a|b\nc"), "a\\|b c");
        assert_eq!(cell("p95 < 300ms"), "p95 < 300ms");
        assert_eq!(cell("<script>x</script>"), "&lt;script>x&lt;/script>");
        assert_eq!(code("a`b"), "a'b");
    }

    #[test]
    fn the_job_summary_is_appended_to_and_a_file_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("step_summary");
        std::fs::write(&path, "earlier step\n").unwrap();
        write_to(&path, true, "swarm\n").unwrap();
        write_to(&path, true, "swarm again\n").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "earlier step\nswarm\nswarm again\n");
        write_to(&path, false, "only this\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "only this\n");
    }
}
