//! Sinks of a run's results: console, JSON, JUnit, Markdown summary, HTML.

pub mod annotations;
pub mod baseline;
#[cfg(test)]
pub(crate) mod fixture;
pub mod json;
pub mod summary;
