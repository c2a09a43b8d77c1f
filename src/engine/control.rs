//! Control messages a running engine accepts: the dashboard, the CLI's signal
//! handler and (later) capacity search and the distributed coordinator steer a run
//! through these, never by touching engine state.

use std::sync::Arc;

use crate::metrics::capacity::CapacityReport;

/// A command for a running engine.
#[derive(Debug, Clone, PartialEq)]
pub enum Control {
    /// Closed model: steer towards `users` users, starting or stopping them at
    /// `spawn_rate` per second (all at once when `None`). Overrides any stages.
    SetUsers { users: u32, spawn_rate: Option<f64> },
    /// Open model: set the arrival rate, per second. Overrides any stages.
    SetRate { rate: f64 },
    /// End the run: users stop after their in-flight request; reports are still written.
    Stop,
    /// Ctrl-C or SIGTERM: like `Stop`, but the run ends as interrupted.
    Interrupt,
    /// Zero all statistics and the time series, as if the run started now.
    ResetStats,
    /// The capacity search's record so far: attached to every snapshot from now on,
    /// so that the reports, the dashboard and a coordinator see the steps.
    Search(Arc<CapacityReport>),
}
