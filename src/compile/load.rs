//! The load shape: exactly one model (closed: users; open: arrival rate), its stages,
//! and when the run ends; plus the `--users` and `--duration` overrides.

use std::time::Duration;

use crate::plan::de::Sp;
use crate::plan::raw::{RawLoad, RawStage};

use super::Compiler;
use super::graph::{
    ClosedLoad, Load, LoadModel, MAX_USERS, OpenLoad, RateShape, RateStage, UsersStage,
};
use super::units;

/// Why a user count has a ceiling, for the errors that enforce it.
const MAX_USERS_HELP: &str =
    "one swarm process runs at most 1000000 users (an idle user costs about 5 KB, a busy one more)";

/// The cap on concurrently running iterations in the open model when `max_users` is absent.
pub const DEFAULT_MAX_USERS: u32 = 1000;

impl Compiler<'_> {
    pub(super) fn load(&mut self, raw: &Sp<RawLoad>) -> Load {
        let l = &raw.value;
        if let Some(search) = &l.search {
            return self.search_load(raw, search);
        }
        if let Some(r) = &l.require {
            self.error_help(
                r.pos,
                "`require` is a capacity search's gate",
                "add `search:` to the load, or remove `require`",
            );
        }
        let duration = l.duration.as_ref().and_then(|d| {
            let v = self.duration(d)?;
            if v.is_zero() {
                self.error(d.pos, "the duration must be longer than 0s");
            }
            Some(v)
        });
        let iterations = l.iterations.as_ref().and_then(|i| {
            if i.value < 1 {
                self.error(i.pos, "`iterations` must be at least 1");
                None
            } else {
                Some(i.value as u64)
            }
        });

        let stage_model = l.stages.as_ref().map(|s| self.stage_kind(s));
        let closed_keys = l.users.is_some();
        let open_keys = l.arrival_rate.is_some();
        let open = match (stage_model, closed_keys, open_keys) {
            (Some(Some(stages_open)), _, _) => {
                let stray = if stages_open {
                    l.users.as_ref().map(|u| u.pos)
                } else {
                    l.arrival_rate.as_ref().map(|u| u.pos)
                };
                if let Some(pos) = stray {
                    self.error_help(
                        pos,
                        "`stages` and a fixed rate or user count are two load shapes",
                        "keep one: `stages`, or `users`/`arrival_rate` with `duration`",
                    );
                }
                stages_open
            }
            (Some(None), _, _) => false,
            (None, true, true) => {
                let pos = l.arrival_rate.as_ref().map_or(raw.pos, |a| a.pos);
                self.error_help(
                    pos,
                    "the load mixes the closed model (`users`) and the open model (`arrival_rate`)",
                    "keep one: `users` (a fixed population) or `arrival_rate` (iterations per second)",
                );
                false
            }
            (None, false, true) => true,
            (None, true, false) => false,
            // `--users` supplies the closed model when the plan names none.
            (None, false, false) if self.opts.users.is_some() => false,
            (None, false, false) => {
                self.error_help(
                    raw.pos,
                    "the load has no model",
                    "set `users` (closed model), `arrival_rate` (open model) or `stages`",
                );
                false
            }
        };

        let model = if open {
            self.open_model(raw)
        } else {
            self.closed_model(raw)
        };
        let mut load = Load {
            model,
            duration,
            iterations,
            search: None,
        };
        // `--duration` is an end of its own: it fills in a plan that sets none.
        if l.duration.is_none()
            && l.iterations.is_none()
            && l.stages.is_none()
            && self.opts.duration.is_none()
        {
            self.error_help(
                raw.pos,
                "the run has no end",
                "set `duration` (e.g. `duration: 1m`), `iterations`, or `stages`",
            );
        }
        self.apply_overrides(raw, &mut load);
        load
    }

    /// `Some(true)` when the stages give arrival rates, `Some(false)` for users,
    /// `None` when they are unusable.
    fn stage_kind(&mut self, stages: &Sp<Vec<Sp<RawStage>>>) -> Option<bool> {
        if stages.value.is_empty() {
            self.error(stages.pos, "`stages` is empty: give at least one stage");
            return None;
        }
        let mut kind = None;
        for s in &stages.value {
            let this = match (&s.value.users, &s.value.arrival_rate) {
                (Some(_), None) => false,
                (None, Some(_)) => true,
                (Some(_), Some(r)) => {
                    self.error(r.pos, "a stage sets `users` or `arrival_rate`, not both");
                    continue;
                }
                (None, None) => {
                    self.error(
                        s.pos,
                        "a stage needs `users` (closed model) or `arrival_rate` (open model)",
                    );
                    continue;
                }
            };
            match kind {
                None => kind = Some(this),
                Some(k) if k != this => {
                    self.error(
                        s.pos,
                        "all stages use the same model: `users` or `arrival_rate`",
                    );
                }
                Some(_) => {}
            }
        }
        kind
    }

    fn stage_duration(&mut self, s: &Sp<RawStage>) -> Duration {
        match self.duration(&s.value.duration) {
            Some(d) if d.is_zero() => {
                self.error(s.value.duration.pos, "a stage must last longer than 0s");
                d
            }
            Some(d) => d,
            None => Duration::ZERO,
        }
    }

    fn closed_model(&mut self, raw: &Sp<RawLoad>) -> LoadModel {
        let l = &raw.value;
        if let Some(stages) = &l.stages {
            let mut out = Vec::new();
            for s in &stages.value {
                let duration = self.stage_duration(s);
                let users = match &s.value.users {
                    Some(u) => self.user_count(u, true),
                    None => 0,
                };
                out.push(UsersStage { duration, users });
            }
            if out.iter().all(|s| s.users == 0) {
                self.error(stages.pos, "no stage has any users: nothing would run");
            }
            return LoadModel::Closed(ClosedLoad::Stages(out));
        }
        if let Some(m) = &l.max_users {
            self.error_help(
                m.pos,
                "`max_users` belongs to the open model (`arrival_rate`)",
                "in the closed model, `users` is the population",
            );
        }
        let users = match &l.users {
            Some(u) => self.user_count(u, false),
            None => {
                if l.spawn_rate.is_some() && self.opts.users.is_none() {
                    self.error(raw.pos, "the closed model needs `users`");
                }
                0
            }
        };
        let spawn_rate = l
            .spawn_rate
            .as_ref()
            .and_then(|r| match units::parse_rate(&r.value.0) {
                Ok(v) if v > 0.0 => Some(v),
                Ok(_) => {
                    self.error(
                        r.pos,
                        "`spawn_rate` must be above 0 (leave it out to start all users at once)",
                    );
                    None
                }
                Err(m) => {
                    self.error(r.pos, m);
                    None
                }
            });
        LoadModel::Closed(ClosedLoad::Fixed { users, spawn_rate })
    }

    fn user_count(&mut self, u: &Sp<i64>, zero_ok: bool) -> u32 {
        match u32::try_from(u.value) {
            Ok(0) if !zero_ok => {
                self.error(u.pos, "`users` must be at least 1");
                0
            }
            Ok(n) if n <= MAX_USERS => n,
            Err(_) if u.value < 0 => {
                self.error(u.pos, "`users` cannot be negative");
                0
            }
            _ => {
                self.error_help(u.pos, "`users` is too large", MAX_USERS_HELP);
                0
            }
        }
    }

    fn open_model(&mut self, raw: &Sp<RawLoad>) -> LoadModel {
        let l = &raw.value;
        let max_users = match &l.max_users {
            None => DEFAULT_MAX_USERS,
            Some(m) => match u32::try_from(m.value) {
                Ok(n) if (1..=MAX_USERS).contains(&n) => n,
                Ok(n) if n > MAX_USERS => {
                    self.error_help(m.pos, "`max_users` is too large", MAX_USERS_HELP);
                    DEFAULT_MAX_USERS
                }
                _ => {
                    self.error(m.pos, "`max_users` must be at least 1");
                    DEFAULT_MAX_USERS
                }
            },
        };
        if let Some(sr) = &l.spawn_rate {
            self.error_help(
                sr.pos,
                "`spawn_rate` belongs to the closed model (`users`)",
                "in the open model, `arrival_rate` sets the pace",
            );
        }
        let rate = if let Some(stages) = &l.stages {
            let mut out = Vec::new();
            for s in &stages.value {
                let duration = self.stage_duration(s);
                let rate = s
                    .value
                    .arrival_rate
                    .as_ref()
                    .map_or(0.0, |r| self.rate(r, true));
                out.push(RateStage { duration, rate });
            }
            if out.iter().all(|s| s.rate == 0.0) {
                self.error(
                    stages.pos,
                    "every stage has an arrival rate of 0: nothing would run",
                );
            }
            RateShape::Stages(out)
        } else {
            match &l.arrival_rate {
                Some(r) => RateShape::Fixed(self.rate(r, false)),
                None => {
                    self.error(raw.pos, "the open model needs `arrival_rate`");
                    RateShape::Fixed(0.0)
                }
            }
        };
        LoadModel::Open(OpenLoad { rate, max_users })
    }

    fn rate(&mut self, r: &Sp<crate::plan::de::Text>, zero_ok: bool) -> f64 {
        match units::parse_rate(&r.value.0) {
            Ok(v) if v == 0.0 && !zero_ok => {
                self.error(r.pos, "`arrival_rate` must be above 0");
                0.0
            }
            Ok(v) => v,
            Err(m) => {
                self.error_help(r.pos, m, "rates look like `100`, `100/s` or `600/m`");
                0.0
            }
        }
    }

    fn apply_overrides(&mut self, raw: &Sp<RawLoad>, load: &mut Load) {
        if let Some(d) = self.opts.duration {
            if d.is_zero() {
                self.error(raw.pos, "--duration must be longer than 0s");
            }
            load.duration = Some(d);
        }
        let Some(users) = self.opts.users else {
            return;
        };
        if users == 0 {
            self.error(raw.pos, "--users must be at least 1");
            return;
        }
        if users > MAX_USERS {
            self.error_help(raw.pos, "--users is too large", MAX_USERS_HELP);
            return;
        }
        match &load.model {
            LoadModel::Open(_) => self.error_help(
                raw.pos,
                "--users applies to the closed model, but this plan's load is open (`arrival_rate`)",
                "change `arrival_rate` or `max_users` in the plan instead",
            ),
            LoadModel::Closed(ClosedLoad::Fixed { spawn_rate, .. }) => {
                load.model = LoadModel::Closed(ClosedLoad::Fixed {
                    users,
                    spawn_rate: *spawn_rate,
                });
            }
            LoadModel::Closed(ClosedLoad::Stages(stages)) => {
                // The run keeps the stages' total length, now with a fixed population.
                let total: Duration = stages.iter().map(|s| s.duration).sum();
                load.duration.get_or_insert(total);
                load.model = LoadModel::Closed(ClosedLoad::Fixed {
                    users,
                    spawn_rate: None,
                });
            }
        }
    }
}
