//! Small YAML plans compiled by the real compiler and run step by step, so the
//! compiler's output and the request pipeline agree on what a plan means.

use std::path::Path;

use serde_json::{Value, json};
use swarm::compile::graph::{Call, CompiledPlan, Step};
use swarm::compile::{CompileOptions, compile_str};
use swarm::engine::config::{EngineConfig, HttpConfig, Implementation};
use swarm::engine::request::{Outcome, VuContext};
use swarm::engine::session::Protocols;
use swarm::metrics::failure::{CheckFailure, FailureKind};

use crate::support::*;

fn compile(yaml: &str, target: String) -> CompiledPlan {
    let opts = CompileOptions {
        target: Some(target),
        ..CompileOptions::default()
    };
    match compile_str(yaml, Path::new("plan.yaml"), &opts) {
        Ok(plan) => plan,
        Err(e) => panic!("the test plan compiles:\n{e}"),
    }
}

fn requests(steps: &[Step]) -> Vec<&Call> {
    steps.iter().flat_map(Step::calls).collect()
}

/// Runs `setup` then `steps` of the first flow once, as user 0.
async fn run_flow(imp: Implementation, plan: &CompiledPlan) -> (Vec<Outcome>, VuContext) {
    let config = EngineConfig {
        http: HttpConfig {
            client: imp,
            ..HttpConfig::default()
        },
        ..EngineConfig::default()
    };
    let protocols = Protocols::new(&config).unwrap();
    let mut ctx = VuContext::new(0, plan, &protocols);
    let flow = &plan.flows[0];
    let mut outcomes = Vec::new();
    for step in requests(&flow.setup)
        .into_iter()
        .chain(requests(&flow.steps))
    {
        let out = tokio::time::timeout(
            std::time::Duration::from_secs(20),
            swarm::engine::request::execute(step, &mut ctx, std::time::Instant::now()),
        )
        .await
        .expect("bounded by the request timeout");
        outcomes.push(out);
    }
    (outcomes, ctx)
}

fn slot<'a>(plan: &CompiledPlan, ctx: &'a VuContext, name: &str) -> Option<&'a Value> {
    let i = plan.slots.iter().position(|s| s.name == name)?;
    ctx.slots[i].as_ref()
}

const CHAIN: &str = r#"
name: chain
target: http://127.0.0.1:1
defaults:
  headers: { x-token: default }
  timeout: 5s
load: { users: 1, duration: 1s }
flows:
  - name: shop
    setup:
      - post: /login
        json: { user: alice, password: pw }
        capture: { token: $.token }
    steps:
      - get: /cart
        headers: { authorization: "Bearer {{ token }}" }
        expect:
          status: 200
          body: { contains: cart }
      - post: /echo
        query: { q: "a b", page: "{{ rand(2, 2) }}" }
        json: { num: "{{ rand(5, 5) }}", who: "u{{ user() }}", t: "{{ token }}", list: [1, "{{ iteration() }}"] }
        expect:
          status: [200, 201]
          headers: { content-type: { contains: json } }
          json:
            $.query: "q=a+b&page=2"
            $.x_token: default
            $.content_type: application/json
            $.method: { matches: "^POST$" }
        capture:
          echo: $.body
"#;

async fn a_compiled_capture_chain_runs(imp: Implementation) {
    let (addr, _) = target().await;
    let plan = compile(CHAIN, format!("http://{addr}"));
    let (outcomes, ctx) = run_flow(imp, &plan).await;
    let results: Vec<_> = outcomes.iter().map(|o| o.result).collect();
    assert_eq!(results, vec![Ok(()), Ok(()), Ok(())]);
    assert_eq!(slot(&plan, &ctx, "token"), Some(&json!("T-alice")));
    let body = slot(&plan, &ctx, "echo").and_then(Value::as_str).unwrap();
    let sent: Value = serde_json::from_str(body).unwrap();
    assert_eq!(
        sent,
        json!({"num": 5, "who": "u0", "t": "T-alice", "list": [1, 0]})
    );
}

const BROKEN_LOGIN: &str = r#"
name: broken login
target: http://127.0.0.1:1
load: { users: 1, duration: 1s }
flows:
  - name: shop
    steps:
      - post: /login
        json: { user: alice, password: "" }
        capture: { token: $.token }
      - get: /cart
        headers: { authorization: "Bearer {{ token }}" }
      - get: /status/404
        expect: { status: 2xx }
      - get: /hello
"#;

async fn a_failed_capture_unsets_the_variable_for_later_steps(imp: Implementation) {
    let (addr, _) = target().await;
    let plan = compile(BROKEN_LOGIN, format!("http://{addr}"));
    let (outcomes, ctx) = run_flow(imp, &plan).await;
    let reasons: Vec<_> = outcomes
        .iter()
        .map(|o| o.result.err().map(|k| k.describe(&plan)))
        .collect();
    assert!(
        matches!(
            outcomes[0].result,
            Err(FailureKind::Check(CheckFailure::Capture(_)))
        ),
        "{reasons:?}"
    );
    assert!(
        matches!(
            outcomes[1].result,
            Err(FailureKind::Check(CheckFailure::Unset(_)))
        ),
        "{reasons:?}"
    );
    assert_eq!(outcomes[1].latency, std::time::Duration::ZERO);
    assert!(
        matches!(
            outcomes[2].result,
            Err(FailureKind::Check(CheckFailure::Expect(_)))
        ),
        "{reasons:?}"
    );
    assert_eq!(outcomes[3].result, Ok(()));
    assert!(
        reasons[1].as_deref().unwrap().contains("token"),
        "{reasons:?}"
    );
    assert_eq!(slot(&plan, &ctx, "token"), None);
}

per_client!(
    a_compiled_capture_chain_runs,
    a_failed_capture_unsets_the_variable_for_later_steps,
);
