//! Plan diagnostics: every problem found in a plan, located by file, line and column,
//! and rendered all at once with a source snippet and a caret (miette).

use std::fmt;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::{Diagnostic, GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource};

/// One problem in a plan (line and column are 1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanDiagnostic {
    pub file: PathBuf,
    pub line: u32,
    pub column: u32,
    pub message: String,
    pub help: Option<String>,
}

/// Every problem found in a plan. `Display` renders each with a snippet and a caret.
#[derive(Debug, Clone)]
pub struct PlanErrors {
    pub diagnostics: Vec<PlanDiagnostic>,
    /// The plan's text, for snippets; `None` when the file could not be read.
    source: Option<Arc<str>>,
}

impl std::error::Error for PlanErrors {}

/// A problem found while checking, before it is given a line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diag {
    /// Byte offset into the plan text.
    pub pos: usize,
    pub message: String,
    pub help: Option<String>,
}

impl Diag {
    pub fn new(pos: usize, message: impl Into<String>) -> Self {
        Diag {
            pos,
            message: message.into(),
            help: None,
        }
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// The 1-based line and column (in characters) of a byte offset.
pub fn line_col(source: &str, pos: usize) -> (u32, u32) {
    let mut pos = pos.min(source.len());
    while !source.is_char_boundary(pos) {
        pos -= 1;
    }
    let before = &source[..pos];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(column).unwrap_or(u32::MAX),
    )
}

/// The byte offset of a 1-based line and column (in characters).
pub fn offset_of(source: &str, line: u32, column: u32) -> usize {
    let mut offset = 0;
    for (i, l) in source.split_inclusive('\n').enumerate() {
        if i + 1 == line as usize {
            let col_bytes: usize = l
                .chars()
                .take(column.saturating_sub(1) as usize)
                .map(char::len_utf8)
                .sum();
            return offset + col_bytes;
        }
        offset += l.len();
    }
    source.len()
}

impl PlanErrors {
    /// Diagnostics located in `source` (the text of `file`), sorted by position.
    pub fn from_diags(file: &Path, source: &str, mut diags: Vec<Diag>) -> Self {
        diags.sort_by_key(|d| d.pos);
        diags.dedup();
        let diagnostics = diags
            .into_iter()
            .map(|d| {
                let (line, column) = line_col(source, d.pos);
                PlanDiagnostic {
                    file: file.to_owned(),
                    line,
                    column,
                    message: d.message,
                    help: d.help,
                }
            })
            .collect();
        PlanErrors {
            diagnostics,
            source: Some(Arc::from(source)),
        }
    }

    /// A problem with the file as a whole (it cannot be read, has an unknown extension...).
    pub fn whole_file(file: &Path, message: impl Into<String>) -> Self {
        PlanErrors {
            diagnostics: vec![PlanDiagnostic {
                file: file.to_owned(),
                line: 1,
                column: 1,
                message: message.into(),
                help: None,
            }],
            source: None,
        }
    }

    /// The plan text the diagnostics point into, when it was read.
    pub fn source(&self) -> Option<&str> {
        self.source.as_deref()
    }

    fn render_one(&self, d: &PlanDiagnostic, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(source) = &self.source else {
            writeln!(f, "error: {}: {}", d.file.display(), d.message)?;
            if let Some(h) = &d.help {
                writeln!(f, "  help: {h}")?;
            }
            return Ok(());
        };
        let offset = offset_of(source, d.line, d.column);
        let len = token_len(&source[offset..]);
        let report = Located {
            message: d.message.clone(),
            help: d.help.clone(),
            src: NamedSource::new(d.file.display().to_string(), source.clone()),
            span: LabeledSpan::new_primary_with_span(Some("here".into()), (offset, len)),
        };
        let theme = if use_color() {
            GraphicalTheme::unicode()
        } else {
            GraphicalTheme::unicode_nocolor()
        };
        let handler = GraphicalReportHandler::new_themed(theme).with_width(100);
        let mut out = String::new();
        if handler.render_report(&mut out, &report).is_err() {
            return writeln!(
                f,
                "error: {}:{}:{}: {}",
                d.file.display(),
                d.line,
                d.column,
                d.message
            );
        }
        f.write_str(&out)
    }
}

/// The length of the token starting at `rest` (at least 1 byte, within one line).
fn token_len(rest: &str) -> usize {
    let line = rest.lines().next().unwrap_or("");
    if line.starts_with("{{")
        && let Some(end) = line.find("}}")
    {
        return end + 2;
    }
    let end = line
        .char_indices()
        .find(|(_, c)| c.is_whitespace() || matches!(c, ':' | ',' | '}' | ']'))
        .map_or(line.len(), |(i, _)| i);
    end.max(rest.chars().next().map_or(0, char::len_utf8))
}

fn use_color() -> bool {
    std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal()
}

impl fmt::Display for PlanErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            self.render_one(d, f)?;
        }
        let n = self.diagnostics.len();
        if n > 1 {
            writeln!(f, "\n{n} errors in the plan")?;
        }
        Ok(())
    }
}

/// A diagnostic in miette's shape, for rendering only.
#[derive(Debug)]
struct Located {
    message: String,
    help: Option<String>,
    src: NamedSource<Arc<str>>,
    span: LabeledSpan,
}

impl fmt::Display for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Located {}

impl Diagnostic for Located {
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.src)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        Some(Box::new(std::iter::once(self.span.clone())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_round_trips() {
        let src = "a: 1\nbé: 2\n  c: 3";
        for pos in [0, 3, 5, 9, src.len() - 1] {
            let (l, c) = line_col(src, pos);
            assert_eq!(offset_of(src, l, c), pos, "pos {pos}");
        }
        assert_eq!(line_col(src, 5), (2, 1));
        assert_eq!(line_col(src, src.len()), (3, 7));
    }

    #[test]
    fn renders_file_line_snippet_and_caret() {
        let src = "name: x\nflows: 3\n";
        let errs = PlanErrors::from_diags(
            Path::new("p.yaml"),
            src,
            vec![Diag::new(15, "flows must be a list").help("write `flows: [...]`")],
        );
        let text = errs.to_string();
        assert!(text.contains("p.yaml:2:8"), "{text}");
        assert!(text.contains("flows: 3"), "{text}");
        assert!(text.contains("flows must be a list"), "{text}");
        assert!(text.contains("write `flows: [...]`"), "{text}");
        assert!(text.contains('^') || text.contains('┬'), "{text}");
    }
}
