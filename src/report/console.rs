//! The end-of-run console summary: the Locust-style statistics table per request name
//! with an aggregated row, the failures grouped by reason, the SLO verdicts, why the
//! run ended when it did not simply complete, and a warning when the generator was
//! saturated. Rendering is a pure function of the [`RunResult`]; the sink prints it.

use std::fmt::Write as _;
use std::io::Write as _;

use super::json::{EndKind, JsonReport, RequestReport};
use super::{RunResult, Sink, SinkError};
use crate::metrics::figures;

/// Prints the summary on stdout (only the verdict line when `quiet`).
pub struct ConsoleSink {
    pub quiet: bool,
}

impl Sink for ConsoleSink {
    fn emit(&mut self, result: &RunResult) -> Result<(), SinkError> {
        let text = if self.quiet {
            verdict_line(&result.report) + "\n"
        } else {
            render(&result.report)
        };
        let mut out = std::io::stdout().lock();
        // A closed stdout (e.g. piped into `head`) must not turn into a run error.
        let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
        Ok(())
    }
}

/// The whole summary.
pub fn render(report: &JsonReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} — {:.1}s against {}",
        report.plan.name, report.duration_s, report.plan.target
    );
    if report.end.reason != EndKind::Completed {
        let _ = writeln!(out, "Run ended: {}", report.end.message);
    }
    if let Some(why) = &report.generator.saturated {
        let _ = writeln!(out, "⚠ Results may be skewed: {why}");
    }
    for gap in report.worker_gaps() {
        let _ = writeln!(out, "⚠ A gap in the load: {gap}");
    }
    out.push('\n');
    if let Some(search) = &report.search {
        super::capacity::console(&mut out, search);
        // The statistics below are the last step's, its SLO verdicts those of the
        // step that decided the answer.
        out.push_str("\nThe last step's hold:\n");
    }
    stats_table(&mut out, report);
    if report.dropped > 0 {
        let _ = writeln!(
            out,
            "\nDropped arrivals: {} (max_users was busy)",
            report.dropped
        );
    }
    failures_table(&mut out, report);
    verdicts(&mut out, report);
    out.push('\n');
    out.push_str(&verdict_line(report));
    out.push('\n');
    out
}

const COLUMNS: usize = 11;

/// `Type` is the protocol (for HTTP the method): `GET`, `GRPC`...
const HEADERS: [&str; COLUMNS] = [
    "Type", "Name", "# reqs", "# fails", "Median", "p95", "p99", "Max", "Avg", "RPS", "Avg size",
];

/// The per-request table, latencies in ms and sizes in bytes.
fn stats_table(out: &mut String, report: &JsonReport) {
    let mut rows: Vec<[String; COLUMNS]> = report.requests.iter().map(stats_row).collect();
    let total = stats_row(&report.total);
    let mut widths = HEADERS.map(|h| h.chars().count());
    for row in rows.iter().chain(std::iter::once(&total)) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let _ = writeln!(out, "Requests (latencies in ms, sizes in bytes)");
    let header = HEADERS.map(String::from);
    write_row(out, &header, &widths);
    let rule: usize = widths.iter().sum::<usize>() + 2 * (widths.len() - 1);
    rows.push(total);
    let last = rows.len() - 1;
    for (i, row) in rows.iter().enumerate() {
        if i == last {
            let _ = writeln!(out, "{}", "-".repeat(rule));
        }
        write_row(out, row, &widths);
    }
}

fn write_row(out: &mut String, row: &[String; COLUMNS], widths: &[usize; COLUMNS]) {
    let mut line = String::new();
    for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
        if i > 0 {
            line.push_str("  ");
        }
        let pad = w.saturating_sub(cell.chars().count());
        if i <= 1 {
            line.push_str(cell);
            line.push_str(&" ".repeat(pad));
        } else {
            line.push_str(&" ".repeat(pad));
            line.push_str(cell);
        }
    }
    let _ = writeln!(out, "{}", line.trim_end());
}

fn stats_row(r: &RequestReport) -> [String; COLUMNS] {
    let sent = r.count > 0;
    let ms = |v: f64| if sent { fmt_ms(v) } else { "-".into() };
    [
        r.method.clone().unwrap_or_default(),
        r.name.clone(),
        r.count.to_string(),
        format!("{} ({:.2}%)", r.failures, r.error_rate * 100.0),
        ms(r.latency_ms.p50),
        ms(r.latency_ms.p95),
        ms(r.latency_ms.p99),
        ms(r.latency_ms.max),
        ms(r.latency_ms.mean),
        format!("{:.1}", r.rps),
        if sent {
            format!("{:.0}", r.mean_bytes)
        } else {
            "-".into()
        },
    ]
}

/// Milliseconds (the table's unit), with three significant digits: `0.412`, `12.3`,
/// `1002`.
fn fmt_ms(v: f64) -> String {
    figures::sig3(v)
}

/// Failures grouped by request name and reason, most frequent first.
fn failures_table(out: &mut String, report: &JsonReport) {
    let mut rows: Vec<(u64, &str, &str)> = report
        .requests
        .iter()
        .flat_map(|r| {
            r.failure_reasons
                .iter()
                .map(move |f| (f.count, r.name.as_str(), f.reason.as_str()))
        })
        .collect();
    if rows.is_empty() {
        return;
    }
    rows.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)).then(a.2.cmp(b.2)));
    let column = |header: &str, width: &dyn Fn(&(u64, &str, &str)) -> usize| {
        rows.iter().map(width).max().unwrap_or(0).max(header.len())
    };
    let count_w = column("Count", &|r| r.0.to_string().len());
    let name_w = column("Request", &|r| r.1.chars().count());
    let _ = writeln!(out, "\nFailures");
    let _ = writeln!(out, "{:>count_w$}  {:<name_w$}  Reason", "Count", "Request");
    for (count, name, reason) in rows {
        let _ = writeln!(out, "{count:>count_w$}  {name:<name_w$}  {reason}");
    }
}

/// The SLO verdicts: ✓ or ✗, the SLO, its measured value against its limit.
fn verdicts(out: &mut String, report: &JsonReport) {
    if report.slos.is_empty() {
        return;
    }
    let labels: Vec<String> = report.slos.iter().map(|v| v.label()).collect();
    let w = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let _ = writeln!(out, "\nSLOs");
    for (v, label) in report.slos.iter().zip(&labels) {
        let mark = if v.passed { '✓' } else { '✗' };
        let pad = w - label.chars().count();
        let _ = writeln!(out, "{mark} {label}{}  {}", " ".repeat(pad), v.summary());
    }
}

/// The one-line verdict, e.g. `✗ shop: 1 of 3 SLOs failed`.
pub fn verdict_line(report: &JsonReport) -> String {
    let total = report.slos.len();
    let failed = report.slos.iter().filter(|v| !v.passed).count();
    let mark = if failed == 0 { '✓' } else { '✗' };
    let noun = if total == 1 { "SLO" } else { "SLOs" };
    let name = &report.plan.name;
    if let Some(search) = &report.search {
        let mark = if report.passed { '✓' } else { '✗' };
        return format!("{mark} {name}: {}", super::capacity::answer(search));
    }
    let mut line = match (failed, total) {
        (0, 1) => format!("{mark} {name}: the SLO held"),
        (0, _) => format!("{mark} {name}: all {total} {noun} held"),
        _ => format!("{mark} {name}: {failed} of {total} {noun} failed"),
    };
    if report.end.reason == EndKind::Interrupted {
        line.push_str(" (interrupted)");
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::snapshot::{EndReason, Snapshot};
    use crate::report::fixture;

    fn result(edit: impl FnOnce(&mut Snapshot)) -> RunResult {
        let slos = vec![
            fixture::p95_under_300ms(),
            fixture::error_rate_under_1pct(),
            fixture::cart_without_failures(),
            fixture::login_p99_under_1s(),
        ];
        fixture::result(slos, edit)
    }

    #[test]
    fn summary_of_a_completed_run() {
        insta::assert_snapshot!(render(&result(|_| {}).report));
    }

    #[test]
    fn summary_of_an_interrupted_saturated_open_run() {
        let r = result(|s| {
            s.end = EndReason::Interrupted;
            s.dropped = 7;
            s.generator.saturated = Some("CPU at 98% of the available cores".into());
        });
        insta::assert_snapshot!(render(&r.report));
    }

    #[test]
    fn a_feeder_that_ran_out_is_named() {
        let r = result(|s| {
            s.end = EndReason::FeederExhausted {
                feeder: "accounts".into(),
            }
        });
        let text = render(&r.report);
        assert!(
            text.contains("Run ended: the unique feeder `accounts` ran out of rows"),
            "{text}"
        );
    }

    #[test]
    fn the_verdict_line_counts_failed_slos() {
        let r = result(|_| {});
        assert_eq!(verdict_line(&r.report), "✗ shop: 3 of 4 SLOs failed");
        let passing = fixture::result(vec![fixture::p95_under_300ms()], |_| {});
        assert_eq!(verdict_line(&passing.report), "✓ shop: the SLO held");
        assert!(!render(&passing.report).contains("Run ended"));
    }
}
