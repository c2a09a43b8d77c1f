//! `swarm check --coordinator`: turns the flags into a [`CoordinatorConfig`]
//! (refusing a coordinator off loopback without a token), waits for the workers and
//! starts the run on them. The rest of `check` (progress, reports, exit code) is the
//! same as on one machine.

use std::net::ToSocketAddrs;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::{CheckArgs, CliError};
use crate::compile::CompileOptions;
use crate::compile::graph::CompiledPlan;
use crate::dist::Workers;
use crate::dist::coordinator::{Coordinator, CoordinatorConfig, PlanSource};
use crate::run::RunSession;

/// The coordinator's settings from the command line.
pub(super) fn config(args: &CheckArgs, addr: &str) -> Result<CoordinatorConfig, CliError> {
    let d = &args.dist;
    let Some(workers) = d.workers.filter(|&n| n > 0) else {
        return Err(CliError::Usage(
            "--coordinator needs --workers N (at least 1): how many workers to wait for".into(),
        ));
    };
    let timeout = crate::compile::units::parse_duration(&d.workers_timeout)
        .map_err(|e| CliError::Usage(format!("--workers-timeout: {e}")))?;
    let addrs: Vec<_> = addr
        .to_socket_addrs()
        .map_err(|e| CliError::Usage(format!("--coordinator `{addr}`: {e}")))?
        .collect();
    let loopback = !addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback());
    let token = d.token.clone().filter(|t| !t.is_empty());
    if !loopback && token.is_none() {
        return Err(CliError::Usage(format!(
            "--coordinator {addr} listens off loopback: give a token (--token T or SWARM_TOKEN) \
             that the workers present"
        )));
    }
    let tls = match (&d.coordinator_cert, &d.coordinator_key) {
        (Some(cert), Some(key)) => Some(Arc::new(server_tls(cert, key)?)),
        _ => None,
    };
    Ok(CoordinatorConfig {
        addr: addr.to_owned(),
        workers,
        token,
        timeout,
        on_loss: d.on_worker_loss,
        tls,
        insecure: args.insecure,
    })
}

fn server_tls(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<rustls::ServerConfig, CliError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| CliError::Usage(format!("--coordinator-cert {}: {e}", cert.display())))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| CliError::Usage(format!("--coordinator-key {}: {e}", key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| CliError::Usage(format!("--coordinator-cert/--coordinator-key: {e}")))
}

/// Listens, waits for the workers, and starts the run on them.
pub(super) async fn start(
    config: CoordinatorConfig,
    plan: &Arc<CompiledPlan>,
    opts: &CompileOptions,
) -> Result<(RunSession, Workers), CliError> {
    let source = PlanSource::read(plan, opts)?;
    let wanted = config.workers;
    let timeout = config.timeout;
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let coordinator = Coordinator::bind(config).await?;
    eprintln!(
        "coordinator listening on {}: waiting up to {}s for {wanted} worker{} (swarm worker {scheme}://{})",
        coordinator.local_addr(),
        timeout.as_secs(),
        if wanted == 1 { "" } else { "s" },
        coordinator.local_addr(),
    );
    let run = coordinator.run(plan.clone(), source).await?;
    let session = RunSession::from_handle(plan.clone(), run.started, run.handle);
    Ok((session, run.workers))
}
