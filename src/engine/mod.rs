//! The engine: the only async part. Schedules virtual users, sends HTTP, measures.

pub mod config;
pub mod control;
pub mod http;
