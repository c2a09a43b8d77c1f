//! `swarm k8s`: the Kubernetes manifests for one run on many machines. It owns the
//! translation of a compiled plan and a few settings into objects that
//! `kubectl apply -f -` runs as they are: the coordinator as a Job (its exit code is
//! the run's verdict) behind a Service, the workers as an Indexed Job, the plan and
//! its data files as a ConfigMap ([`bundle`]), and the token as a Secret. It writes
//! text and runs nothing; the coordinator and the workers are `swarm check
//! --coordinator` and `swarm worker` inside the pods.

pub mod bundle;
mod manifests;
mod names;
pub mod objects;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::compile::graph::CompiledPlan;

pub use names::{check_quantity, derive_name};

/// The image the manifests run unless told otherwise: what the repository's
/// Dockerfile builds when tagged with the crate's version.
pub const DEFAULT_IMAGE: &str = concat!("swarm:", env!("CARGO_PKG_VERSION"));

/// The coordinator's port, in the pod and on the Service.
pub const PORT: u16 = 7700;

/// Where the coordinator finds the plan and its data files (the ConfigMap).
pub const PLAN_DIR: &str = "/plan";

/// Where the coordinator writes its reports.
pub const REPORTS_DIR: &str = "/reports";

/// The longest `--name`: the Jobs' pods are named `<name>-workers-<index>-<suffix>`
/// and their host names must stay within 63 characters.
pub const MAX_NAME: usize = 40;

/// CPU and memory for one pod's container: requested and capped at the same
/// figures, so each pod gets the Guaranteed class (the last a busy node evicts, and a
/// fixed share of CPU, so one worker's capacity does not vary with its neighbours).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Size {
    /// A Kubernetes quantity: `1`, `500m`, `2`.
    pub cpu: String,
    /// A Kubernetes quantity: `512Mi`, `1Gi`.
    pub memory: String,
}

/// Everything `swarm k8s` needs besides the plan: the command line, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The prefix of every object's name; `None` derives one from the plan's name.
    pub name: Option<String>,
    /// `None` leaves the namespace to kubectl's context.
    pub namespace: Option<String>,
    pub image: String,
    pub workers: u32,
    /// `None` generates one (see [`generate_token`]).
    pub token: Option<String>,
    /// How long the coordinator waits for every worker to join.
    pub workers_timeout: Duration,
    pub on_worker_loss: crate::dist::OnLoss,
    /// The Jobs' `activeDeadlineSeconds`; `None` derives it from the plan's duration.
    pub deadline: Option<Duration>,
    pub coordinator: Size,
    pub worker: Size,
    /// A PersistentVolumeClaim to write the reports to; `None` writes them to a
    /// scratch volume that ends with the pod.
    pub reports_claim: Option<String>,
    /// Serve the dashboard on the coordinator's loopback (for `kubectl port-forward`).
    pub ui: bool,
    /// The plan's overrides (`--var`, `--target`, `--users`, `--duration`), passed on
    /// to the coordinator's `swarm check` as they were given.
    pub check_args: Vec<String>,
}

/// The rendered manifests, and what the command says about them on stderr.
#[derive(Debug, Clone)]
pub struct Manifests {
    /// The YAML documents, ready for `kubectl apply -f -`.
    pub yaml: String,
    /// The objects' name prefix (the coordinator's Job is `<name>-coordinator`).
    pub name: String,
    /// The Jobs' deadline, when one applies.
    pub deadline: Option<Duration>,
    /// Things to tell the user that do not stop the manifests (on stderr).
    pub notes: Vec<String>,
}

/// Why no manifests could be rendered.
#[derive(Debug, thiserror::Error)]
pub enum K8sError {
    #[error(
        "the plan and its data files hold {} bytes, and a ConfigMap holds at most {} \
         (1 MiB); largest first: {}",
        total,
        bundle::CONFIGMAP_LIMIT,
        files.iter().map(|(p, n)| format!("{p} ({n} bytes)")).collect::<Vec<_>>().join(", ")
    )]
    TooLarge {
        total: usize,
        files: Vec<(String, usize)>,
    },
    #[error(
        "feeder `{feeder}` reads `{file}`, an absolute path; in the pod the files sit \
         beside the plan, so give the path relative to the plan file"
    )]
    AbsoluteData { feeder: String, file: String },
    #[error("data file `{}` is not UTF-8 text, which a ConfigMap and the feeders need", path.display())]
    NotText { path: PathBuf },
    #[error("cannot read data file `{}`: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the file name `{}` cannot be a path in a ConfigMap volume", path.display())]
    PathName { path: PathBuf },
    /// A flag whose value Kubernetes would refuse (a name, a quantity, the token...).
    #[error("{flag} `{value}`: {why}")]
    Invalid {
        flag: &'static str,
        value: String,
        why: String,
    },
    #[error("could not write the manifests as YAML: {0}")]
    Yaml(String),
}

/// Renders the manifests for `plan`, compiled from `plan_text` read at `plan_path`.
pub fn render(
    plan_path: &Path,
    plan_text: &str,
    plan: &CompiledPlan,
    opts: &Options,
) -> Result<Manifests, K8sError> {
    let name = match &opts.name {
        Some(n) => {
            names::check_name(n)?;
            n.clone()
        }
        None => derive_name(&plan.name),
    };
    names::check_options(opts)?;
    let bundle = bundle::collect(plan_path, plan_text, plan)?;
    let token = opts.token.clone().unwrap_or_else(generate_token);
    let deadline = opts.deadline.or_else(|| {
        plan.load
            .total_duration()
            .map(|run| opts.workers_timeout + run + run / 10 + DEADLINE_GRACE)
    });
    let docs = manifests::Docs {
        name: &name,
        opts,
        bundle: &bundle,
        token: &token,
        deadline,
    };
    let mut yaml = header(plan, plan_path, &name, opts, deadline);
    yaml.push_str(&docs.render()?);
    let mut notes = Vec::new();
    if bundle.size() > CLIENT_APPLY_LIMIT {
        notes.push(format!(
            "the ConfigMap holds {} bytes: plain `kubectl apply` copies it into an \
             annotation of at most 256 KiB; use `kubectl apply --server-side -f -` \
             or `kubectl create -f -`",
            bundle.size()
        ));
    }
    let env = env_names(plan_text);
    if !env.is_empty() {
        notes.push(format!(
            "the plan reads the environment ({}), which the coordinator's pod does not \
             have: give the values with --var or --target, which are passed on, or the \
             plan's defaults (${{NAME:-default}}) apply",
            env.join(", ")
        ));
    }
    if deadline.is_none() {
        notes.push(
            "the plan's length is not known (it ends after its iterations): the Jobs get \
             no deadline; set one with --deadline"
                .into(),
        );
    }
    Ok(Manifests {
        yaml,
        name,
        deadline,
        notes,
    })
}

/// Beyond the run itself and the wait for workers: pulling images, scheduling pods,
/// the last second's merge and the reports.
const DEADLINE_GRACE: Duration = Duration::from_secs(120);

/// Client-side `kubectl apply` stores the object in an annotation, and annotations
/// hold 256 KiB; the margin is for JSON escaping.
const CLIENT_APPLY_LIMIT: usize = 200 * 1024;

/// The names in the plan's `${NAME}` and `${NAME:-default}` (the compiler expands
/// them from its own environment, which is not the pod's).
fn env_names(text: &str) -> Vec<String> {
    let mut names: Vec<String> = text
        .split("${")
        .skip(1)
        .filter_map(|rest| {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let closed = rest[name.len()..].starts_with(['}', ':']);
            (closed && !name.is_empty() && !name.starts_with(|c: char| c.is_ascii_digit()))
                .then_some(name)
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// A fresh token: 32 bytes from the thread's CSPRNG (ChaCha, seeded by the OS),
/// in hex.
pub fn generate_token() -> String {
    token_from(&mut rand::rng())
}

fn token_from(rng: &mut impl rand::CryptoRng) -> String {
    let mut bytes = [0u8; 32];
    rng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The comment on top: what this is and how to run it.
fn header(
    plan: &CompiledPlan,
    plan_path: &Path,
    name: &str,
    opts: &Options,
    deadline: Option<Duration>,
) -> String {
    let title: String = plan
        .name
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let timeout = deadline.map_or_else(String::new, |d| {
        format!(" --timeout={}s", d.as_secs_f64().ceil() as u64)
    });
    let ns = opts
        .namespace
        .as_ref()
        .map_or_else(String::new, |ns| format!(" -n {ns}"));
    format!(
        "# swarm {version}: \"{title}\" ({path}) on {n} worker{s}.\n\
         # run:   swarm k8s ... | kubectl apply -f -\n\
         # gate:  kubectl wait{ns} --for=condition=complete{timeout} job/{name}-coordinator\n\
         # watch: kubectl logs{ns} -f job/{name}-coordinator\n\
         # clean: kubectl delete{ns} job,service,configmap,secret -l app.kubernetes.io/instance={name}\n",
        version = env!("CARGO_PKG_VERSION"),
        path = plan_path.display(),
        n = opts.workers,
        s = if opts.workers == 1 { "" } else { "s" },
    )
}

#[cfg(test)]
mod tests;
