//! The generator watches itself: its own CPU use (from `/proc/self/stat`) and the
//! scheduling lag its threads measured, turned into [`GeneratorHealth`] with a
//! plain-language verdict when the generator is saturated and its numbers cannot be
//! trusted.
//!
//! Thresholds (documented in `docs/engine.md`):
//! - CPU: the process used at least [`CPU_SATURATED`] of the cores its threads
//!   can use, over one interval;
//! - lag: the p99 of scheduling lag over one interval exceeded [`LAG_SATURATED_MS`].
//!
//! The verdict is sticky: once an interval was saturated, the run's results are
//! suspect, so the reason stays until the stats are reset.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::snapshot::GeneratorHealth;
use super::stats::percentile_ms;

/// Fraction of the threads' cores at or above which the generator is saturated.
pub const CPU_SATURATED: f64 = 0.90;
/// Interval p99 scheduling lag, in milliseconds, above which the generator is saturated.
pub const LAG_SATURATED_MS: f64 = 10.0;

/// Linux's `USER_HZ`: the unit of `utime`/`stime` in `/proc/self/stat`. It is 100 on
/// every mainstream Linux architecture (it is fixed by the kernel ABI, independent of
/// `CONFIG_HZ`), so it is assumed rather than queried with `sysconf`.
const CLOCK_TICKS_PER_SEC: f64 = 100.0;

/// CPU seconds (user + system) this process has used, or `None` where
/// `/proc/self/stat` is unavailable (non-Linux).
pub fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    parse_stat_cpu(&stat)
}

/// Parses utime + stime (fields 14 and 15) from a `/proc/<pid>/stat` line. The second
/// field (the command) may contain spaces and parentheses, so fields are counted from
/// the last `)`.
fn parse_stat_cpu(stat: &str) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    // After the command: state is field 3, so utime (14) is the 12th field here.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / CLOCK_TICKS_PER_SEC)
}

/// Tracks the generator's health from one interval to the next.
#[derive(Debug)]
pub struct GeneratorMonitor {
    /// Cores the threads can use.
    cores: f64,
    last: Option<(Instant, f64)>,
    /// Process CPU seconds when the run started (a process may run several).
    start_cpu: f64,
    last_percent: f64,
    saturated: Option<String>,
}

impl GeneratorMonitor {
    /// A monitor for a run with `threads` threads.
    pub fn new(threads: usize) -> GeneratorMonitor {
        let available = std::thread::available_parallelism().map_or(1, |n| n.get());
        let cpu = process_cpu_seconds();
        GeneratorMonitor {
            cores: threads.clamp(1, available) as f64,
            last: cpu.map(|cpu| (Instant::now(), cpu)),
            start_cpu: cpu.unwrap_or(0.0),
            last_percent: 0.0,
            saturated: None,
        }
    }

    /// Forgets a saturation verdict (after the stats were reset).
    pub fn reset(&mut self) {
        self.saturated = None;
    }

    /// Samples CPU now and judges the interval since the previous sample, given the
    /// lag measured over that interval and over the whole run; `at` is the run's
    /// elapsed time, for the message.
    pub fn sample(
        &mut self,
        at: Duration,
        interval_lag: &Histogram<u64>,
        total_lag: &Histogram<u64>,
    ) -> GeneratorHealth {
        let now = Instant::now();
        let cpu = process_cpu_seconds();
        // Too short an interval (e.g. the final sample right after a periodic one)
        // says nothing: keep the previous figure.
        match (cpu, self.last) {
            (Some(cpu), Some((then, cpu_then))) => {
                let wall = now.duration_since(then).as_secs_f64();
                if wall > 0.2 {
                    self.last_percent = ((cpu - cpu_then) / wall * 100.0).max(0.0);
                    self.last = Some((now, cpu));
                }
            }
            (Some(cpu), None) => self.last = Some((now, cpu)),
            (None, _) => {}
        }
        let cpu_percent = self.last_percent;
        let lag_p99 = percentile_ms(interval_lag, 99.0);
        let lag_max = if total_lag.is_empty() {
            0.0
        } else {
            total_lag.max() as f64 / 1000.0
        };
        if self.saturated.is_none() {
            self.saturated = judge(at, cpu_percent, self.cores, lag_p99);
        }
        GeneratorHealth {
            cpu_seconds: cpu.map_or(0.0, |cpu| (cpu - self.start_cpu).max(0.0)),
            cpu_percent,
            lag_p99_ms: percentile_ms(total_lag, 99.0),
            lag_max_ms: lag_max,
            saturated: self.saturated.clone(),
        }
    }
}

/// The verdict for one interval, if saturated.
fn judge(at: Duration, cpu_percent: f64, cores: f64, lag_p99_ms: f64) -> Option<String> {
    let secs = at.as_secs();
    if cpu_percent >= CPU_SATURATED * cores * 100.0 {
        return Some(format!(
            "the load generator was CPU-bound at {secs}s: it used {cpu_percent:.0}% CPU \
             of the {cores:.0} core(s) its threads can use; latencies include its own delays"
        ));
    }
    if lag_p99_ms > LAG_SATURATED_MS {
        return Some(format!(
            "the load generator fell behind at {secs}s: its scheduling lag p99 was \
             {lag_p99_ms:.1} ms (limit {LAG_SATURATED_MS} ms); latencies include its own delays"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::stats::latency_histogram;

    #[test]
    fn parses_proc_stat_with_odd_command_names() {
        let line = "1234 (my (odd) cmd) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 4 0 100";
        assert_eq!(parse_stat_cpu(line), Some(3.0));
        assert_eq!(parse_stat_cpu("garbage"), None);
    }

    #[test]
    fn own_cpu_is_readable_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(process_cpu_seconds().is_some());
        }
    }

    #[test]
    fn judges_cpu_and_lag() {
        assert!(judge(Duration::from_secs(3), 185.0, 2.0, 1.0).is_some());
        assert!(judge(Duration::from_secs(3), 170.0, 2.0, 1.0).is_none());
        let lag = judge(Duration::from_secs(3), 10.0, 2.0, 25.0).unwrap();
        assert!(lag.contains("25.0 ms"), "{lag}");
    }

    #[test]
    fn saturation_is_sticky_until_reset() {
        let mut m = GeneratorMonitor::new(1);
        let mut lag = latency_histogram();
        lag.record(50_000).unwrap();
        let h = m.sample(Duration::from_secs(1), &lag, &lag);
        assert!(h.saturated.is_some());
        assert!((h.lag_max_ms - 50.0).abs() < 0.1);
        let calm = latency_histogram();
        assert!(
            m.sample(Duration::from_secs(2), &calm, &lag)
                .saturated
                .is_some()
        );
        m.reset();
        assert!(
            m.sample(Duration::from_secs(3), &calm, &calm)
                .saturated
                .is_none()
        );
    }
}
