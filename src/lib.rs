//! swarm — a load tester whose plans are plain files and whose numbers can be trusted.
//!
//! The modules follow the pipeline a plan goes through:
//!
//! - [`plan`]: the plan file as the user wrote it (serde types, source text, spans, diagnostics);
//! - [`compile`]: validation and name resolution, producing the execution graph ([`compile::graph`]);
//! - [`engine`]: the only async part: scheduler, virtual users, HTTP;
//! - [`metrics`]: mergeable HDR aggregates, snapshots and SLO evaluation;
//! - [`report`]: the report model, and the console, JSON, JUnit and other sinks that
//!   render it;
//! - [`run`]: one run ([`run::RunSession`]), from engine start to report model, with its
//!   signals;
//! - [`dist`]: one run on many machines: the coordinator and its workers;
//! - [`demo`]: the built-in demo target;
//! - [`k8s`]: the Kubernetes manifests of a run on many machines (`swarm k8s`);
//! - [`dashboard`]: the live web dashboard (cargo feature `ui`);
//! - [`cli`]: the command line, which ties the stages together, reads the
//!   environment and decides the exit code.
//!
//! The layers point one way: no module in `plan`, `compile`, `engine`, `metrics` or
//! `report` names `run`, `dist`, `dashboard` or `cli`; `run` names none of the last
//! three and `dist` neither of the last two (a test reads the sources to check).

pub mod cli;
pub mod compile;
#[cfg(feature = "ui")]
pub mod dashboard;
pub mod demo;
pub mod dist;
pub mod engine;
pub mod exit;
pub mod k8s;
pub mod metrics;
pub mod plan;
pub mod report;
pub mod run;
#[doc(hidden)]
pub mod testing;

#[cfg(test)]
mod layers_tests;
