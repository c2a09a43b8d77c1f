//! `swarm check`: compile the plan, run it with live progress, stop it cleanly on
//! Ctrl-C or SIGTERM, evaluate the SLOs, hand the result to every sink (console,
//! JSON, JUnit...) and map the outcome to the exit code. Thin orchestration: the
//! logic lives in `compile`, `engine`, `metrics::slo` and `report`.

use std::sync::Arc;
use std::time::Duration;

use super::CheckArgs;
use super::live_ui::LiveUi;
use crate::compile::graph::CompiledPlan;
use crate::engine::control::Control;
use crate::exit;
use crate::metrics::snapshot::{EndReason, Snapshot};
use crate::report::annotations::AnnotationSink;
use crate::report::baseline::{self, Baseline, BaselineComparison, BaselineError, BaselineSink};
use crate::report::console::ConsoleSink;
use crate::report::html::HtmlSink;
use crate::report::json::JsonSink;
use crate::report::junit::JunitSink;
use crate::report::progress::{self, Progress};
use crate::report::summary::SummarySink;
use crate::report::{RunResult, SinkError, Sinks};

pub fn run(args: CheckArgs) -> i32 {
    let runtime = match super::runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let code = runtime.block_on(check(args));
    // Users still winding down after a second Ctrl-C must not hold the exit.
    runtime.shutdown_timeout(Duration::from_millis(200));
    code
}

async fn check(args: CheckArgs) -> i32 {
    let mut opts = match super::compile_options(&args.plan) {
        Ok(opts) => opts,
        Err(code) => return code,
    };
    // The demo lives until the end of this function: dropping it stops it.
    let demo = if args.demo {
        match super::start_demo(&mut opts).await {
            Ok(server) => Some(server),
            Err(code) => return code,
        }
    } else {
        None
    };
    let plan = match super::compile_plan(&args.plan, &opts) {
        Ok(plan) => Arc::new(plan),
        Err(code) => return code,
    };
    // The baseline is checked before anything is sent: a wrong one is exit 2.
    let baseline = match load_baseline(&args, &plan) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::INVALID;
        }
    };
    let ui = match LiveUi::open(&args, &plan).await {
        Ok(ui) => ui,
        Err(code) => return code,
    };

    let (snapshot, run_failed) = match drive(plan.clone(), &args, ui.as_ref()).await {
        Ok(ended) => ended,
        Err(code) => return code,
    };
    drop(demo);

    let mut result = RunResult::new(plan, snapshot);
    log_failures(&result);
    let comparison = baseline
        .as_ref()
        .map(|(b, tolerance)| baseline::compare(b, &result.report, *tolerance));
    result.report.baseline = comparison.clone();
    let errors = sinks(&args, comparison.as_ref()).emit_all(&result);
    for e in &errors {
        eprintln!("error: {e}");
    }
    if let Some(ui) = ui {
        ui.after_run(result.snapshot.clone(), args.ui_exit).await;
    }
    exit_code(&Outcome {
        run_failed,
        sink_errors: &errors,
        interrupted: result.snapshot.end == EndReason::Interrupted,
        slos_passed: result.passed(),
    })
}

/// Runs the plan with live progress until it ends, relaying Ctrl-C and SIGTERM. Returns
/// the final snapshot and whether the run failed midway (then the snapshot is the last
/// one seen), or the exit code when it could not start.
async fn drive(
    plan: Arc<CompiledPlan>,
    args: &CheckArgs,
    ui: Option<&LiveUi>,
) -> Result<(Arc<Snapshot>, bool), i32> {
    let config = super::engine_config(args.insecure);
    let handle = match crate::engine::start(plan.clone(), config) {
        Ok(handle) => handle,
        Err(e) => {
            eprintln!("error: the run could not be carried out: {e}");
            return Err(exit::RUN_ERROR);
        }
    };
    let snapshots = handle.snapshots();
    let control = handle.control();
    if let Some(ui) = ui {
        ui.attach(plan, snapshots.clone(), control.clone());
    }
    let progress = Progress::spawn(
        progress::resolve(args.progress, args.quiet),
        snapshots.clone(),
    );
    let mut signals = Signals::new();
    let wait = handle.wait();
    tokio::pin!(wait);
    let mut interrupted = false;
    let outcome = loop {
        tokio::select! {
            outcome = &mut wait => break Some(outcome),
            () = signals.recv() => {
                if interrupted {
                    eprintln!("\ninterrupted again: reporting what was measured without waiting");
                    break None;
                }
                interrupted = true;
                eprintln!("\ninterrupting: letting in-flight requests finish (Ctrl-C again to stop at once)");
                let _ = control.send(Control::Interrupt);
            }
        }
    };
    progress.finish().await;

    let last = || snapshots.borrow().clone();
    Ok(match outcome {
        Some(Ok(snapshot)) => (snapshot, false),
        Some(Err(e)) => {
            eprintln!("error: the run could not be carried out: {e}");
            (Snapshot::ended(last(), EndReason::Stopped), true)
        }
        None => (Snapshot::ended(last(), EndReason::Interrupted), false),
    })
}

/// The sinks of this run, in the order they emit. Each `--flag FILE` is one push.
fn sinks(args: &CheckArgs, comparison: Option<&BaselineComparison>) -> Sinks {
    let mut sinks = Sinks::new();
    sinks.push(ConsoleSink { quiet: args.quiet });
    if let Some(path) = &args.html {
        sinks.push(HtmlSink::new(path.clone()));
    }
    if let Some(cmp) = comparison {
        sinks.push(BaselineSink {
            comparison: cmp.clone(),
            quiet: args.quiet,
        });
    }
    if let Some(path) = &args.json {
        sinks.push(JsonSink { path: path.clone() });
    }
    if let Some(path) = &args.junit {
        sinks.push(JunitSink { path: path.clone() });
    }
    // `--summary FILE`, else $GITHUB_STEP_SUMMARY when set; GitHub annotations.
    sinks.push(SummarySink::new(args.summary.clone(), comparison.cloned()));
    sinks.push(AnnotationSink::new(comparison.cloned()));
    sinks
}

/// `--baseline FILE [--max-regression PCT]`: loaded and matched against the plan.
fn load_baseline(
    args: &CheckArgs,
    plan: &CompiledPlan,
) -> Result<Option<(Baseline, f64)>, BaselineError> {
    let Some(path) = &args.baseline else {
        return Ok(None);
    };
    let tolerance = baseline::parse_tolerance(&args.max_regression)?;
    let b = baseline::load(path)?;
    baseline::check_plan(&b, plan)?;
    Ok(Some((b, tolerance)))
}

/// Logs each failure reason once, with its count (`-v`), never once per request.
fn log_failures(result: &RunResult) {
    for r in &result.report.requests {
        for f in &r.failure_reasons {
            tracing::info!(request = %r.name, count = f.count, "requests failed: {}", f.reason);
        }
    }
}

/// What happened, as far as the exit code is concerned.
struct Outcome<'a> {
    /// The engine could not carry the run out (`RunError`).
    run_failed: bool,
    sink_errors: &'a [SinkError],
    interrupted: bool,
    slos_passed: bool,
}

/// The exit code, in order of precedence: a run or report error (3), an interrupted
/// run (130), a failed SLO or gate (1), success (0).
fn exit_code(o: &Outcome) -> i32 {
    let report_failed = o.sink_errors.iter().any(|e| match e {
        SinkError::Write { .. } | SinkError::Render { .. } => true,
        SinkError::Gate { .. } => false,
    });
    let gate_failed = o.sink_errors.iter().any(|e| match e {
        SinkError::Gate { .. } => true,
        SinkError::Write { .. } | SinkError::Render { .. } => false,
    });
    if o.run_failed || report_failed {
        exit::RUN_ERROR
    } else if o.interrupted {
        exit::INTERRUPTED
    } else if !o.slos_passed || gate_failed {
        exit::SLO_FAILED
    } else {
        exit::OK
    }
}

/// Ctrl-C and SIGTERM, as one stream.
struct Signals {
    #[cfg(unix)]
    streams: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl Signals {
    #[cfg(unix)]
    fn new() -> Signals {
        use tokio::signal::unix::{SignalKind, signal};
        let streams = match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(int), Ok(term)) => Some((int, term)),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!("cannot listen for Ctrl-C or SIGTERM: {e}");
                None
            }
        };
        Signals { streams }
    }

    /// Waits for the next Ctrl-C or SIGTERM (forever, if they cannot be received).
    #[cfg(unix)]
    async fn recv(&mut self) {
        match &mut self.streams {
            Some((int, term)) => {
                tokio::select! {
                    Some(()) = int.recv() => {}
                    Some(()) = term.recv() => {}
                    else => std::future::pending::<()>().await,
                }
            }
            None => std::future::pending::<()>().await,
        }
    }

    #[cfg(not(unix))]
    fn new() -> Signals {
        Signals {}
    }

    #[cfg(not(unix))]
    async fn recv(&mut self) {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::path::PathBuf;

    use super::*;

    fn write_error() -> SinkError {
        SinkError::Write {
            sink: "json",
            path: PathBuf::from("/nope/report.json"),
            source: io::Error::other("denied"),
        }
    }

    fn gate() -> SinkError {
        SinkError::Gate {
            sink: "baseline",
            message: "p95 regressed by 30%".into(),
        }
    }

    fn code(run_failed: bool, errors: &[SinkError], interrupted: bool, passed: bool) -> i32 {
        exit_code(&Outcome {
            run_failed,
            sink_errors: errors,
            interrupted,
            slos_passed: passed,
        })
    }

    #[test]
    fn exit_codes_follow_the_documented_precedence() {
        assert_eq!(code(false, &[], false, true), exit::OK);
        assert_eq!(code(false, &[], false, false), exit::SLO_FAILED);
        assert_eq!(code(false, &[gate()], false, true), exit::SLO_FAILED);
        assert_eq!(code(false, &[], true, false), exit::INTERRUPTED);
        assert_eq!(code(false, &[write_error()], true, true), exit::RUN_ERROR);
        assert_eq!(code(false, &[write_error()], false, true), exit::RUN_ERROR);
        assert_eq!(code(true, &[], false, true), exit::RUN_ERROR);
    }
}
