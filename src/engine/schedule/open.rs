//! The open model's load shape: the arrival rate over time as a piecewise-linear
//! curve, and its integral, so the k-th arrival is scheduled at the exact moment the
//! cumulative count reaches k (k = 0, 1, ...). Timestamps come from the integral,
//! never from sleeping 1/rate per arrival, so there is no drift: 200/s for 10 s is
//! exactly 2,000 arrivals, a ramp 0 → 100/s over 10 s exactly 500.

use std::time::Duration;

use crate::compile::graph::RateShape;

/// One linear piece: the rate goes from `r0` at `t0` to `r1` at `t1`.
#[derive(Debug, Clone, PartialEq)]
struct Piece {
    t0: f64,
    /// `f64::INFINITY` for the last piece.
    t1: f64,
    r0: f64,
    r1: f64,
    /// Arrivals before `t0`.
    c0: f64,
}

impl Piece {
    fn slope(&self) -> f64 {
        if self.t1.is_finite() && self.t1 > self.t0 {
            (self.r1 - self.r0) / (self.t1 - self.t0)
        } else {
            0.0
        }
    }

    fn rate_at(&self, t: f64) -> f64 {
        self.r0 + self.slope() * (t - self.t0)
    }

    fn count_at(&self, t: f64) -> f64 {
        let t = t.min(self.t1);
        if t.is_infinite() {
            // Only the last piece is unbounded, and it is flat.
            return if self.r0 > 0.0 {
                f64::INFINITY
            } else {
                self.c0
            };
        }
        let dt = t - self.t0;
        self.c0 + self.r0 * dt + self.slope() * dt * dt / 2.0
    }

    /// When the count reaches `c` within this piece, if it does.
    fn time_of(&self, c: f64) -> Option<f64> {
        let x = c - self.c0;
        if x <= 0.0 {
            return Some(self.t0);
        }
        if x > self.count_at(self.t1) - self.c0 {
            return None;
        }
        // Solve r0·dt + a/2·dt² = x in the stable form dt = 2x / (r0 + √(r0² + 2a·x)).
        let a = self.slope();
        let disc = (self.r0 * self.r0 + 2.0 * a * x).max(0.0);
        let denom = self.r0 + disc.sqrt();
        if denom <= 0.0 {
            return None;
        }
        Some(self.t0 + 2.0 * x / denom)
    }
}

/// Arrival rate over time (seconds since the run's origin), per second.
#[derive(Debug, Clone, PartialEq)]
pub struct RateCurve {
    pieces: Vec<Piece>,
}

impl RateCurve {
    pub fn new(shape: &RateShape) -> RateCurve {
        let mut pieces = Vec::new();
        match shape {
            RateShape::Fixed(rate) => pieces.push(Piece {
                t0: 0.0,
                t1: f64::INFINITY,
                r0: sanitize(*rate),
                r1: sanitize(*rate),
                c0: 0.0,
            }),
            RateShape::Stages(stages) => {
                let (mut t, mut r, mut c) = (0.0, 0.0, 0.0);
                for s in stages {
                    let len = s.duration.as_secs_f64();
                    if len <= 0.0 {
                        r = sanitize(s.rate);
                        continue;
                    }
                    let p = Piece {
                        t0: t,
                        t1: t + len,
                        r0: r,
                        r1: sanitize(s.rate),
                        c0: c,
                    };
                    c = p.count_at(p.t1);
                    t = p.t1;
                    r = p.r1;
                    pieces.push(p);
                }
                // After the stages the run ends; the last rate holds meanwhile.
                pieces.push(Piece {
                    t0: t,
                    t1: f64::INFINITY,
                    r0: r,
                    r1: r,
                    c0: c,
                });
            }
        }
        RateCurve { pieces }
    }

    /// From `at` on, a constant `rate` (a `SetRate` control message).
    pub fn set_rate(&mut self, at: Duration, rate: f64) {
        let t = at.as_secs_f64();
        let c = self.count_at(at);
        self.pieces.retain(|p| p.t0 < t);
        if let Some(last) = self.pieces.last_mut() {
            last.r1 = last.rate_at(t.min(last.t1));
            last.t1 = last.t1.min(t);
        }
        self.pieces.push(Piece {
            t0: t,
            t1: f64::INFINITY,
            r0: sanitize(rate),
            r1: sanitize(rate),
            c0: c,
        });
    }

    fn piece_at(&self, t: f64) -> Option<&Piece> {
        self.pieces.iter().rev().find(|p| p.t0 <= t)
    }

    /// The arrival rate at `at`, per second.
    pub fn rate_at(&self, at: Duration) -> f64 {
        let t = at.as_secs_f64();
        self.piece_at(t).map_or(0.0, |p| p.rate_at(t.min(p.t1)))
    }

    /// Arrivals scheduled in `[0, at]` (fractional).
    pub fn count_at(&self, at: Duration) -> f64 {
        let t = at.as_secs_f64();
        self.piece_at(t).map_or(0.0, |p| p.count_at(t))
    }

    /// When arrival number `k` (0-based) is due, in seconds since the origin; `None`
    /// if the rate never gets there.
    pub fn time_of(&self, k: u64) -> Option<f64> {
        let c = k as f64;
        self.pieces
            .iter()
            .find(|p| c <= p.count_at(p.t1))
            .and_then(|p| p.time_of(c))
    }
}

fn sanitize(rate: f64) -> f64 {
    if rate.is_finite() { rate.max(0.0) } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::graph::RateStage;

    fn arrivals_before(c: &RateCurve, end: f64) -> u64 {
        let mut k = 0;
        while c.time_of(k).is_some_and(|t| t < end) {
            k += 1;
        }
        k
    }

    fn stage(secs: u64, rate: f64) -> RateStage {
        RateStage {
            duration: Duration::from_secs(secs),
            rate,
        }
    }

    #[test]
    fn fixed_rate_is_exact() {
        let c = RateCurve::new(&RateShape::Fixed(200.0));
        assert_eq!(arrivals_before(&c, 10.0), 2000);
        assert_eq!(c.time_of(0), Some(0.0));
        assert!((c.time_of(3).unwrap() - 0.015).abs() < 1e-12);
    }

    #[test]
    fn ramp_is_exact() {
        let c = RateCurve::new(&RateShape::Stages(vec![stage(10, 100.0)]));
        assert_eq!(arrivals_before(&c, 10.0), 500);
        assert!((c.rate_at(Duration::from_secs(5)) - 50.0).abs() < 1e-9);
        // Up, hold, down: 250 + 500 + 250.
        let c = RateCurve::new(&RateShape::Stages(vec![
            stage(5, 100.0),
            stage(5, 100.0),
            stage(5, 0.0),
        ]));
        assert_eq!(arrivals_before(&c, 15.0), 1000);
        assert!(c.time_of(1001).is_none());
    }

    #[test]
    fn set_rate_continues_the_count() {
        let mut c = RateCurve::new(&RateShape::Fixed(100.0));
        c.set_rate(Duration::from_secs(2), 10.0);
        assert!((c.count_at(Duration::from_secs(3)) - 210.0).abs() < 1e-9);
        assert_eq!(arrivals_before(&c, 3.0), 210);
        c.set_rate(Duration::from_secs(3), 0.0);
        assert!(c.time_of(211).is_none());
        assert_eq!(c.rate_at(Duration::from_secs(4)), 0.0);
    }
}
