//! Measurements: mergeable HDR aggregates, snapshots and SLO evaluation.

pub mod failure;
pub mod slo;
pub mod snapshot;
pub mod stats;
