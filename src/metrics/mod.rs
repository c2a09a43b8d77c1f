//! Measurements: mergeable HDR aggregates, snapshots and SLO evaluation.

pub mod aggregate;
pub mod capacity;
pub mod delta;
pub mod failure;
pub mod figures;
pub mod generator;
pub mod series;
pub mod slo;
pub mod snapshot;
pub mod stats;
pub mod window;
pub mod wire;
