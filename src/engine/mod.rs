//! The engine: the only async part. Schedules virtual users, sends HTTP, measures.

pub mod capture;
pub mod config;
pub mod control;
pub mod expect;
pub mod http;
pub mod render;
pub mod request;
