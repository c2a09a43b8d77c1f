//! The layers point one way: plan → compile → engine → metrics → report → run →
//! dist → dashboard → cli, with `k8s` (manifests for a distributed run, from a
//! compiled plan) above `dist`, whose options it writes, and beside `dashboard`.
//! This test reads the sources and fails when a lower layer names a higher one
//! (`crate::cli`, `super::super::dashboard`...), so a new arrow back up is caught
//! when it is written, not when it has grown a cycle.

use std::path::{Path, PathBuf};

/// The layers below `run`, which may name none of `run`, `dist`, `dashboard`, `cli`,
/// `k8s`.
const LOWER: [&str; 5] = ["plan", "compile", "engine", "metrics", "report"];

/// What each checked layer must not name.
fn forbidden(layer: &str) -> &'static [&'static str] {
    match layer {
        "run" => &["dist", "dashboard", "cli", "k8s"],
        "dist" => &["dashboard", "cli", "k8s"],
        "dashboard" => &["cli", "k8s"],
        "k8s" => &["run", "dashboard", "cli"],
        _ => &["run", "dist", "dashboard", "cli", "k8s"],
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The paths through which `text` could name module `name` of the crate root.
fn names_module(text: &str, name: &str) -> bool {
    let direct = [
        format!("crate::{name}"),
        format!("super::super::{name}"),
        format!("super::super::super::{name}"),
        format!("swarm::{name}"),
    ];
    direct.iter().any(|p| {
        text.match_indices(p.as_str()).any(|(i, _)| {
            // `crate::cli` but not `crate::client`.
            let rest = &text[i + p.len()..];
            !rest.starts_with(|c: char| c.is_alphanumeric() || c == '_')
        })
    })
}

fn violations(src: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for layer in LOWER.iter().chain(&["run", "dist", "dashboard", "k8s"]) {
        let mut files = Vec::new();
        rust_files(&src.join(layer), &mut files);
        for file in files {
            let text = std::fs::read_to_string(&file).expect("a readable source file");
            for up in forbidden(layer) {
                if names_module(&text, up) {
                    found.push(format!("{} names `{up}`", file.display()));
                }
            }
        }
    }
    found
}

#[test]
fn lower_layers_never_name_higher_ones() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = violations(&src);
    assert!(
        found.is_empty(),
        "layers pointing back up:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_sees_every_spelling_of_an_import() {
    assert!(names_module("use crate::cli::ProgressMode;", "cli"));
    assert!(names_module("use super::super::cli::X;", "cli"));
    assert!(names_module("crate::dashboard::assets", "dashboard"));
    assert!(!names_module("use crate::client::X;", "cli"));
    assert!(!names_module("use crate::report::page;", "dashboard"));
}
