//! Capacity search and the SLO lines it builds on (windowed and aborting), against
//! real loopback targets on port 0. One test at a time ([`common::serial`]): load
//! tests sharing two cores would measure each other. No test judges the machine's
//! speed: the targets' capacity is set by their own sleeps and slots, far below what
//! a busy machine sends.

#[path = "../common/mod.rs"]
mod common;
mod lines;
mod search;
mod support;
