//! Logging setup: `tracing` to stderr, never into reports or the summary.

use tracing_subscriber::EnvFilter;

/// Installs the stderr subscriber. `-v` shows info, `-vv` debug; `RUST_LOG` overrides.
pub fn init(verbose: u8) {
    let default = match verbose {
        0 => "swarm=warn",
        1 => "swarm=info",
        2 => "swarm=debug",
        _ => "swarm=trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
