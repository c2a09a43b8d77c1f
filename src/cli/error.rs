//! Every way a command can end other than success, and the one exhaustive place that
//! maps each to its exit code ([`CliError::code`]) and says it ([`CliError::print`]).
//! The commands return `Result<(), CliError>`; only [`super::run`] turns it into a
//! code.

use std::net::SocketAddr;

use super::env::Environment;
use crate::dist::coordinator::DistError;
use crate::dist::worker::WorkerError;
use crate::engine::RunError;
use crate::exit;
use crate::k8s::K8sError;
use crate::plan::PlanErrors;
use crate::report::annotations;
use crate::report::baseline::BaselineError;

#[cfg(feature = "ui")]
use crate::dashboard::DashboardError;

/// Why a command did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// `--help` or `--version`: clap's text, and success.
    #[error("{0}")]
    Info(clap::Error),
    /// Arguments clap refused (an unknown flag, a missing plan...).
    #[error("{0}")]
    Args(clap::Error),
    /// A malformed option value (`--var`, `--duration`, `--bind`...).
    #[error("{0}")]
    Usage(String),
    /// Every problem in the plan, rendered with snippets.
    #[error("{0}")]
    Plan(PlanErrors),
    #[error(transparent)]
    Baseline(#[from] BaselineError),
    #[cfg(feature = "ui")]
    #[error(transparent)]
    Dashboard(#[from] DashboardError),
    /// `swarm check --ui` in a build without the dashboard.
    #[error("--ui needs swarm built with the `ui` feature")]
    NoUi,
    /// `swarm ui` in a build without the dashboard.
    #[error("this swarm was built without the dashboard (cargo feature `ui`)")]
    NoDashboard,
    #[error("could not start the async runtime: {0}")]
    Runtime(std::io::Error),
    /// `--demo`: the demo target could not start.
    #[error("could not start the demo target: {0}")]
    Demo(std::io::Error),
    /// `swarm demo`: its address is taken or refused.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// The engine could not start the run.
    #[error("the run could not be carried out: {0}")]
    Start(RunError),
    /// The engine failed midway, or a report could not be written: said as it
    /// happened, and the reports still written.
    #[error("the run or a report could not be carried out")]
    RunFailed,
    /// Ctrl-C or SIGTERM ended the run; the reports were written.
    #[error("the run was interrupted")]
    Interrupted,
    /// `swarm k8s` could not render the manifests.
    #[error(transparent)]
    K8s(#[from] K8sError),
    /// An SLO or the baseline gate failed, as the verdict said.
    #[error("an SLO or the baseline gate failed")]
    SloFailed,
    /// A capacity search's answer cannot be trusted (the generator saturated, or even
    /// the first step failed), as its answer said.
    #[error("the capacity search's answer cannot be trusted")]
    Untrusted,
    /// A run on many machines could not start (too few workers, a worker that
    /// cannot run the plan...).
    #[error(transparent)]
    Dist(#[from] DistError),
    /// Workers were lost mid-run and `--on-worker-loss` is `fail`: each was said as
    /// it happened, and the reports were written.
    #[error("{0}")]
    WorkersLost(String),
    /// `swarm worker`: refused, lost its coordinator, or cannot run the plan.
    #[error(transparent)]
    Worker(#[from] WorkerError),
}

impl CliError {
    /// What clap's `try_parse` returned: `--help` and `--version` are on stdout and
    /// succeed (clap's `use_stderr` tells them apart), the rest are usage errors.
    pub fn from_clap(e: clap::Error) -> CliError {
        if e.use_stderr() {
            CliError::Args(e)
        } else {
            CliError::Info(e)
        }
    }

    /// The process exit code (see [`crate::exit`]).
    pub fn code(&self) -> i32 {
        match self {
            CliError::Info(_) => exit::OK,
            CliError::Args(_)
            | CliError::Usage(_)
            | CliError::Plan(_)
            | CliError::Baseline(_)
            | CliError::NoUi
            | CliError::NoDashboard => exit::INVALID,
            #[cfg(feature = "ui")]
            CliError::Dashboard(
                DashboardError::BadAddress(_)
                | DashboardError::TokenRequired(_)
                | DashboardError::EmptyToken,
            ) => exit::INVALID,
            #[cfg(feature = "ui")]
            CliError::Dashboard(DashboardError::Bind { .. }) => exit::RUN_ERROR,
            CliError::Runtime(_)
            | CliError::Demo(_)
            | CliError::Listen { .. }
            | CliError::Start(_)
            | CliError::RunFailed => exit::RUN_ERROR,
            CliError::Untrusted => exit::UNTRUSTED,
            CliError::Dist(DistError::DataFile { .. } | DistError::Plan(_)) => exit::INVALID,
            CliError::Dist(
                DistError::Bind { .. }
                | DistError::TooFewWorkers { .. }
                | DistError::WorkerFailed { .. }
                | DistError::Run(_),
            )
            | CliError::WorkersLost(_)
            | CliError::Worker(_) => exit::RUN_ERROR,
            CliError::K8s(
                K8sError::TooLarge { .. }
                | K8sError::AbsoluteData { .. }
                | K8sError::NotText { .. }
                | K8sError::PathName { .. }
                | K8sError::Invalid { .. },
            ) => exit::INVALID,
            CliError::K8s(K8sError::Unreadable { .. } | K8sError::Yaml(_)) => exit::RUN_ERROR,
            CliError::Interrupted => exit::INTERRUPTED,
            CliError::SloFailed => exit::SLO_FAILED,
        }
    }

    /// Says what went wrong on stderr (plan errors also as GitHub annotations on
    /// stdout). The ends of a run were already said as they happened: by the verdict
    /// line, or by the errors printed when the engine or a report failed.
    pub fn print(&self, env: &Environment) {
        match self {
            // clap prints help and version on stdout, errors on stderr, in its style.
            CliError::Info(e) | CliError::Args(e) => {
                let _ = e.print();
            }
            CliError::Plan(errors) => {
                eprint!("{errors}");
                annotations::print_plan_errors(errors, &env.github);
            }
            CliError::RunFailed
            | CliError::Interrupted
            | CliError::SloFailed
            | CliError::Untrusted => {}
            #[cfg(feature = "ui")]
            CliError::Dashboard(_) => eprintln!("error: {self}"),
            CliError::Usage(_)
            | CliError::Baseline(_)
            | CliError::NoUi
            | CliError::NoDashboard
            | CliError::Runtime(_)
            | CliError::Demo(_)
            | CliError::Listen { .. }
            | CliError::K8s(_)
            | CliError::Start(_)
            | CliError::Dist(_)
            | CliError::WorkersLost(_)
            | CliError::Worker(_) => eprintln!("error: {self}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_has_its_documented_code() {
        let io = || std::io::Error::other("x");
        assert_eq!(CliError::Usage("bad".into()).code(), exit::INVALID);
        assert_eq!(CliError::NoUi.code(), exit::INVALID);
        assert_eq!(
            CliError::Baseline(BaselineError::BadTolerance("x".into())).code(),
            exit::INVALID
        );
        assert_eq!(CliError::Runtime(io()).code(), exit::RUN_ERROR);
        assert_eq!(CliError::Start(RunError::NoFlows).code(), exit::RUN_ERROR);
        assert_eq!(CliError::RunFailed.code(), exit::RUN_ERROR);
        assert_eq!(CliError::Interrupted.code(), exit::INTERRUPTED);
        assert_eq!(CliError::SloFailed.code(), exit::SLO_FAILED);
        assert_eq!(CliError::Untrusted.code(), 3);
    }

    #[test]
    fn help_and_version_succeed_and_bad_arguments_are_invalid() {
        use clap::Parser as _;
        let parse = |args: &[&str]| {
            super::super::Cli::try_parse_from(args)
                .map_err(CliError::from_clap)
                .map_or_else(|e| e.code(), |_| exit::OK)
        };
        assert_eq!(parse(&["swarm", "--help"]), exit::OK);
        assert_eq!(parse(&["swarm", "--version"]), exit::OK);
        assert_eq!(parse(&["swarm", "check"]), exit::INVALID);
        assert_eq!(
            parse(&["swarm", "check", "p.yaml", "--nope"]),
            exit::INVALID
        );
    }

    #[cfg(feature = "ui")]
    #[test]
    fn a_dashboard_that_cannot_listen_is_a_run_error_and_a_bad_address_invalid() {
        let bind = DashboardError::Bind {
            addr: SocketAddr::from(([127, 0, 0, 1], 1)),
            source: std::io::Error::other("in use"),
        };
        assert_eq!(CliError::from(bind).code(), exit::RUN_ERROR);
        let bad = DashboardError::BadAddress("x".into());
        assert_eq!(CliError::from(bad).code(), exit::INVALID);
    }
}
