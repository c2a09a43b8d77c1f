//! One run of a compiled plan, from start to report: the [`RunSession`] that
//! `swarm check`, `swarm ui` (through the dashboard's launcher) and the examples all
//! use. It starts the engine, notes the wall-clock start, relays Ctrl-C and SIGTERM
//! ([`signals`]), waits for the end and builds the report model every sink renders
//! from ([`Ended::result`]).
//!
//! It sits between `report` and the dashboard: it uses compile, engine, metrics and
//! report, and knows nothing of the command line or the dashboard. (The engine's
//! `session` module is another thing: what each user keeps per protocol.)

pub mod search;
pub mod signals;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, watch};

use crate::compile::graph::CompiledPlan;
use crate::engine::config::EngineConfig;
use crate::engine::control::Control;
use crate::engine::search::SearchOutcome;
use crate::engine::{RunError, RunHandle};
use crate::metrics::capacity::CapacityReport;
use crate::metrics::snapshot::{EndReason, Snapshot};
use crate::report::RunResult;
use crate::report::baseline::Baseline;

pub use signals::Signals;

/// A running plan.
pub struct RunSession {
    plan: Arc<CompiledPlan>,
    started: SystemTime,
    handle: RunHandle,
}

/// How a run ended.
pub struct Ended {
    pub plan: Arc<CompiledPlan>,
    /// When the engine started the run (wall clock).
    pub started: SystemTime,
    /// The final snapshot; when the run failed midway or was abandoned, the last one
    /// seen, marked stopped or interrupted.
    pub snapshot: Arc<Snapshot>,
    /// Why the engine could not carry the run to its end.
    pub failure: Option<RunError>,
}

impl Ended {
    /// The report model of the run, compared with `baseline` (and its tolerance)
    /// when given.
    pub fn result(&self, baseline: Option<(&Baseline, f64)>) -> RunResult {
        RunResult::new(
            self.plan.clone(),
            self.snapshot.clone(),
            self.started,
            baseline,
        )
    }
}

/// How long a run that ended waits for its capacity search's answer.
const SEARCH_ANSWER_WAIT: Duration = Duration::from_secs(5);

/// `snapshot` with the search's final `record`. A search that ran to its answer
/// stopped the run itself: the run completed.
fn with_search(snapshot: &Arc<Snapshot>, record: CapacityReport) -> Arc<Snapshot> {
    let mut s = Snapshot::clone(snapshot);
    let finished = record
        .answer
        .as_ref()
        .is_some_and(|a| a.outcome != SearchOutcome::Stopped);
    if finished && s.end == EndReason::Stopped {
        s.end = EndReason::Completed;
    }
    s.search = Some(Arc::new(record));
    Arc::new(s)
}

impl RunSession {
    /// Starts running `plan`. Call inside a tokio runtime.
    pub fn start(plan: Arc<CompiledPlan>, engine: EngineConfig) -> Result<RunSession, RunError> {
        let started = SystemTime::now();
        let handle = crate::engine::start(plan.clone(), engine)?;
        Ok(RunSession {
            plan,
            started,
            handle,
        })
    }

    /// A run already started elsewhere (a coordinator's, whose threads are on
    /// other machines), with its wall-clock start.
    pub fn from_handle(
        plan: Arc<CompiledPlan>,
        started: SystemTime,
        handle: RunHandle,
    ) -> RunSession {
        RunSession {
            plan,
            started,
            handle,
        }
    }

    pub fn plan(&self) -> &Arc<CompiledPlan> {
        &self.plan
    }

    /// When the run started (wall clock).
    pub fn started(&self) -> SystemTime {
        self.started
    }

    /// The engine's snapshots, about one a second.
    pub fn snapshots(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.handle.snapshots()
    }

    /// Where to send control messages (users, rate, stop, reset).
    pub fn control(&self) -> mpsc::UnboundedSender<Control> {
        self.handle.control()
    }

    /// Waits for the run to end. With `signals`, the first Ctrl-C or SIGTERM
    /// interrupts the run (in-flight requests finish), and a second one stops
    /// waiting: the run then ends with what was measured so far.
    pub async fn wait(self, signals: Option<&mut Signals>) -> Ended {
        let RunSession {
            plan,
            started,
            handle,
        } = self;
        let snapshots = handle.snapshots();
        let control = handle.control();
        // A capacity search steers the run from beside it, through the same two ends
        // a coordinator would use; it stops the run when it has its answer.
        let mut driver = plan.load.search.clone().map(|spec| {
            let steer = search::Steering {
                control: control.clone(),
                snapshots: snapshots.clone(),
            };
            let plan = plan.clone();
            tokio::spawn(async move { search::drive(&plan, &spec, steer).await })
        });
        let wait = handle.wait();
        tokio::pin!(wait);
        let outcome = match signals {
            None => Some(wait.await),
            Some(signals) => {
                let mut interrupted = false;
                loop {
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
                }
            }
        };
        let last = || snapshots.borrow().clone();
        let (mut snapshot, failure) = match outcome {
            Some(Ok(snapshot)) => (snapshot, None),
            Some(Err(e)) => (Snapshot::ended(last(), EndReason::Stopped), Some(e)),
            None => (Snapshot::ended(last(), EndReason::Interrupted), None),
        };
        if let Some(task) = driver.as_mut() {
            // The search saw the run end (or ended it): its answer is moments away.
            match tokio::time::timeout(SEARCH_ANSWER_WAIT, &mut *task).await {
                Ok(Ok(record)) => snapshot = with_search(&snapshot, record),
                _ => task.abort(),
            }
        }
        Ended {
            plan,
            started,
            snapshot,
            failure,
        }
    }
}
