//! swarm — a load tester whose plans are plain files and whose numbers can be trusted.
//!
//! The modules follow the pipeline a plan goes through:
//!
//! - [`plan`]: the plan file as the user wrote it (serde types, source text, spans, diagnostics);
//! - [`compile`]: validation and name resolution, producing the execution graph ([`compile::graph`]);
//! - [`engine`]: the only async part: scheduler, virtual users, HTTP;
//! - [`metrics`]: mergeable HDR aggregates, snapshots and SLO evaluation;
//! - [`report`]: console, JSON, JUnit and other sinks of the engine's results;
//! - [`demo`]: the built-in demo target;
//! - [`dashboard`]: the live web dashboard (cargo feature `ui`);
//! - [`cli`]: the command line, which ties the stages together.

pub mod cli;
pub mod compile;
#[cfg(feature = "ui")]
pub mod dashboard;
pub mod demo;
pub mod engine;
pub mod exit;
pub mod metrics;
pub mod plan;
pub mod report;
#[doc(hidden)]
pub mod testing;
