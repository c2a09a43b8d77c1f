//! The engine: the only async part. Schedules virtual users, sends HTTP and gRPC,
//! measures.
//!
//! [`start`] loads the run's data, starts one thread per core (each a
//! current-thread tokio runtime running its share of the users) and a controller task
//! on the caller's runtime. The returned [`RunHandle`] steers the run with
//! [`Control`] messages, watches it through [`Snapshot`]s published about every
//! second, and waits for the final snapshot. See `docs/engine.md` for the behaviour
//! users see.

pub mod capture;
pub mod config;
pub mod control;
pub(crate) mod deadline;
pub mod expect;
pub mod feeder;
pub mod grpc;
pub mod http;
pub(crate) mod link;
pub mod parallel;
pub mod recorder;
pub(crate) mod remote;
pub mod render;
pub mod request;
pub mod schedule;
pub mod search;
pub mod session;
pub mod tcp;
mod user;
pub mod ws;

use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use self::config::EngineConfig;
use self::control::Control;
use self::feeder::{FeederError, Feeders};
use self::http::HttpSetupError;
use self::session::Protocols;
use crate::compile::graph::CompiledPlan;
use crate::metrics::snapshot::Snapshot;

/// The run could not be carried out (exit code 3).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Feeder(#[from] FeederError),
    #[error(transparent)]
    Http(#[from] HttpSetupError),
    #[error("the plan has no flows")]
    NoFlows,
    #[error("could not start a thread: {0}")]
    Thread(#[source] std::io::Error),
    #[error("the engine must be started inside a tokio runtime")]
    NoRuntime,
    #[error("a thread panicked")]
    ThreadPanicked,
    #[error("the engine's controller task failed")]
    Lost,
}

/// A running load test.
#[derive(Debug)]
pub struct RunHandle {
    // (built by `start`, or by `remote::start_coordinator` for a run on many machines)
    control: mpsc::UnboundedSender<Control>,
    snapshots: watch::Receiver<Arc<Snapshot>>,
    task: tokio::task::JoinHandle<Result<Arc<Snapshot>, RunError>>,
}

impl RunHandle {
    /// Where to send control messages (set users or rate, stop, reset stats).
    pub fn control(&self) -> mpsc::UnboundedSender<Control> {
        self.control.clone()
    }

    /// The latest snapshot, updated about every second and once more at the end.
    pub fn snapshots(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.snapshots.clone()
    }

    /// Waits for the run to end and returns the final snapshot (with `end` set).
    pub async fn wait(self) -> Result<Arc<Snapshot>, RunError> {
        self.task.await.map_err(|_| RunError::Lost)?
    }
}

/// Starts running `plan`. Call inside a tokio runtime: the controller runs on it,
/// while the users run on dedicated threads.
pub fn start(plan: Arc<CompiledPlan>, config: EngineConfig) -> Result<RunHandle, RunError> {
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| RunError::NoRuntime)?;
    if plan.flows.is_empty() {
        return Err(RunError::NoFlows);
    }
    let feeders = Arc::new(Feeders::load(&plan)?);
    // The plan's `defaults.max_response_*` win over the engine's defaults.
    let mut config = config;
    config.http.head_limit = plan.limits.head.unwrap_or(config.http.head_limit);
    config.http.body_limit = plan.limits.body.unwrap_or(config.http.body_limit);
    config.http.version = plan.http_version;
    let protocols = Protocols::new(&config)?;
    let threads = match config.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let planned = plan.load.total_duration();
    let (snap_tx, snap_rx) =
        watch::channel(Arc::new(Snapshot::empty(plan.requests.len(), planned)));
    let (control_tx, control_rx) = mpsc::unbounded_channel();
    let controller = schedule::launch(plan, protocols, feeders, threads, control_rx, snap_tx)?;
    let task = runtime.spawn(controller.run());
    Ok(RunHandle {
        control: control_tx,
        snapshots: snap_rx,
        task,
    })
}
