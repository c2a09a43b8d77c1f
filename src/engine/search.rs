//! The capacity search's decisions: which load level to run next, and what the steps
//! run so far say about the target's capacity. Pure logic, no clock and no I/O: the
//! run session runs each step (ramp, warm up, hold) and judges it, then hands the
//! verdict here and asks for the next level. Keeping the decisions apart makes them
//! testable step by step, and lets a coordinator steer many workers with the same
//! rules as one machine.
//!
//! The rules (docs/capacity.md):
//! - **grow**: start at the range's low end and multiply by `step` while steps pass,
//!   never past the high end;
//! - **bisect**: after the first failure, halve the bracket [highest pass, lowest
//!   fail] until it is within `precision` (relative to the pass; for users, until the
//!   two are one user apart);
//! - **confirm**: re-run the best pass `confirm` times; a failed confirmation makes
//!   that level the new lowest fail, and the search goes on below it;
//! - a step whose generator saturated cannot be trusted: the search stops there and
//!   says so, keeping what it knew.

pub use crate::compile::graph::{Search as SearchSpec, SearchAxis};

/// How one step went.
#[derive(Debug, Clone, PartialEq)]
pub enum StepVerdict {
    /// Every SLO line held on the step's window (and, in the open model, at least 95%
    /// of its arrivals were sent).
    Pass,
    /// At least one line failed; `lines` are the indexes of the failed SLO lines, and
    /// `starved` says the open model sent fewer than 95% of its arrivals.
    Fail { lines: Vec<usize>, starved: bool },
    /// The generator itself saturated: this step says nothing about the target.
    Untrusted,
}

/// Why a step was run.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum StepPhase {
    /// Growing by `step` while steps pass.
    Grow,
    /// Halving the bracket between the highest pass and the lowest fail.
    Bisect,
    /// Re-running the best pass.
    Confirm,
}

/// One step run, as the reports list it.
#[derive(Debug, Clone, PartialEq)]
pub struct StepRecord {
    pub level: f64,
    pub phase: StepPhase,
    pub verdict: StepVerdict,
}

/// How the search ended.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum SearchOutcome {
    /// A capacity was found and confirmed, with the bracket within the precision.
    Found,
    /// Every level up to the range's top passed: the capacity is at least the top.
    AboveRange,
    /// Even the lowest level failed: the capacity is below the range.
    BelowRange,
    /// A step's generator saturated; what is known is reported but not trusted.
    Untrusted,
    /// The search was stopped before it ended (Ctrl-C, the dashboard): the answer
    /// so far.
    Stopped,
}

/// What the search found.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchResult {
    pub outcome: SearchOutcome,
    /// The highest passing level (confirmed, when the outcome is `Found`).
    pub capacity: Option<f64>,
    /// The lowest failing level, if any step failed.
    pub failed_at: Option<f64>,
    /// The SLO lines that failed at `failed_at`: the ones that broke first.
    pub broke_first: Vec<usize>,
    /// `failed_at` failed (also) because the open model could not send its arrivals.
    pub starved: bool,
}

/// The most steps one search runs, whatever its settings (the compiler refuses a
/// range whose growth alone would take more than half of them).
pub const MAX_STEPS: usize = SearchSpec::MAX_STEPS;

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    /// Growing; the next level to run.
    Grow(f64),
    /// Bisecting the bracket.
    Bisect,
    /// Confirming the best pass; how many confirmations are still to run.
    Confirm(u32),
    Done(SearchOutcome),
}

/// A capacity search in progress.
#[derive(Debug, Clone)]
pub struct Search {
    spec: SearchSpec,
    state: State,
    /// Levels that passed, and were not refuted by a failed confirmation.
    passes: Vec<f64>,
    /// The lowest failing level, and the lines that failed there.
    fail: Option<(f64, Vec<usize>, bool)>,
    history: Vec<StepRecord>,
}

impl Search {
    pub fn new(spec: SearchSpec) -> Search {
        let first = to_level(spec.axis, spec.low);
        Search {
            spec,
            state: State::Grow(first),
            passes: Vec::new(),
            fail: None,
            history: Vec::new(),
        }
    }

    pub fn spec(&self) -> &SearchSpec {
        &self.spec
    }

    /// The steps run so far, in order.
    pub fn history(&self) -> &[StepRecord] {
        &self.history
    }

    /// The level of the next step and why it runs, or `None` when the search is over.
    pub fn next(&self) -> Option<(f64, StepPhase)> {
        match self.state {
            State::Grow(level) => Some((level, StepPhase::Grow)),
            State::Bisect => {
                let (pass, fail) = (self.best_pass()?, self.fail.as_ref()?.0);
                Some((midpoint(self.spec.axis, pass, fail), StepPhase::Bisect))
            }
            State::Confirm(_) => Some((self.best_pass()?, StepPhase::Confirm)),
            State::Done(_) => None,
        }
    }

    /// Records how the step [`Search::next`] asked for went, and decides the next.
    /// Does nothing once the search is over.
    pub fn record(&mut self, verdict: StepVerdict) {
        let Some((level, phase)) = self.next() else {
            return;
        };
        self.history.push(StepRecord {
            level,
            phase,
            verdict: verdict.clone(),
        });
        match verdict {
            StepVerdict::Untrusted => {
                self.state = State::Done(SearchOutcome::Untrusted);
                return;
            }
            StepVerdict::Pass => {
                if phase != StepPhase::Confirm {
                    self.passes.push(level);
                }
            }
            StepVerdict::Fail { lines, starved } => {
                // A failed confirmation refutes that pass.
                self.passes.retain(|p| *p < level);
                if self.fail.as_ref().is_none_or(|(f, ..)| level <= *f) {
                    self.fail = Some((level, lines, starved));
                }
            }
        }
        self.state = self.decide(phase, level);
        if self.history.len() >= MAX_STEPS && !matches!(self.state, State::Done(_)) {
            self.state = State::Done(if self.best_pass().is_some() {
                SearchOutcome::Found
            } else {
                SearchOutcome::BelowRange
            });
        }
    }

    /// Ends the search early (a stop from the user), keeping the answer so far.
    pub fn stop(&mut self) {
        if !matches!(self.state, State::Done(_)) {
            self.state = State::Done(SearchOutcome::Stopped);
        }
    }

    /// Whether the search is over.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done(_))
    }

    /// The answer: final once [`Search::is_done`], the answer so far before.
    pub fn result(&self) -> SearchResult {
        let outcome = match self.state {
            State::Done(o) => o,
            _ => SearchOutcome::Stopped,
        };
        let (failed_at, broke_first, starved) = match &self.fail {
            Some((level, lines, starved)) => (Some(*level), lines.clone(), *starved),
            None => (None, Vec::new(), false),
        };
        SearchResult {
            outcome,
            capacity: self.best_pass(),
            failed_at,
            broke_first,
            starved,
        }
    }

    fn best_pass(&self) -> Option<f64> {
        self.passes.iter().copied().reduce(f64::max)
    }

    fn decide(&self, phase: StepPhase, level: f64) -> State {
        let spec = &self.spec;
        let Some(pass) = self.best_pass() else {
            // Nothing passed (or every pass was refuted): below the range.
            return State::Done(SearchOutcome::BelowRange);
        };
        let Some((fail, ..)) = self.fail else {
            // Still growing.
            if pass >= spec.high {
                return self.confirm_or(SearchOutcome::AboveRange);
            }
            let next = to_level(spec.axis, (pass * spec.step).min(spec.high));
            return State::Grow(next.max(above(spec.axis, pass)).min(spec.high));
        };
        if !narrow(spec.axis, pass, fail, spec.precision) {
            return State::Bisect;
        }
        match (phase, self.state) {
            // A confirmation passed: one fewer to go.
            (StepPhase::Confirm, State::Confirm(left)) if level == pass => {
                if left <= 1 {
                    State::Done(SearchOutcome::Found)
                } else {
                    State::Confirm(left - 1)
                }
            }
            _ => self.confirm_or(SearchOutcome::Found),
        }
    }

    /// Confirms the best pass, or ends with `outcome` when no confirmation is asked.
    fn confirm_or(&self, outcome: SearchOutcome) -> State {
        match self.spec.confirm {
            0 => State::Done(outcome),
            n => match self.state {
                // Still confirming the same level: keep the count.
                State::Confirm(left)
                    if self.history.last().map(|h| h.level) == self.best_pass() =>
                {
                    if left <= 1 {
                        State::Done(outcome)
                    } else {
                        State::Confirm(left - 1)
                    }
                }
                _ => State::Confirm(n),
            },
        }
    }
}

/// A level as `axis` runs it: whole users, or a rate to 0.01/s.
fn to_level(axis: SearchAxis, x: f64) -> f64 {
    match axis {
        SearchAxis::Users => x.round().max(1.0),
        SearchAxis::Rate => (x * 100.0).round().max(1.0) / 100.0,
    }
}

/// The smallest level above `x`: growth always moves.
fn above(axis: SearchAxis, x: f64) -> f64 {
    match axis {
        SearchAxis::Users => x + 1.0,
        SearchAxis::Rate => x + 0.01,
    }
}

fn midpoint(axis: SearchAxis, pass: f64, fail: f64) -> f64 {
    let mid = to_level(axis, (pass + fail) / 2.0);
    // Rounding must not land on either end, or the bisection would not move.
    if mid <= pass { above(axis, pass) } else { mid }
}

/// Whether the bracket [pass, fail] is within the precision.
fn narrow(axis: SearchAxis, pass: f64, fail: f64, precision: f64) -> bool {
    fail - pass <= pass * precision || above(axis, pass) >= fail
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(axis: SearchAxis, low: f64, high: f64) -> SearchSpec {
        SearchSpec {
            axis,
            low,
            high,
            step: 2.0,
            precision: 0.05,
            warmup: std::time::Duration::ZERO,
            hold: std::time::Duration::from_secs(1),
            confirm: 1,
            require: None,
        }
    }

    /// Runs a search against a target whose capacity is `cap`: a step passes when its
    /// level is at most `cap`.
    fn run(spec: SearchSpec, verdict: impl Fn(f64) -> StepVerdict) -> Search {
        let mut s = Search::new(spec);
        for _ in 0..=MAX_STEPS {
            let Some((level, _)) = s.next() else { break };
            s.record(verdict(level));
        }
        assert!(s.is_done(), "the search ends within MAX_STEPS");
        s
    }

    fn knee(cap: f64) -> impl Fn(f64) -> StepVerdict {
        move |level| {
            if level <= cap {
                StepVerdict::Pass
            } else {
                StepVerdict::Fail {
                    lines: vec![0],
                    starved: false,
                }
            }
        }
    }

    #[test]
    fn grows_then_bisects_to_the_precision_then_confirms() {
        let s = run(spec(SearchAxis::Rate, 20.0, 5000.0), knee(400.0));
        let r = s.result();
        assert_eq!(r.outcome, SearchOutcome::Found);
        let cap = r.capacity.unwrap();
        assert!((400.0 / 1.05..=400.0).contains(&cap), "{cap}");
        let fail = r.failed_at.unwrap();
        assert!(fail > 400.0 && fail - cap <= cap * 0.05, "{cap}..{fail}");
        assert_eq!(r.broke_first, vec![0]);
        let phases: Vec<StepPhase> = s.history().iter().map(|h| h.phase).collect();
        // 20, 40, 80, 160, 320 pass, 640 fails: five passes and one failure grow.
        assert_eq!(&phases[..6], &[StepPhase::Grow; 6]);
        assert_eq!(s.history()[5].level, 640.0);
        assert_eq!(phases.last(), Some(&StepPhase::Confirm));
        assert_eq!(s.history().last().unwrap().level, cap);
        assert!(
            phases[6..phases.len() - 1]
                .iter()
                .all(|p| *p == StepPhase::Bisect)
        );
    }

    #[test]
    fn users_are_whole_and_the_bracket_closes_at_one_user() {
        let mut sp = spec(SearchAxis::Users, 1.0, 500.0);
        sp.precision = 0.0;
        let s = run(sp, knee(37.0));
        let r = s.result();
        assert_eq!(r.outcome, SearchOutcome::Found);
        assert_eq!((r.capacity, r.failed_at), (Some(37.0), Some(38.0)));
        assert!(s.history().iter().all(|h| h.level.fract() == 0.0));
    }

    #[test]
    fn a_failed_confirmation_lowers_the_bracket() {
        // The target holds 400/s, except that the first confirmation of anything above
        // 380/s fails (a noisy target): the refuted level becomes the lowest fail, and
        // the search settles below it.
        let mut confirmations = 0;
        let mut s = Search::new(spec(SearchAxis::Rate, 100.0, 1000.0));
        for _ in 0..MAX_STEPS {
            let Some((level, phase)) = s.next() else {
                break;
            };
            let v = if phase == StepPhase::Confirm && level > 380.0 && confirmations == 0 {
                confirmations += 1;
                StepVerdict::Fail {
                    lines: vec![1],
                    starved: false,
                }
            } else {
                knee(400.0)(level)
            };
            s.record(v);
        }
        let r = s.result();
        assert_eq!(r.outcome, SearchOutcome::Found);
        assert_eq!(confirmations, 1);
        assert_eq!(
            r.failed_at,
            Some(400.0),
            "the refuted level is now the lowest fail"
        );
        assert_eq!(r.broke_first, vec![1]);
        assert!(
            r.capacity.unwrap() < 400.0 && r.capacity.unwrap() >= 400.0 / 1.05,
            "{r:?}"
        );
    }

    #[test]
    fn the_first_step_failing_is_below_the_range() {
        let s = run(spec(SearchAxis::Rate, 500.0, 5000.0), knee(400.0));
        let r = s.result();
        assert_eq!(r.outcome, SearchOutcome::BelowRange);
        assert_eq!((r.capacity, r.failed_at), (None, Some(500.0)));
        assert_eq!(s.history().len(), 1);
    }

    #[test]
    fn passing_the_top_of_the_range_is_above_it() {
        let s = run(spec(SearchAxis::Rate, 10.0, 300.0), knee(400.0));
        let r = s.result();
        assert_eq!(r.outcome, SearchOutcome::AboveRange);
        assert_eq!(r.capacity, Some(300.0));
        let levels: Vec<f64> = s.history().iter().map(|h| h.level).collect();
        assert_eq!(levels, [10.0, 20.0, 40.0, 80.0, 160.0, 300.0, 300.0]);
    }

    #[test]
    fn a_saturated_generator_ends_the_search_untrusted() {
        let s = run(spec(SearchAxis::Rate, 20.0, 5000.0), |level| {
            if level >= 160.0 {
                StepVerdict::Untrusted
            } else {
                StepVerdict::Pass
            }
        });
        let r = s.result();
        assert_eq!(r.outcome, SearchOutcome::Untrusted);
        assert_eq!(r.capacity, Some(80.0));
    }

    #[test]
    fn confirm_zero_believes_the_first_answer() {
        let mut sp = spec(SearchAxis::Rate, 20.0, 5000.0);
        sp.confirm = 0;
        let s = run(sp, knee(400.0));
        assert!(s.history().iter().all(|h| h.phase != StepPhase::Confirm));
        assert_eq!(s.result().outcome, SearchOutcome::Found);
    }

    #[test]
    fn several_confirmations_rerun_the_same_level() {
        let mut sp = spec(SearchAxis::Rate, 20.0, 5000.0);
        sp.confirm = 3;
        let s = run(sp, knee(400.0));
        let confirms: Vec<f64> = s
            .history()
            .iter()
            .filter(|h| h.phase == StepPhase::Confirm)
            .map(|h| h.level)
            .collect();
        assert_eq!(confirms.len(), 3);
        assert!(confirms.iter().all(|c| *c == confirms[0]));
    }

    #[test]
    fn stopping_keeps_the_answer_so_far() {
        let mut s = Search::new(spec(SearchAxis::Rate, 20.0, 5000.0));
        s.record(StepVerdict::Pass);
        s.record(StepVerdict::Pass);
        s.stop();
        assert!(s.next().is_none());
        let r = s.result();
        assert_eq!(
            (r.outcome, r.capacity),
            (SearchOutcome::Stopped, Some(40.0))
        );
    }

    proptest::proptest! {
        /// Whatever the knee, range and settings, the search ends within MAX_STEPS, and
        /// when it finds a capacity, the knee lies inside its bracket.
        #[test]
        fn the_knee_is_always_inside_the_bracket(
            cap in 1.0f64..10_000.0,
            low in 1.0f64..100.0,
            span in 1.0f64..1000.0,
            step in 1.1f64..4.0,
            precision in 0.01f64..0.5,
            confirm in 0u32..3,
            users: bool,
        ) {
            let axis = if users { SearchAxis::Users } else { SearchAxis::Rate };
            let high = low * span;
            // The compiler refuses a growth that cannot fit in the search's steps.
            proptest::prop_assume!(
                SearchSpec::growth_steps(low, high, step) <= SearchSpec::MAX_GROWTH_STEPS
            );
            let hold = std::time::Duration::from_secs(1);
            let warmup = std::time::Duration::ZERO;
            let spec = SearchSpec { axis, low, high, step, precision, warmup, hold, confirm, require: None };
            let s = run(spec, knee(cap));
            let r = s.result();
            match r.outcome {
                SearchOutcome::Found => {
                    let (pass, fail) = (r.capacity.unwrap(), r.failed_at.unwrap());
                    proptest::prop_assert!(pass <= cap && cap < fail, "{pass} {cap} {fail}");
                    proptest::prop_assert!(narrow(axis, pass, fail, precision));
                }
                SearchOutcome::AboveRange => proptest::prop_assert!(r.capacity.unwrap() <= cap),
                SearchOutcome::BelowRange => proptest::prop_assert!(r.failed_at.unwrap() > cap),
                other => proptest::prop_assert!(false, "unexpected {other:?}"),
            }
        }
    }
}
