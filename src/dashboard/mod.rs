//! The live web dashboard (cargo feature `ui`): serves the page, pushes snapshots to
//! it as Server-Sent Events, and turns the page's controls into [`Control`] messages.
//! It consumes the engine's snapshots and sends it control messages; the engine never
//! depends on it.
//!
//! # Using it from `swarm check --ui`
//!
//! ```ignore
//! use swarm::dashboard::DashboardConfig;
//! use swarm::run::RunSession;
//! // `--ui [ADDR]` and `--ui-token T` (or SWARM_UI_TOKEN); inside the tokio runtime:
//! // Before anything is sent: a bad address, or off loopback without a token, is exit 2.
//! let config = DashboardConfig::new(&addr, token)?;
//! let dash = swarm::dashboard::bind(config, plan.clone()).await?; // port in use: exit 3
//! eprintln!("dashboard: {}", dash.url_with_token());
//! let session = RunSession::start(plan.clone(), engine_config)?;
//! dash.attach(plan, session.snapshots(), session.control());
//! let ended = session.wait(Some(&mut signals)).await;
//! dash.finish(ended.snapshot.clone()); // the page shows the results the reports use
//! // ... write the reports ...
//! if keep_serving {
//!     dash.serve_until_ctrl_c().await; // keep showing the final results
//! }
//! ```
//!
//! [`serve_interactive`] is the same server for `swarm ui`: the page starts idle and a
//! [`Launcher`] starts each run the user asks for.
//!
//! # Security
//!
//! - Binding off loopback requires a token ([`DashboardError::TokenRequired`]).
//! - With a token, every page, stream, download and control request must carry it: a
//!   `?token=` first visit sets an HttpOnly, SameSite=Strict cookie; scripts may send
//!   `X-Swarm-Token` or `Authorization: Bearer`.
//! - Without a token (loopback only), the `Host` header must name a loopback host, so
//!   a DNS-rebinding page cannot read the dashboard.
//! - Control actions are POST-only, need the `X-Swarm-Request` header and a JSON body
//!   (neither of which a cross-site form can send), and a foreign `Origin` is refused.
//! - The page only ever receives names, numbers and SLO text: never header values,
//!   bodies or variables (see [`crate::report::page::view`]).

mod auth;
mod downloads;
mod hub;
mod launcher;
mod routes;
mod stream;

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

use crate::compile::graph::CompiledPlan;
use crate::engine::control::Control;
use crate::metrics::snapshot::Snapshot;

pub use hub::Hub;
pub use launcher::PlanLauncher;

/// Where and how the dashboard listens.
#[derive(Debug, Clone)]
pub struct DashboardConfig {
    pub addr: SocketAddr,
    /// Required off loopback; checked on every request when set.
    pub token: Option<String>,
}

/// Why the dashboard could not start.
#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    #[error("invalid dashboard address `{0}`: expected HOST:PORT, e.g. 127.0.0.1:8089")]
    BadAddress(String),
    #[error(
        "the dashboard would listen on {0}, which is not loopback: set a token with --ui-token or SWARM_UI_TOKEN"
    )]
    TokenRequired(SocketAddr),
    #[error("the dashboard token must not be empty")]
    EmptyToken,
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

impl DashboardConfig {
    /// Parses `HOST:PORT` (`localhost` allowed; a bare port means 127.0.0.1) and
    /// refuses an address off loopback without a token. An empty token counts as none.
    /// Call it before the run starts: its errors mean nothing may be sent (exit 2).
    pub fn new(addr: &str, token: Option<String>) -> Result<Self, DashboardError> {
        let bad = || DashboardError::BadAddress(addr.to_string());
        let addr = if let Ok(port) = addr.parse::<u16>() {
            SocketAddr::from(([127, 0, 0, 1], port))
        } else if let Ok(a) = addr.parse::<SocketAddr>() {
            a
        } else {
            // Only names that resolve locally (`localhost:8089`); the first address wins.
            addr.to_socket_addrs()
                .map_err(|_| bad())?
                .next()
                .ok_or_else(bad)?
        };
        let token = token.filter(|t| !t.is_empty());
        let config = DashboardConfig { addr, token };
        config.check()?;
        Ok(config)
    }

    /// Refuses to expose the dashboard off loopback without a token.
    fn check(&self) -> Result<(), DashboardError> {
        if self.token.is_none() && !is_loopback(self.addr.ip()) {
            return Err(DashboardError::TokenRequired(self.addr));
        }
        Ok(())
    }
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v| v.is_loopback()),
    }
}

/// One run the dashboard shows: the plan, the engine's snapshots and its control channel.
pub struct LiveRun {
    pub plan: Arc<CompiledPlan>,
    pub snapshots: watch::Receiver<Arc<Snapshot>>,
    pub control: mpsc::UnboundedSender<Control>,
    /// The final snapshot, when the run ends (from `RunHandle::wait`). Optional: the
    /// dashboard also sees the end in the snapshots, or through [`Dashboard::finish`].
    pub done: Option<oneshot::Receiver<Arc<Snapshot>>>,
}

/// The load a user asked for in interactive mode (`None`: the plan's own).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunRequest {
    pub users: Option<u32>,
    pub spawn_rate: Option<f64>,
    /// Open model: arrivals per second.
    pub rate: Option<f64>,
    pub duration: Option<Duration>,
}

/// Starts runs for interactive mode (`swarm ui`). Called inside the tokio runtime.
pub trait Launcher: Send + Sync + 'static {
    /// Compiles the plan with the request's overrides and starts the engine. The error
    /// is shown to the user as is.
    fn launch(&self, request: RunRequest) -> Result<LiveRun, String>;
}

/// A running dashboard server. It stops when dropped.
pub struct Dashboard {
    hub: Arc<Hub>,
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl Dashboard {
    /// The address it listens on (with the real port when bound to port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The page's URL, e.g. `http://127.0.0.1:8089/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// The URL to print for people: with `?token=` when a token is set.
    pub fn url_with_token(&self) -> String {
        match &self.hub.token {
            Some(t) => format!("{}?token={}", self.url(), url_encode(t)),
            None => self.url(),
        }
    }

    /// Shows a run: the engine's snapshots and control channel
    /// (`RunHandle::snapshots()`, `RunHandle::control()`).
    pub fn attach(
        &self,
        plan: Arc<CompiledPlan>,
        snapshots: watch::Receiver<Arc<Snapshot>>,
        control: mpsc::UnboundedSender<Control>,
    ) {
        self.hub.add_run(LiveRun {
            plan,
            snapshots,
            control,
            done: None,
        });
    }

    /// A run on many machines: the page shows its workers table too.
    pub fn show_workers(&self, workers: crate::dist::Workers) {
        self.hub.show_workers(workers);
    }

    /// Shows `snapshot` as the final state of the current run (call with the result of
    /// `RunHandle::wait`, so the page's last frame is the one the reports were built from).
    pub fn finish(&self, snapshot: Arc<Snapshot>) {
        self.hub.finish_current(snapshot);
    }

    /// Ends the current run, if one is going, as interrupted (Ctrl-C in `swarm ui`).
    pub fn interrupt_run(&self) {
        if let Some(run) = self.hub.current().filter(|r| r.is_running()) {
            let _ = run.control.send(Control::Interrupt);
        }
    }

    /// Keeps serving (the final results) until Ctrl-C (or SIGTERM), then stops.
    pub async fn serve_until_ctrl_c(mut self) {
        crate::run::signals::shutdown().await;
        self.stop().await;
    }

    /// Stops the server and waits for it to close.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.hub.close();
        if let Some(server) = self.server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(2), server).await;
        }
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.hub.close();
    }
}

fn url_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Serves the dashboard for one run (`swarm check --ui`): [`bind`] then
/// [`Dashboard::attach`]. Call inside a tokio runtime.
pub async fn serve_run(
    config: DashboardConfig,
    plan: Arc<CompiledPlan>,
    snapshots: watch::Receiver<Arc<Snapshot>>,
    control: mpsc::UnboundedSender<Control>,
) -> Result<Dashboard, DashboardError> {
    let dashboard = bind(config, plan.clone()).await?;
    dashboard.attach(plan, snapshots, control);
    Ok(dashboard)
}

/// Starts serving before the run exists (so a port in use fails before any request is
/// sent); [`Dashboard::attach`] then shows the run. Call inside a tokio runtime.
pub async fn bind(
    config: DashboardConfig,
    plan: Arc<CompiledPlan>,
) -> Result<Dashboard, DashboardError> {
    config.check()?;
    let hub = Hub::new(config.token.clone(), None, plan);
    start(config, hub).await
}

/// Serves interactive mode (`swarm ui`): the page starts idle and each run the user
/// starts is launched by `launcher`. `plan` describes the page while idle.
pub async fn serve_interactive(
    config: DashboardConfig,
    plan: Arc<CompiledPlan>,
    launcher: Arc<dyn Launcher>,
) -> Result<Dashboard, DashboardError> {
    config.check()?;
    let hub = Hub::new(config.token.clone(), Some(launcher), plan);
    start(config, hub).await
}

async fn start(config: DashboardConfig, hub: Arc<Hub>) -> Result<Dashboard, DashboardError> {
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .map_err(|source| DashboardError::Bind {
            addr: config.addr,
            source,
        })?;
    let addr = listener
        .local_addr()
        .map_err(|source| DashboardError::Bind {
            addr: config.addr,
            source,
        })?;
    let app = routes::router(hub.clone());
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let shutdown = async move {
            let _ = rx.await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::warn!("dashboard server stopped: {e}");
        }
    });
    Ok(Dashboard {
        hub,
        addr,
        shutdown: Some(tx),
        server: Some(server),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_loopback_needs_a_token() {
        for token in [None, Some(String::new())] {
            let err = DashboardConfig::new("0.0.0.0:0", token).unwrap_err();
            assert!(matches!(err, DashboardError::TokenRequired(_)));
        }
        let c = DashboardConfig::new("0.0.0.0:0", Some("t".into())).unwrap();
        assert!(c.check().is_ok());
        let literal = DashboardConfig {
            addr: "10.1.2.3:80".parse().unwrap(),
            token: None,
        };
        assert!(matches!(
            literal.check(),
            Err(DashboardError::TokenRequired(_))
        ));
        for loopback in ["127.0.0.1:0", "[::1]:0", "8089", "localhost:0"] {
            let c = DashboardConfig::new(loopback, None).unwrap();
            assert!(c.check().is_ok(), "{loopback}");
        }
        assert!(matches!(
            DashboardConfig::new("not an address", None),
            Err(DashboardError::BadAddress(_))
        ));
    }
}
