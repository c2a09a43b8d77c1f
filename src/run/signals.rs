//! Ctrl-C and SIGTERM as one stream: the only signal handling in swarm. A run relays
//! them to the engine ([`super::RunSession::wait`]); the dashboard and the demo stop
//! on them.

/// Ctrl-C and SIGTERM, as one stream.
pub struct Signals {
    #[cfg(unix)]
    streams: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl Signals {
    /// Starts listening. Call inside a tokio runtime. From now on the signals no
    /// longer end the process: they arrive here.
    #[cfg(unix)]
    pub fn new() -> Signals {
        use tokio::signal::unix::{SignalKind, signal};
        let streams = match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(int), Ok(term)) => Some((int, term)),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!("cannot listen for Ctrl-C or SIGTERM: {e}");
                None
            }
        };
        Signals { streams }
    }

    /// Waits for the next Ctrl-C or SIGTERM (forever, if they cannot be received).
    #[cfg(unix)]
    pub async fn recv(&mut self) {
        match &mut self.streams {
            Some((int, term)) => {
                tokio::select! {
                    Some(()) = int.recv() => {}
                    Some(()) = term.recv() => {}
                    else => std::future::pending::<()>().await,
                }
            }
            None => std::future::pending::<()>().await,
        }
    }

    #[cfg(not(unix))]
    pub fn new() -> Signals {
        Signals {}
    }

    #[cfg(not(unix))]
    pub async fn recv(&mut self) {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl Default for Signals {
    fn default() -> Self {
        Signals::new()
    }
}

/// Resolves on the next Ctrl-C or SIGTERM.
pub async fn shutdown() {
    Signals::new().recv().await;
}
