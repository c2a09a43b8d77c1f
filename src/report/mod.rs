//! Sinks of a run's results: console, JSON, JUnit, Markdown summary, HTML.

#[cfg(test)]
pub(crate) mod fixture;
pub mod json;
