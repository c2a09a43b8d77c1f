//! `swarm worker URL`: joins a coordinator and runs its share of the load until the
//! run ends (exit 0), or until it is refused or loses its coordinator (exit 3).

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use super::{CliError, Environment, WorkerArgs};
use crate::dist::worker::{self, WorkerConfig, WorkerError};

pub fn run(args: WorkerArgs, env: &Environment) -> Result<(), CliError> {
    let url = url::Url::parse(&args.url)
        .map_err(|_| CliError::Worker(WorkerError::Url(args.url.clone())))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(CliError::Usage(format!(
            "the coordinator URL must be http://host:port or https://host:port, not `{}`",
            args.url
        )));
    }
    let ca = match &args.ca {
        Some(path) => CertificateDer::pem_file_iter(path)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| CliError::Usage(format!("--ca {}: {e}", path.display())))?,
        None => Vec::new(),
    };
    let config = WorkerConfig {
        url,
        token: args.token.filter(|t| !t.is_empty()),
        name: args.name.unwrap_or_else(worker::default_name),
        ca,
        insecure: args.insecure,
        engine: super::engine_config(false, env),
    };
    let runtime = super::runtime()?;
    let outcome = runtime.block_on(worker::run(config));
    // Threads still draining after a lost coordinator must not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    outcome.map_err(CliError::from)
}
