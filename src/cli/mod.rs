//! The command line: parses arguments with clap, reads the environment once
//! (`env`), converts both into the plain settings the layers below take (as
//! nextest's `From<…Opt>` conversions do: clap types stay here), and dispatches to
//! one module per command. [`run`] returns the process exit code, decided by
//! [`CliError::code`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::dist::OnLoss;

mod check;
mod coordinator;
mod demo;
pub mod env;
mod error;
mod k8s;
mod live_ui;
mod logging;
mod schema;
mod ui;
mod validate;
mod worker;

pub use env::Environment;
pub use error::CliError;

use crate::compile::CompileOptions;
use crate::compile::graph::CompiledPlan;
use crate::report::progress;

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
    /// Join a coordinator (`swarm check --coordinator`) and run its share of the load.
    Worker(WorkerArgs),
    /// Print Kubernetes manifests that run the plan on many machines (kubectl apply -f -).
    K8s(k8s::K8sArgs),
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
    #[command(flatten)]
    pub dist: CoordinatorArgs,
}

/// `swarm check --coordinator`: one run on many machines.
#[derive(Debug, Clone, Default, Args)]
pub struct CoordinatorArgs {
    /// Run the plan on workers (`swarm worker URL`) that connect to ADDR
    /// (default 127.0.0.1:7700).
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:7700")]
    pub coordinator: Option<String>,
    /// How many workers to wait for before the run starts.
    #[arg(long, value_name = "N", requires = "coordinator")]
    pub workers: Option<usize>,
    /// Token the workers must present (required when ADDR is not loopback).
    #[arg(long, env = "SWARM_TOKEN", value_name = "T", hide_env_values = true)]
    pub token: Option<String>,
    /// How long to wait for the workers, e.g. 60s or 5m.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "60s",
        requires = "coordinator"
    )]
    pub workers_timeout: String,
    /// What a worker lost mid-run does to the run.
    #[arg(long, value_enum, default_value_t = OnLoss::Fail, requires = "coordinator")]
    pub on_worker_loss: OnLoss,
    /// TLS certificate (PEM) for the coordinator's port.
    #[arg(long, value_name = "FILE", requires_all = ["coordinator", "coordinator_key"])]
    pub coordinator_cert: Option<PathBuf>,
    /// TLS private key (PEM) for the coordinator's port.
    #[arg(long, value_name = "FILE", requires_all = ["coordinator", "coordinator_cert"])]
    pub coordinator_key: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    /// The coordinator: http://host:port, or https://host:port for TLS.
    pub url: String,
    /// The coordinator's token.
    #[arg(long, env = "SWARM_TOKEN", value_name = "T", hide_env_values = true)]
    pub token: Option<String>,
    /// This worker's name in the coordinator's table and reports (default: host name and pid).
    #[arg(long)]
    pub name: Option<String>,
    /// A CA certificate (PEM) to trust for an https:// coordinator.
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Accept any certificate from an https:// coordinator.
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

impl From<ProgressMode> for progress::Mode {
    fn from(mode: ProgressMode) -> Self {
        match mode {
            ProgressMode::Auto => progress::Mode::Auto,
            ProgressMode::Bar => progress::Mode::Bar,
            ProgressMode::Plain => progress::Mode::Plain,
            ProgressMode::None => progress::Mode::None,
        }
    }
}

impl TryFrom<&PlanArgs> for CompileOptions {
    type Error = CliError;

    /// `--var`, `--target`, `--users` and `--duration`; a malformed value is a usage error.
    fn try_from(args: &PlanArgs) -> Result<CompileOptions, CliError> {
        let mut vars = Vec::new();
        for v in &args.vars {
            match v.split_once('=') {
                Some((k, val)) if !k.trim().is_empty() => {
                    vars.push((k.trim().to_owned(), val.to_owned()));
                }
                _ => {
                    return Err(CliError::Usage(format!(
                        "--var `{v}`: expected K=V, e.g. --var page_size=50"
                    )));
                }
            }
        }
        let duration = match &args.duration {
            Some(d) => Some(
                crate::compile::units::parse_duration(d)
                    .map_err(|e| CliError::Usage(format!("--duration: {e}")))?,
            ),
            None => None,
        };
        Ok(CompileOptions {
            vars,
            target: args.target.clone().filter(|t| !t.is_empty()),
            users: args.users,
            duration,
            env: Vec::new(),
            provided: Vec::new(),
        })
    }
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
    /// Port of the TCP line protocol (0 picks a free one).
    #[arg(long, default_value_t = 6380)]
    pub tcp_port: u16,
}

/// Parses the process arguments, runs the command and returns the exit code.
pub fn run() -> i32 {
    let env = Environment::read();
    match dispatch(&env) {
        Ok(()) => crate::exit::OK,
        Err(e) => {
            e.print(&env);
            e.code()
        }
    }
}

/// Parses the arguments and runs the command.
fn dispatch(env: &Environment) -> Result<(), CliError> {
    let cli = Cli::try_parse().map_err(CliError::from_clap)?;
    logging::init(cli.verbose);
    match cli.command {
        Command::Check(args) => check::run(args, env),
        Command::Validate(args) => validate::run(args),
        Command::Ui(args) => ui::run(args, env),
        Command::Demo(args) => demo::run(args),
        Command::Schema => schema::run(),
        Command::Worker(args) => worker::run(args, env),
        Command::K8s(args) => k8s::run(args),
    }
}

/// The multi-thread runtime a command runs on.
fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)
}

/// The engine's settings for a run: `--insecure`, and the HTTP client that
/// `SWARM_HTTP_CLIENT` names (`lean`, the default, or `reqwest`, for comparison; any
/// other value is the default), read by [`Environment::read`]. The engine itself
/// reads no environment variable.
fn engine_config(insecure: bool, env: &Environment) -> crate::engine::config::EngineConfig {
    use crate::engine::config::{EngineConfig, HttpConfig, Implementation};
    EngineConfig {
        http: HttpConfig {
            client: env
                .http_client
                .as_deref()
                .and_then(Implementation::from_name)
                .unwrap_or_default(),
            insecure,
            ..HttpConfig::default()
        },
        ..EngineConfig::default()
    }
}

/// Compiles the plan with the command line's overrides.
fn compile_plan(args: &PlanArgs, opts: &CompileOptions) -> Result<CompiledPlan, CliError> {
    crate::compile::compile_file(&args.plan, opts).map_err(CliError::Plan)
}

/// `--demo`: starts the demo target on a free loopback port and points the plan at
/// it. The run must keep the server alive: dropping it stops it.
async fn start_demo(opts: &mut CompileOptions) -> Result<crate::demo::DemoServer, CliError> {
    let addr = std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 0));
    let server = crate::demo::start(addr).await.map_err(CliError::Demo)?;
    opts.target = Some(server.url());
    opts.provided
        .push(("demo_tcp".into(), server.tcp_addr.to_string()));
    Ok(server)
}
