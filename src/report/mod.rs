//! Sinks of a run's results: console, JSON, JUnit, Markdown summary, HTML.
pub mod html;
