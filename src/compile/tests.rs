//! Compiler tests on small plans written inline, and on the shared example plans.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::graph::*;
use super::*;

fn shared(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/shared-plans")
        .join(name)
}

fn compile(src: &str) -> Result<CompiledPlan, PlanErrors> {
    compile_str(src, Path::new("inline.yaml"), &CompileOptions::default())
}

fn errors(src: &str) -> Vec<String> {
    match compile(src) {
        Ok(_) => panic!("expected errors"),
        Err(e) => e
            .diagnostics
            .iter()
            .map(|d| {
                format!(
                    "{}:{}: {}{}",
                    d.line,
                    d.column,
                    d.message,
                    d.help
                        .as_ref()
                        .map(|h| format!(" ({h})"))
                        .unwrap_or_default()
                )
            })
            .collect(),
    }
}

const HEAD: &str = "name: t\ntarget: http://127.0.0.1:1\nload: { users: 1, duration: 1s }\n";

#[test]
fn shop_compiles_into_a_full_graph() {
    let plan = compile_file(&shared("shop.yaml"), &CompileOptions::default()).unwrap();
    assert_eq!(plan.name, "shop");
    assert_eq!(plan.flows.len(), 2);
    assert_eq!(plan.flows[0].weight, 3);
    let names: Vec<&str> = plan.requests.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "list products",
            "product detail",
            "POST /login",
            "who am i",
            "add to cart"
        ]
    );
    assert_eq!(plan.feeders[0].columns, ["user", "password"]);
    assert!(plan.feeders[0].path.is_absolute());
    let (login, login_http) = http_call(&plan.flows[1].setup[0]);
    assert_eq!(login.feeders, vec![FeederId(0)]);
    assert_eq!(login.timeout, Duration::from_secs(5));
    assert_eq!(
        login_http.url.as_literal(),
        Some("http://127.0.0.1:8080/login")
    );
    assert_eq!(login_http.headers[0].0.as_str(), "accept");
    let (_, cart_http) = http_call(&plan.flows[1].steps[1]);
    assert_eq!(cart_http.headers.len(), 2);
    assert!(matches!(
        cart_http.headers[1].1.segments[1],
        Segment::Slot(SlotId(1))
    ));
    let Some(Body::Json(JsonTemplate::Object(fields))) = &cart_http.body else {
        panic!("json body")
    };
    assert!(
        matches!(&fields[0].1, JsonTemplate::String(t) if t.segments == vec![Segment::Func(Func::Rand { lo: 1, hi: 50 })])
    );
    let descriptions: Vec<&str> = plan
        .expectations
        .iter()
        .map(|e| e.description.as_str())
        .collect();
    assert!(descriptions.contains(&"status 200"), "{descriptions:?}");
    assert!(descriptions.contains(&"header content-type contains \"json\""));
    assert!(descriptions.contains(&"json $.items len == 10"));
    assert!(descriptions.contains(&"json $.items[0].price > 0"));
    assert_eq!(
        plan.captures[0].description,
        "capture product from $.items[0].id"
    );
    assert_eq!(plan.slos.len(), 5);
    assert_eq!(plan.slos[2].request, Some(RequestId(0)));
    assert_eq!(plan.slos[2].line, Some(63));
    assert_eq!(plan.slos[1].threshold, 0.005);
    assert!(
        matches!(plan.load.model, LoadModel::Closed(ClosedLoad::Stages(ref s)) if s.len() == 3)
    );
    assert_eq!(plan.load.total_duration(), Some(Duration::from_secs(18)));
}

#[test]
fn every_shared_valid_plan_compiles() {
    for name in [
        "quickstart.yaml",
        "shop.yaml",
        "shop.toml",
        "open-model.yaml",
        "failing-slo.yaml",
    ] {
        if let Err(e) = compile_file(&shared(name), &CompileOptions::default()) {
            panic!("{name}:\n{e}");
        }
    }
}

#[test]
fn shared_invalid_plans_fail_at_the_right_line() {
    let cases = [
        ("unknown-key.yaml", 9, "unknown key `expcet`"),
        ("bad-jsonpath.yaml", 11, "invalid JSONPath"),
        ("bad-slo.yaml", 10, "not a duration"),
        ("bad-slo.yaml", 11, "no request is named `nope`"),
        ("undefined-var.yaml", 9, "`token` is not defined"),
        ("broken-yaml.yaml", 0, "invalid YAML"),
    ];
    for (file, line, fragment) in cases {
        let e = compile_file(
            &shared(&format!("invalid/{file}")),
            &CompileOptions::default(),
        )
        .unwrap_err();
        assert!(
            e.diagnostics
                .iter()
                .any(|d| (line == 0 || d.line == line) && d.message.contains(fragment)),
            "{file}: {:?}",
            e.diagnostics
        );
    }
    let e = compile_file(
        &shared("invalid/unknown-key.yaml"),
        &CompileOptions::default(),
    )
    .unwrap_err();
    assert_eq!(
        e.diagnostics[0].help.as_deref(),
        Some("did you mean `expect`?")
    );
}

#[test]
fn toml_and_yaml_agree() {
    let plan = compile_file(&shared("shop.toml"), &CompileOptions::default()).unwrap();
    assert_eq!(plan.slos.len(), 3);
    assert_eq!(plan.slos[2].line, Some(4));
    assert_eq!(plan.requests[1].name, "GET /health");
}

#[test]
fn implied_slo_and_default_timeout() {
    let plan = compile(&format!(
        "{HEAD}flows: [{{ name: f, steps: [{{ get: /x }}] }}]\n"
    ))
    .unwrap();
    assert_eq!(plan.slos.len(), 1);
    assert_eq!(plan.slos[0].metric, Metric::Failures);
    assert_eq!(plan.slos[0].line, None);
    let (r, _) = http_call(&plan.flows[0].steps[0]);
    assert_eq!(r.timeout, DEFAULT_TIMEOUT);
}

#[test]
fn collects_all_semantic_errors() {
    let errs = errors(&format!(
        "{HEAD}flows:\n  - name: f\n    weight: 0\n    think: soon\n    steps:\n      - get: /a/{{{{ x }}}}\n        timeout: 5\n        expect: {{ status: 700, json: {{ $.a: {{ lenn: 1 }} }} }}\n"
    ));
    assert_eq!(errs.len(), 6, "{errs:#?}");
}

#[test]
fn overrides() {
    let src = format!(
        "{HEAD}vars: {{ size: 10 }}\nflows: [{{ name: f, steps: [{{ get: '/p?s={{{{ size }}}}' }}] }}]\n"
    );
    let opts = CompileOptions {
        vars: vec![("size".into(), "50".into())],
        target: Some("http://localhost:9".into()),
        users: Some(7),
        duration: Some(Duration::from_secs(3)),
        env: Vec::new(),
        provided: Vec::new(),
    };
    let plan = compile_str(&src, Path::new("p.yaml"), &opts).unwrap();
    let (_, r_http) = http_call(&plan.flows[0].steps[0]);
    assert_eq!(
        r_http.url.segments,
        vec![
            Segment::Literal("http://localhost:9/p?s=".into()),
            Segment::Const(serde_json::json!(50))
        ]
    );
    assert_eq!(plan.target, "http://localhost:9");
    assert_eq!(
        plan.load.model,
        LoadModel::Closed(ClosedLoad::Fixed {
            users: 7,
            spawn_rate: None
        })
    );
    assert_eq!(plan.load.duration, Some(Duration::from_secs(3)));
    let bad = CompileOptions {
        vars: vec![("sise".into(), "1".into())],
        ..Default::default()
    };
    let e = compile_str(&src, Path::new("p.yaml"), &bad).unwrap_err();
    assert_eq!(
        e.diagnostics[0].help.as_deref(),
        Some("did you mean `--var size=...`?")
    );
}

#[test]
fn users_override_keeps_the_length_of_stages() {
    let src = "name: t\ntarget: http://127.0.0.1:1\nload:\n  stages: [{ duration: 5s, users: 3 }, { duration: 10s, users: 0 }]\nflows: [{ name: f, steps: [{ get: /x }] }]\n";
    let opts = CompileOptions {
        users: Some(4),
        ..Default::default()
    };
    let plan = compile_str(src, Path::new("p.yaml"), &opts).unwrap();
    assert_eq!(plan.load.duration, Some(Duration::from_secs(15)));
    let open = "name: t\ntarget: http://127.0.0.1:1\nload: { arrival_rate: 5/s, duration: 1s }\nflows: [{ name: f, steps: [{ get: /x }] }]\n";
    let e = compile_str(open, Path::new("p.yaml"), &opts).unwrap_err();
    assert!(e.diagnostics[0].message.contains("open"), "{e}");
}

#[test]
fn open_model_defaults_max_users() {
    let src = "name: t\ntarget: http://127.0.0.1:1\nload: { arrival_rate: 600/m, duration: 1s }\nflows: [{ name: f, steps: [{ get: /x }] }]\n";
    let plan = compile(src).unwrap();
    assert_eq!(
        plan.load.model,
        LoadModel::Open(OpenLoad {
            rate: RateShape::Fixed(10.0),
            max_users: 1000
        })
    );
}

#[test]
fn a_url_starting_with_a_variable_can_be_absolute() {
    let src = "name: t\nvars: { base: 'http://127.0.0.1:9/api' }\nload: { users: 1, duration: 1s }\nflows: [{ name: f, steps: [{ get: '{{ base }}/x?y=1' }] }]\n";
    let plan = compile(src).unwrap();
    let (_, r_http) = http_call(&plan.flows[0].steps[0]);
    assert_eq!(
        r_http.url.segments[0],
        Segment::Const("http://127.0.0.1:9/api".into())
    );
    assert_eq!(plan.requests[0].name, "GET {{ base }}/x");
}

#[test]
fn yaml_1_1_boolean_words_stay_strings() {
    let src = format!(
        "{HEAD}flows:\n  - name: f\n    steps:\n      - post: /x\n        json: {{ n: 1, y: yes, on: off, t: true }}\n"
    );
    let plan = compile(&src).unwrap();
    let (_, req_http) = http_call(&plan.flows[0].steps[0]);
    let Some(Body::Json(JsonTemplate::Value(body))) = &req_http.body else {
        panic!("expected a constant JSON body, got {:?}", req_http.body)
    };
    assert_eq!(
        body,
        &serde_json::json!({ "n": 1, "y": "yes", "on": "off", "t": true })
    );
}

#[test]
fn overrides_fill_in_a_missing_end_and_model() {
    let flows = "flows: [{ name: f, steps: [{ get: /x }] }]\n";
    let no_end = format!("name: t\ntarget: http://127.0.0.1:1\nload: {{ users: 2 }}\n{flows}");
    let opts = CompileOptions {
        duration: Some(Duration::from_secs(30)),
        ..Default::default()
    };
    let plan = compile_str(&no_end, Path::new("p.yaml"), &opts).unwrap();
    assert_eq!(plan.load.duration, Some(Duration::from_secs(30)));
    let e = compile_str(&no_end, Path::new("p.yaml"), &CompileOptions::default()).unwrap_err();
    assert_eq!(e.diagnostics[0].message, "the run has no end");

    let no_model =
        format!("name: t\ntarget: http://127.0.0.1:1\nload: {{ duration: 5s }}\n{flows}");
    let opts = CompileOptions {
        users: Some(4),
        ..Default::default()
    };
    let plan = compile_str(&no_model, Path::new("p.yaml"), &opts).unwrap();
    assert_eq!(
        plan.load.model,
        LoadModel::Closed(ClosedLoad::Fixed {
            users: 4,
            spawn_rate: None
        })
    );
    let e = compile_str(&no_model, Path::new("p.yaml"), &CompileOptions::default()).unwrap_err();
    assert_eq!(e.diagnostics[0].message, "the load has no model");

    // `--users` keeps the plan's `spawn_rate`, even when the plan sets no `users`.
    let spawn =
        format!("name: t\ntarget: http://127.0.0.1:1\nload: {{ spawn_rate: 2/s }}\n{flows}");
    let both = CompileOptions {
        users: Some(4),
        duration: Some(Duration::from_secs(30)),
        ..Default::default()
    };
    let plan = compile_str(&spawn, Path::new("p.yaml"), &both).unwrap();
    assert_eq!(
        plan.load.model,
        LoadModel::Closed(ClosedLoad::Fixed {
            users: 4,
            spawn_rate: Some(2.0)
        })
    );
    assert_eq!(plan.load.duration, Some(Duration::from_secs(30)));
}

#[test]
fn var_override_rescues_an_unset_env_default() {
    let src = format!(
        "{HEAD}vars: {{ key: '${{SWARM_TEST_SURELY_UNSET}}' }}\nflows: [{{ name: f, steps: [{{ get: '/p?k={{{{ key }}}}' }}] }}]\n"
    );
    let e = compile(&src).unwrap_err();
    assert!(
        e.diagnostics[0].message.contains("SWARM_TEST_SURELY_UNSET"),
        "{e}"
    );
    let opts = CompileOptions {
        vars: vec![("key".into(), "abc".into())],
        ..Default::default()
    };
    let plan = compile_str(&src, Path::new("p.yaml"), &opts).unwrap();
    let (_, r_http) = http_call(&plan.flows[0].steps[0]);
    assert_eq!(r_http.url.segments[1], Segment::Const("abc".into()));
}

#[test]
fn a_cli_value_keeps_its_text_unless_it_prints_back_the_same() {
    use serde_json::json;
    for (text, value) in [
        ("50", json!(50)),
        ("-3", json!(-3)),
        ("1.5", json!(1.5)),
        ("18446744073709551615", json!(u64::MAX)),
        ("true", json!(true)),
        ("false", json!(false)),
        ("007", json!("007")),
        ("1e3", json!("1e3")),
        ("1.50", json!("1.50")),
        ("+5", json!("+5")),
        (" 5", json!(" 5")),
        ("-0", json!("-0")),
        ("NaN", json!("NaN")),
        ("inf", json!("inf")),
        ("null", json!("null")),
        ("[1]", json!("[1]")),
        ("\"x\"", json!("\"x\"")),
        ("True", json!("True")),
        ("", json!("")),
    ] {
        assert_eq!(parse_cli_value(text), value, "{text:?}");
    }
}

#[test]
fn a_think_step_reports_request_keys_and_makes_no_captures() {
    let errs = errors(&format!(
        "{HEAD}flows:\n  - name: f\n    steps:\n      - think: 1s\n        headers: {{ a: b }}\n        query: {{ q: 1 }}\n        json: {{ j: 1 }}\n        form: {{ f: 1 }}\n        body: raw\n        capture: {{ x: $.id }}\n      - get: '/i/{{{{ x }}}}'\n"
    ));
    let on_think: Vec<&str> = errs
        .iter()
        .filter(|e| e.contains("does nothing on a think step"))
        .map(|e| e.split_once(": ").unwrap().1.split(" (").next().unwrap())
        .collect();
    assert_eq!(
        on_think,
        [
            "`headers` does nothing on a think step",
            "`query` does nothing on a think step",
            "`json` does nothing on a think step",
            "`form` does nothing on a think step",
            "`body` does nothing on a think step",
            "`capture` does nothing on a think step",
        ],
        "{errs:#?}"
    );
    assert!(errs[0].starts_with("8:20: "), "{errs:#?}");
    assert!(
        errs.iter()
            .any(|e| e.starts_with("14:") && e.contains("`x` is not defined")),
        "{errs:#?}"
    );
    // A think step alone still compiles.
    let plan = compile(&format!(
        "{HEAD}flows:\n  - name: f\n    steps:\n      - think: 1s\n      - get: /x\n"
    ))
    .unwrap();
    assert!(plan.slots.is_empty());
    assert!(matches!(plan.flows[0].steps[0], Step::Think(_)));
}

#[test]
fn template_errors_point_into_block_and_escaped_scalars() {
    let src = format!(
        "{HEAD}flows:\n  - name: f\n    steps:\n      - post: /a\n        body: |\n          line one\n          {{{{ nope }}}}\n      - get: \"/b\\t{{{{ nada }}}}\"\n"
    );
    let errs = errors(&src);
    // Line 10 is `{{ nope }}` inside the block scalar, indented 10 spaces; line 11 is
    // the quoted URL with an escape before the template.
    assert!(errs.iter().any(|e| e.starts_with("10:11: ")), "{errs:?}");
    assert!(errs.iter().any(|e| e.starts_with("11:19: ")), "{errs:?}");
}

/// A request step's call, and its HTTP parts.
fn http_call(step: &Step) -> (&Call, &HttpCall) {
    let Step::Call(call) = step else {
        panic!("expected a request step, got {step:?}")
    };
    let CallKind::Http(http) = &call.kind else {
        panic!("expected an HTTP call, got {:?}", call.kind)
    };
    (call, http)
}

#[test]
fn response_limits_come_from_defaults_and_bad_sizes_are_located() {
    let base = "name: x\ntarget: http://127.0.0.1:1\nload: { users: 1, duration: 1s }\nflows: [ { name: a, steps: [ { get: / } ] } ]\n";
    let plan = compile(base).unwrap();
    assert_eq!(plan.limits, graph::ResponseLimits::default());
    let plan = compile(&format!(
        "{base}defaults: {{ max_response_head: 16KiB, max_response_body: 2MB }}\n"
    ))
    .unwrap();
    assert_eq!(plan.limits.head, Some(16 * 1024));
    assert_eq!(plan.limits.body, Some(2_000_000));
    let errs = errors(&format!(
        "{base}defaults:\n  max_response_head: 0\n  max_response_body: 10 parsecs\n"
    ));
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(
        errs[0].starts_with("6:22:") && errs[0].contains("above 0"),
        "{errs:?}"
    );
    assert!(
        errs[1].starts_with("7:22:") && errs[1].contains("parsecs"),
        "{errs:?}"
    );
}

/// A user count no machine holds is an error in the plan and on the command line,
/// never an attempt to start billions of users.
#[test]
fn user_counts_have_a_ceiling() {
    let plan = |load: &str| {
        format!(
            "name: t\ntarget: http://127.0.0.1:1\nload: {load}\nflows:\n  - name: f\n    steps:\n      - get: /a\n"
        )
    };
    let e = errors(&plan("{ users: 4294967295, duration: 1s }"));
    assert!(e[0].contains("`users` is too large"), "{e:?}");
    let e = errors(&plan(
        "{ arrival_rate: 1, max_users: 2000000, duration: 1s }",
    ));
    assert!(e[0].contains("`max_users` is too large"), "{e:?}");
    assert!(compile(&plan("{ users: 1000000, duration: 1s }")).is_ok());
    let opts = CompileOptions {
        users: Some(graph::MAX_USERS + 1),
        ..CompileOptions::default()
    };
    let err = compile_str(
        &plan("{ users: 5, duration: 1s }"),
        Path::new("t.yaml"),
        &opts,
    )
    .unwrap_err();
    assert!(err.diagnostics[0].message.contains("--users is too large"));
}

/// `http.version` takes its four names, quoted or not (`1.1` and `2` are numbers in
/// YAML); anything else is an error on its value.
#[test]
fn the_http_version_is_named_and_defaults_to_auto() {
    let base = "name: x\ntarget: https://127.0.0.1:1\nload: { users: 1, duration: 1s }\nflows: [ { name: a, steps: [ { get: / } ] } ]\n";
    assert_eq!(
        compile(base).unwrap().http_version,
        graph::HttpVersion::Auto
    );
    for (written, version) in [
        ("auto", graph::HttpVersion::Auto),
        ("\"1.1\"", graph::HttpVersion::Http1),
        ("1.1", graph::HttpVersion::Http1),
        ("2", graph::HttpVersion::Http2),
        ("'2'", graph::HttpVersion::Http2),
        ("h2c", graph::HttpVersion::H2c),
    ] {
        let plan = compile(&format!("{base}http: {{ version: {written} }}\n")).unwrap();
        assert_eq!(plan.http_version, version, "{written}");
    }
    let errs = errors(&format!("{base}http:\n  version: h3\n"));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("6:12:") && errs[0].contains("unknown HTTP version `h3`"),
        "{errs:?}"
    );
    let errs = errors(&format!("{base}http: {{ versoin: 2 }}\n"));
    assert!(errs[0].contains("versoin"), "{errs:?}");
}
