//! `load.search`: a capacity search's range and settings, checked and resolved. The
//! load model starts at the range's low end; the run session steers it step by step
//! (see `engine::search` for the rules and `docs/capacity.md` for users).

use std::time::Duration;

use crate::plan::de::{Sp, Text};
use crate::plan::raw::{RawLoad, RawSearch};

use super::Compiler;
use super::graph::{ClosedLoad, Load, LoadModel, OpenLoad, RateShape, Search, SearchAxis};
use super::load::DEFAULT_MAX_USERS;
use super::units;

const DEFAULT_STEP: f64 = 2.0;
const DEFAULT_PRECISION: f64 = 0.05;
const DEFAULT_WARMUP: Duration = Duration::from_secs(10);
const DEFAULT_HOLD: Duration = Duration::from_secs(30);
const DEFAULT_CONFIRM: u32 = 1;
/// More confirmations than this say nothing new and only lengthen the search.
const MAX_CONFIRM: i64 = 10;

impl Compiler<'_> {
    pub(super) fn search_load(&mut self, raw: &Sp<RawLoad>, search: &Sp<RawSearch>) -> Load {
        let l = &raw.value;
        // A search sets the load and the run's length itself.
        let fixed = [
            ("users", l.users.as_ref().map(|v| v.pos)),
            ("spawn_rate", l.spawn_rate.as_ref().map(|v| v.pos)),
            ("arrival_rate", l.arrival_rate.as_ref().map(|v| v.pos)),
            ("duration", l.duration.as_ref().map(|v| v.pos)),
            ("iterations", l.iterations.as_ref().map(|v| v.pos)),
            ("stages", l.stages.as_ref().map(|v| v.pos)),
        ];
        for (key, pos) in fixed {
            if let Some(pos) = pos {
                self.error_help(
                    pos,
                    format!("`{key}` does not go with `search`"),
                    "a search sets the load step by step, and each step lasts its `warmup` plus its `hold`",
                );
            }
        }
        if self.opts.users.is_some() {
            self.error_help(
                raw.pos,
                "--users does not apply to a capacity search",
                "change the range of `search` in the plan instead",
            );
        }
        let s = &search.value;
        let (axis, range) = match (&s.users, &s.arrival_rate) {
            (Some(u), None) => (SearchAxis::Users, Some(u)),
            (None, Some(r)) => (SearchAxis::Rate, Some(r)),
            (Some(_), Some(r)) => {
                self.error_help(
                    r.pos,
                    "a search varies `users` or `arrival_rate`, not both",
                    "keep `users: A..B` (closed model) or `arrival_rate: A..B` (open model)",
                );
                (SearchAxis::Users, None)
            }
            (None, None) => {
                self.error_help(
                    search.pos,
                    "the search has no range",
                    "set `users: 10..500` (closed model) or `arrival_rate: 20/s..5000/s` (open model)",
                );
                (SearchAxis::Users, None)
            }
        };
        let (low, high) = range
            .and_then(|r| self.search_range(axis, r))
            .unwrap_or((1.0, 1.0));
        let step = s
            .step
            .as_ref()
            .map_or(DEFAULT_STEP, |t| self.search_step(t));
        // A growth too slow for its range would spend the search's steps before any
        // step failed, and end without a bracket: refuse it where it is written.
        let growth = Search::growth_steps(low, high, step);
        if growth > Search::MAX_GROWTH_STEPS {
            let least = (high / low).powf(1.0 / (Search::MAX_GROWTH_STEPS - 1) as f64);
            let pos = s.step.as_ref().map_or(search.pos, |t| t.pos);
            self.error_help(
                pos,
                format!(
                    "growing from {low} to {high} by {step}x takes {growth} steps; \
                     a search grows for at most {} of its {} steps",
                    Search::MAX_GROWTH_STEPS,
                    Search::MAX_STEPS
                ),
                format!(
                    "raise `step` to at least {:.1}x, or narrow the range",
                    (least * 10.0).ceil() / 10.0
                ),
            );
        }
        let precision = s.precision.as_ref().map_or(DEFAULT_PRECISION, |t| {
            match units::parse_percent(&t.value.0) {
                Ok(p) if p > 0.0 && p < 1.0 => p,
                Ok(_) => {
                    self.error(t.pos, "`precision` must be above 0% and below 100%");
                    DEFAULT_PRECISION
                }
                Err(m) => {
                    self.error(t.pos, m);
                    DEFAULT_PRECISION
                }
            }
        });
        let warmup = s
            .warmup
            .as_ref()
            .map_or(Some(DEFAULT_WARMUP), |t| self.duration(t))
            .unwrap_or(DEFAULT_WARMUP);
        let hold = match s.hold.as_ref() {
            None => DEFAULT_HOLD,
            Some(t) => match self.duration(t) {
                Some(d) if d >= Duration::from_secs(1) => d,
                Some(_) => {
                    self.error(t.pos, "`hold` must be at least 1s: a step is judged on it");
                    DEFAULT_HOLD
                }
                None => DEFAULT_HOLD,
            },
        };
        // `--duration D` shortens a search: each step holds D and warms up at most D/2
        // (a quick look, e.g. the example plans in the tests).
        let (warmup, hold) = match self.opts.duration {
            Some(d) => (warmup.min(d / 2), d.max(Duration::from_secs(1))),
            None => (warmup, hold),
        };
        let confirm = match &s.confirm {
            None => DEFAULT_CONFIRM,
            Some(c) if (0..=MAX_CONFIRM).contains(&c.value) => c.value as u32,
            Some(c) => {
                self.error(
                    c.pos,
                    format!("`confirm` must be between 0 and {MAX_CONFIRM}"),
                );
                DEFAULT_CONFIRM
            }
        };
        let require = l
            .require
            .as_ref()
            .and_then(|r| self.search_level(axis, r, "require"));
        let model = match axis {
            SearchAxis::Users => {
                if let Some(m) = &l.max_users {
                    self.error_help(
                        m.pos,
                        "`max_users` belongs to the open model (`arrival_rate`)",
                        "a search over `users` sets the population itself",
                    );
                }
                LoadModel::Closed(ClosedLoad::Fixed {
                    users: low as u32,
                    spawn_rate: None,
                })
            }
            SearchAxis::Rate => {
                let max_users = l.max_users.as_ref().map_or(DEFAULT_MAX_USERS, |m| {
                    match u32::try_from(m.value) {
                        Ok(n) if n >= 1 => n,
                        _ => {
                            self.error(m.pos, "`max_users` must be a whole number from 1");
                            DEFAULT_MAX_USERS
                        }
                    }
                });
                LoadModel::Open(OpenLoad {
                    rate: RateShape::Fixed(low),
                    max_users,
                })
            }
        };
        Load {
            model,
            duration: None,
            iterations: None,
            search: Some(Search {
                axis,
                low,
                high,
                step,
                precision,
                warmup,
                hold,
                confirm,
                require,
            }),
        }
    }

    /// `A..B`: two levels, the first above 0 and not above the second.
    fn search_range(&mut self, axis: SearchAxis, r: &Sp<Text>) -> Option<(f64, f64)> {
        let Some((a, b)) = r.value.0.split_once("..") else {
            let example = match axis {
                SearchAxis::Users => "`10..500`",
                SearchAxis::Rate => "`20/s..5000/s`",
            };
            self.error_help(
                r.pos,
                format!("`{}` is not a range", r.value.0),
                format!("a search range is `LOW..HIGH`, e.g. {example}"),
            );
            return None;
        };
        let what = match axis {
            SearchAxis::Users => "users",
            SearchAxis::Rate => "arrival_rate",
        };
        let low = self.parse_level(axis, a.trim(), r.pos, what)?;
        let high = self.parse_level(axis, b.trim(), r.pos, what)?;
        if low <= 0.0 {
            self.error(r.pos, "the search range must start above 0");
            return None;
        }
        if low > high {
            self.error(
                r.pos,
                format!("`{}`: the low end is above the high end", r.value.0),
            );
            return None;
        }
        Some((low, high))
    }

    fn search_level(&mut self, axis: SearchAxis, t: &Sp<Text>, what: &str) -> Option<f64> {
        self.parse_level(axis, t.value.0.trim(), t.pos, what)
    }

    fn parse_level(&mut self, axis: SearchAxis, text: &str, pos: usize, what: &str) -> Option<f64> {
        match axis {
            SearchAxis::Users => match text.parse::<u32>() {
                Ok(n) => Some(n as f64),
                Err(_) => {
                    self.error(
                        pos,
                        format!("`{what}`: `{text}` is not a user count (a whole number)"),
                    );
                    None
                }
            },
            SearchAxis::Rate => match units::parse_rate(text) {
                Ok(r) => Some(r),
                Err(m) => {
                    self.error(pos, format!("`{what}`: {m}"));
                    None
                }
            },
        }
    }

    /// `2x`, `1.5x` or `2`: a factor above 1.
    fn search_step(&mut self, t: &Sp<Text>) -> f64 {
        let text = t.value.0.trim();
        match text.strip_suffix('x').unwrap_or(text).trim().parse::<f64>() {
            Ok(f) if f.is_finite() && f > 1.0 && f <= 100.0 => f,
            _ => {
                self.error_help(
                    t.pos,
                    format!("`{text}` is not a growth factor"),
                    "write a factor above 1, e.g. `2x` or `1.5x`",
                );
                DEFAULT_STEP
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::compile::{CompileOptions, compile_str};

    fn compile(load: &str) -> Result<Load, Vec<String>> {
        let src = format!(
            "name: t\ntarget: http://127.0.0.1:1\nload:\n{load}\
             flows:\n  - name: f\n    steps:\n      - get: /a\nslo: [p95 < 300ms]\n"
        );
        compile_str(&src, Path::new("t.yaml"), &CompileOptions::default())
            .map(|p| p.load)
            .map_err(|e| {
                e.diagnostics
                    .iter()
                    .map(|d| format!("{}:{}: {}", d.line, d.column, d.message))
                    .collect()
            })
    }

    #[test]
    fn an_open_search_with_defaults() {
        let load =
            compile("  search: { arrival_rate: 20/s..5000/s }\n  max_users: 2000\n").unwrap();
        let s = load.search.unwrap();
        assert_eq!(
            (s.axis, s.low, s.high, s.step, s.precision, s.confirm),
            (SearchAxis::Rate, 20.0, 5000.0, 2.0, 0.05, 1)
        );
        assert_eq!(
            (s.warmup, s.hold, s.require),
            (DEFAULT_WARMUP, DEFAULT_HOLD, None)
        );
        assert_eq!(
            load.model,
            LoadModel::Open(OpenLoad {
                rate: RateShape::Fixed(20.0),
                max_users: 2000
            })
        );
        assert_eq!((load.duration, load.iterations), (None, None));
    }

    /// `--duration D` makes each step hold D and warm up at most D/2; `--users` has
    /// no meaning for a search and is refused.
    #[test]
    fn duration_on_the_command_line_shortens_each_step() {
        let plan = crate::testing::TestPlan::new()
            .load("{ search: { users: 1..9, warmup: 10s, hold: 30s } }")
            .flow("- get: /a");
        let opts = CompileOptions {
            duration: Some(Duration::from_secs(2)),
            ..CompileOptions::default()
        };
        let s = plan.clone().options(opts).compile().load.search.unwrap();
        assert_eq!(
            (s.warmup, s.hold),
            (Duration::from_secs(1), Duration::from_secs(2))
        );
        let opts = CompileOptions {
            users: Some(3),
            ..CompileOptions::default()
        };
        let err = plan.options(opts).try_compile().unwrap_err().to_string();
        assert!(
            err.contains("--users does not apply to a capacity search"),
            "{err}"
        );
    }

    #[test]
    fn a_closed_search_with_every_setting() {
        let load = compile(
            "  search:\n    users: 10..500\n    step: 1.5x\n    precision: 10%\n\
             \x20   warmup: 5s\n    hold: 20s\n    confirm: 2\n  require: 100\n",
        )
        .unwrap();
        let s = load.search.unwrap();
        assert_eq!(
            (
                s.axis,
                s.low,
                s.high,
                s.step,
                s.precision,
                s.confirm,
                s.require
            ),
            (SearchAxis::Users, 10.0, 500.0, 1.5, 0.1, 2, Some(100.0))
        );
        assert_eq!(
            (s.warmup, s.hold),
            (Duration::from_secs(5), Duration::from_secs(20))
        );
        assert!(matches!(
            load.model,
            LoadModel::Closed(ClosedLoad::Fixed { users: 10, .. })
        ));
    }

    /// Each bad load, and its one error, located on the value at fault.
    const CASES: &[(&str, &str)] = &[
        (
            "  search: { users: 10..500, arrival_rate: 1..2 }\n",
            "4:43: a search varies `users` or `arrival_rate`, not both",
        ),
        (
            "  search: { users: 500..10 }\n",
            "4:20: `500..10`: the low end is above the high end",
        ),
        ("  search: { users: 10 }\n", "4:20: `10` is not a range"),
        (
            "  search: { arrival_rate: 0..10 }\n",
            "4:27: the search range must start above 0",
        ),
        (
            "  search: { users: 1..9, step: 1x }\n",
            "4:32: `1x` is not a growth factor",
        ),
        (
            "  search: { arrival_rate: 1/s..10000/s, step: 1.1x }\n",
            "4:47: growing from 1 to 10000 by 1.1x takes 98 steps; a search grows for at most 32 of its 64 steps",
        ),
        (
            "  search: { users: 1..9, hold: 500ms }\n",
            "4:32: `hold` must be at least 1s: a step is judged on it",
        ),
        (
            "  search: { users: 1..9, confirm: 50 }\n",
            "4:35: `confirm` must be between 0 and 10",
        ),
        (
            "  search: { users: 1..9 }\n  duration: 1m\n",
            "5:13: `duration` does not go with `search`",
        ),
        (
            "  search: { users: 1..9 }\n  max_users: 5\n",
            "5:14: `max_users` belongs to the open model (`arrival_rate`)",
        ),
        (
            "  search: { users: 1..9 }\n  require: 5/s\n",
            "5:12: `require`: `5/s` is not a user count (a whole number)",
        ),
        (
            "  users: 5\n  duration: 1m\n  require: 5\n",
            "6:12: `require` is a capacity search's gate",
        ),
    ];

    #[test]
    fn search_errors_are_located() {
        for (load, error) in CASES {
            assert_eq!(compile(load).unwrap_err(), [*error], "{load:?}");
        }
        let e = compile("  search: { users: 1..9, precison: 5% }\n").unwrap_err();
        assert_eq!(e.len(), 1);
        assert!(e[0].contains("precison"), "{e:?}");
    }
}
