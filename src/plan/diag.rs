//! Plan diagnostics: every problem found in a plan, located by file, line and column,
//! and rendered all at once with a source snippet and a caret (miette).

use std::fmt;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::{
    Diagnostic, GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteError,
    MietteSpanContents, SourceCode, SourceSpan, SpanContents,
};

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

/// How many diagnostics are drawn with a snippet; the rest are counted. A generated
/// plan with 100,000 unknown keys gets a readable answer, not megabytes of stderr.
const MAX_SHOWN: usize = 50;

/// How many characters of a line a snippet shows around the caret.
const SNIPPET_WIDTH: usize = 100;

impl PlanErrors {
    /// Diagnostics located in `source` (the text of `file`), sorted by position.
    pub fn from_diags(file: &Path, source: &str, mut diags: Vec<Diag>) -> Self {
        diags.sort_by_key(|d| d.pos);
        diags.dedup();
        // Sorted, so lines are counted in one walk over the text, not once per diagnostic.
        let mut counted = (0, 1, 0); // (offset, line, offset where that line starts)
        let diagnostics = diags
            .into_iter()
            .map(|d| {
                let (line, column) = line_col_from(source, d.pos, &mut counted);
                PlanDiagnostic {
                    file: file.to_owned(),
                    line,
                    column,
                    message: shorten_quotes(&d.message),
                    help: d.help.as_deref().map(shorten_quotes),
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

    /// [`Self::whole_file`] with advice.
    pub fn whole_file_with_help(file: &Path, message: String, help: &str) -> Self {
        let mut errors = Self::whole_file(file, message);
        errors.diagnostics[0].help = Some(help.to_owned());
        errors
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
        let src = Excerpt::around(d.file.display().to_string(), source, offset, len);
        let report = Located {
            message: d.message.clone(),
            help: d.help.clone(),
            span: LabeledSpan::new_primary_with_span(Some("here".into()), src.span),
            src,
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

/// How many characters of a quoted value a message keeps.
const MAX_QUOTE: usize = 60;

/// The message with each quoted (`...`) value longer than [`MAX_QUOTE`] characters cut
/// in the middle: a 100 KB URL in a plan is named, not echoed.
fn shorten_quotes(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(1024));
    for (i, part) in message.split('`').enumerate() {
        if i > 0 {
            out.push('`');
        }
        let n = part.chars().count();
        if i % 2 == 1 && n > MAX_QUOTE {
            let keep = MAX_QUOTE / 2;
            out.extend(part.chars().take(keep));
            out.push('…');
            out.extend(part.chars().skip(n - keep));
        } else {
            out.push_str(part);
        }
    }
    out
}

/// The 1-based line and column of `pos`, continuing a walk that stopped at an earlier
/// offset (`walk` = the offset reached, its line, and where that line starts).
fn line_col_from(source: &str, pos: usize, walk: &mut (usize, usize, usize)) -> (u32, u32) {
    let mut pos = pos.min(source.len());
    while !source.is_char_boundary(pos) {
        pos -= 1;
    }
    let (from, line, line_start) = walk;
    for (i, _) in source[*from..pos].match_indices('\n') {
        *line += 1;
        *line_start = *from + i + 1;
    }
    *from = pos;
    let column = source[*line_start..pos].chars().count() + 1;
    (
        u32::try_from(*line).unwrap_or(u32::MAX),
        u32::try_from(column).unwrap_or(u32::MAX),
    )
}

/// The lines around one diagnostic, each cut to a window around the caret: a plan
/// written on one 100 KB line gets a snippet a hundred characters wide, not the line.
/// Line and column numbers still count in the whole plan.
#[derive(Debug)]
struct Excerpt {
    name: String,
    text: String,
    /// The 0-based line of the plan the excerpt starts at.
    first_line: usize,
    /// The diagnostic's span in `text`.
    span: SourceSpan,
    /// The 0-based column (in characters) of the diagnostic in the plan.
    column: usize,
}

impl Excerpt {
    fn around(name: String, source: &str, offset: usize, len: usize) -> Excerpt {
        let line_start = source[..offset].rfind('\n').map_or(0, |i| i + 1);
        let line_no = source[..line_start].matches('\n').count();
        let column = source[line_start..offset].chars().count();
        let line = source[line_start..].split('\n').next().unwrap_or("");
        let line = line.strip_suffix('\r').unwrap_or(line);
        let line_chars = line.chars().count();
        let skip = if line_chars <= SNIPPET_WIDTH {
            0
        } else {
            column
                .saturating_sub(SNIPPET_WIDTH / 2)
                .min(line_chars - SNIPPET_WIDTH)
        };
        let first_line = line_no.saturating_sub(1);
        let mut text = String::new();
        let mut span = SourceSpan::from((0, 0));
        let lines = source[..]
            .split('\n')
            .enumerate()
            .skip(first_line)
            .take(line_no + 2 - first_line);
        for (i, l) in lines {
            if i > first_line {
                text.push('\n');
            }
            let l = l.strip_suffix('\r').unwrap_or(l);
            // A context line too short to reach the window is shown from its start: it
            // is there to orient the reader, not to line up with the caret.
            let from = if l.chars().nth(skip).is_some() {
                skip
            } else {
                0
            };
            if from > 0 {
                text.push('…');
            }
            if i == line_no {
                let before: usize = l
                    .chars()
                    .skip(from)
                    .take(column - from)
                    .map(char::len_utf8)
                    .sum();
                let shown: usize = l
                    .chars()
                    .skip(from)
                    .take(SNIPPET_WIDTH)
                    .map(char::len_utf8)
                    .sum();
                let at = text.len() + before;
                span = SourceSpan::from((at, len.min(shown.saturating_sub(before))));
            }
            text.extend(l.chars().skip(from).take(SNIPPET_WIDTH));
            if l.chars().nth(from + SNIPPET_WIDTH).is_some() {
                text.push('…');
            }
        }
        Excerpt {
            name,
            text,
            first_line,
            span,
            column,
        }
    }
}

impl SourceCode for Excerpt {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let inner = self.text.read_span(span, before, after)?;
        // miette reads the diagnostic's own span without context for the `file:line:col`
        // header; that column is the plan's, not the excerpt's.
        let column = if before == 0 && after == 0 && span.offset() == self.span.offset() {
            self.column
        } else {
            inner.column()
        };
        Ok(Box::new(MietteSpanContents::new_named(
            self.name.clone(),
            inner.data(),
            *inner.span(),
            inner.line() + self.first_line,
            column,
            inner.line_count(),
        )))
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
        for (i, d) in self.diagnostics.iter().take(MAX_SHOWN).enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            self.render_one(d, f)?;
        }
        let n = self.diagnostics.len();
        if n > MAX_SHOWN {
            writeln!(
                f,
                "\n{n} errors in the plan (the first {MAX_SHOWN} are shown)"
            )?;
        } else if n > 1 {
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
    src: Excerpt,
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

    #[test]
    fn a_long_line_is_cut_around_the_caret() {
        let long = "x".repeat(100_000);
        let src = format!("name: a\nvars: {{ k: {long}, bogus: 1 }}\nload: 1\n");
        let pos = src.find("bogus").unwrap();
        let errs = PlanErrors::from_diags(
            Path::new("p.yaml"),
            &src,
            vec![Diag::new(pos, "unknown key `bogus`")],
        );
        let text = errs.to_string();
        assert!(text.len() < 2_000, "{} bytes: {text}", text.len());
        assert!(text.contains("p.yaml:2:100014"), "{text}");
        assert!(text.contains("…xxx"), "{text}");
        assert!(text.contains("bogus: 1 }"), "{text}");
        assert!(text.contains(" 1 │ name: a"), "{text}");
    }

    #[test]
    fn long_quoted_values_are_cut_in_messages() {
        let url = format!("/{}", "a".repeat(10_000));
        let src = format!("get: {url}\n");
        let errs = PlanErrors::from_diags(
            Path::new("p.yaml"),
            &src,
            vec![Diag::new(5, format!("the URL `{url}` is bad"))],
        );
        let m = &errs.diagnostics[0].message;
        assert!(
            m.len() < 200 && m.contains("`/aaa") && m.contains("…") && m.ends_with("` is bad"),
            "{m}"
        );
        assert!(errs.to_string().len() < 2_000);
    }

    #[test]
    fn many_diagnostics_are_counted_not_all_drawn() {
        let src: String = (0..10_000).map(|i| format!("k{i}: 1\n")).collect();
        let diags = (0..10_000)
            .map(|i| Diag::new(src.find(&format!("k{i}:")).unwrap(), "unknown key"))
            .collect();
        let errs = PlanErrors::from_diags(Path::new("p.yaml"), &src, diags);
        assert_eq!(errs.diagnostics.len(), 10_000);
        assert_eq!(
            (errs.diagnostics[9_999].line, errs.diagnostics[9_999].column),
            (10_000, 1)
        );
        let text = errs.to_string();
        assert!(
            text.contains("10000 errors in the plan (the first 50 are shown)"),
            "{}",
            &text[text.len() - 200..]
        );
        assert_eq!(text.matches("unknown key").count(), 50);
    }
}
