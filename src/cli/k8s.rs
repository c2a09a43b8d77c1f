//! `swarm k8s`: compiles the plan (a plan that would not run is refused here, exit
//! 2), turns the flags into [`k8s::Options`] and prints the manifests on stdout,
//! with any notes on stderr.

use std::time::Duration;

use clap::Args;

use super::{CliError, PlanArgs};
use crate::compile::CompileOptions;
use crate::compile::units::parse_duration;
use crate::dist::OnLoss;
use crate::k8s::{self, Options, Size};

#[derive(Debug, Clone, Args)]
pub struct K8sArgs {
    #[command(flatten)]
    pub plan: PlanArgs,
    /// How many worker pods send the load.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub workers: u32,
    /// The image to run (built from the repository's Dockerfile).
    #[arg(long, default_value = k8s::DEFAULT_IMAGE)]
    pub image: String,
    /// The namespace of every object (default: kubectl's current one).
    #[arg(long, value_name = "NS")]
    pub namespace: Option<String>,
    /// The prefix of every object's name (default: from the plan's name).
    #[arg(long)]
    pub name: Option<String>,
    /// The token workers present (default: a new random one each time).
    #[arg(long, value_name = "T")]
    pub token: Option<String>,
    /// How long the coordinator waits for every worker to join.
    #[arg(long, value_name = "D", default_value = "5m")]
    pub workers_timeout: String,
    /// What the coordinator does when a worker is lost mid-run.
    #[arg(long, value_enum, default_value_t = OnLoss::Fail)]
    pub on_worker_loss: OnLoss,
    /// The Jobs' deadline (default: the wait for workers + the run + 10% + 2m).
    #[arg(long, value_name = "D")]
    pub deadline: Option<String>,
    /// CPU of the coordinator's pod (requested and the limit).
    #[arg(long, value_name = "Q", default_value = "1")]
    pub coordinator_cpu: String,
    /// Memory of the coordinator's pod (requested and the limit).
    #[arg(long, value_name = "Q", default_value = "512Mi")]
    pub coordinator_memory: String,
    /// CPU of each worker's pod (requested and the limit).
    #[arg(long, value_name = "Q", default_value = "1")]
    pub worker_cpu: String,
    /// Memory of each worker's pod (requested and the limit).
    #[arg(long, value_name = "Q", default_value = "512Mi")]
    pub worker_memory: String,
    /// A PersistentVolumeClaim to keep the reports on (default: they end with the pod).
    #[arg(long, value_name = "CLAIM")]
    pub reports_claim: Option<String>,
    /// Serve the dashboard on the coordinator's loopback, for `kubectl port-forward`.
    #[arg(long)]
    pub ui: bool,
}

pub fn run(args: K8sArgs) -> Result<(), CliError> {
    let compile_opts = CompileOptions::try_from(&args.plan)?;
    let text = crate::plan::read_source(&args.plan.plan).map_err(CliError::Plan)?;
    let plan = crate::compile::compile_str(&text, &args.plan.plan, &compile_opts)
        .map_err(CliError::Plan)?;
    let opts = options(&args)?;
    let manifests = k8s::render(&args.plan.plan, &text, &plan, &opts)?;
    for note in &manifests.notes {
        eprintln!("note: {note}");
    }
    print!("{}", manifests.yaml);
    Ok(())
}

fn options(args: &K8sArgs) -> Result<Options, CliError> {
    let duration = |flag: &str, text: &str| -> Result<Duration, CliError> {
        match parse_duration(text) {
            Ok(d) if d >= Duration::from_secs(1) => Ok(d),
            Ok(_) => Err(CliError::Usage(format!("{flag}: at least 1s"))),
            Err(e) => Err(CliError::Usage(format!("{flag}: {e}"))),
        }
    };
    Ok(Options {
        name: args.name.clone(),
        namespace: args.namespace.clone(),
        image: args.image.clone(),
        workers: args.workers,
        token: args.token.clone(),
        workers_timeout: duration("--workers-timeout", &args.workers_timeout)?,
        on_worker_loss: args.on_worker_loss,
        deadline: match &args.deadline {
            Some(d) => Some(duration("--deadline", d)?),
            None => None,
        },
        coordinator: Size {
            cpu: args.coordinator_cpu.clone(),
            memory: args.coordinator_memory.clone(),
        },
        worker: Size {
            cpu: args.worker_cpu.clone(),
            memory: args.worker_memory.clone(),
        },
        reports_claim: args.reports_claim.clone(),
        ui: args.ui,
        check_args: check_args(&args.plan),
    })
}

/// The plan's overrides, as the coordinator's `swarm check` takes them. The target
/// is passed on even when it came from `SWARM_TARGET`: the pod's environment does
/// not hold it.
fn check_args(plan: &PlanArgs) -> Vec<String> {
    let mut out = Vec::new();
    for v in &plan.vars {
        out.extend(["--var".to_owned(), v.clone()]);
    }
    if let Some(t) = plan.target.as_ref().filter(|t| !t.is_empty()) {
        out.extend(["--target".to_owned(), t.clone()]);
    }
    if let Some(u) = plan.users {
        out.extend(["--users".to_owned(), u.to_string()]);
    }
    if let Some(d) = &plan.duration {
        out.extend(["--duration".to_owned(), d.clone()]);
    }
    out
}
