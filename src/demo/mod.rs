//! The built-in demo target: a small shop API to load-test against.
