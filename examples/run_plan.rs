//! Runs a plan file through the compiler and the engine, and prints the totals on one
//! line: `requests failures seconds iterations dropped`. It is `swarm check` without
//! the reports and the console, so `bench/run.sh` measures the engine and its HTTP
//! client and nothing else.
//!
//! Usage: `run_plan PLAN [TARGET]`

use std::path::PathBuf;
use std::sync::Arc;

use swarm::compile::{CompileOptions, compile_file};
use swarm::engine::config::EngineConfig;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(plan) = args.next().map(PathBuf::from) else {
        eprintln!("usage: run_plan PLAN [TARGET]");
        std::process::exit(2);
    };
    let opts = CompileOptions {
        target: args.next(),
        ..CompileOptions::default()
    };
    let plan = match compile_file(&plan, &opts) {
        Ok(p) => Arc::new(p),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let snap = runtime.block_on(async {
        let handle = swarm::engine::start(plan, EngineConfig::default())?;
        handle.wait().await
    });
    match snap {
        Ok(snap) => {
            let total = snap.total();
            println!(
                "{} {} {:.3} {} {}",
                total.count,
                total.failures,
                snap.elapsed.as_secs_f64(),
                snap.iterations,
                snap.dropped
            );
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(3);
        }
    }
}
