//! `swarm ui PLAN [ADDR]`: interactive mode. Serves the dashboard idle; the user
//! starts, steers and stops runs of the plan from the browser until Ctrl-C.

use super::UiArgs;
use crate::exit;

pub fn run(args: UiArgs) -> i32 {
    #[cfg(feature = "ui")]
    {
        let runtime = match super::runtime() {
            Ok(rt) => rt,
            Err(code) => return code,
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
    use std::sync::Arc;

    use crate::dashboard::{DashboardConfig, PlanLauncher, serve_interactive};

    let mut options = match super::compile_options(&args.plan) {
        Ok(o) => o,
        Err(code) => return code,
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
        match super::start_demo(&mut options).await {
            Ok(demo) => Some(demo),
            Err(code) => return code,
        }
    } else {
        None
    };
    // Compile once now, so a broken plan is reported before anything is served.
    let plan = match super::compile_plan(&args.plan, &options) {
        Ok(p) => Arc::new(p),
        Err(code) => return code,
    };
    let launcher = PlanLauncher {
        path: args.plan.plan.clone(),
        options,
        engine: super::engine_config(args.insecure),
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
    crate::dashboard::shutdown_signal().await;
    dashboard.interrupt_run();
    // Give the engine a moment to stop its users before the runtime goes away.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    exit::OK
}
