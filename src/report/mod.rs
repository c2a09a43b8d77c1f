//! Sinks of a run's results: console, JSON, JUnit, Markdown summary, HTML, GitHub
//! annotations, baseline gate (and the dashboard's downloads). Every sink renders the
//! same [`RunResult`], whose report model is the JSON report's types: built once when
//! the run ends, with the SLO verdicts and the baseline comparison in it. None of the
//! sinks reaches into the engine, reads the environment or knows the command line.
//! Files are written atomically ([`write_atomic`]): a reader never sees half a report.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use crate::compile::graph::CompiledPlan;
use crate::metrics::capacity::CapacityReport;
use crate::metrics::slo;
use crate::metrics::snapshot::Snapshot;

pub mod annotations;
pub mod baseline;
pub mod capacity;
pub mod comparison;
pub mod console;
#[cfg(test)]
pub(crate) mod fixture;
pub mod html;
pub mod json;
pub mod junit;
pub mod page;
pub mod progress;
pub mod summary;

use json::JsonReport;

/// Everything a sink may need about a finished (or interrupted) run.
#[derive(Debug, Clone)]
pub struct RunResult {
    pub plan: Arc<CompiledPlan>,
    /// The final snapshot (the last one seen, when the run failed midway): the HTML
    /// page's charts are drawn from its series.
    pub snapshot: Arc<Snapshot>,
    /// The report model every sink renders from: statistics, SLO verdicts (in plan
    /// order) and the baseline comparison.
    pub report: JsonReport,
}

impl RunResult {
    /// Evaluates the SLOs on `snapshot`, compares with `baseline` (and its tolerance)
    /// when given, and builds the report of a run that started at `started`.
    pub fn new(
        plan: Arc<CompiledPlan>,
        snapshot: Arc<Snapshot>,
        started: SystemTime,
        baseline: Option<(&baseline::Baseline, f64)>,
    ) -> Self {
        // A search's verdicts are those of the step that decided its answer.
        let verdicts = match snapshot.search.as_deref() {
            Some(record) => deciding_verdicts(record),
            None => None,
        }
        .unwrap_or_else(|| slo::evaluate(&plan, &snapshot));
        let mut report = JsonReport::build(&plan, &snapshot, &verdicts, started);
        if let Some(record) = snapshot.search.as_deref() {
            report.passed = record.answer.as_ref().is_some_and(|a| a.passed);
            report.search = Some(record.clone());
        }
        report.baseline = baseline.map(|(b, tolerance)| baseline::compare(b, &report, tolerance));
        RunResult {
            plan,
            snapshot,
            report,
        }
    }

    /// Whether every SLO held (for a capacity search: whether its gate held).
    pub fn passed(&self) -> bool {
        self.report.passed
    }

    /// Whether a capacity search's answer cannot be trusted.
    pub fn untrusted(&self) -> bool {
        (self.report.search.as_ref())
            .and_then(|s| s.answer.as_ref())
            .is_some_and(|a| !a.trusted)
    }
}

/// The SLO verdicts of the step that decided a search's answer: the last run of the
/// capacity's level, else the lowest failure, else the last step.
fn deciding_verdicts(record: &CapacityReport) -> Option<Vec<slo::SloVerdict>> {
    let answer = record.answer.as_ref();
    let at = |level: Option<f64>| {
        let level = level?;
        record.steps.iter().rev().find(|s| s.level == level)
    };
    at(answer.and_then(|a| a.capacity))
        .or_else(|| at(answer.and_then(|a| a.failed_at)))
        .or(record.steps.last())
        .map(|s| s.slos.clone())
}

/// Why a sink could not do its job.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// A report file could not be written (exit code 3).
    #[error("could not write the {sink} report to {}: {source}", path.display())]
    Write {
        sink: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// A report could not be rendered (exit code 3).
    #[error("could not render the {sink} report: {message}")]
    Render { sink: &'static str, message: String },
    /// A gate the sink checks did not hold, e.g. a regression against a baseline
    /// (exit code 1, like a failed SLO).
    #[error("{sink}: {message}")]
    Gate { sink: &'static str, message: String },
}

/// One consumer of a run's result.
pub trait Sink {
    /// Renders and delivers the result.
    fn emit(&mut self, result: &RunResult) -> Result<(), SinkError>;
}

/// The sinks of one run, emitted in the order they were added.
#[derive(Default)]
pub struct Sinks {
    sinks: Vec<Box<dyn Sink>>,
}

impl Sinks {
    pub fn new() -> Self {
        Sinks::default()
    }

    pub fn push(&mut self, sink: impl Sink + 'static) -> &mut Self {
        self.sinks.push(Box::new(sink));
        self
    }

    pub fn len(&self) -> usize {
        self.sinks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sinks.is_empty()
    }

    /// Emits `result` to every sink. One failing sink does not stop the others; every
    /// error is returned.
    pub fn emit_all(&mut self, result: &RunResult) -> Vec<SinkError> {
        self.sinks
            .iter_mut()
            .filter_map(|sink| sink.emit(result).err())
            .collect()
    }
}

/// Writes `bytes` to `path` atomically: into a temporary file in the same directory,
/// flushed to disk, then renamed over `path`. Readers see the old file or the new
/// one, never a partial write; on error no temporary file is left behind.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Writes a rendered report file for sink `sink`, mapping errors to [`SinkError`].
pub fn write_report(sink: &'static str, path: &Path, bytes: &[u8]) -> Result<(), SinkError> {
    write_atomic(path, bytes).map_err(|source| SinkError::Write {
        sink,
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_the_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.json");
        write_atomic(&path, b"old").unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn atomic_write_into_a_missing_directory_fails_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("report.json");
        assert!(write_atomic(&path, b"x").is_err());
        assert!(!path.exists());
        let err = write_report("json", &path, b"x").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("could not write the json report to")
        );
    }

    struct Failing;
    impl Sink for Failing {
        fn emit(&mut self, _: &RunResult) -> Result<(), SinkError> {
            Err(SinkError::Render {
                sink: "failing",
                message: "boom".into(),
            })
        }
    }

    struct Counting(std::rc::Rc<std::cell::Cell<u32>>);
    impl Sink for Counting {
        fn emit(&mut self, _: &RunResult) -> Result<(), SinkError> {
            self.0.set(self.0.get() + 1);
            Ok(())
        }
    }

    #[test]
    fn a_failing_sink_does_not_stop_the_others() {
        let result = fixture::result(Vec::new(), |_| {});
        let count = std::rc::Rc::new(std::cell::Cell::new(0));
        let mut sinks = Sinks::new();
        sinks.push(Failing).push(Counting(count.clone()));
        let errors = sinks.emit_all(&result);
        assert_eq!(errors.len(), 1);
        assert_eq!(count.get(), 1);
        assert_eq!(sinks.len(), 2);
    }
}
