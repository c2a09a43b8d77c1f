//! The compiler: turns a parsed plan into a validated [`graph::CompiledPlan`].

pub mod graph;
pub mod jsonpath;
