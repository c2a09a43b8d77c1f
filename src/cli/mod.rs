//! The command line: parses arguments with clap and dispatches to one module per
//! command. [`run`] returns the process exit code (see [`crate::exit`]).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

mod check;
mod demo;
mod live_ui;
mod logging;
mod schema;
mod ui;
mod validate;

/// swarm — load tests as plain files, with numbers you can trust.
#[derive(Debug, Parser)]
#[command(name = "swarm", version, about, long_about = None)]
pub struct Cli {
    /// More detail on stderr (-v, -vv).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a plan against its target, print the stats and exit non-zero when an SLO fails.
    Check(CheckArgs),
    /// Compile a plan without sending anything: report errors, or summarise what would run.
    Validate(ValidateArgs),
    /// Interactive mode: start, steer and stop runs of a plan from the browser.
    Ui(UiArgs),
    /// Serve the built-in demo target (a small shop API).
    Demo(DemoArgs),
    /// Print the plan's JSON Schema.
    Schema,
}

/// Options that change how a plan compiles: shared by `check`, `validate` and `ui`.
#[derive(Debug, Clone, Default, Args)]
pub struct PlanArgs {
    /// The plan file (.yaml, .yml or .toml).
    pub plan: PathBuf,
    /// Base URL for relative request URLs (overrides the plan's `target`).
    #[arg(long, env = "SWARM_TARGET", value_name = "URL")]
    pub target: Option<String>,
    /// Override a plan variable (repeatable).
    #[arg(long = "var", value_name = "K=V")]
    pub vars: Vec<String>,
    /// Override the number of users (closed model).
    #[arg(long)]
    pub users: Option<u32>,
    /// Override the run's duration, e.g. 30s or 2m.
    #[arg(long, value_name = "D")]
    pub duration: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Write the JSON report to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write the JUnit XML report to FILE.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write a self-contained HTML report to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Write a Markdown summary to FILE (default: $GITHUB_STEP_SUMMARY when set).
    #[arg(long, value_name = "FILE")]
    pub summary: Option<PathBuf>,
    /// Compare with an earlier JSON report and fail on regressions.
    #[arg(long, value_name = "REPORT")]
    pub baseline: Option<PathBuf>,
    /// Tolerated regression against the baseline, e.g. 10%.
    #[arg(long, value_name = "PCT", requires = "baseline", default_value = "10%")]
    pub max_regression: String,
    /// Serve the live dashboard while the run goes on (default 127.0.0.1:8089).
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:8089")]
    pub ui: Option<String>,
    /// Token required by the dashboard (required when it binds off loopback).
    #[arg(long, env = "SWARM_UI_TOKEN", value_name = "T", hide_env_values = true)]
    pub ui_token: Option<String>,
    /// Exit when the run ends instead of keeping the dashboard up.
    #[arg(long)]
    pub ui_exit: bool,
    /// Start the built-in demo target on a free loopback port and point the plan at it.
    #[arg(long)]
    pub demo: bool,
    /// How to show live progress.
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,
    /// Print only the verdict and errors.
    #[arg(long, short)]
    pub quiet: bool,
    /// Skip TLS certificate verification.
    #[arg(long)]
    pub insecure: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressMode {
    /// A bar on a terminal; plain lines when not a terminal or when CI is set.
    Auto,
    Bar,
    Plain,
    None,
}

#[derive(Debug, Clone, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub plan: PlanArgs,
}

#[derive(Debug, Clone, Args)]
pub struct UiArgs {
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Address to serve the dashboard on.
    #[arg(default_value = "127.0.0.1:8089")]
    pub addr: String,
    /// Token required by the dashboard (required when it binds off loopback).
    #[arg(long, env = "SWARM_UI_TOKEN", value_name = "T", hide_env_values = true)]
    pub ui_token: Option<String>,
    /// Start the built-in demo target and point the plan at it.
    #[arg(long)]
    pub demo: bool,
    /// Skip TLS certificate verification.
    #[arg(long)]
    pub insecure: bool,
}

#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: String,
}

/// Parses the process arguments, runs the command and returns the exit code.
pub fn run() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    crate::exit::OK
                }
                _ => crate::exit::INVALID,
            };
        }
    };
    logging::init(cli.verbose);
    match cli.command {
        Command::Check(args) => check::run(args),
        Command::Validate(args) => validate::run(args),
        Command::Ui(args) => ui::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Schema => schema::run(),
    }
}

/// The multi-thread runtime a command runs on; on failure the message is printed and
/// the exit code returned.
fn runtime() -> Result<tokio::runtime::Runtime, i32> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("error: could not start the async runtime: {e}");
            crate::exit::RUN_ERROR
        })
}

/// The engine's settings for a run: `--insecure`, and the HTTP client that
/// `SWARM_HTTP_CLIENT` names (`lean`, the default, or `reqwest`, for comparison; any
/// other value is the default). The engine itself reads no environment variable.
fn engine_config(insecure: bool) -> crate::engine::config::EngineConfig {
    use crate::engine::config::{EngineConfig, HttpConfig, Implementation};
    let client = std::env::var("SWARM_HTTP_CLIENT").ok();
    EngineConfig {
        http: HttpConfig {
            client: client
                .and_then(|c| Implementation::from_name(&c))
                .unwrap_or_default(),
            insecure,
            ..HttpConfig::default()
        },
        ..EngineConfig::default()
    }
}

/// The compile options `--target`, `--var`, `--users` and `--duration` ask for; on a
/// bad flag the message is printed and the exit code returned.
fn compile_options(args: &PlanArgs) -> Result<crate::compile::CompileOptions, i32> {
    crate::compile::CompileOptions::from_args(args).map_err(|message| {
        eprintln!("error: {message}");
        crate::exit::INVALID
    })
}

/// Compiles the plan; every problem in it is printed (and annotated under GitHub
/// Actions) and the exit code returned.
fn compile_plan(
    args: &PlanArgs,
    opts: &crate::compile::CompileOptions,
) -> Result<crate::compile::graph::CompiledPlan, i32> {
    crate::compile::compile_file(&args.plan, opts).map_err(|errors| {
        eprint!("{errors}");
        crate::report::annotations::print_plan_errors(&errors);
        crate::exit::INVALID
    })
}

/// `--demo`: starts the demo target on a free loopback port and points the plan at
/// it. The run must keep the server alive: dropping it stops it.
async fn start_demo(
    opts: &mut crate::compile::CompileOptions,
) -> Result<crate::demo::DemoServer, i32> {
    let addr = std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 0));
    match crate::demo::start(addr).await {
        Ok(server) => {
            opts.target = Some(server.url());
            Ok(server)
        }
        Err(e) => {
            eprintln!("error: could not start the demo target: {e}");
            Err(crate::exit::RUN_ERROR)
        }
    }
}
