//! The built-in demo target: a small shop API to load-test against (`swarm demo`,
//! `swarm check --demo`, tests and benchmarks), with a WebSocket endpoint (`/ws`,
//! `ws`) and a TCP line protocol on a port of its own (`tcp`).
//!
//! It is also a benchmark target, so the hot path takes no lock at all: login tokens
//! and session cookies are stateless (a keyed hash of the user and a nonce, keyed by
//! a random per-server secret), so any number of logins costs no memory and every
//! check is a hash, never a shared map.

mod catalog;
pub mod grpc;
mod handlers;
mod tcp;
mod ws;

use std::net::SocketAddr;

use tokio::sync::oneshot;

pub use catalog::{PAGE_SIZE, PRODUCTS};
pub use handlers::{CAPACITY_MS, CAPACITY_SLOTS};

/// A running demo server. It stops when dropped.
#[derive(Debug)]
pub struct DemoServer {
    /// The address it listens on (with the real port when bound to port 0).
    pub addr: SocketAddr,
    /// The address of the TCP line protocol.
    pub tcp_addr: SocketAddr,
    tcp: tokio::task::JoinHandle<()>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl DemoServer {
    /// The base URL, e.g. `http://127.0.0.1:8080`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for DemoServer {
    fn drop(&mut self) {
        self.tcp.abort();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Binds `addr` and serves the demo shop API on the current tokio runtime until the
/// returned [`DemoServer`] is dropped; the TCP line protocol listens on any free port
/// of the same IP.
pub async fn start(addr: SocketAddr) -> std::io::Result<DemoServer> {
    start_on(addr, 0).await
}

/// [`start`], with the TCP line protocol on port `tcp_port` (0: any free port).
pub async fn start_on(addr: SocketAddr, tcp_port: u16) -> std::io::Result<DemoServer> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let tcp_listener = tokio::net::TcpListener::bind(SocketAddr::new(addr.ip(), tcp_port)).await?;
    let tcp_addr = tcp_listener.local_addr()?;
    let tcp = tokio::spawn(tcp::serve(tcp_listener));
    let (tx, rx) = oneshot::channel::<()>();
    let app = grpc::routes(handlers::router());
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = rx.await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::warn!("demo server stopped: {e}");
        }
    });
    Ok(DemoServer {
        addr,
        tcp_addr,
        tcp,
        shutdown: Some(tx),
    })
}
