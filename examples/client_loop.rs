//! A closed loop through the request pipeline, without the scheduler: `users` tasks on
//! one current-thread runtime, each sending a GET with a status check and one JSONPath
//! expectation as fast as it can, for `seconds`. It isolates the HTTP client and the
//! per-request work from the engine, so `bench/run.sh` can compare the lean client
//! with reqwest (`SWARM_HTTP_CLIENT=reqwest`) and profile them.
//!
//! Usage: `client_loop URL [USERS] [SECONDS] [THINK_MS]`; prints `requests failures seconds`.

use std::cell::Cell;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

use swarm::compile::graph::{Call, CompiledPlan, Step};
use swarm::compile::{CompileOptions, compile_str};
use swarm::engine::config::{EngineConfig, HttpConfig, Implementation};
use swarm::engine::request::{VuContext, execute};
use swarm::engine::session::Protocols;

/// The throughput benchmark's request (`bench/throughput.yaml`), compiled as a plan
/// would be, and its one step.
fn plan(url: &str) -> (CompiledPlan, Call) {
    let yaml = format!(
        "name: client loop\ntarget: {url}\nload: {{users: 1, duration: 1s}}\n\
         flows:\n  - name: json\n    steps:\n      - get: {url}\n        \
         expect: {{status: 200, json: {{$.status: ok}}}}\n"
    );
    let mut plan = compile_str(
        &yaml,
        Path::new("client_loop.yaml"),
        &CompileOptions::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let Step::Call(step) = plan.flows[0].steps.remove(0) else {
        unreachable!("the plan's one step is a request");
    };
    (plan, *step)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:8080/json".into());
    let users: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(50);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    let think = Duration::from_millis(args.next().and_then(|a| a.parse().ok()).unwrap_or(0));

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let local = tokio::task::LocalSet::new();
    let (requests, failures) = (Rc::new(Cell::new(0u64)), Rc::new(Cell::new(0u64)));
    let started = Instant::now();
    local.block_on(&runtime, async {
        // As the command line does: `SWARM_HTTP_CLIENT` picks the client.
        let client = std::env::var("SWARM_HTTP_CLIENT").ok();
        let config = EngineConfig {
            http: HttpConfig {
                client: client
                    .and_then(|c| Implementation::from_name(&c))
                    .unwrap_or_default(),
                ..HttpConfig::default()
            },
            ..EngineConfig::default()
        };
        let protocols = Protocols::new(&config).expect("protocol setup");
        let (plan, step) = plan(&url);
        let (plan, step) = (Rc::new(plan), Rc::new(step));
        let deadline = started + Duration::from_secs(seconds);
        let mut tasks = Vec::new();
        for user in 0..users {
            let (protocols, plan, step) = (protocols.clone(), Rc::clone(&plan), Rc::clone(&step));
            let (requests, failures) = (Rc::clone(&requests), Rc::clone(&failures));
            tasks.push(tokio::task::spawn_local(async move {
                let mut ctx = VuContext::new(user, &plan, &protocols);
                while Instant::now() < deadline {
                    let outcome = execute(&step, &mut ctx, Instant::now()).await;
                    requests.set(requests.get() + 1);
                    if outcome.result.is_err() {
                        failures.set(failures.get() + 1);
                    }
                    if !think.is_zero() {
                        tokio::time::sleep(think).await;
                    }
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    });
    println!(
        "{} {} {:.3}",
        requests.get(),
        failures.get(),
        started.elapsed().as_secs_f64()
    );
}
