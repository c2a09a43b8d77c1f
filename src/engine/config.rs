//! Settings of the engine that do not come from the plan.

/// How the engine runs, beyond what the plan says.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Skip TLS certificate verification (`--insecure`).
    pub insecure: bool,
    /// Certificate authorities trusted besides the webpki roots (DER), such as a
    /// private CA: verification stays on, against these too.
    pub extra_roots: Vec<rustls::pki_types::CertificateDer<'static>>,
    /// Response bodies larger than this fail the request (never an out-of-memory).
    pub body_limit: usize,
    /// Redirects followed per request before it fails.
    pub max_redirects: u32,
    /// Threads, each with its own current-thread runtime; 0 = one per core.
    pub threads: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            insecure: false,
            extra_roots: Vec::new(),
            body_limit: 10 * 1024 * 1024,
            max_redirects: 10,
            threads: 0,
        }
    }
}
