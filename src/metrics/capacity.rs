//! A capacity search's record: every step run (its level, what was measured on its
//! hold, the verdict of each SLO line) and the answer. The run session builds it step
//! by step (`run::search`) and hands it to the engine, which attaches it to every
//! snapshot; the reports, the dashboard and a coordinator read it from there. The
//! JSON report carries it as is, so its schema is generated from these types.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::figures::{per_second, trim_float};
use super::slo::SloVerdict;
use crate::compile::graph::{Search, SearchAxis};
pub use crate::engine::search::{SearchOutcome, StepPhase};

/// What the search varies, as the plan names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CapacityAxis {
    /// The closed model: a number of users.
    Users,
    /// The open model: arrivals per second.
    ArrivalRate,
}

impl From<SearchAxis> for CapacityAxis {
    fn from(axis: SearchAxis) -> Self {
        match axis {
            SearchAxis::Users => CapacityAxis::Users,
            SearchAxis::Rate => CapacityAxis::ArrivalRate,
        }
    }
}

impl CapacityAxis {
    /// A level as people read it: `1,150/s` or `37 users`.
    pub fn level(self, level: f64) -> String {
        match self {
            CapacityAxis::Users => {
                let n = level.round() as u64;
                format!("{} user{}", thousands(n), if n == 1 { "" } else { "s" })
            }
            CapacityAxis::ArrivalRate if level >= 100.0 => {
                format!("{}/s", thousands(level.round() as u64))
            }
            CapacityAxis::ArrivalRate => format!("{}/s", trim_float(level, 2)),
        }
    }
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// How one step went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    /// Every SLO line held on the hold (and, in the open model, at least 95% of the
    /// arrivals were sent).
    Pass,
    /// A line failed, or the open model sent fewer than 95% of its arrivals.
    Fail,
    /// The generator itself saturated (twice in a row): the step says nothing about
    /// the target.
    Untrusted,
}

/// One step of the search: what its hold measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CapacityStep {
    /// The load offered: users, or arrivals per second.
    pub level: f64,
    pub phase: StepPhase,
    pub outcome: StepOutcome,
    /// The length of the judged hold, in seconds (at least the plan's `hold`).
    pub hold_s: f64,
    /// Requests completed per second over the hold.
    pub achieved_rps: f64,
    /// Requests completed over the hold.
    pub requests: u64,
    /// failures / requests over the hold.
    pub error_rate: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    /// Open model: arrivals dropped over the hold (`max_users` busy).
    pub dropped: u64,
    /// Open model: the fraction of the hold's arrivals that were sent.
    pub sent: Option<f64>,
    /// Every SLO line judged on this hold alone, in plan order.
    pub slos: Vec<SloVerdict>,
    /// Why the generator saturated during this step, when it did. A failing step is
    /// then untrusted, unless it failed a latency line by more than the generator's
    /// lag (`docs/capacity.md`).
    pub saturated: Option<String>,
}

impl CapacityStep {
    /// The labels of the lines that failed, plus `sent < 95%` when the open model
    /// starved: why the step failed.
    pub fn failed(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .slos
            .iter()
            .filter(|v| !v.passed)
            .map(SloVerdict::label)
            .collect();
        if self.sent.is_some_and(|s| s < SENT_AT_LEAST) {
            out.push(format!(
                "arrivals sent {} < 95%",
                super::figures::percent(self.sent.unwrap_or(0.0))
            ));
        }
        out
    }
}

/// In the open model a step fails when fewer of its arrivals than this were sent.
pub const SENT_AT_LEAST: f64 = 0.95;

/// The search's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CapacityAnswer {
    pub outcome: SearchOutcome,
    /// The highest level that passed (and held its confirmations), if any.
    pub capacity: Option<f64>,
    /// The lowest level that failed, if any: with `capacity`, the bracket.
    pub failed_at: Option<f64>,
    /// The lines that failed at `failed_at` (plus `arrivals sent < 95%`): the ones
    /// that broke first.
    pub broke_first: Vec<String>,
    /// `load.require`, when the plan set one.
    pub require: Option<f64>,
    /// Whether the answer can be trusted: false when the generator saturated or
    /// even the first step failed.
    pub trusted: bool,
    /// Whether the search's gate holds: a capacity was found (at least `require`),
    /// and it can be trusted.
    pub passed: bool,
    /// The answer, for people: `capacity 1,100/s (bracket 1,100/s..1,150/s); p95 <
    /// 300ms broke first, at 1,150/s`.
    pub message: String,
}

/// A capacity search's record so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CapacityReport {
    pub axis: CapacityAxis,
    /// The range searched.
    pub low: f64,
    pub high: f64,
    /// The growth factor while steps pass.
    pub step: f64,
    /// The bracket's width the search stops at, a fraction of the capacity.
    pub precision: f64,
    pub warmup_s: f64,
    pub hold_s: f64,
    pub confirm: u32,
    /// Every step run, in order.
    pub steps: Vec<CapacityStep>,
    /// Set when the search has ended.
    pub answer: Option<CapacityAnswer>,
}

impl CapacityReport {
    /// The record of a search with `spec`, before its first step.
    pub fn new(spec: &Search) -> CapacityReport {
        CapacityReport {
            axis: spec.axis.into(),
            low: spec.low,
            high: spec.high,
            step: spec.step,
            precision: spec.precision,
            warmup_s: spec.warmup.as_secs_f64(),
            hold_s: spec.hold.as_secs_f64(),
            confirm: spec.confirm,
            steps: Vec::new(),
            answer: None,
        }
    }

    /// One live line for the step just run: `step 3 (grow) 80/s: pass; 79.8/s
    /// achieved, p95 21.0ms, 0% errors`.
    pub fn step_line(&self, index: usize) -> Option<String> {
        let s = self.steps.get(index)?;
        let phase = match s.phase {
            StepPhase::Grow => "grow",
            StepPhase::Bisect => "bisect",
            StepPhase::Confirm => "confirm",
        };
        let verdict = match s.outcome {
            StepOutcome::Pass => "pass".to_string(),
            StepOutcome::Fail => format!("FAIL ({})", s.failed().join(", ")),
            StepOutcome::Untrusted => format!(
                "UNTRUSTED ({})",
                s.saturated.as_deref().unwrap_or("the generator saturated")
            ),
        };
        Some(format!(
            "step {} ({phase}) {}: {verdict}; {} achieved, p95 {}, {} errors",
            index + 1,
            self.axis.level(s.level),
            per_second(s.achieved_rps),
            super::figures::duration_ms(s.p95_ms),
            super::figures::percent(s.error_rate),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_read_as_people_write_them() {
        assert_eq!(CapacityAxis::ArrivalRate.level(1150.0), "1,150/s");
        assert_eq!(CapacityAxis::ArrivalRate.level(1_234_567.0), "1,234,567/s");
        assert_eq!(CapacityAxis::ArrivalRate.level(37.5), "37.5/s");
        assert_eq!(CapacityAxis::Users.level(1.0), "1 user");
        assert_eq!(CapacityAxis::Users.level(2500.0), "2,500 users");
    }
}
