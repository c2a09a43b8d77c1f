//! The closed model's load shape: how many users should be running at a given moment.
//! Stages ramp linearly from 0 between stage targets; `users` with `spawn_rate` (and
//! a `SetUsers` control message) steer from the current count towards a target at a
//! rate. The controller samples the curve and the threads follow it.

use std::time::Duration;

use crate::compile::graph::{ClosedLoad, UsersStage};

/// Target user count over time (seconds since the run's origin).
#[derive(Debug, Clone, PartialEq)]
pub enum UsersCurve {
    /// Linear ramps between stage targets, starting from 0 users at time 0.
    Stages(Vec<UsersStage>),
    /// From `from` users at `t0`, towards `to` at `rate` users per second (at once
    /// when `None`). The first user starts at `t0`.
    Steer {
        t0: f64,
        from: u32,
        to: u32,
        rate: Option<f64>,
    },
}

impl UsersCurve {
    pub fn new(load: &ClosedLoad) -> UsersCurve {
        match load {
            ClosedLoad::Fixed { users, spawn_rate } => UsersCurve::Steer {
                t0: 0.0,
                from: 0,
                to: *users,
                rate: *spawn_rate,
            },
            ClosedLoad::Stages(stages) => UsersCurve::Stages(stages.clone()),
        }
    }

    /// A curve that steers from wherever `self` is at `now` towards `users`.
    pub fn steer(&self, now: Duration, users: u32, rate: Option<f64>) -> UsersCurve {
        UsersCurve::Steer {
            t0: now.as_secs_f64(),
            from: self.target_at(now),
            to: users,
            rate: rate.filter(|r| r.is_finite() && *r > 0.0),
        }
    }

    /// The number of users that should be running at `at`.
    pub fn target_at(&self, at: Duration) -> u32 {
        let t = at.as_secs_f64();
        match self {
            UsersCurve::Stages(stages) => {
                let mut start = 0.0;
                let mut from = 0u32;
                for s in stages {
                    let len = s.duration.as_secs_f64();
                    if t < start + len {
                        let frac = (t - start) / len;
                        let users = from as f64 + (s.users as f64 - from as f64) * frac;
                        return users.round().max(0.0) as u32;
                    }
                    start += len;
                    from = s.users;
                }
                from
            }
            UsersCurve::Steer { t0, from, to, rate } => {
                let Some(rate) = rate else { return *to };
                let gap = from.abs_diff(*to);
                let dt = (t - t0).max(0.0);
                // The first user starts (or stops) at once, then one every 1/rate s.
                let moved = ((rate * dt).floor() as u64)
                    .saturating_add(1)
                    .min(gap as u64) as u32;
                if to >= from {
                    from + moved
                } else {
                    from - moved
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(c: &UsersCurve, s: f64) -> u32 {
        c.target_at(Duration::from_secs_f64(s))
    }

    #[test]
    fn stages_ramp_up_hold_and_down() {
        let c = UsersCurve::Stages(vec![
            UsersStage {
                duration: Duration::from_secs(10),
                users: 20,
            },
            UsersStage {
                duration: Duration::from_secs(10),
                users: 20,
            },
            UsersStage {
                duration: Duration::from_secs(10),
                users: 0,
            },
        ]);
        assert_eq!(at(&c, 0.0), 0);
        assert_eq!(at(&c, 5.0), 10);
        assert_eq!(at(&c, 10.0), 20);
        assert_eq!(at(&c, 15.0), 20);
        assert_eq!(at(&c, 25.0), 10);
        assert_eq!(at(&c, 30.0), 0);
        assert_eq!(at(&c, 99.0), 0);
    }

    #[test]
    fn spawn_rate_and_steering() {
        let c = UsersCurve::new(&ClosedLoad::Fixed {
            users: 50,
            spawn_rate: Some(10.0),
        });
        assert_eq!(at(&c, 0.0), 1);
        assert_eq!(at(&c, 0.99), 10);
        assert_eq!(at(&c, 2.0), 21);
        assert_eq!(at(&c, 60.0), 50);
        let all = UsersCurve::new(&ClosedLoad::Fixed {
            users: 50,
            spawn_rate: None,
        });
        assert_eq!(at(&all, 0.0), 50);
        let down = c.steer(Duration::from_secs(10), 5, Some(9.0));
        assert_eq!(at(&down, 10.0), 49);
        assert_eq!(at(&down, 11.0), 40);
        assert_eq!(at(&down, 20.0), 5);
        let jump = down.steer(Duration::from_secs(20), 8, None);
        assert_eq!(at(&jump, 20.0), 8);
    }
}
