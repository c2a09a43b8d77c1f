//! `swarm check --ui`: the live dashboard beside a CI-style run. Opened before anything
//! is sent (a bad address or a missing token is exit 2), shown the run's snapshots and
//! control channel, then kept up with the final results until Ctrl-C unless
//! `--ui-exit`. Without the `ui` feature, `--ui` is a usage error.

use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use super::CheckArgs;
use crate::compile::graph::CompiledPlan;
use crate::engine::control::Control;
use crate::metrics::snapshot::Snapshot;

/// The dashboard of one `swarm check` run, when `--ui` was given.
pub struct LiveUi {
    #[cfg(feature = "ui")]
    dashboard: crate::dashboard::Dashboard,
}

impl LiveUi {
    /// Binds the dashboard when `--ui` was given; `Err` is the exit code.
    #[cfg(feature = "ui")]
    pub async fn open(args: &CheckArgs, plan: &Arc<CompiledPlan>) -> Result<Option<LiveUi>, i32> {
        use crate::dashboard::{self, DashboardConfig};
        let Some(addr) = &args.ui else {
            return Ok(None);
        };
        let config = DashboardConfig::new(addr, args.ui_token.clone()).map_err(|e| {
            eprintln!("error: {e}");
            e.exit_code()
        })?;
        let dashboard = dashboard::bind(config, plan.clone()).await.map_err(|e| {
            eprintln!("error: {e}");
            e.exit_code()
        })?;
        eprintln!("dashboard: {}", dashboard.url_with_token());
        Ok(Some(LiveUi { dashboard }))
    }

    #[cfg(not(feature = "ui"))]
    pub async fn open(args: &CheckArgs, _plan: &Arc<CompiledPlan>) -> Result<Option<LiveUi>, i32> {
        if args.ui.is_some() {
            eprintln!("error: --ui needs swarm built with the `ui` feature");
            return Err(crate::exit::INVALID);
        }
        Ok(None)
    }

    /// Shows the running engine on the page.
    pub fn attach(
        &self,
        plan: Arc<CompiledPlan>,
        snapshots: watch::Receiver<Arc<Snapshot>>,
        control: mpsc::UnboundedSender<Control>,
    ) {
        #[cfg(feature = "ui")]
        self.dashboard.attach(plan, snapshots, control);
        #[cfg(not(feature = "ui"))]
        let _ = (plan, snapshots, control);
    }

    /// Shows the final results (the ones the reports were built from) and, unless
    /// `exit_now`, keeps serving them until Ctrl-C or SIGTERM.
    pub async fn after_run(self, snapshot: Arc<Snapshot>, exit_now: bool) {
        #[cfg(feature = "ui")]
        {
            self.dashboard.finish(snapshot);
            if !exit_now {
                eprintln!(
                    "the dashboard keeps showing the results at {} until Ctrl-C (--ui-exit to skip)",
                    self.dashboard.url_with_token()
                );
                self.dashboard.serve_until_ctrl_c().await;
            }
        }
        #[cfg(not(feature = "ui"))]
        let _ = (snapshot, exit_now);
    }
}
