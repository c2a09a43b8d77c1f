//! Runs a plan file through the compiler and the engine, and prints the totals on one
//! line: `requests failures seconds iterations dropped`. It is `swarm check` without
//! the reports and the console (but with the same [`RunSession`] and its Ctrl-C
//! handling), so `bench/run.sh` measures the engine and its HTTP client and nothing
//! else.
//!
//! Usage: `run_plan PLAN [TARGET]`

use std::path::PathBuf;
use std::sync::Arc;

use swarm::compile::{CompileOptions, compile_file};
use swarm::engine::config::EngineConfig;
use swarm::run::{RunSession, Signals};

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
    let ended = runtime.block_on(async {
        let session = RunSession::start(plan, EngineConfig::default())?;
        Ok::<_, swarm::engine::RunError>(session.wait(Some(&mut Signals::new())).await)
    });
    match ended.map(|e| (e.failure, e.snapshot)) {
        Ok((None, snap)) => {
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
        Ok((Some(e), _)) | Err(e) => {
            eprintln!("{e}");
            std::process::exit(3);
        }
    }
}
