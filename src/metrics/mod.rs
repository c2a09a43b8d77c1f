//! Measurements: mergeable HDR aggregates, snapshots and SLO evaluation.

pub mod aggregate;
pub mod failure;
pub mod generator;
pub mod slo;
pub mod snapshot;
pub mod stats;
pub mod window;
