//! `swarm check`: compile the plan, run it in a [`RunSession`] with live progress
//! (Ctrl-C or SIGTERM stop it cleanly), hand the report model to every sink
//! (console, JSON, JUnit...) and turn the outcome into a [`CliError`] or success.
//! Thin orchestration: the logic lives in `compile`, `run` and `report`.

use std::sync::Arc;
use std::time::Duration;

use super::live_ui::{AfterRun, LiveUi};
use super::{CheckArgs, CliError, Environment};
use crate::compile::CompileOptions;
use crate::compile::graph::CompiledPlan;
use crate::metrics::snapshot::EndReason;
use crate::report::annotations::AnnotationSink;
use crate::report::baseline::{self, Baseline, BaselineSink};
use crate::report::console::ConsoleSink;
use crate::report::html::HtmlSink;
use crate::report::json::JsonSink;
use crate::report::junit::JunitSink;
use crate::report::progress::{self, Progress};
use crate::report::summary::{SummarySink, SummaryTarget};
use crate::report::{RunResult, SinkError, Sinks};
use crate::run::{RunSession, Signals};

pub fn run(args: CheckArgs, env: &Environment) -> Result<(), CliError> {
    let runtime = super::runtime()?;
    let outcome = runtime.block_on(check(args, env));
    // Users still winding down after a second Ctrl-C must not hold the exit.
    runtime.shutdown_timeout(Duration::from_millis(200));
    outcome
}

async fn check(args: CheckArgs, env: &Environment) -> Result<(), CliError> {
    let mut opts = CompileOptions::try_from(&args.plan)?;
    // The demo lives until the run ends: dropping it stops it.
    let demo = if args.demo {
        Some(super::start_demo(&mut opts).await?)
    } else {
        None
    };
    let plan = Arc::new(super::compile_plan(&args.plan, &opts)?);
    // The baseline is checked before anything is sent: a wrong one is exit 2.
    let baseline = load_baseline(&args, &plan)?;
    let coordinator = match &args.dist.coordinator {
        Some(addr) => Some(super::coordinator::config(&args, addr)?),
        None => None,
    };
    let ui = LiveUi::open(&args, &plan).await?;

    let (session, workers) = match coordinator {
        Some(config) => {
            let (session, workers) = super::coordinator::start(config, &plan, &opts).await?;
            (session, Some(workers))
        }
        None => {
            let engine = super::engine_config(args.insecure, env);
            let session = RunSession::start(plan, engine).map_err(CliError::Start)?;
            (session, None)
        }
    };
    if let Some(ui) = &ui {
        ui.attach(&session);
        if let Some(workers) = &workers {
            ui.show_workers(workers);
        }
    }
    let style = progress::choose(
        args.progress.into(),
        args.quiet,
        env.terminal_output,
        env.ci,
    );
    let progress = Progress::spawn(style, session.snapshots());
    let ended = session.wait(Some(&mut Signals::new())).await;
    progress.finish().await;
    if let Some(e) = &ended.failure {
        eprintln!("error: the run could not be carried out: {e}");
    }
    drop(demo);

    let mut result = ended.result(baseline.as_ref().map(|(b, tolerance)| (b, *tolerance)));
    if let Some(workers) = &workers {
        result.report.workers = workers.report();
    }
    log_failures(&result);
    let errors = sinks(&args, env).emit_all(&result);
    for e in &errors {
        eprintln!("error: {e}");
    }
    if let Some(ui) = ui {
        let after = AfterRun::choose(args.ui_exit, env.can_wait_for_ctrl_c());
        ui.after_run(result.snapshot.clone(), after).await;
    }
    if let Some(lost) = workers
        .as_ref()
        .and_then(|w| lost_workers(&args, &result.plan, w))
    {
        return Err(CliError::WorkersLost(lost));
    }
    verdict(&Outcome {
        run_failed: ended.failure.is_some(),
        sink_errors: &errors,
        interrupted: result.snapshot.end == EndReason::Interrupted,
        untrusted: result.untrusted(),
        slos_passed: result.passed(),
    })
}

/// `--on-worker-loss fail`: the workers lost mid-run end it with exit code 3.
/// Under `iterations` too, whatever `--on-worker-loss` says: the lost worker held
/// tickets that no one can tell run or not (its last units went with it), so the
/// plan's exact count cannot be kept (the coordinator stopped the run at the loss).
fn lost_workers(
    args: &CheckArgs,
    plan: &CompiledPlan,
    workers: &crate::dist::Workers,
) -> Option<String> {
    let continued = args.dist.on_worker_loss != crate::dist::OnLoss::Fail;
    if continued && plan.load.iterations.is_none() {
        return None;
    }
    let lost: Vec<String> = workers
        .lost()
        .into_iter()
        .map(|(name, at, why)| format!("worker `{name}` was lost at {at:.1}s ({why})"))
        .collect();
    let why = if continued {
        "; under `iterations` a lost worker ends the run even with --on-worker-loss continue: \
         the iterations it held cannot be told run or not run"
    } else {
        ""
    };
    (!lost.is_empty()).then(|| format!("the run ended early: {}{why}", lost.join("; ")))
}

/// The sinks of this run, in the order they emit. Each `--flag FILE` is one push.
fn sinks(args: &CheckArgs, env: &Environment) -> Sinks {
    let mut sinks = Sinks::new();
    sinks.push(ConsoleSink { quiet: args.quiet });
    if let Some(path) = &args.html {
        sinks.push(HtmlSink::new(path.clone()));
    }
    // Prints and gates the report's baseline comparison, when there is one.
    sinks.push(BaselineSink { quiet: args.quiet });
    if let Some(path) = &args.json {
        sinks.push(JsonSink { path: path.clone() });
    }
    if let Some(path) = &args.junit {
        sinks.push(JunitSink { path: path.clone() });
    }
    sinks.push(SummarySink::new(summary_target(args, env)));
    sinks.push(AnnotationSink::new(env.github.clone()));
    sinks
}

/// `--summary FILE` (replaced), else `$GITHUB_STEP_SUMMARY` when set (appended to).
fn summary_target(args: &CheckArgs, env: &Environment) -> Option<SummaryTarget> {
    match (&args.summary, &env.step_summary) {
        (Some(path), _) => Some(SummaryTarget {
            path: path.clone(),
            append: false,
        }),
        (None, Some(path)) => Some(SummaryTarget {
            path: path.clone(),
            append: true,
        }),
        (None, None) => None,
    }
}

/// `--baseline FILE [--max-regression PCT]`: loaded and matched against the plan.
fn load_baseline(
    args: &CheckArgs,
    plan: &CompiledPlan,
) -> Result<Option<(Baseline, f64)>, CliError> {
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
    /// A capacity search's answer cannot be trusted.
    untrusted: bool,
    slos_passed: bool,
}

/// The end of the run, in order of precedence: a run or report error (exit 3), an
/// interrupted run (130), an untrusted capacity answer (3), a failed SLO or gate
/// (1), success (0).
fn verdict(o: &Outcome) -> Result<(), CliError> {
    let report_failed = o.sink_errors.iter().any(|e| match e {
        SinkError::Write { .. } | SinkError::Render { .. } => true,
        SinkError::Gate { .. } => false,
    });
    let gate_failed = o.sink_errors.iter().any(|e| match e {
        SinkError::Gate { .. } => true,
        SinkError::Write { .. } | SinkError::Render { .. } => false,
    });
    if o.run_failed || report_failed {
        Err(CliError::RunFailed)
    } else if o.interrupted {
        Err(CliError::Interrupted)
    } else if o.untrusted {
        Err(CliError::Untrusted)
    } else if !o.slos_passed || gate_failed {
        Err(CliError::SloFailed)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::path::PathBuf;

    use super::*;
    use crate::exit;

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
        verdict(&Outcome {
            run_failed,
            sink_errors: errors,
            interrupted,
            untrusted: false,
            slos_passed: passed,
        })
        .map_or_else(|e| e.code(), |()| exit::OK)
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
        let untrusted = |interrupted| {
            verdict(&Outcome {
                run_failed: false,
                sink_errors: &[],
                interrupted,
                untrusted: true,
                slos_passed: false,
            })
            .map_or_else(|e| e.code(), |()| exit::OK)
        };
        assert_eq!(untrusted(false), exit::UNTRUSTED);
        assert_eq!(untrusted(true), exit::INTERRUPTED);
    }
}
