//! The engine's two halves for a run spread over many machines, with no transport in
//! them (the transport is the distributed layer's, above `run`):
//!
//! - [`start_coordinator`]: the controller of the whole run, whose threads are on
//!   other machines. It follows the load shape, hands out tickets, merges units and
//!   publishes snapshots exactly as for local threads; its commands come out of
//!   channels for a transport to carry, and the threads' events go into its channel.
//! - [`start_part`]: one machine's share of the threads, with the run-wide indices
//!   the coordinator gave it, and no controller: commands come in and events go out
//!   through the transport.
//!
//! Both sides share one [`RunClock`]: every machine starts its threads on the same
//! origin, so the load is not staggered by connection order and units are labelled
//! with the same seconds.

use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use super::config::EngineConfig;
use super::feeder::Feeders;
pub(crate) use super::link::{Events, RunClock, ThreadCmd, ThreadEvent};
pub(crate) use super::schedule::Part;
use super::schedule::{self, ControllerEnds};
use super::session::Protocols;
use super::{RunError, RunHandle};
use crate::compile::graph::CompiledPlan;
use crate::metrics::delta::Delta;
use crate::metrics::snapshot::Snapshot;

/// The threads a machine offers, as the run will use them (the open model uses no
/// more than `max_users` threads in all).
pub(crate) fn usable_threads(plan: &CompiledPlan, threads: usize) -> usize {
    schedule::thread_count(plan, threads)
}

/// The coordinator's run: the handle every sink and the dashboard use, the command
/// channels of every run-wide thread (index = thread), and where the threads'
/// events go.
pub(crate) struct CoordinatorRun {
    pub handle: RunHandle,
    pub cmds: Vec<mpsc::UnboundedReceiver<ThreadCmd>>,
    pub events: Events,
}

/// Starts the controller of a run whose threads are on other machines, each machine
/// `count` threads from run-wide index `first` (`parts`), with the origin `clock`. Call inside a tokio runtime. `saturated` is the machines' generator
/// verdict, shown in every snapshot.
pub(crate) fn start_coordinator(
    plan: Arc<CompiledPlan>,
    parts: &[(usize, usize)],
    clock: RunClock,
    saturated: watch::Receiver<Option<String>>,
) -> Result<CoordinatorRun, RunError> {
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| RunError::NoRuntime)?;
    if plan.flows.is_empty() {
        return Err(RunError::NoFlows);
    }
    let (snap_tx, snap_rx) = watch::channel(Arc::new(Snapshot::empty(
        plan.requests.len(),
        plan.load.total_duration(),
    )));
    let (control_tx, control_rx) = mpsc::unbounded_channel();
    let (event_tx, event_rx) = mpsc::unbounded_channel();
    let ends = ControllerEnds {
        events: event_rx,
        control: control_rx,
        snapshots: snap_tx,
    };
    let (controller, cmds) = schedule::remote(&plan, parts, clock, ends, saturated);
    let task = runtime.spawn(controller.run());
    Ok(CoordinatorRun {
        handle: RunHandle {
            control: control_tx,
            snapshots: snap_rx,
            task,
        },
        cmds,
        events: event_tx,
    })
}

/// One machine's threads: their commands (by local index), their events (tagged
/// with the run-wide index), where their emptied units go back, and the threads.
pub(crate) struct PartRun {
    pub part: Part,
    pub cmds: Vec<mpsc::UnboundedSender<ThreadCmd>>,
    pub recycle: Vec<std::sync::mpsc::Sender<Delta>>,
    pub events: mpsc::UnboundedReceiver<(usize, ThreadEvent)>,
    pub threads: Vec<std::thread::JoinHandle<()>>,
}

/// Starts this machine's share of a run: the threads `part` names, on the common
/// `clock`, with `unique` feeders cut to this machine's rows (`machine` of
/// `machines`). Nothing runs before the origin: arrivals wait for it, and users
/// start when the coordinator's first command arrives.
pub(crate) fn start_part(
    plan: Arc<CompiledPlan>,
    config: EngineConfig,
    part: Part,
    clock: RunClock,
    machine: usize,
    machines: usize,
) -> Result<PartRun, RunError> {
    if plan.flows.is_empty() {
        return Err(RunError::NoFlows);
    }
    let feeders = Arc::new(Feeders::load_share(&plan, machine, machines)?);
    let mut config = config;
    config.http.head_limit = plan.limits.head.unwrap_or(config.http.head_limit);
    config.http.body_limit = plan.limits.body.unwrap_or(config.http.body_limit);
    let protocols = Protocols::new(&config)?;
    let (event_tx, event_rx) = mpsc::unbounded_channel();
    let links = schedule::spawn_threads(&plan, &protocols, &feeders, part, clock, &event_tx)?;
    let mut run = PartRun {
        part,
        cmds: Vec::with_capacity(links.len()),
        recycle: Vec::with_capacity(links.len()),
        events: event_rx,
        threads: Vec::with_capacity(links.len()),
    };
    for link in links {
        run.cmds.push(link.cmds);
        run.recycle.push(link.recycle);
        run.threads.extend(link.thread);
    }
    Ok(run)
}
