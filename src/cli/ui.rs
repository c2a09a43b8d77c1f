//! `swarm ui PLAN [ADDR]`: interactive mode. Serves the dashboard idle; the user
//! starts, steers and stops runs of the plan from the browser until Ctrl-C.

use super::{CliError, Environment, UiArgs};

#[cfg(not(feature = "ui"))]
pub fn run(args: UiArgs, env: &Environment) -> Result<(), CliError> {
    let _ = (args, env);
    Err(CliError::NoDashboard)
}

#[cfg(feature = "ui")]
pub fn run(args: UiArgs, env: &Environment) -> Result<(), CliError> {
    let runtime = super::runtime()?;
    runtime.block_on(serve(args, env))
}

#[cfg(feature = "ui")]
async fn serve(args: UiArgs, env: &Environment) -> Result<(), CliError> {
    use std::sync::Arc;

    use crate::compile::CompileOptions;
    use crate::dashboard::{DashboardConfig, PlanLauncher, serve_interactive};

    let mut options = CompileOptions::try_from(&args.plan)?;
    let config = DashboardConfig::new(&args.addr, args.ui_token.clone())?;
    // Kept alive for as long as the dashboard serves.
    let demo = if args.demo {
        Some(super::start_demo(&mut options).await?)
    } else {
        None
    };
    // Compile once now, so a broken plan is reported before anything is served.
    let plan = Arc::new(super::compile_plan(&args.plan, &options)?);
    let launcher = PlanLauncher {
        path: args.plan.plan.clone(),
        options,
        engine: super::engine_config(args.insecure, env),
    };
    let dashboard = serve_interactive(config, plan.clone(), Arc::new(launcher)).await?;
    println!("swarm ui: {} ({})", plan.name, plan.source.display());
    if let Some(demo) = &demo {
        println!("demo target: {}", demo.url());
    }
    println!("dashboard:   {}", dashboard.url_with_token());
    println!("press Ctrl-C to stop");
    crate::run::signals::shutdown().await;
    dashboard.interrupt_run();
    // Give the engine a moment to stop its users before the runtime goes away.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    Ok(())
}
