//! Settings of the engine that do not come from the plan.

/// How the engine runs, beyond what the plan says.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Skip TLS certificate verification (`--insecure`).
    pub insecure: bool,
    /// Response bodies larger than this fail the request (never an out-of-memory).
    pub body_limit: usize,
    /// Response heads (status line and headers) larger than this fail the request.
    pub head_limit: usize,
    /// Redirects followed per request before it fails.
    pub max_redirects: u32,
    /// Worker threads, each with its own current-thread runtime; 0 = one per core.
    pub threads: usize,
}

/// The response body limit when the plan sets none (`defaults.max_response_body`).
pub const DEFAULT_BODY_LIMIT: usize = 10 * 1024 * 1024;
/// The response head limit when the plan sets none (`defaults.max_response_head`).
pub const DEFAULT_HEAD_LIMIT: usize = 64 * 1024;

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            insecure: false,
            body_limit: DEFAULT_BODY_LIMIT,
            head_limit: DEFAULT_HEAD_LIMIT,
            max_redirects: 10,
            threads: 0,
        }
    }
}
