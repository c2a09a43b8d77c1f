//! The built-in demo target: a small shop API to load-test against (`swarm demo`,
//! `swarm check --demo`, tests and benchmarks).
//!
//! It is also a benchmark target, so the hot path takes no lock at all: login tokens
//! and session cookies are stateless (a keyed hash of the user and a nonce, keyed by
//! a random per-server secret), so any number of logins costs no memory and every
//! check is a hash, never a shared map.

mod catalog;
pub mod grpc;
mod handlers;

use std::net::SocketAddr;

use tokio::sync::oneshot;

pub use catalog::{PAGE_SIZE, PRODUCTS};
pub use handlers::{CAPACITY_MS, CAPACITY_SLOTS};

/// A running demo server. It stops when dropped.
#[derive(Debug)]
pub struct DemoServer {
    /// The address it listens on (with the real port when bound to port 0).
    pub addr: SocketAddr,
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
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Binds `addr` and serves the demo shop API on the current tokio runtime until the
/// returned [`DemoServer`] is dropped.
pub async fn start(addr: SocketAddr) -> std::io::Result<DemoServer> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
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
        shutdown: Some(tx),
    })
}
