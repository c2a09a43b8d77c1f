//! gRPC steps against a real tonic server on loopback (tests/grpc/server.rs), with
//! plans compiled from the server's own `.proto` file or from its reflection: calls,
//! metadata, captures, statuses expected and not, a server that never answers, a
//! 100 MB message, a refused connection, and a whole run of the binary whose memory
//! stays bounded.

#[path = "../common/mod.rs"]
mod common;
#[path = "../measured/mod.rs"]
mod measured;
mod server;
mod tls;

use std::net::SocketAddr;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;
use swarm::compile::graph::{CompiledPlan, Step};
use swarm::engine::request::{Outcome, VuContext, execute};
use swarm::engine::session::Protocols;
use swarm::metrics::failure::{CheckFailure, FailureKind, ProtocolFailure, TransportFailure};
use swarm::testing::TestPlan;

/// The test server, started once for the whole binary.
fn server() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(server::start)
}

fn schema() -> String {
    format!(
        "grpc: {{ proto: [{:?}], import_paths: [{:?}] }}",
        format!("{}/test.proto", server::PROTO_DIR),
        server::PROTO_DIR
    )
}

fn plan(steps: &str) -> TestPlan {
    TestPlan::new()
        .target(format!("http://{}", server()))
        .top(&schema())
        .flow(steps)
}

/// Runs the first flow's steps once, in order, as one user.
async fn run(plan: &CompiledPlan) -> (Vec<Outcome>, VuContext) {
    let protocols = Protocols::new(&Default::default()).unwrap();
    let mut ctx = VuContext::new(0, plan, &protocols);
    let mut out = Vec::new();
    for step in &plan.flows[0].steps {
        if let Step::Call(call) = step {
            out.push(execute(call, &mut ctx, Instant::now()).await);
        }
    }
    (out, ctx)
}

fn describe(plan: &CompiledPlan, outcomes: &[Outcome]) -> Vec<String> {
    outcomes
        .iter()
        .map(|o| match o.result {
            Ok(()) => "ok".to_owned(),
            Err(k) => k.describe(plan),
        })
        .collect()
}

#[tokio::test]
async fn a_unary_call_sends_its_message_and_metadata_and_is_judged_as_json() {
    let plan = plan(
        r#"
- grpc: test.v1.Echo/Echo
  name: echo
  message:
    text: "hi {{ user() }}"
    n: 41
    mood: MOOD_HAPPY
    words: [a, b]
    inner: { flag: true }
    tag: { key: k, value: v }
    big: "{{ rand(5, 5) }}"
  metadata: { x-user: alice }
  expect:
    status: OK
    headers: { content-type: { contains: grpc } }
    json:
      $.n: 42
      $.user: alice
      $.text: hi 0
      $.words: { len: 2 }
      $.mood: MOOD_HAPPY
      $.flag: true
      $.big: "5"
  capture: { said: $.text }
- grpc: test.v1.Echo/Echo
  name: echo again
  message: { text: "{{ said }}!" }
  expect: { json: { $.text: "hi 0!", $.n: 1, $.flag: false } }
"#,
    )
    .compile();
    assert_eq!(plan.requests[0].call.label(), "GRPC");
    let (outcomes, ctx) = run(&plan).await;
    assert_eq!(describe(&plan, &outcomes), ["ok", "ok"]);
    assert!(outcomes[0].bytes > 0 && outcomes[0].latency > Duration::ZERO);
    assert_eq!(ctx.slots[0], Some(Value::from("hi 0")));
}

#[tokio::test]
async fn a_server_stream_is_read_to_its_end_and_judged_as_an_array() {
    let plan = plan(
        r#"
- grpc: test.v1.Echo/Watch
  message: { text: w, n: 3 }
  expect:
    json:
      $: { len: 3 }
      $[2].text: "w #2"
  capture: { first: "$[0].text" }
- { grpc: test.v1.Echo/Watch, name: none, message: { n: 0 }, expect: { json: { $: { len: 0 } } } }
"#,
    )
    .compile();
    let (outcomes, ctx) = run(&plan).await;
    assert_eq!(describe(&plan, &outcomes), ["ok", "ok"]);
    assert!(outcomes[0].bytes > 0);
    assert_eq!(ctx.slots[0], Some(Value::from("w #0")));
}

#[tokio::test]
async fn statuses_fail_the_call_unless_expected() {
    let plan = plan(
        r#"
- { grpc: test.v1.Echo/Fail, name: unexpected, message: { code: 5 } }
- { grpc: test.v1.Echo/Fail, name: expected by name, message: { code: 5 }, expect: { status: NOT_FOUND } }
- { grpc: test.v1.Echo/Fail, name: expected in a list, message: { code: 14 }, expect: { status: [OK, 14] } }
- { grpc: test.v1.Echo/Fail, name: another, message: { code: 14 }, expect: { status: OK } }
- { grpc: test.v1.Echo/Echo, name: ok but not expected, expect: { status: INTERNAL } }
"#,
    )
    .compile();
    let (outcomes, _) = run(&plan).await;
    assert_eq!(
        outcomes[0].result,
        Err(FailureKind::Protocol(ProtocolFailure::GrpcStatus(5)))
    );
    assert_eq!(
        describe(&plan, &outcomes),
        [
            "grpc: NOT_FOUND",
            "ok",
            "ok",
            "expected grpc status OK",
            "expected grpc status INTERNAL"
        ]
    );
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_on_time() {
    let plan = plan("- { grpc: test.v1.Echo/Hang, timeout: 300ms }").compile();
    let started = Instant::now();
    let (outcomes, _) = run(&plan).await;
    assert_eq!(
        outcomes[0].result,
        Err(FailureKind::Transport(TransportFailure::Timeout))
    );
    assert!(outcomes[0].latency >= Duration::from_millis(300));
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn a_100_mb_message_fails_as_too_large() {
    let plan = plan("- { grpc: test.v1.Echo/Huge, timeout: 30s }")
        .top("defaults: { max_response_body: 1MiB }")
        .compile();
    let (outcomes, _) = run(&plan).await;
    assert_eq!(
        outcomes[0].result,
        Err(FailureKind::Protocol(ProtocolFailure::BodyTooLarge))
    );
    assert_eq!(describe(&plan, &outcomes), ["response too large"]);
}

#[tokio::test]
async fn a_refused_connection_and_a_value_that_does_not_fit_are_typed() {
    // A port that was bound and closed again refuses.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let refused = TestPlan::new()
        .target(format!("http://127.0.0.1:{port}"))
        .top(&schema())
        .flow("- grpc: test.v1.Echo/Echo")
        .compile();
    let (outcomes, _) = run(&refused).await;
    assert_eq!(
        outcomes[0].result,
        Err(FailureKind::Transport(TransportFailure::Refused))
    );
    // `n` is an int32: a rendered word does not fit, and nothing is sent.
    let plan = plan("- { grpc: test.v1.Echo/Echo, message: { n: \"{{ uuid() }}\" } }").compile();
    let (outcomes, _) = run(&plan).await;
    assert_eq!(
        outcomes[0].result,
        Err(FailureKind::Check(CheckFailure::InvalidRequest))
    );
    assert_eq!(outcomes[0].latency, Duration::ZERO);
}

#[tokio::test]
async fn reflection_gives_the_schema_and_unknown_methods_are_plan_errors() {
    let target = format!("http://{}", server());
    // Compiling asks the server on a thread of its own: fine inside a runtime.
    let plan = TestPlan::new()
        .target(&target)
        .top("grpc: { reflection: true }")
        .flow("- { grpc: test.v1.Echo/Echo, message: { n: 1, tag: { key: k } }, expect: { json: { $.n: 2 } } }")
        .compile();
    let (outcomes, _) = run(&plan).await;
    assert_eq!(describe(&plan, &outcomes), ["ok"]);

    let err = TestPlan::new()
        .target(&target)
        .top("grpc: { reflection: true }")
        .flow("- grpc: test.v1.Echo/Ech")
        .try_compile()
        .unwrap_err()
        .to_string();
    assert!(err.contains("`test.v1.Echo` has no method `Ech`"), "{err}");
    assert!(err.contains("did you mean `test.v1.Echo/Echo`?"), "{err}");

    // Nothing listens: the plan cannot be compiled, and says why and where.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let err = TestPlan::new()
        .target(format!("http://127.0.0.1:{port}"))
        .top("grpc: { reflection: true }")
        .flow("- grpc: test.v1.Echo/Echo")
        .try_compile()
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot read the schema from"), "{err}");
    assert!(err.contains("connection refused"), "{err}");
}

/// The whole binary against the hostile methods and a healthy one in the same run:
/// each failure is typed, the run ends on time, a 100 MB message is never held, and
/// the healthy calls all succeed.
#[test]
fn a_run_against_hostile_methods_stays_bounded_and_the_healthy_flow_is_unaffected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grpc.yaml");
    let flow = |name: &str, method: &str| {
        format!(
            "  - {{ name: {name}, pace: 200ms, steps: [ {{ grpc: test.v1.Echo/{method}, name: {name} }} ] }}\n"
        )
    };
    let text = format!(
        "name: hostile grpc\ntarget: http://{}\n{}\n\
         load: {{ users: 3, duration: 4s }}\n\
         defaults: {{ timeout: 1s, max_response_body: 1MiB }}\nflows:\n{}{}{}",
        server(),
        schema(),
        flow("healthy", "Echo"),
        flow("silent", "Hang"),
        flow("huge", "Huge"),
    );
    std::fs::write(&path, text).unwrap();
    let report = dir.path().join("report.json");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_swarm"));
    cmd.arg("check")
        .arg(&path)
        .arg("--json")
        .arg(&report)
        .args(["--progress", "none"])
        .env("NO_COLOR", "1");
    let started = Instant::now();
    let m = measured::run_measured(&mut cmd, Duration::from_secs(60));
    assert!(started.elapsed() < Duration::from_secs(30), "{}", m.stderr);
    assert!(!m.stderr.contains("panicked"), "{}", m.stderr);
    // Far below the 100 MB one message would take if it were held.
    assert!(m.peak_rss < 80 << 20, "peak RSS {} MB", m.peak_rss >> 20);
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let by_name = |name: &str| {
        json["requests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap()
            .clone()
    };
    let healthy = by_name("healthy");
    assert_eq!(healthy["method"], "GRPC");
    assert!(
        healthy["count"].as_u64().unwrap() > 0 && healthy["failures"] == 0,
        "{healthy}"
    );
    for (name, kind) in [("silent", "timeout"), ("huge", "body_too_large")] {
        let r = by_name(name);
        let kinds: Vec<&Value> = r["failure_reasons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| &f["kind"])
            .collect();
        assert!(
            r["count"].as_u64().unwrap() > 0 && r["failures"] == r["count"],
            "{r}"
        );
        assert!(kinds.iter().all(|k| *k == kind), "{name}: {r}");
    }
    let stdout = &m.stdout;
    assert!(stdout.contains("GRPC  healthy"), "{stdout}");
}
