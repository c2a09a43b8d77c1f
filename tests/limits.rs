//! Plans as a careless generator or an attacker writes them, through `swarm validate`
//! on real files: a mapping of 100,000 keys, a YAML alias bomb, a 100 MB plan, a plan
//! on one 100 KB line. Each gets a clear, located error, soon (bounds are generous:
//! they catch minutes, never judge speed) and in bounded memory.

mod measured;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use measured::{Measured, run_measured};

/// Far above what reading a plan of at most 8 MiB costs, far below what an expanded
/// alias bomb or a buffered 100 MB file would.
const MEMORY_BOUND: u64 = 400 * 1024 * 1024;

fn validate(path: &Path) -> Measured {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_swarm"));
    cmd.arg("validate").arg(path).env("NO_COLOR", "1");
    let m = run_measured(&mut cmd, Duration::from_secs(120));
    assert_eq!(m.code(), 2, "{}", m.stderr);
    assert!(
        m.peak_rss < MEMORY_BOUND,
        "peak RSS {} MB\n{}",
        m.peak_rss >> 20,
        m.stderr
    );
    assert!(!m.stderr.contains("panicked"), "{}", m.stderr);
    m
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The duplicate-key check once compared each key with every earlier one: 100,000 keys
/// took 20 s in release and minutes in a debug build (more keys pass the YAML limits).
#[test]
fn a_mapping_of_100_000_keys_with_a_duplicate_is_rejected_at_the_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("name: x\nvars:\n");
    for i in 0..100_000 {
        text.push_str(&format!("  key_{i:07}: v\n"));
    }
    text.push_str("  key_0000000: again\n");
    let m = validate(&write(dir.path(), "keys.yaml", &text));
    assert!(m.stderr.contains("duplicate"), "{}", m.stderr);
    assert!(m.stderr.contains("keys.yaml:100003:3"), "{}", m.stderr);
}

#[test]
fn a_yaml_alias_bomb_is_refused_with_a_sentence_at_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..10 {
        let refs = vec![format!("*a{}", i - 1); 9].join(", ");
        text.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    let m = validate(&write(dir.path(), "bomb.yaml", &text));
    assert!(m.stderr.contains("alias bomb"), "{}", m.stderr);
    assert!(!m.stderr.contains("Nodes {"), "{}", m.stderr);
    assert!(m.stderr.contains("bomb.yaml:"), "{}", m.stderr);
}

#[test]
fn a_100_mb_plan_is_refused_before_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.yaml");
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(100 * 1024 * 1024).unwrap();
    let m = validate(&path);
    assert!(
        m.stderr
            .contains("the plan is 100.0 MiB; plans are limited to 8 MiB"),
        "{}",
        m.stderr
    );
    assert!(m.stderr.contains("huge.yaml"), "{}", m.stderr);
}

#[test]
fn a_plan_within_the_size_limit_but_made_of_one_huge_value_still_answers() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "name: x\nvars:\n  a: \"{}\"\nload: 3\n",
        "x".repeat(7 << 20)
    );
    let m = validate(&write(dir.path(), "big.yaml", &text));
    assert!(m.stderr.contains("big.yaml:4:7"), "{}", m.stderr);
    assert!(
        m.stderr.len() < 10_000,
        "{} bytes of stderr",
        m.stderr.len()
    );
}

/// The snippet of a one-line plan once echoed the whole line (450 KB of stderr); miette
/// also panics drawing a caret past column 65,535.
#[test]
fn a_one_line_plan_error_shows_a_cut_snippet() {
    let dir = tempfile::tempdir().unwrap();
    let path = format!("/{}", "a".repeat(100_000));
    let text = format!(
        "{{name: x, load: {{users: 1, duration: 1s}}, flows: [{{name: a, steps: [{{get: \"{path}\", bogus: 1}}]}}]}}\n"
    );
    let m = validate(&write(dir.path(), "line.yaml", &text));
    assert!(m.stderr.len() < 5_000, "{} bytes of stderr", m.stderr.len());
    assert!(m.stderr.contains("unknown key `bogus`"), "{}", m.stderr);
    assert!(m.stderr.contains(", bogus: 1}]}]}"), "{}", m.stderr);
    assert!(m.stderr.contains("line.yaml:1:"), "{}", m.stderr);
}

#[test]
fn deep_nesting_is_refused_in_yaml_and_toml() {
    let dir = tempfile::tempdir().unwrap();
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let m = validate(&write(
        dir.path(),
        "deep.yaml",
        &format!("name: x\nvars: {{a: {deep}}}\n"),
    ));
    assert!(m.stderr.contains("deep.yaml:2:"), "{}", m.stderr);
    let m = validate(&write(
        dir.path(),
        "deep.toml",
        &format!("name = \"x\"\n[vars]\na = {deep}\n"),
    ));
    assert!(m.stderr.contains("deep.toml:3:"), "{}", m.stderr);
}

/// Request names are fixed when the plan compiles (a step's `name`, or its URL as
/// written, before templating): a path made distinct per request by a template still
/// counts under one name, so the stats can never grow with the number of URLs.
#[test]
fn templated_urls_keep_one_request_name_each() {
    let dir = tempfile::tempdir().unwrap();
    let plan = write(
        dir.path(),
        "careless.yaml",
        "name: careless\nload: { users: 4, duration: 2s }\nflows:\n  - name: f\n    steps:\n\
         \x20     - get: \"/products/{{ rand(1, 1000000) }}\"\n\
         \x20     - get: \"/health?id={{ uuid() }}\"\n",
    );
    let report = dir.path().join("report.json");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_swarm"));
    cmd.arg("check")
        .arg(&plan)
        .args(["--demo", "--progress", "none", "--json"])
        .arg(&report)
        .env("NO_COLOR", "1");
    let m = run_measured(&mut cmd, Duration::from_secs(120));
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&report)
            .unwrap_or_else(|e| panic!("no report ({e}): {}", m.stderr)),
    )
    .unwrap();
    let names: Vec<&str> = json["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["GET /products/{{ rand(1, 1000000) }}", "GET /health"],
        "{}",
        m.stderr
    );
    assert!(json["total"]["count"].as_u64().unwrap() > 10, "{json}");
}
