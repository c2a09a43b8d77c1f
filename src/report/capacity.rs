//! A capacity search in the reports: the console's step table and answer, the JUnit
//! test cases (one per step, and one for the answer) and the job summary's table.
//! Everything renders from the [`CapacityReport`] in the JSON report.

use std::fmt::Write as _;

use quick_junit::{NonSuccessKind, Property, TestCase, TestCaseStatus};

use super::summary::cell;
use crate::metrics::capacity::{CapacityAxis, CapacityReport, CapacityStep, StepOutcome};
use crate::metrics::figures::{duration_ms, per_second, percent, trim_float};

/// The search's settings, for the section's title: `arrival_rate 10/s..400/s, step
/// 2x, precision 5%, warmup 1s, hold 2s, confirm 1`.
pub fn settings(r: &CapacityReport) -> String {
    let axis = match r.axis {
        CapacityAxis::Users => "users",
        CapacityAxis::ArrivalRate => "arrival_rate",
    };
    format!(
        "{axis} {}..{}, step {}x, precision {}%, warmup {}s, hold {}s, confirm {}",
        r.axis.level(r.low),
        r.axis.level(r.high),
        trim_float(r.step, 2),
        trim_float(r.precision * 100.0, 2),
        trim_float(r.warmup_s, 2),
        trim_float(r.hold_s, 2),
        r.confirm
    )
}

/// The answer, for people; the search's state while it has none.
pub fn answer(r: &CapacityReport) -> String {
    match &r.answer {
        Some(a) => a.message.clone(),
        None => format!("searching: {} steps run", r.steps.len()),
    }
}

fn phase(s: &CapacityStep) -> &'static str {
    match s.phase {
        crate::metrics::capacity::StepPhase::Grow => "grow",
        crate::metrics::capacity::StepPhase::Bisect => "bisect",
        crate::metrics::capacity::StepPhase::Confirm => "confirm",
    }
}

fn outcome(s: &CapacityStep) -> &'static str {
    match s.outcome {
        StepOutcome::Pass => "pass",
        StepOutcome::Fail => "FAIL",
        StepOutcome::Untrusted => "untrusted",
    }
}

/// The cells of one step: number, phase, level, achieved, p50, p95, p99, errors,
/// dropped, then each SLO line's mark and value, then the verdict.
fn row(r: &CapacityReport, i: usize, s: &CapacityStep) -> Vec<String> {
    let mut cells = vec![
        (i + 1).to_string(),
        phase(s).into(),
        r.axis.level(s.level),
        per_second(s.achieved_rps),
        duration_ms(s.p50_ms),
        duration_ms(s.p95_ms),
        duration_ms(s.p99_ms),
        percent(s.error_rate),
        s.dropped.to_string(),
    ];
    for v in &s.slos {
        let mark = if v.passed { '✓' } else { '✗' };
        cells.push(format!("{mark} {}", v.display_value()));
    }
    cells.push(outcome(s).into());
    cells
}

/// The console section: the settings, a table of every step, and the answer.
pub fn console(out: &mut String, r: &CapacityReport) {
    let _ = writeln!(out, "Capacity search ({})", settings(r));
    let mut header: Vec<String> = [
        "#", "Phase", "Level", "Achieved", "p50", "p95", "p99", "Errors", "Dropped",
    ]
    .map(String::from)
    .to_vec();
    if let Some(first) = r.steps.first() {
        header.extend(first.slos.iter().map(|v| v.label()));
    }
    header.push("Verdict".into());
    let rows: Vec<Vec<String>> = (r.steps.iter().enumerate())
        .map(|(i, s)| row(r, i, s))
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
            let pad = " ".repeat(w.saturating_sub(cell.chars().count()));
            // Text columns to the left, figures to the right.
            if i == 1 || i + 1 == row.len() || i >= 9 {
                let _ = write!(line, "{cell}{pad}  ");
            } else {
                let _ = write!(line, "{pad}{cell}  ");
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    for (i, s) in r.steps.iter().enumerate() {
        match (&s.saturated, &s.outcome) {
            (Some(why), StepOutcome::Untrusted) => {
                let _ = writeln!(out, "step {} could not be trusted: {why}", i + 1);
            }
            (Some(why), _) => {
                let _ = writeln!(
                    out,
                    "step {} passed although {why}: a busy generator can only make a step worse, so the pass stands",
                    i + 1
                );
            }
            (None, _) => {}
        }
    }
    let _ = writeln!(out, "\nAnswer: {}", answer(r));
}

/// The JUnit test cases: one per step (successful when it was judged, whatever its
/// verdict: a failing step is what a search looks for; skipped when the generator
/// saturated), and one for the answer, failed when the search's gate did not hold.
pub fn junit_cases(r: &CapacityReport, classname: &str) -> Vec<TestCase> {
    let mut cases = Vec::new();
    for (i, s) in r.steps.iter().enumerate() {
        let verdict = match s.outcome {
            StepOutcome::Fail => format!("fail ({})", s.failed().join(", ")),
            _ => outcome(s).into(),
        };
        let status = match s.outcome {
            StepOutcome::Untrusted => {
                let mut st = TestCaseStatus::skipped();
                st.set_message(s.saturated.clone().unwrap_or_default());
                st
            }
            StepOutcome::Pass | StepOutcome::Fail => TestCaseStatus::success(),
        };
        let name = format!(
            "step {}: {} ({}): {verdict}",
            i + 1,
            r.axis.level(s.level),
            phase(s)
        );
        let mut case = TestCase::new(name, status);
        case.set_classname(classname);
        case.set_time(std::time::Duration::from_secs_f64(s.hold_s.max(0.0)));
        case.add_properties([
            Property::new("level", trim_float(s.level, 2)),
            Property::new("verdict", outcome(s)),
            Property::new("achieved_rps", format!("{:.2}", s.achieved_rps)),
            Property::new("p95_ms", format!("{:.2}", s.p95_ms)),
            Property::new("error_rate", format!("{:.4}", s.error_rate)),
            Property::new("dropped", s.dropped.to_string()),
        ]);
        cases.push(case);
    }
    let passed = r.answer.as_ref().is_some_and(|a| a.passed);
    let status = if passed {
        TestCaseStatus::success()
    } else {
        let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
        st.set_message(answer(r)).set_type("capacity");
        st
    };
    let mut case = TestCase::new("capacity", status);
    case.set_classname(classname);
    if let Some(a) = &r.answer {
        if let Some(c) = a.capacity {
            case.add_property(Property::new("capacity", trim_float(c, 2)));
        }
        if let Some(f) = a.failed_at {
            case.add_property(Property::new("failed_at", trim_float(f, 2)));
        }
        case.add_property(Property::new("answer", a.message.as_str()));
    }
    cases.push(case);
    cases
}

/// The job summary's section: the answer, then a Markdown table of the steps.
pub fn markdown(out: &mut String, r: &CapacityReport) {
    let _ = writeln!(out, "**Capacity:** {}\n", cell(&answer(r)));
    let _ = writeln!(
        out,
        "<details><summary>{} steps ({})</summary>\n",
        r.steps.len(),
        cell(&settings(r))
    );
    let _ = writeln!(
        out,
        "| # | Phase | Level | Achieved | p50 | p95 | p99 | Errors | Dropped | Verdict |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|");
    for (i, s) in r.steps.iter().enumerate() {
        let cells = row(r, i, s);
        let verdict = match s.outcome {
            StepOutcome::Fail => format!("FAIL: {}", s.failed().join(", ")),
            _ => outcome(s).into(),
        };
        let _ = writeln!(out, "| {} | {} |", cells[..9].join(" | "), cell(&verdict));
    }
    let _ = writeln!(out, "\n</details>\n");
}

#[cfg(test)]
#[path = "capacity_tests.rs"]
mod tests;
