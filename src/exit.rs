//! The process exit codes, documented in one place (and in the README).

/// The run completed and every SLO held (or, for `validate`, the plan is valid).
pub const OK: i32 = 0;
/// The run completed and at least one SLO (or the baseline gate) failed.
pub const SLO_FAILED: i32 = 1;
/// The plan or the command line is invalid; nothing was sent.
pub const INVALID: i32 = 2;
/// The run could not be carried out (a data file vanished, a report could not be written...).
pub const RUN_ERROR: i32 = 3;
/// A capacity search's answer cannot be trusted: the generator itself saturated, or
/// even the first step failed. The same code as [`RUN_ERROR`]: no usable result.
pub const UNTRUSTED: i32 = 3;
/// Interrupted by Ctrl-C or SIGTERM; the reports were still written.
pub const INTERRUPTED: i32 = 130;
