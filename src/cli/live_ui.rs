//! `swarm check --ui`: the live dashboard beside a CI-style run. Opened before anything
//! is sent (a bad address or a missing token is exit 2), shown the run's snapshots and
//! control channel, then, after the run, kept up with the final results until Ctrl-C,
//! or closed (see [`AfterRun`]). Without the `ui` feature, `--ui` is a usage error.

use std::sync::Arc;

use super::{CheckArgs, CliError};
use crate::compile::graph::CompiledPlan;
use crate::metrics::snapshot::Snapshot;
use crate::run::RunSession;

/// What the dashboard does once the run is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterRun {
    /// `--ui-exit`: stop at once.
    Exit,
    /// Keep showing the final results until Ctrl-C or SIGTERM.
    ServeUntilCtrlC,
    /// Stop, and say why: there is nobody at a terminal to press Ctrl-C, or CI is set.
    ExitUnattended,
}

impl AfterRun {
    /// `--ui-exit`, else whether someone can press Ctrl-C (a terminal, outside CI).
    pub fn choose(ui_exit: bool, can_wait_for_ctrl_c: bool) -> AfterRun {
        match (ui_exit, can_wait_for_ctrl_c) {
            (true, _) => AfterRun::Exit,
            (false, true) => AfterRun::ServeUntilCtrlC,
            (false, false) => AfterRun::ExitUnattended,
        }
    }
}

/// The dashboard of one `swarm check` run, when `--ui` was given.
pub struct LiveUi {
    #[cfg(feature = "ui")]
    dashboard: crate::dashboard::Dashboard,
}

impl LiveUi {
    /// Binds the dashboard when `--ui` was given.
    #[cfg(feature = "ui")]
    pub async fn open(
        args: &CheckArgs,
        plan: &Arc<CompiledPlan>,
    ) -> Result<Option<LiveUi>, CliError> {
        use crate::dashboard::{self, DashboardConfig};
        let Some(addr) = &args.ui else {
            return Ok(None);
        };
        let config = DashboardConfig::new(addr, args.ui_token.clone())?;
        let dashboard = dashboard::bind(config, plan.clone()).await?;
        eprintln!("dashboard: {}", dashboard.url_with_token());
        Ok(Some(LiveUi { dashboard }))
    }

    #[cfg(not(feature = "ui"))]
    pub async fn open(
        args: &CheckArgs,
        _plan: &Arc<CompiledPlan>,
    ) -> Result<Option<LiveUi>, CliError> {
        match args.ui {
            Some(_) => Err(CliError::NoUi),
            None => Ok(None),
        }
    }

    /// Shows the running session on the page.
    pub fn attach(&self, session: &RunSession) {
        #[cfg(feature = "ui")]
        self.dashboard.attach(
            session.plan().clone(),
            session.snapshots(),
            session.control(),
        );
        #[cfg(not(feature = "ui"))]
        let _ = session;
    }

    /// A run on many machines: the page shows its workers table.
    pub fn show_workers(&self, workers: &crate::dist::Workers) {
        #[cfg(feature = "ui")]
        self.dashboard.show_workers(workers.clone());
        #[cfg(not(feature = "ui"))]
        let _ = workers;
    }

    /// Shows the final results (the ones the reports were built from), then does
    /// what `after` says.
    pub async fn after_run(self, snapshot: Arc<Snapshot>, after: AfterRun) {
        #[cfg(feature = "ui")]
        {
            self.dashboard.finish(snapshot);
            match after {
                AfterRun::Exit => {}
                AfterRun::ServeUntilCtrlC => {
                    eprintln!(
                        "the dashboard keeps showing the results at {} until Ctrl-C (--ui-exit to skip)",
                        self.dashboard.url_with_token()
                    );
                    self.dashboard.serve_until_ctrl_c().await;
                }
                AfterRun::ExitUnattended => eprintln!(
                    "the run is over: the dashboard stops now, as there is no terminal to press Ctrl-C in (or CI is set)"
                ),
            }
        }
        #[cfg(not(feature = "ui"))]
        let _ = (snapshot, after);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dashboard_waits_for_ctrl_c_only_with_someone_to_press_it() {
        assert_eq!(AfterRun::choose(true, true), AfterRun::Exit);
        assert_eq!(AfterRun::choose(true, false), AfterRun::Exit);
        assert_eq!(AfterRun::choose(false, true), AfterRun::ServeUntilCtrlC);
        assert_eq!(AfterRun::choose(false, false), AfterRun::ExitUnattended);
    }
}
