//! Interactive mode's [`Launcher`]: compiles the plan file afresh for every run (so
//! edits between runs are picked up), applies the load the page asked for, and starts
//! a [`RunSession`].

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::oneshot;

use super::{Launcher, LiveRun, RunRequest};
use crate::compile::graph::{ClosedLoad, LoadModel, RateShape};
use crate::compile::{CompileOptions, compile_file};
use crate::engine::config::EngineConfig;
use crate::run::RunSession;

/// Starts runs of one plan file with the engine.
#[derive(Debug, Clone)]
pub struct PlanLauncher {
    pub path: PathBuf,
    /// The command line's overrides (`--target`, `--var`...); the page's values win.
    pub options: CompileOptions,
    pub engine: EngineConfig,
}

impl Launcher for PlanLauncher {
    fn launch(&self, request: RunRequest) -> Result<LiveRun, String> {
        let mut options = self.options.clone();
        if request.users.is_some() {
            options.users = request.users;
        }
        if request.duration.is_some() {
            options.duration = request.duration;
        }
        let mut plan = compile_file(&self.path, &options).map_err(|e| e.to_string())?;
        match &mut plan.load.model {
            LoadModel::Closed(ClosedLoad::Fixed { spawn_rate, .. }) => {
                if request.spawn_rate.is_some() {
                    *spawn_rate = request.spawn_rate;
                }
            }
            LoadModel::Open(open) => {
                if let Some(rate) = request.rate {
                    open.rate = RateShape::Fixed(rate);
                }
            }
            LoadModel::Closed(ClosedLoad::Stages(_)) => {}
        }
        if plan.load.total_duration().is_none() && plan.load.iterations.is_none() {
            return Err("the run needs an end: set a duration".into());
        }
        let plan = Arc::new(plan);
        let session =
            RunSession::start(plan.clone(), self.engine.clone()).map_err(|e| e.to_string())?;
        let snapshots = session.snapshots();
        let control = session.control();
        let (tx, done) = oneshot::channel();
        // Ctrl-C belongs to `swarm ui` itself, which stops the current run through
        // its control channel: the session waits without relaying signals.
        tokio::spawn(async move {
            let ended = session.wait(None).await;
            match ended.failure {
                None => {
                    let _ = tx.send(ended.snapshot);
                }
                Some(e) => {
                    tracing::error!("the run failed: {e}");
                    // Dropped unsent: the dashboard shows the run as stopped, so
                    // another one can start.
                    drop(tx);
                }
            }
        });
        Ok(LiveRun {
            plan,
            snapshots,
            control,
            done: Some(done),
        })
    }
}
