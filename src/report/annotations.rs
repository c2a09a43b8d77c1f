//! GitHub Actions annotations: under `GITHUB_ACTIONS=true`, each failed SLO and each
//! plan error becomes a workflow command (`::error file=…,line=…,col=…::…`) that
//! GitHub shows on the plan's line in the run page and the pull request's diff.
//!
//! Workflow commands are lines on stdout. Their property values escape `%`, `\r`,
//! `\n`, `:` and `,`; their message escapes `%`, `\r` and `\n` (the rules of
//! GitHub's own toolkit). File paths are made relative to `$GITHUB_WORKSPACE` (the
//! repository root), which is what GitHub matches against. The command line reads
//! those variables once into a [`Github`]; nothing here reads the environment.

use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

use super::comparison::{self, BaselineComparison};
use super::{RunResult, Sink, SinkError};
use crate::metrics::figures::trim_float;
use crate::metrics::slo::SloVerdict;
use crate::plan::PlanErrors;

/// What annotations need to know about the GitHub Actions job, read by the command
/// line from `GITHUB_ACTIONS`, `GITHUB_WORKSPACE` and the current directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Github {
    /// `GITHUB_ACTIONS=true`: annotations are printed.
    pub actions: bool,
    /// `GITHUB_WORKSPACE`: the repository root, which file paths are relative to.
    pub workspace: Option<PathBuf>,
    /// The current directory, which relative plan paths start from.
    pub cwd: Option<PathBuf>,
}

impl Github {
    /// `path` as GitHub matches it: relative to the workspace when inside it.
    pub fn path(&self, path: &Path) -> String {
        relative_to_workspace(path, self.cwd.as_deref(), self.workspace.as_deref())
    }
}

/// The severity of an annotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Error,
    Warning,
    Notice,
}

impl Level {
    fn command(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Notice => "notice",
        }
    }
}

/// Where an annotation points; `line` and `col` are 1-based.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    pub file: Option<String>,
    pub line: Option<u32>,
    pub col: Option<u32>,
}

/// One workflow command line, newline included.
pub fn annotation(level: Level, at: &Location, title: &str, message: &str) -> String {
    let mut props = Vec::new();
    if let Some(file) = &at.file {
        props.push(format!("file={}", escape_property(file)));
    }
    if let Some(line) = at.line {
        props.push(format!("line={line}"));
    }
    if let Some(col) = at.col {
        props.push(format!("col={col}"));
    }
    props.push(format!("title={}", escape_property(title)));
    format!(
        "::{} {}::{}\n",
        level.command(),
        props.join(","),
        escape_data(message)
    )
}

/// One `::error` per failed SLO, pointing at its line in `file` (the implied SLO,
/// which has no line, points at the file). `file` is as GitHub names it ([`Github::path`]).
pub fn slo_failures(verdicts: &[SloVerdict], file: &str) -> String {
    let mut out = String::new();
    for v in verdicts.iter().filter(|v| !v.passed) {
        let at = Location {
            file: Some(file.to_string()),
            line: v.line,
            col: v.column,
        };
        let title = format!("SLO failed: {}", v.label());
        let message = format!("{}: {}", v.label(), v.summary());
        out.push_str(&annotation(Level::Error, &at, &title, &message));
    }
    out
}

/// One `::error` per metric that regressed against the baseline, on the plan `file`
/// (as GitHub names it).
pub fn regressions(cmp: &BaselineComparison, file: &str) -> String {
    let at = Location {
        file: Some(file.to_string()),
        ..Location::default()
    };
    let mut out = String::new();
    for (name, m) in cmp.regressions() {
        let title = format!("Regression: {name} {}", m.metric.name());
        let mut message = format!(
            "{name}: {} against the baseline {} (tolerance {}%)",
            comparison::describe(m),
            cmp.file,
            trim_float(cmp.tolerance * 100.0, 1)
        );
        if m.change.is_none() {
            message.push_str("; the baseline was 0");
        }
        out.push_str(&annotation(Level::Error, &at, &title, &message));
    }
    out
}

/// One `::error` for a plan diagnostic at `file:line:col` (1-based; `file` as GitHub
/// names it).
pub fn plan_error(file: &str, line: u32, col: u32, message: &str, help: Option<&str>) -> String {
    let at = Location {
        file: Some(file.to_string()),
        line: Some(line),
        col: Some(col),
    };
    let mut text = message.to_string();
    if let Some(help) = help {
        let _ = write!(text, "\nhelp: {help}");
    }
    annotation(Level::Error, &at, "Invalid plan", &text)
}

/// One `::error` per diagnostic of an invalid plan, at its line and column.
pub fn plan_errors(errors: &PlanErrors, github: &Github) -> String {
    errors
        .diagnostics
        .iter()
        .map(|d| {
            let file = github.path(&d.file);
            plan_error(&file, d.line, d.column, &d.message, d.help.as_deref())
        })
        .collect()
}

/// Under GitHub Actions, prints one `::error` annotation per plan diagnostic on
/// stdout, so a failed `swarm check` or `swarm validate` points at the plan's lines.
pub fn print_plan_errors(errors: &PlanErrors, github: &Github) {
    if github.actions {
        print!("{}", plan_errors(errors, github));
    }
}

/// Prints the annotations of a finished run on stdout (under GitHub Actions only):
/// failed SLOs, and regressions against the baseline when the report has one.
#[derive(Debug, Clone, Default)]
pub struct AnnotationSink {
    pub github: Github,
}

impl AnnotationSink {
    pub fn new(github: Github) -> Self {
        AnnotationSink { github }
    }

    /// The annotations for `result`, whether or not they would be printed.
    pub fn render(&self, result: &RunResult) -> String {
        let file = self.github.path(&result.plan.source);
        let mut out = slo_failures(&result.report.slos, &file);
        if let Some(cmp) = &result.report.baseline {
            out.push_str(&regressions(cmp, &file));
        }
        out
    }
}

impl Sink for AnnotationSink {
    fn emit(&mut self, result: &RunResult) -> Result<(), SinkError> {
        if self.github.actions {
            use std::io::Write as _;
            let text = self.render(result);
            let mut stdout = std::io::stdout().lock();
            // stdout closed (a broken pipe) must not fail the run: annotations are extras.
            let _ = stdout
                .write_all(text.as_bytes())
                .and_then(|()| stdout.flush());
        }
        Ok(())
    }
}

/// `path` (relative to `cwd` when not absolute) relative to `workspace` when inside
/// it, with `/` separators; else `path` as given.
pub fn relative_to_workspace(path: &Path, cwd: Option<&Path>, workspace: Option<&Path>) -> String {
    let as_given = || path.to_string_lossy().replace('\\', "/");
    let Some(workspace) = workspace else {
        return as_given();
    };
    let absolute = match (path.is_absolute(), cwd) {
        (true, _) => path.to_path_buf(),
        (false, Some(cwd)) => cwd.join(path),
        (false, None) => return as_given(),
    };
    // Symlinked folders (macOS /var → /private/var) must not hide that the plan is
    // inside the workspace: compare real paths when both exist.
    let real = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| normalize(p));
    match real(&absolute).strip_prefix(real(workspace)) {
        Ok(rel) => rel.to_string_lossy().replace('\\', "/"),
        Err(_) => as_given(),
    }
}

/// Removes `.` and resolves `..` lexically.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

/// Escapes a workflow command's message.
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a workflow command's property value.
pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_follows_the_toolkit_rules() {
        assert_eq!(escape_data("50% a\r\nb: c, d"), "50%25 a%0D%0Ab: c, d");
        assert_eq!(escape_property("a:b,c%\n"), "a%3Ab%2Cc%25%0A");
    }

    #[test]
    fn paths_are_relative_to_the_workspace() {
        let ws = Path::new("/nonexistent/ws");
        let rel = |p: &str, cwd: &str| {
            relative_to_workspace(Path::new(p), Some(Path::new(cwd)), Some(ws))
        };
        assert_eq!(rel("plans/a.yaml", "/nonexistent/ws"), "plans/a.yaml");
        assert_eq!(rel("a.yaml", "/nonexistent/ws/plans"), "plans/a.yaml");
        assert_eq!(
            rel("../plans/./a.yaml", "/nonexistent/ws/sub"),
            "plans/a.yaml"
        );
        assert_eq!(
            rel("/elsewhere/a.yaml", "/nonexistent/ws"),
            "/elsewhere/a.yaml"
        );
        assert_eq!(
            relative_to_workspace(Path::new("a.yaml"), None, None),
            "a.yaml"
        );
    }

    #[test]
    fn a_location_is_optional() {
        let line = annotation(Level::Warning, &Location::default(), "t", "m");
        assert_eq!(line, "::warning title=t::m\n");
    }
}
