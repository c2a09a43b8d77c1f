//! Windowed and aborting SLO lines, judged every second while a run goes on.
//!
//! A line with `window: 30s` is judged on every trailing 30 s window of the run; its
//! verdict is the worst window seen, so errors in the last 10 s of an hour still fail
//! it (a cumulative line would dilute them). A line with `abort: true` is judged every
//! second, after [`ABORT_GRACE`], on its window or on the run so far, and the first
//! one to fail stops the run.
//!
//! The [`WindowJudge`] is fed one finished second at a time, per request name, in
//! order. Each (scope, window) keeps a running sum over its window and the window's
//! seconds packed (hdrhistogram's V2 format, a few hundred bytes a second), so a
//! second leaving the window is subtracted exactly: the window's percentiles are
//! those of exactly its requests, at HDR precision, and memory does not grow with the
//! run's length.

use std::collections::VecDeque;
use std::time::Duration;

use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};

use super::slo::{self, SloVerdict};
use super::stats::{RequestStats, latency_histogram};
use crate::compile::graph::{ABORT_GRACE, CompiledPlan, Metric, RequestId, Slo};

/// One finished second of one scope, with its latencies packed.
#[derive(Debug)]
struct PackedSecond {
    count: u64,
    failures: u64,
    dropped: u64,
    latency: Vec<u8>,
}

/// The running sum over one scope's trailing window.
#[derive(Debug)]
struct Window {
    scope: Option<RequestId>,
    /// The window's length in seconds; `None`: the whole run (a cumulative abort line).
    seconds: Option<u64>,
    sum: RequestStats,
    dropped: u64,
    ring: VecDeque<PackedSecond>,
}

/// What a line's worst window was.
#[derive(Debug, Clone, PartialEq)]
pub struct WorstWindow {
    /// The measured value over that window, if defined (a latency over no requests
    /// is not).
    pub value: Option<f64>,
    pub passed: bool,
    /// The run second at which that window ended.
    pub ended_at: u64,
}

/// A line that stopped the run.
#[derive(Debug, Clone, PartialEq)]
pub struct Abort {
    /// The index of the SLO line in the plan.
    pub slo: usize,
    /// The run second at which it failed.
    pub at: u64,
    /// The measured value that failed it.
    pub value: Option<f64>,
}

#[derive(Debug)]
struct Line {
    slo: usize,
    window: usize,
    worst: Option<WorstWindow>,
}

/// The worst window of each windowed line, by SLO index: what a snapshot carries so
/// that the final verdicts can be those of the worst window (see [`apply_worst`]).
pub type WorstWindows = Vec<(usize, Option<WorstWindow>)>;

/// Judges a plan's windowed and aborting SLO lines, one second at a time.
#[derive(Debug)]
pub struct WindowJudge {
    slos: Vec<Slo>,
    /// Each line as people read it (`checkout: p99 < 1s`), by SLO index.
    labels: Vec<String>,
    windows: Vec<Window>,
    /// Windowed lines.
    lines: Vec<Line>,
    /// Aborting lines: (SLO index, window index).
    aborting: Vec<(usize, usize)>,
    /// The seconds pushed so far.
    seconds: u64,
    abort: Option<Abort>,
}

impl WindowJudge {
    /// A judge for `plan`'s lines that have a window or abort; `None` when it has none.
    pub fn new(plan: &CompiledPlan) -> Option<WindowJudge> {
        let labels = plan
            .slos
            .iter()
            .map(
                |slo| match slo.request.and_then(|id| plan.requests.get(id.0 as usize)) {
                    Some(r) => format!("{}: {}", r.name, slo.text),
                    None => slo.text.clone(),
                },
            )
            .collect();
        let mut judge = WindowJudge {
            slos: plan.slos.clone(),
            labels,
            windows: Vec::new(),
            lines: Vec::new(),
            aborting: Vec::new(),
            seconds: 0,
            abort: None,
        };
        for (i, slo) in plan.slos.iter().enumerate() {
            if slo.window.is_none() && !slo.abort {
                continue;
            }
            let w = judge.window_for(slo.request, slo.window.map(|d| d.as_secs().max(1)));
            if slo.window.is_some() {
                judge.lines.push(Line {
                    slo: i,
                    window: w,
                    worst: None,
                });
            }
            if slo.abort {
                judge.aborting.push((i, w));
            }
        }
        (!judge.windows.is_empty()).then_some(judge)
    }

    fn window_for(&mut self, scope: Option<RequestId>, seconds: Option<u64>) -> usize {
        if let Some(i) = self
            .windows
            .iter()
            .position(|w| w.scope == scope && w.seconds == seconds)
        {
            return i;
        }
        self.windows.push(Window {
            scope,
            seconds,
            sum: RequestStats::default(),
            dropped: 0,
            ring: VecDeque::new(),
        });
        self.windows.len() - 1
    }

    /// Adds the next finished second: per request name (indexed by `RequestId`), and
    /// the arrivals dropped in it. Judges every full window, and the aborting lines.
    pub fn push(&mut self, requests: &[RequestStats], dropped: u64) {
        self.seconds += 1;
        let mut all: Option<RequestStats> = None;
        for w in &mut self.windows {
            let second = match w.scope {
                Some(id) => requests.get(id.0 as usize).cloned().unwrap_or_default(),
                None => all
                    .get_or_insert_with(|| {
                        let mut total = RequestStats::default();
                        for r in requests {
                            total.merge(r);
                        }
                        total
                    })
                    .clone(),
            };
            w.add(&second, dropped);
        }
        for line in &mut self.lines {
            let w = &self.windows[line.window];
            if !w.is_full() {
                continue;
            }
            let judged = judge(&self.slos[line.slo], w, self.seconds);
            // An undefined value (no requests in the window) is not judged: a quiet
            // window is not a slow one. A line never judged fails at the end.
            if judged.value.is_none() {
                continue;
            }
            let worse = match &line.worst {
                None => true,
                Some(worst) => is_worse(&self.slos[line.slo], &judged, worst),
            };
            if worse {
                line.worst = Some(WorstWindow {
                    ended_at: self.seconds,
                    ..judged
                });
            }
        }
        if self.abort.is_none() && Duration::from_secs(self.seconds) > ABORT_GRACE {
            for &(slo, w) in &self.aborting {
                let window = &self.windows[w];
                // A windowed aborting line waits for its first full window.
                if window.seconds.is_some() && !window.is_full() {
                    continue;
                }
                let judged = judge(&self.slos[slo], window, self.seconds);
                if judged.value.is_some() && !judged.passed {
                    self.abort = Some(Abort {
                        slo,
                        at: self.seconds,
                        value: judged.value,
                    });
                    break;
                }
            }
        }
    }

    /// The line that stopped the run, once one has failed.
    pub fn abort(&self) -> Option<&Abort> {
        self.abort.as_ref()
    }

    /// The line of SLO `slo` as people read it: `checkout: p99 < 1s`.
    pub fn label(&self, slo: usize) -> &str {
        self.labels.get(slo).map_or("", String::as_str)
    }

    /// Forgets every second pushed so far, as after a reset of the statistics: the
    /// windows start empty and the abort grace starts again.
    pub fn reset(&mut self) {
        for w in &mut self.windows {
            w.sum = RequestStats::default();
            w.dropped = 0;
            w.ring.clear();
        }
        for line in &mut self.lines {
            line.worst = None;
        }
        self.seconds = 0;
        self.abort = None;
    }

    /// The worst window of each windowed line, by SLO index. A run shorter than a
    /// line's window is judged as one window, from its start.
    pub fn worst(&self) -> WorstWindows {
        self.lines
            .iter()
            .map(|line| {
                let worst = line.worst.clone().or_else(|| {
                    let w = &self.windows[line.window];
                    let judged = judge(&self.slos[line.slo], w, self.seconds);
                    (judged.value.is_some() && !w.is_full()).then_some(WorstWindow {
                        ended_at: self.seconds,
                        ..judged
                    })
                });
                (line.slo, worst)
            })
            .collect()
    }

    /// Replaces the cumulative verdicts of the windowed lines with their worst
    /// window's, noting which window that was.
    pub fn apply(&self, verdicts: &mut [SloVerdict]) {
        apply_worst(&self.slos, &self.worst(), verdicts);
    }
}

/// Replaces the cumulative verdicts of the windowed lines (`slos`, by index) with
/// their worst window's from `worst`, noting which window that was.
pub fn apply_worst(
    slos: &[Slo],
    worst: &[(usize, Option<WorstWindow>)],
    verdicts: &mut [SloVerdict],
) {
    for (slo, worst) in worst {
        let (Some(v), Some(window)) = (
            verdicts.get_mut(*slo),
            slos.get(*slo).and_then(|s| s.window),
        ) else {
            continue;
        };
        let secs = window.as_secs();
        match worst {
            Some(w) => {
                v.value = w.value;
                v.passed = w.passed;
                v.note = Some(format!(
                    "worst {secs} s window, ending {} s into the run",
                    w.ended_at
                ));
            }
            None => {
                v.value = None;
                v.passed = false;
                v.note = Some(format!("no {secs} s window had any requests"));
            }
        }
    }
}

impl Window {
    fn is_full(&self) -> bool {
        self.seconds.is_some_and(|s| self.ring.len() as u64 >= s)
    }

    fn add(&mut self, second: &RequestStats, dropped: u64) {
        self.sum.merge(second);
        self.dropped += dropped;
        let Some(seconds) = self.seconds else {
            return; // The whole run: nothing ever leaves.
        };
        self.ring.push_back(PackedSecond {
            count: second.count,
            failures: second.failures,
            dropped,
            latency: pack(&second.latency),
        });
        while self.ring.len() as u64 > seconds {
            let Some(old) = self.ring.pop_front() else {
                break;
            };
            self.sum.count -= old.count;
            self.sum.failures -= old.failures;
            self.dropped -= old.dropped;
            if let Some(h) = unpack(&old.latency) {
                // `old` was added before, so no count can go below zero.
                let _ = self.sum.latency.subtract(&h);
            }
        }
    }
}

/// One line over one window's sum, `run` seconds into the run.
fn judge(slo: &Slo, w: &Window, run: u64) -> WorstWindow {
    let seconds = match w.seconds {
        Some(_) => w.ring.len() as f64,
        None => run as f64,
    };
    let value = slo::measure_over(slo.metric, &w.sum, seconds, w.dropped);
    let defined = value.is_some() && (w.sum.count > 0 || slo.metric == Metric::Dropped);
    WorstWindow {
        value: if defined { value } else { None },
        passed: defined && value.is_some_and(|v| slo.op.holds(v, slo.threshold)),
        ended_at: 0,
    }
}

/// Whether `judged` is a worse window than `worst` for this line: a failing window
/// beats a passing one, and among equals the value furthest on the failing side.
fn is_worse(slo: &Slo, judged: &WorstWindow, worst: &WorstWindow) -> bool {
    if judged.passed != worst.passed {
        return !judged.passed;
    }
    let (Some(v), Some(w)) = (judged.value, worst.value) else {
        return false;
    };
    use crate::compile::graph::CmpOp;
    match slo.op {
        CmpOp::Lt | CmpOp::Le => v > w,
        CmpOp::Gt | CmpOp::Ge => v < w,
        CmpOp::Eq => (v - slo.threshold).abs() > (w - slo.threshold).abs(),
    }
}

fn pack(h: &Histogram<u64>) -> Vec<u8> {
    let mut out = Vec::new();
    if h.is_empty() {
        return out;
    }
    // Writing into a Vec cannot fail for a valid histogram; an empty pack adds nothing.
    if V2DeflateSerializer::new().serialize(h, &mut out).is_err() {
        out.clear();
    }
    out
}

fn unpack(bytes: &[u8]) -> Option<Histogram<u64>> {
    if bytes.is_empty() {
        return None;
    }
    let h: Histogram<u64> = Deserializer::new().deserialize(&mut &bytes[..]).ok()?;
    let mut out = latency_histogram();
    out.add(&h).ok()?;
    Some(out)
}

#[cfg(test)]
#[path = "window_tests.rs"]
mod tests;
