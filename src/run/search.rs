//! A capacity search, run: the steps of `engine::search` carried out on a live
//! engine. Each step sets the load (a [`Control`] message), warms up, resets the
//! statistics, holds, and is judged on the first snapshot that covers its whole hold:
//! every SLO line over that hold alone, with fresh histograms. After a failed step the
//! load rests at zero until the target has drained, so one step's backlog does not
//! fail the next.
//!
//! Everything goes through a [`Steering`]: the engine's control channel and its
//! snapshots, nothing else. A coordinator steering many workers offers the same two
//! ends, so the same steps run on one machine or many.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::compile::graph::{CompiledPlan, SearchAxis};
use crate::engine::control::Control;
use crate::engine::search::{Search, SearchOutcome, SearchSpec, StepPhase, StepVerdict};
use crate::metrics::capacity::{
    CapacityAnswer, CapacityReport, CapacityStep, SENT_AT_LEAST, StepOutcome,
};
use crate::metrics::generator::{CPU_SATURATED, LAG_SATURATED_MS};
use crate::metrics::slo::{self, SloUnit};
use crate::metrics::snapshot::{EndReason, Snapshot};

/// How long, at most, the load rests at zero after a failed step for the requests
/// still in flight to finish.
const MAX_DRAIN: Duration = Duration::from_secs(30);

/// How long past its hold a step waits for the snapshot that covers it.
const SNAPSHOT_SLACK: Duration = Duration::from_secs(10);

/// The two ends a search steers a run through.
pub struct Steering {
    pub control: mpsc::UnboundedSender<Control>,
    pub snapshots: watch::Receiver<Arc<Snapshot>>,
}

/// Runs the search `spec` of `plan` to its end (or until the run is stopped), then
/// stops the run. Returns the record with its answer; the engine's snapshots carry
/// it too, step by step.
pub async fn drive(plan: &CompiledPlan, spec: &SearchSpec, mut steer: Steering) -> CapacityReport {
    let mut search = Search::new(spec.clone());
    let mut record = CapacityReport::new(spec);
    publish(&steer, &record);
    let mut stopped = false;
    while let Some((level, phase)) = search.next() {
        let Some(mut step) = run_step(plan, spec, &mut steer, level, phase).await else {
            stopped = true;
            break;
        };
        if step.outcome == StepOutcome::Untrusted {
            // A generator hiccup (another process on the machine) should not end a
            // search: the step runs once more, and only a second saturation counts.
            record.steps.push(step);
            publish(&steer, &record);
            if !drain(spec.axis, &mut steer).await {
                stopped = true;
                break;
            }
            match run_step(plan, spec, &mut steer, level, phase).await {
                Some(again) => step = again,
                None => {
                    stopped = true;
                    break;
                }
            }
        }
        let verdict = verdict(&step);
        let failed = step.outcome == StepOutcome::Fail;
        record.steps.push(step);
        search.record(verdict);
        publish(&steer, &record);
        if failed && !search.is_done() && !drain(spec.axis, &mut steer).await {
            stopped = true;
            break;
        }
    }
    if stopped {
        search.stop();
    }
    record.answer = Some(answer(&search, &record, spec));
    publish(&steer, &record);
    let _ = steer.control.send(Control::Stop);
    record
}

fn publish(steer: &Steering, record: &CapacityReport) {
    let _ = steer
        .control
        .send(Control::Search(Arc::new(record.clone())));
}

fn set_level(steer: &Steering, axis: SearchAxis, level: f64) {
    let msg = match axis {
        SearchAxis::Users => Control::SetUsers {
            users: level.round().max(0.0) as u32,
            spawn_rate: None,
        },
        SearchAxis::Rate => Control::SetRate { rate: level },
    };
    let _ = steer.control.send(msg);
}

/// One step: ramp, warm up, reset, hold, judge. `None` when the run ended meanwhile.
async fn run_step(
    plan: &CompiledPlan,
    spec: &SearchSpec,
    steer: &mut Steering,
    level: f64,
    phase: StepPhase,
) -> Option<CapacityStep> {
    set_level(steer, spec.axis, level);
    if !sleep_unless_ended(&mut steer.snapshots, spec.warmup).await {
        return None;
    }
    let (epoch, cpu0) = {
        let s = steer.snapshots.borrow_and_update();
        (s.epoch, s.generator.cpu_seconds)
    };
    let t0 = std::time::Instant::now();
    let _ = steer.control.send(Control::ResetStats);
    let hold = spec.hold.as_secs_f64();
    let snap = wait_for(&mut steer.snapshots, spec.hold + SNAPSHOT_SLACK, |s| {
        s.epoch > epoch && s.series.last().is_some_and(|p| p.t >= hold - 1e-6)
    })
    .await?;
    let cpu = (snap.generator.cpu_seconds - cpu0).max(0.0) / t0.elapsed().as_secs_f64();
    let mut step = judge(plan, spec.axis, level, phase, &snap);
    let saturation = saturated(cpu, snap.generator.lag_p99_ms);
    // A saturated generator only adds latency (timed from the scheduled start) and
    // sends fewer, bunched arrivals: it can fail a step the target would pass, never
    // pass one it would fail. So only a failing step is distrusted; a pass stands,
    // and so does a failure larger than a lagging generator can cause.
    if let Some(s) = &saturation
        && step.outcome == StepOutcome::Fail
        && !s.cannot_explain(&step)
    {
        step.outcome = StepOutcome::Untrusted;
    }
    step.saturated = saturation.map(|s| s.reason);
    Some(step)
}

/// How the generator saturated over a hold.
struct Saturation {
    /// Said to the user (the step's `saturated`).
    reason: String,
    /// The hold's p99 scheduling lag, when that (and not the CPU) is what saturated.
    lag_ms: Option<f64>,
}

impl Saturation {
    /// Whether a failing step failed by more than this saturation can account for:
    /// some latency line (`p95 < 150ms`) still fails with the hold's p99 scheduling
    /// lag taken off its value. Latencies are timed from the scheduled start, and a
    /// generator whose timers fire late by up to the lag adds about that much to
    /// them: a line missed by more than that is the target's doing. A CPU-bound
    /// generator is never excused (it can do more than delay: starve arrivals, time
    /// requests out), nor a step that failed only on other lines (errors, the
    /// arrivals sent, throughput).
    fn cannot_explain(&self, step: &CapacityStep) -> bool {
        let Some(lag) = self.lag_ms else {
            return false;
        };
        step.slos.iter().any(|v| {
            let Some(value) = v.value.filter(|_| !v.passed && v.unit == SloUnit::Ms) else {
                return false;
            };
            match v.op.as_str() {
                "<" => value - lag >= v.threshold,
                "<=" => value - lag > v.threshold,
                _ => false,
            }
        })
    }
}

/// Whether the generator saturated over a hold as a whole, judged like a run's
/// second (`metrics::generator`) but on the hold the step's verdict is made on:
/// `cpu` cores busy on average, and the hold's p99 scheduling lag. A single slow
/// second on a shared machine moves a hold's percentiles little; a saturated hold
/// moves them all.
fn saturated(cpu: f64, lag_p99_ms: f64) -> Option<Saturation> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    if cpu >= CPU_SATURATED * cores {
        return Some(Saturation {
            reason: format!(
                "the load generator was CPU-bound: it used {:.0}% CPU of {cores:.0} core(s) over the hold",
                cpu * 100.0
            ),
            lag_ms: None,
        });
    }
    if lag_p99_ms > LAG_SATURATED_MS {
        return Some(Saturation {
            reason: format!(
                "the load generator fell behind: its scheduling lag p99 over the hold was \
                 {lag_p99_ms:.1} ms (limit {LAG_SATURATED_MS} ms)"
            ),
            lag_ms: Some(lag_p99_ms),
        });
    }
    None
}

/// A step's figures and verdicts over the hold `snap` covers (since the reset, to
/// its last whole second); whether the generator can be trusted is judged apart.
fn judge(
    plan: &CompiledPlan,
    axis: SearchAxis,
    level: f64,
    phase: StepPhase,
    snap: &Snapshot,
) -> CapacityStep {
    let window = snap.series.last().map_or(0.0, |p| p.t).max(1e-3);
    let mut hold = snap.clone();
    hold.elapsed = Duration::from_secs_f64(window);
    let slos = slo::evaluate_cumulative(plan, &hold);
    let total = hold.total();
    let sent = match axis {
        SearchAxis::Users => None,
        SearchAxis::Rate => {
            let due = (level * window).max(1.0);
            Some((1.0 - hold.dropped as f64 / due).clamp(0.0, 1.0))
        }
    };
    let outcome = if slos.iter().any(|v| !v.passed) || sent.is_some_and(|s| s < SENT_AT_LEAST) {
        StepOutcome::Fail
    } else {
        StepOutcome::Pass
    };
    CapacityStep {
        level,
        phase,
        outcome,
        hold_s: window,
        achieved_rps: total.count as f64 / window,
        requests: total.count,
        error_rate: total.error_rate(),
        p50_ms: total.percentile_ms(50.0),
        p95_ms: total.percentile_ms(95.0),
        p99_ms: total.percentile_ms(99.0),
        dropped: hold.dropped,
        sent,
        slos,
        saturated: None,
    }
}

fn verdict(step: &CapacityStep) -> StepVerdict {
    match step.outcome {
        StepOutcome::Pass => StepVerdict::Pass,
        StepOutcome::Untrusted => StepVerdict::Untrusted,
        StepOutcome::Fail => StepVerdict::Fail {
            lines: (step.slos.iter().enumerate())
                .filter(|(_, v)| !v.passed)
                .map(|(i, _)| i)
                .collect(),
            starved: step.sent.is_some_and(|s| s < SENT_AT_LEAST),
        },
    }
}

/// Rests the load at zero until nothing is in flight (at most [`MAX_DRAIN`]); false
/// when the run ended meanwhile.
async fn drain(axis: SearchAxis, steer: &mut Steering) -> bool {
    set_level(steer, axis, 0.0);
    // The threads count what runs once a second: give them that second.
    if !sleep_unless_ended(&mut steer.snapshots, Duration::from_millis(1100)).await {
        return false;
    }
    wait_for(&mut steer.snapshots, MAX_DRAIN, |s| s.active_users == 0)
        .await
        .is_some()
        || !has_ended(&steer.snapshots)
}

fn has_ended(snapshots: &watch::Receiver<Arc<Snapshot>>) -> bool {
    snapshots.borrow().end != EndReason::Running || snapshots.has_changed().is_err()
}

/// Sleeps `d`; false when the run ends first.
async fn sleep_unless_ended(snapshots: &mut watch::Receiver<Arc<Snapshot>>, d: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + d;
    loop {
        if snapshots.borrow_and_update().end != EndReason::Running {
            return false;
        }
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => return true,
            changed = snapshots.changed() => if changed.is_err() {
                return false;
            },
        }
    }
}

/// The first snapshot for which `ok` holds, within `limit`; `None` when the run
/// ended first or the time ran out.
async fn wait_for(
    snapshots: &mut watch::Receiver<Arc<Snapshot>>,
    limit: Duration,
    ok: impl Fn(&Snapshot) -> bool,
) -> Option<Arc<Snapshot>> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let snap = snapshots.borrow_and_update().clone();
        if snap.end != EndReason::Running {
            return None;
        }
        if ok(&snap) {
            return Some(snap);
        }
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => return None,
            changed = snapshots.changed() => if changed.is_err() {
                return None;
            },
        }
    }
}

/// The search's answer, in numbers and for people.
fn answer(search: &Search, record: &CapacityReport, spec: &SearchSpec) -> CapacityAnswer {
    let r = search.result();
    let axis = record.axis;
    let broke_first = r
        .failed_at
        .and_then(|f| {
            record
                .steps
                .iter()
                .find(|s| s.outcome == StepOutcome::Fail && s.level == f)
        })
        .map(CapacityStep::failed)
        .unwrap_or_default();
    let trusted = !matches!(
        r.outcome,
        SearchOutcome::Untrusted | SearchOutcome::BelowRange
    );
    let meets = match (r.capacity, spec.require) {
        (Some(c), Some(q)) => c >= q,
        (None, Some(_)) => false,
        (_, None) => true,
    };
    let passed = trusted && meets && r.capacity.is_some() && r.outcome != SearchOutcome::Stopped;
    let broke = |at: f64| match broke_first.is_empty() {
        true => String::new(),
        false => format!(
            "; {} broke first, at {}",
            broke_first.join(", "),
            axis.level(at)
        ),
    };
    let mut message = match (r.outcome, r.capacity, r.failed_at) {
        (SearchOutcome::Found, Some(c), Some(f)) => format!(
            "capacity {} (bracket {}..{}){}",
            axis.level(c),
            axis.level(c),
            axis.level(f),
            broke(f)
        ),
        (SearchOutcome::Found | SearchOutcome::AboveRange, Some(c), _) => format!(
            "capacity at least {}: every step up to the top of the range passed",
            axis.level(c)
        ),
        (SearchOutcome::BelowRange, _, f) => format!(
            "below the range: even the first step, {}, failed{}",
            axis.level(spec.low),
            f.map(broke).unwrap_or_default()
        ),
        (SearchOutcome::Untrusted, c, _) => {
            let at = record.steps.last();
            format!(
                "not trusted: the generator saturated at {} ({}); {}",
                at.map_or_else(String::new, |s| axis.level(s.level)),
                at.and_then(|s| s.saturated.clone()).unwrap_or_default(),
                c.map_or("no step had passed".into(), |c| format!(
                    "the last trusted pass was {}",
                    axis.level(c)
                ))
            )
        }
        (_, c, _) => format!(
            "stopped before the search ended; {}",
            c.map_or("no step had passed".into(), |c| format!(
                "{} passed so far",
                axis.level(c)
            ))
        ),
    };
    if let (Some(q), false) = (spec.require, meets) {
        message.push_str(&format!("; below the required {}", axis.level(q)));
    }
    CapacityAnswer {
        outcome: r.outcome,
        capacity: r.capacity,
        failed_at: r.failed_at,
        broke_first,
        require: spec.require,
        trusted,
        passed,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::slo::SloVerdict;

    fn line(metric: &str, op: &str, value: f64, threshold: f64, unit: SloUnit) -> SloVerdict {
        let passed = match op {
            "<" => value < threshold,
            "<=" => value <= threshold,
            _ => value >= threshold,
        };
        SloVerdict {
            text: format!("{metric} {op} {threshold}"),
            request: None,
            metric: metric.into(),
            op: op.into(),
            value: Some(value),
            threshold,
            unit,
            passed,
            note: None,
            line: None,
            column: None,
        }
    }

    fn failing(slos: Vec<SloVerdict>) -> CapacityStep {
        CapacityStep {
            level: 16.0,
            phase: StepPhase::Grow,
            outcome: StepOutcome::Fail,
            hold_s: 2.0,
            achieved_rps: 90.0,
            requests: 180,
            error_rate: 0.0,
            p50_ms: 100.0,
            p95_ms: 200.0,
            p99_ms: 210.0,
            dropped: 0,
            sent: None,
            slos,
            saturated: None,
        }
    }

    fn lagging(ms: f64) -> Saturation {
        saturated(0.1, ms).expect("a lag over the limit saturates")
    }

    #[test]
    fn a_latency_line_missed_by_more_than_the_lag_is_the_targets() {
        let step = failing(vec![line("p95", "<", 200.0, 150.0, SloUnit::Ms)]);
        assert!(lagging(15.0).cannot_explain(&step));
        assert!(lagging(49.0).cannot_explain(&step));
        // 150 ms still misses `< 150ms`; a lag over 50 ms could be all of the miss.
        assert!(lagging(50.0).cannot_explain(&step));
        assert!(!lagging(50.1).cannot_explain(&step));
        assert!(!lagging(80.0).cannot_explain(&step));
        let le = failing(vec![line("p95", "<=", 200.0, 150.0, SloUnit::Ms)]);
        assert!(lagging(49.9).cannot_explain(&le));
        assert!(!lagging(50.0).cannot_explain(&le));
    }

    #[test]
    fn other_failures_and_a_cpu_bound_generator_are_never_excused() {
        let errors = failing(vec![line("error_rate", "<", 0.5, 0.01, SloUnit::Ratio)]);
        assert!(!lagging(11.0).cannot_explain(&errors));
        let rps = failing(vec![line("rps", ">=", 50.0, 100.0, SloUnit::PerSecond)]);
        assert!(!lagging(11.0).cannot_explain(&rps));
        let cpu_bound = saturated(1e6, 0.0).expect("all the cores busy saturates");
        assert!(cpu_bound.reason.contains("CPU-bound"));
        let slow = failing(vec![line("p95", "<", 2000.0, 150.0, SloUnit::Ms)]);
        assert!(!cpu_bound.cannot_explain(&slow));
        // One latency line beyond the lag is enough, whatever else failed.
        let both = failing(vec![
            line("error_rate", "<", 0.5, 0.01, SloUnit::Ratio),
            line("p95", "<", 2000.0, 150.0, SloUnit::Ms),
        ]);
        assert!(lagging(30.0).cannot_explain(&both));
    }

    #[test]
    fn a_lag_within_the_limit_is_no_saturation() {
        assert!(saturated(0.1, LAG_SATURATED_MS).is_none());
    }
}
