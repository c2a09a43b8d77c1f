//! One run on many machines: a coordinator (`swarm check --coordinator`) and its
//! workers (`swarm worker URL`). See `docs/distributed.md` for the protocol.
//!
//! The engine already talks to its threads only through messages
//! (`crate::engine::link`); here those messages cross a network. The coordinator runs
//! the one controller of the run (`crate::engine::remote::start_coordinator`): it
//! follows the load shape, hands out iteration tickets, merges every worker's
//! per-second units exactly and publishes the snapshots that the SLO verdicts, the
//! reports and the dashboard read, as for a run on one machine. Each worker runs a
//! share of the run's threads (`crate::engine::remote::start_part`) under their
//! run-wide indices, so users, arrivals, the pool and tickets split as they do
//! between the threads of one machine, and the parts add up exactly.
//!
//! - [`proto`]: the messages and their frames;
//! - `transport`: TCP, optional TLS, WebSocket, the token;
//! - [`coordinator`]: gathering workers, sending the plan, the barrier, the run;
//! - [`worker`]: compiling what the coordinator sent, running its part, relaying.
//!
//! It sits above `run` and below the dashboard and the command line.

pub mod coordinator;
pub mod proto;
mod transport;
pub mod worker;

use std::sync::{Arc, Mutex};

pub use transport::LinkError;

use crate::report::json::WorkerReport;

/// What the coordinator does when a worker is lost mid-run: the value of
/// `--on-worker-loss`, for `swarm check` and for the manifests of `swarm k8s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OnLoss {
    /// End the run with exit code 3, naming the worker.
    #[default]
    Fail,
    /// Go on with the other workers; every report marks the gap.
    Continue,
}

impl OnLoss {
    /// The value as `--on-worker-loss` spells it.
    pub fn as_arg(self) -> &'static str {
        match self {
            OnLoss::Fail => "fail",
            OnLoss::Continue => "continue",
        }
    }
}

/// Where a worker is in the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerState {
    Joined,
    Running,
    Done,
    Lost,
}

impl WorkerState {
    pub fn name(self) -> &'static str {
        match self {
            WorkerState::Joined => "joined",
            WorkerState::Running => "running",
            WorkerState::Done => "done",
            WorkerState::Lost => "lost",
        }
    }
}

/// One row of the workers table.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerRow {
    pub name: String,
    pub address: String,
    pub threads: u32,
    pub state: WorkerState,
    pub status: proto::Status,
    /// Seconds into the run when it was lost, and why.
    pub lost: Option<(f64, String)>,
}

/// The workers of a run, as the dashboard and the reports show them.
#[derive(Debug, Clone, Default)]
pub struct Workers(Arc<Mutex<Vec<WorkerRow>>>);

impl Workers {
    /// A copy of the table.
    pub fn rows(&self) -> Vec<WorkerRow> {
        self.0.lock().map(|rows| rows.clone()).unwrap_or_default()
    }

    fn update(&self, index: usize, f: impl FnOnce(&mut WorkerRow)) {
        if let Ok(mut rows) = self.0.lock()
            && let Some(row) = rows.get_mut(index)
        {
            f(row);
        }
    }

    fn push(&self, row: WorkerRow) {
        if let Ok(mut rows) = self.0.lock() {
            rows.push(row);
        }
    }

    /// The workers lost mid-run: name, when, why.
    pub fn lost(&self) -> Vec<(String, f64, String)> {
        self.rows()
            .into_iter()
            .filter_map(|r| r.lost.map(|(at, why)| (r.name, at, why)))
            .collect()
    }

    /// The table as the JSON report lists it.
    pub fn report(&self) -> Vec<WorkerReport> {
        self.rows()
            .into_iter()
            .map(|r| WorkerReport {
                name: r.name,
                address: r.address,
                threads: r.threads,
                state: r.state.name().to_owned(),
                lost_at_s: r.lost.as_ref().map(|(at, _)| *at),
                error: r.lost.map(|(_, why)| why),
                saturated: r.status.saturated,
            })
            .collect()
    }
}
