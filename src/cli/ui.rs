//! `swarm ui PLAN [ADDR]`: interactive mode. Serves the dashboard idle; the user
//! starts, steers and stops runs of the plan from the browser until Ctrl-C.

use super::UiArgs;
use crate::exit;

pub fn run(args: UiArgs) -> i32 {
    #[cfg(feature = "ui")]
    {
        let runtime = match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("error: cannot start the async runtime: {e}");
                return exit::RUN_ERROR;
            }
        };
        runtime.block_on(serve(args))
    }
    #[cfg(not(feature = "ui"))]
    {
        let _ = args;
        eprintln!("error: this swarm was built without the dashboard (cargo feature `ui`)");
        exit::INVALID
    }
}

#[cfg(feature = "ui")]
async fn serve(args: UiArgs) -> i32 {
    use std::net::SocketAddr;
    use std::sync::Arc;

    use crate::compile::{CompileOptions, compile_file};
    use crate::dashboard::{DashboardConfig, PlanLauncher, serve_interactive};
    use crate::engine::config::EngineConfig;

    let mut options = match CompileOptions::from_args(&args.plan) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::INVALID;
        }
    };
    let config = match DashboardConfig::new(&args.addr, args.ui_token.clone()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return e.exit_code();
        }
    };
    // Kept alive for as long as the dashboard serves.
    let _demo = if args.demo {
        match crate::demo::start(SocketAddr::from(([127, 0, 0, 1], 0))).await {
            Ok(demo) => {
                options.target = Some(demo.url());
                Some(demo)
            }
            Err(e) => {
                eprintln!("error: cannot start the demo target: {e}");
                return exit::RUN_ERROR;
            }
        }
    } else {
        None
    };
    // Compile once now, so a broken plan is reported before anything is served.
    let plan = match compile_file(&args.plan.plan, &options) {
        Ok(p) => Arc::new(p),
        Err(errors) => {
            eprint!("{errors}");
            return exit::INVALID;
        }
    };
    let launcher = PlanLauncher {
        path: args.plan.plan.clone(),
        options,
        engine: EngineConfig {
            insecure: args.insecure,
            ..EngineConfig::default()
        },
    };
    let dashboard = match serve_interactive(config, plan.clone(), Arc::new(launcher)).await {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return e.exit_code();
        }
    };
    println!("swarm ui: {} ({})", plan.name, plan.source.display());
    if let Some(demo) = &_demo {
        println!("demo target: {}", demo.url());
    }
    println!("dashboard:   {}", dashboard.url_with_token());
    println!("press Ctrl-C to stop");
    let _ = tokio::signal::ctrl_c().await;
    dashboard.interrupt_run();
    // Give the engine a moment to stop its users before the runtime goes away.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    exit::OK
}
