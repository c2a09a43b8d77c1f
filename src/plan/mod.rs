//! The plan file as the user wrote it: source text, a located document tree
//! ([`node`]), the raw serde types that mirror the file ([`raw`], deserialized by
//! [`de`]), and diagnostics ([`diag`]). Meaning is checked by [`crate::compile`].

pub mod de;
pub mod diag;
pub mod node;
pub mod raw;
pub mod spanned;

use std::path::Path;

pub use diag::{Diag, PlanDiagnostic, PlanErrors};
use node::Node;
use raw::RawPlan;

/// The file formats a plan can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Toml,
}

impl Format {
    /// The format of a plan file, from its extension.
    pub fn of(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "yaml" | "yml" => Some(Format::Yaml),
            "toml" => Some(Format::Toml),
            _ => None,
        }
    }
}

/// The largest plan read, in bytes. Plans are written by people; past this size the
/// text is generated data (which belongs in a data file) or a mistake, and reading it
/// would cost memory for nothing. The YAML reader has its own limits on top (values,
/// aliases, nesting; see [`node::parse_yaml`]).
pub const MAX_PLAN_BYTES: usize = 8 * 1024 * 1024;

fn too_large(len: u64) -> String {
    format!(
        "the plan is {:.1} MiB; plans are limited to {} MiB",
        len as f64 / (1024.0 * 1024.0),
        MAX_PLAN_BYTES / (1024 * 1024)
    )
}

const TOO_LARGE_HELP: &str = "put bulk data in a CSV file and read it with `data:`";

/// Reads a plan file, refusing one larger than [`MAX_PLAN_BYTES`] before reading it.
pub fn read_source(path: &Path) -> Result<String, PlanErrors> {
    use std::io::Read;
    let fail = |message: String| Err(PlanErrors::whole_file(path, message));
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => return fail(format!("cannot read the plan: {e}")),
    };
    // The length is checked on what is read too: the file may grow, or be a pipe.
    let mut bytes = Vec::new();
    if let Err(e) = file.take(MAX_PLAN_BYTES as u64 + 1).read_to_end(&mut bytes) {
        return fail(format!("cannot read the plan: {e}"));
    }
    if bytes.len() > MAX_PLAN_BYTES {
        let len = std::fs::metadata(path).map_or(bytes.len() as u64, |m| m.len());
        return Err(PlanErrors::whole_file_with_help(
            path,
            too_large(len),
            TOO_LARGE_HELP,
        ));
    }
    String::from_utf8(bytes).or_else(|_| fail("the plan is not UTF-8 text".into()))
}

/// Reads plan text into a located tree; a syntax error becomes one diagnostic.
pub fn parse_tree(source: &str, format: Format) -> Result<Node, Diag> {
    if source.len() > MAX_PLAN_BYTES {
        return Err(Diag::new(0, too_large(source.len() as u64)).help(TOO_LARGE_HELP));
    }
    let parsed = match format {
        Format::Yaml => node::parse_yaml(source),
        Format::Toml => node::parse_toml(source),
    };
    parsed.map_err(|e| {
        let pos = e
            .pos
            .or_else(|| e.line_col.map(|(l, c)| diag::offset_of(source, l, c)))
            .unwrap_or(0);
        let what = match format {
            Format::Yaml => "YAML",
            Format::Toml => "TOML",
        };
        Diag::new(pos, format!("invalid {what}: {}", e.message))
    })
}

/// Deserializes the raw plan from a tree. Unknown keys are reported (all of them) but
/// do not stop it. A value of the wrong type does; to report the others too, the value
/// is blanked out (as if absent) and the plan read again, until no new problem shows.
pub fn parse_raw(tree: &Node) -> (Option<RawPlan>, Vec<Diag>) {
    if tree.kind == node::Kind::Null {
        return (
            None,
            vec![Diag::new(0, "the plan is empty").help("a plan needs `name`, `load` and `flows`")],
        );
    }
    const MAX_PASSES: usize = 32;
    let mut tree = std::borrow::Cow::Borrowed(tree);
    let mut diags = Vec::new();
    let mut failed_at: Vec<usize> = Vec::new();
    for _ in 0..MAX_PASSES {
        let ctx = de::Ctx::default();
        let result = de::from_node::<RawPlan>(&tree, &ctx);
        diags.extend(ctx.unknown.into_inner());
        match result {
            Ok(plan) if failed_at.is_empty() => return (Some(plan), diags),
            Ok(_) => break,
            Err(e) => {
                let d = e.into_diag(tree.pos);
                if failed_at.contains(&d.pos) {
                    break;
                }
                failed_at.push(d.pos);
                let pos = d.pos;
                diags.push(d);
                if !blank_out(tree.to_mut(), pos) {
                    break;
                }
            }
        }
    }
    diags.sort_by_key(|d| d.pos);
    diags.dedup();
    (None, diags)
}

/// Replaces the innermost node written at `pos` with null; false when there is none.
fn blank_out(node: &mut Node, pos: usize) -> bool {
    let found_inside = match &mut node.kind {
        node::Kind::Seq(items) => items.iter_mut().any(|n| blank_out(n, pos)),
        node::Kind::Map(entries) => entries.iter_mut().any(|(_, n)| blank_out(n, pos)),
        _ => false,
    };
    if found_inside {
        return true;
    }
    if node.pos == pos && node.kind != node::Kind::Null {
        node.kind = node::Kind::Null;
        return true;
    }
    false
}

/// The plan as a JSON value (for schema validation), or the syntax error.
pub fn to_json(source: &str, format: Format) -> Result<serde_json::Value, Diag> {
    parse_tree(source, format).map(|n| n.to_json())
}
