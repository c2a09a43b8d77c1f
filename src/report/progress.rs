//! Live progress while a run goes on, fed by the engine's snapshot channel: an
//! indicatif bar on a terminal, or a plain status line every few seconds when the
//! output is not a terminal or `CI` is set. Progress goes to stderr, so stdout holds
//! only the summary. Whether there is a terminal, and whether `CI` is set, is read by
//! the command line and handed to [`choose`].

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::metrics::figures::duration_ms;
use crate::metrics::snapshot::Snapshot;

/// How often the plain status line is printed.
pub const PLAIN_INTERVAL: Duration = Duration::from_secs(5);

/// How progress is shown, once `auto` is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Bar,
    Plain,
    Hidden,
}

/// How progress was asked to be shown (`--progress`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A bar on a terminal outside CI, plain lines otherwise.
    Auto,
    Bar,
    Plain,
    None,
}

/// Resolves `mode` and `--quiet` for a process whose output is (or not) a
/// `terminal`, (or not) under `ci`: a bar only on a terminal outside CI.
pub fn choose(mode: Mode, quiet: bool, terminal: bool, ci: bool) -> Style {
    if quiet {
        return Style::Hidden;
    }
    match mode {
        Mode::Auto if terminal && !ci => Style::Bar,
        Mode::Auto => Style::Plain,
        Mode::Bar => Style::Bar,
        Mode::Plain => Style::Plain,
        Mode::None => Style::Hidden,
    }
}

/// The running progress display; [`Progress::finish`] stops it.
pub struct Progress {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Progress {
    /// Starts showing `snapshots` in `style` (nothing at all for [`Style::Hidden`]).
    /// Call inside a tokio runtime.
    pub fn spawn(style: Style, mut snapshots: watch::Receiver<Arc<Snapshot>>) -> Progress {
        if style == Style::Hidden {
            return Progress {
                stop: None,
                task: None,
            };
        }
        let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let mut view = View::new(style);
            let mut steps_shown = 0;
            loop {
                tokio::select! {
                    _ = &mut stop_rx => break,
                    changed = snapshots.changed() => {
                        if changed.is_err() {
                            break;
                        }
                        let snap = snapshots.borrow_and_update().clone();
                        view.update(&snap);
                        steps_shown = view.steps(&snap, steps_shown);
                    }
                }
            }
            view.finish();
        });
        Progress {
            stop: Some(stop_tx),
            task: Some(task),
        }
    }

    /// Stops the display and clears the bar, so the summary can follow.
    pub async fn finish(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

/// The display state inside the progress task.
enum View {
    Bar(Option<ProgressBar>),
    Plain { last: Option<Instant> },
}

impl View {
    fn new(style: Style) -> View {
        match style {
            Style::Bar => View::Bar(None),
            Style::Plain | Style::Hidden => View::Plain { last: None },
        }
    }

    fn update(&mut self, snap: &Snapshot) {
        match self {
            View::Bar(bar) => {
                let bar = bar.get_or_insert_with(|| new_bar(snap.planned));
                bar.set_position(snap.elapsed.as_secs());
                bar.set_message(status(snap));
            }
            View::Plain { last } => {
                if last.is_none_or(|t| t.elapsed() >= PLAIN_INTERVAL) {
                    *last = Some(Instant::now());
                    let mut err = std::io::stderr().lock();
                    let _ = writeln!(err, "{}", status_line(snap));
                }
            }
        }
    }

    /// A capacity search: one line per step run since the `shown` first ones;
    /// returns how many are shown now.
    fn steps(&self, snap: &Snapshot, shown: usize) -> usize {
        let Some(search) = &snap.search else {
            return shown;
        };
        for i in shown..search.steps.len() {
            let Some(line) = search.step_line(i) else {
                continue;
            };
            match self {
                View::Bar(Some(bar)) => bar.println(line),
                View::Bar(None) | View::Plain { .. } => {
                    let _ = writeln!(std::io::stderr().lock(), "{line}");
                }
            }
        }
        search.steps.len()
    }

    fn finish(self) {
        if let View::Bar(Some(bar)) = self {
            bar.finish_and_clear();
        }
    }
}

fn new_bar(planned: Option<Duration>) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(
        planned.map(|d| d.as_secs().max(1)),
        ProgressDrawTarget::stderr_with_hz(4),
    );
    let template = if planned.is_some() {
        "{spinner} [{bar:30}] {pos}s/{len}s  {msg}"
    } else {
        "{spinner} {pos}s  {msg}"
    };
    // The templates are constants; should one ever be rejected, the default style
    // still shows the bar.
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.enable_steady_tick(Duration::from_millis(250));
    bar
}

/// The plain status line: elapsed (and planned) time, then [`status`].
pub fn status_line(snap: &Snapshot) -> String {
    let elapsed = snap.elapsed.as_secs();
    match snap.planned {
        Some(p) => format!("[{elapsed}s/{}s] {}", p.as_secs(), status(snap)),
        None => format!("[{elapsed}s] {}", status(snap)),
    }
}

/// Users, current RPS, failures so far and p95 so far.
pub fn status(snap: &Snapshot) -> String {
    let total = snap.total();
    // The current rate (last second) says more while running than the mean so far.
    let rps = match snap.series.last() {
        Some(p) if p.width > 0.0 => p.requests as f64 / p.width,
        _ => snap.rps(&total),
    };
    let users = match snap.target_rate {
        Some(rate) => format!("running {} (rate {rate:.0}/s)", snap.active_users),
        None => format!("users {}/{}", snap.active_users, snap.target_users),
    };
    format!(
        "{users} | {rps:.1} req/s | failures {} ({:.2}%) | p95 {}",
        total.failures,
        total.error_rate() * 100.0,
        duration_ms(total.percentile_ms(95.0))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;

    #[test]
    fn auto_picks_a_bar_only_on_a_terminal_outside_ci() {
        use Mode::*;
        assert_eq!(choose(Auto, false, true, false), Style::Bar);
        assert_eq!(choose(Auto, false, false, false), Style::Plain);
        assert_eq!(choose(Auto, false, true, true), Style::Plain);
        assert_eq!(choose(Bar, false, false, true), Style::Bar);
        assert_eq!(choose(Plain, false, true, false), Style::Plain);
        assert_eq!(choose(None, false, true, false), Style::Hidden);
        assert_eq!(choose(Bar, true, true, false), Style::Hidden);
    }

    #[test]
    fn the_status_line_shows_users_rate_failures_and_p95() {
        let snap = fixture::snapshot();
        assert_eq!(
            status_line(&snap),
            "[10s/10s] users 10/10 | 12.0 req/s | failures 3 (2.50%) | p95 100ms"
        );
        let mut open = Snapshot::empty(1, None);
        open.target_rate = Some(200.0);
        open.active_users = 3;
        assert_eq!(
            status_line(&open),
            "[0s] running 3 (rate 200/s) | 0.0 req/s | failures 0 (0.00%) | p95 0ms"
        );
    }

    #[test]
    fn the_status_line_shows_sub_millisecond_latencies() {
        let mut snap = Snapshot::empty(1, None);
        for _ in 0..10 {
            snap.requests[0].record(Duration::from_micros(400), 0, Ok(()));
        }
        let line = status(&snap);
        assert!(line.ends_with("| p95 400µs"), "{line}");
    }

    #[tokio::test]
    async fn progress_stops_when_asked_and_when_the_engine_goes_away() {
        let (tx, rx) = watch::channel(Arc::new(fixture::snapshot()));
        let p = Progress::spawn(Style::Plain, rx.clone());
        tx.send_replace(Arc::new(fixture::snapshot()));
        tokio::time::timeout(Duration::from_secs(5), p.finish())
            .await
            .expect("finish returns");
        let p = Progress::spawn(Style::Plain, rx);
        drop(tx);
        let task = p.task.expect("a task runs");
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the task ends with the channel")
            .unwrap();
    }
}
