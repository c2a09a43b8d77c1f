//! The plan language end to end: `swarm validate` on valid and invalid plans (the
//! shared examples, the project's own `plans/`, and one fixture per invalid case),
//! `swarm schema` against the checked-in schema, one short `swarm check` against a
//! loopback server to see a `--var` arrive, and a property test proving the compiler
//! never panics on arbitrary input.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::output_within;
use proptest::prelude::*;
use swarm::compile::{CompileOptions, compile_str};

const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/shared-plans");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn swarm(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_swarm"));
    cmd.args(args)
        .env("NO_COLOR", "1")
        .env_remove("SWARM_TARGET")
        .env_remove("SWARM_TEST_SURELY_UNSET")
        .env_remove("SWARM_TEST_NO_HOST")
        .env_remove("SWARM_TEST_NO_REGION");
    output_within(&mut cmd, Duration::from_secs(60))
}

fn validate(path: &Path, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec!["validate", path.to_str().expect("utf-8 path")];
    args.extend_from_slice(extra);
    let out = swarm(&args);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The plan files (.yaml, .yml, .toml) directly in `dir`, sorted.
fn plans_in(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml" | "toml")
            )
        })
        .collect();
    out.sort();
    out
}

fn valid_plans() -> Vec<PathBuf> {
    let mut all = plans_in(Path::new(SHARED));
    all.extend(plans_in(&Path::new(ROOT).join("plans")));
    all.extend(plans_in(&Path::new(ROOT).join("tests/fixtures/valid")));
    assert!(all.len() >= 10, "found only {all:?}");
    all
}

#[test]
fn every_valid_plan_validates() {
    // A plan that reads its gRPC schema by reflection asks its target when it is
    // compiled: the demo answers for it.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let demo = rt
        .block_on(swarm::demo::start("127.0.0.1:0".parse().unwrap()))
        .unwrap();
    let demo_url = demo.url();
    for plan in valid_plans() {
        let text = std::fs::read_to_string(&plan).unwrap();
        let extra: &[&str] = if text.contains("reflection: true") {
            &["--target", &demo_url]
        } else {
            &[]
        };
        let (code, stdout, stderr) = validate(&plan, extra);
        assert_eq!(code, 0, "{}:\n{stderr}", plan.display());
        assert!(stdout.contains("is valid"), "{stdout}");
        assert!(stdout.contains("load "), "{stdout}");
        assert!(stdout.contains("slo "), "{stdout}");
    }
}

#[test]
fn every_shared_invalid_plan_exits_2_naming_file_and_line() {
    let plans = plans_in(&Path::new(SHARED).join("invalid"));
    assert!(plans.len() >= 5);
    for plan in plans {
        let (code, _, stderr) = validate(&plan, &[]);
        assert_eq!(code, 2, "{}:\n{stderr}", plan.display());
        let name = plan.file_name().unwrap().to_str().unwrap();
        let located = stderr
            .lines()
            .any(|l| l.contains(&format!("{name}:")) && l.matches(':').count() >= 2);
        assert!(located, "{name} not located:\n{stderr}");
    }
    let (_, _, stderr) = validate(&Path::new(SHARED).join("invalid/unknown-key.yaml"), &[]);
    assert!(stderr.contains("unknown-key.yaml:9:"), "{stderr}");
    assert!(stderr.contains("did you mean `expect`?"), "{stderr}");
}

/// Each fixture lists what it must report as `# expect: LINE: fragment` comments.
#[test]
fn every_invalid_fixture_reports_its_expected_messages() {
    let fixtures = plans_in(&Path::new(ROOT).join("tests/fixtures/invalid"));
    assert!(fixtures.len() >= 40, "found {}", fixtures.len());
    for fixture in fixtures {
        let text = std::fs::read_to_string(&fixture).unwrap();
        let expected: Vec<(u32, &str)> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# expect: "))
            .map(|e| {
                let (line, fragment) = e.split_once(": ").expect("# expect: LINE: fragment");
                (line.parse().expect("a line number"), fragment)
            })
            .collect();
        let name = fixture.file_name().unwrap().to_str().unwrap();
        assert!(!expected.is_empty(), "{name} has no `# expect:` line");
        let (code, stdout, stderr) = validate(&fixture, &[]);
        assert_eq!(code, 2, "{name}:\n{stdout}{stderr}");
        for (line, fragment) in expected {
            assert!(
                stderr.contains(&format!("{name}:{line}:")),
                "{name}: nothing reported at line {line}:\n{stderr}"
            );
            assert!(
                stderr.contains(fragment),
                "{name}: missing `{fragment}`:\n{stderr}"
            );
        }
        assert!(
            stderr.contains('│') || stderr.contains('|'),
            "{name}: no snippet:\n{stderr}"
        );
        assert!(!stderr.contains("\x1b["), "{name}: colour with NO_COLOR");
    }
}

#[test]
fn command_line_overrides_are_checked() {
    let quick = Path::new(ROOT).join("plans/quickstart.yaml");
    let (code, stdout, stderr) = validate(
        &quick,
        &[
            "--users",
            "3",
            "--duration",
            "1m30s",
            "--target",
            "http://localhost:9",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("3 users"), "{stdout}");
    assert!(stdout.contains("for 1m30s"), "{stdout}");
    assert!(stdout.contains("http://localhost:9"), "{stdout}");

    let open = Path::new(SHARED).join("open-model.yaml");
    let (code, _, stderr) = validate(&open, &["--users", "3"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("--users applies to the closed model"),
        "{stderr}"
    );

    let (code, _, stderr) = validate(&quick, &["--duration", "soon"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--duration"), "{stderr}");

    let (code, _, stderr) = validate(&quick, &["--var", "nope=1"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--var nope"), "{stderr}");

    let (code, _, stderr) = validate(&quick, &["--var", "novalue"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("expected K=V"), "{stderr}");

    let (code, _, stderr) = validate(&quick, &["--target", "ftp://x"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--target `ftp://x`"), "{stderr}");

    let (code, _, stderr) = validate(Path::new("/nonexistent/plan.yaml"), &[]);
    assert_eq!(code, 2);
    assert!(stderr.contains("cannot read the plan"), "{stderr}");
}

/// `--duration` ends a plan that sets no end, and `--users` gives a model to a load
/// that names none.
#[test]
fn overrides_fill_in_what_the_plan_leaves_out() {
    let no_end = Path::new(ROOT).join("tests/fixtures/invalid/no-end.yaml");
    let (code, stdout, stderr) = validate(&no_end, &["--duration", "30s"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("for 30s"), "{stdout}");

    let dir = std::env::temp_dir().join(format!("swarm-no-model-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let no_model = dir.join("no-model.yaml");
    std::fs::write(
        &no_model,
        "name: t\ntarget: http://127.0.0.1:8080\nload: { duration: 5s }\nflows: [{ name: f, steps: [{ get: /health }] }]\n",
    )
    .unwrap();
    let (code, _, stderr) = validate(&no_model, &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("the load has no model"), "{stderr}");
    let (code, stdout, stderr) = validate(&no_model, &["--users", "3"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("3 users"), "{stdout}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--var` and `--target` replace values whose `${ENV}` is unset, so the unset
/// variables are no error.
#[test]
fn overrides_rescue_unset_environment_variables() {
    let plan = Path::new(ROOT).join("tests/fixtures/invalid/env-unset.yaml");
    let (code, stdout, stderr) = validate(
        &plan,
        &["--var", "key=abc", "--target", "http://127.0.0.1:8080"],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("is valid"), "{stdout}");
}

#[test]
fn var_override_reaches_the_plan() {
    let plan = Path::new(ROOT).join("plans/vars.yaml");
    let (code, stdout, stderr) = validate(&plan, &["--var", "page_size=50"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("is valid"));

    // `validate` prints no values, so a short run against a loopback server shows
    // what the requests carry: the override, never the plan's `page_size: 10`.
    let (target, seen) = recording_server();
    let out = output_within(
        Command::new(env!("CARGO_BIN_EXE_swarm"))
            .args(["check", plan.to_str().unwrap(), "--var", "page_size=50"])
            .args(["--target", &target, "--users", "1", "--duration", "500ms"])
            .args(["--progress", "none", "--quiet"])
            .env("NO_COLOR", "1")
            .env_remove("SWARM_TARGET")
            .env_remove("GITHUB_STEP_SUMMARY"),
        Duration::from_secs(60),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen = seen.lock().unwrap();
    assert_eq!(
        seen.iter().map(String::as_str).collect::<Vec<_>>(),
        ["/products?page=1&size=50"]
    );
}

/// A loopback HTTP server that answers every request with 200 and records the
/// distinct paths (with query) it was asked for; returns its base URL.
fn recording_server() -> (String, Arc<Mutex<BTreeSet<String>>>) {
    let seen = Arc::new(Mutex::new(BTreeSet::new()));
    let recorded = seen.clone();
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        recorded.lock().unwrap().insert(uri.to_string());
        async { "ok" }
    });
    (format!("http://{}", common::serve(app)), seen)
}

#[test]
fn schema_matches_the_checked_in_file() {
    let out = swarm(&["schema"]);
    assert_eq!(out.status.code(), Some(0));
    let generated = String::from_utf8(out.stdout).unwrap();
    let checked_in =
        std::fs::read_to_string(Path::new(ROOT).join("schemas/plan.schema.json")).unwrap();
    assert!(
        generated == checked_in,
        "schemas/plan.schema.json is out of date; regenerate it with\n\n    cargo run -- schema > schemas/plan.schema.json\n"
    );
}

#[test]
fn every_valid_plan_passes_the_schema() {
    let text = std::fs::read_to_string(Path::new(ROOT).join("schemas/plan.schema.json")).unwrap();
    let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    for plan in valid_plans() {
        let source = std::fs::read_to_string(&plan).unwrap();
        let format = swarm::plan::Format::of(&plan).unwrap();
        let value = swarm::plan::to_json(&source, format).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", plan.display());
    }
    // And the schema rejects what the parser rejects: an unknown key.
    let bad = std::fs::read_to_string(Path::new(SHARED).join("invalid/unknown-key.yaml")).unwrap();
    let value = swarm::plan::to_json(&bad, swarm::plan::Format::Yaml).unwrap();
    assert!(!validator.is_valid(&value));
}

#[test]
fn the_project_plans_start_with_the_schema_line() {
    for plan in plans_in(&Path::new(ROOT).join("plans")) {
        if plan.extension().is_some_and(|e| e == "toml") {
            continue;
        }
        let text = std::fs::read_to_string(&plan).unwrap();
        assert!(
            text.starts_with("# yaml-language-server: $schema=../schemas/plan.schema.json\n"),
            "{}",
            plan.display()
        );
    }
}

/// Text that looks like a plan: keys, flow maps, templates, SLO lines, odd bytes.
fn yamlish() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("name: x\n".to_owned()),
        Just("target: http://127.0.0.1:1\n".to_owned()),
        Just("load: { users: 1, duration: 1s }\n".to_owned()),
        Just("load:\n  stages: [{ duration: 0s, users: -1 }]\n".to_owned()),
        Just("flows:\n  - name: f\n    steps:\n".to_owned()),
        Just("      - get: /a/{{ rand(1, 2) }}\n".to_owned()),
        Just("      - get: '/{{ x'\n".to_owned()),
        Just(
            "        expect: { status: [200, 2xx], json: { $.a: { len: { gte: 1 } } } }\n"
                .to_owned()
        ),
        Just("        capture: { t: $.t, e: { header: etag }, r: { regex: '(' } }\n".to_owned()),
        Just("slo:\n  - p95 < 1s\n  - a: [p99 < , error_rate < 1%]\n".to_owned()),
        Just("vars: { a: ${NOPE}, b: ${B:-1} }\n".to_owned()),
        Just("data: { d: { csv: nope.csv } }\n".to_owned()),
        Just("&a [*a]\n".to_owned()),
        Just("<<: *x\n".to_owned()),
        Just("- \n".to_owned()),
        Just("{{{{}}}}: ]]\n".to_owned()),
        "[ -~\t\n]{0,40}",
        "\\PC{0,12}",
    ];
    prop::collection::vec(token, 0..12).prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let text = String::from_utf8_lossy(&bytes);
        for name in ["p.yaml", "p.toml"] {
            if let Err(e) = compile_str(&text, Path::new(name), &CompileOptions::default()) {
                prop_assert!(!e.diagnostics.is_empty());
                let _ = e.to_string();
            }
        }
    }

    #[test]
    fn arbitrary_yamlish_text_never_panics(text in yamlish()) {
        let opts = CompileOptions { users: Some(2), ..CompileOptions::default() };
        for name in ["p.yaml", "p.toml"] {
            match compile_str(&text, Path::new(name), &opts) {
                Ok(plan) => prop_assert!(!plan.flows.is_empty()),
                Err(e) => {
                    prop_assert!(!e.diagnostics.is_empty());
                    for d in &e.diagnostics {
                        prop_assert!(d.line >= 1 && d.column >= 1);
                    }
                    let _ = e.to_string();
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    /// JSONPath, regex, SLO and template text from the user never panics the compiler.
    #[test]
    fn arbitrary_expressions_never_panic(
        path in "\\$[\\[\\]?@.*:,()'\"a-z0-9 <>=!&|-]{0,24}",
        re in "[\\[\\](){}*+?.\\\\^$|a-z0-9]{0,16}",
        slo in "[a-z0-9 .<>=%:/-]{0,24}",
        tpl in "[{} a-z0-9(),.-]{0,24}",
        dur in "[0-9.a-z]{0,8}",
    ) {
        let src = format!(
            "name: x\ntarget: http://127.0.0.1:1\nload: {{ users: 1, duration: {dur:?} }}\nflows:\n  - name: f\n    think: {dur:?}\n    steps:\n      - get: {tpl:?}\n        expect:\n          json: {{ {path:?}: {{ matches: {re:?} }} }}\n          latency: {dur:?}\n        capture: {{ a: {path:?}, b: {{ regex: {re:?} }} }}\nslo:\n  - {slo:?}\n"
        );
        if let Err(e) = compile_str(&src, Path::new("p.yaml"), &CompileOptions::default()) {
            prop_assert!(!e.diagnostics.is_empty());
            let _ = e.to_string();
        }
    }
}

/// The exact rendering of diagnostics (paths redacted): message, location, snippet,
/// caret and help, for several errors at once.
#[test]
fn diagnostics_render_with_snippets_and_carets() {
    let fixture = Path::new(ROOT).join("tests/fixtures/invalid/many-unknown-keys.yaml");
    let (code, _, stderr) = validate(&fixture, &[]);
    assert_eq!(code, 2);
    let redacted = stderr.replace(ROOT, "[ROOT]");
    insta::assert_snapshot!(redacted);
}

/// The summary `swarm validate` prints for a valid plan (paths redacted).
#[test]
fn validate_summarises_what_would_run() {
    let (code, stdout, stderr) = validate(&Path::new(ROOT).join("plans/shop.yaml"), &[]);
    assert_eq!(code, 0, "{stderr}");
    // The fingerprint changes with every edit of the plan or its data.
    let fingerprint = regex::Regex::new("[0-9a-f]{64}").unwrap();
    let stdout = stdout.replace(ROOT, "[ROOT]");
    insta::assert_snapshot!(fingerprint.replace(&stdout, "[FINGERPRINT]"));
}
