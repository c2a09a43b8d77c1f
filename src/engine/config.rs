//! Settings of the engine that do not come from the plan: plain values, built by the
//! caller (the CLI reads flags and environment variables; the engine reads neither).
//! Each protocol has a config of its own, beside the engine's.

/// How the engine runs, beyond what the plan says.
#[derive(Debug, Clone, Default)]
pub struct EngineConfig {
    /// Threads, each with its own current-thread runtime; 0 = one per core.
    pub threads: usize,
    /// How HTTP calls are made.
    pub http: HttpConfig,
}

pub use crate::compile::graph::HttpVersion;

/// How HTTP calls are made: the client, TLS, the HTTP version, and the limits on a
/// response.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Which client implementation the users get.
    pub client: Implementation,
    /// Skip TLS certificate verification (`--insecure`).
    pub insecure: bool,
    /// Certificate authorities trusted besides the webpki roots (DER), such as a
    /// private CA: verification stays on, against these too.
    pub extra_roots: Vec<rustls::pki_types::CertificateDer<'static>>,
    /// Response bodies larger than this fail the request (never an out-of-memory).
    pub body_limit: usize,
    /// Response heads (status line and headers) larger than this fail the request.
    pub head_limit: usize,
    /// Redirects followed per request before it fails.
    pub max_redirects: u32,
    /// Which HTTP version requests speak (the plan's `http.version`).
    pub version: HttpVersion,
}

/// The response body limit when the plan sets none (`defaults.max_response_body`).
pub const DEFAULT_BODY_LIMIT: usize = 10 * 1024 * 1024;
/// The response head limit when the plan sets none (`defaults.max_response_head`).
pub const DEFAULT_HEAD_LIMIT: usize = 64 * 1024;

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            client: Implementation::Lean,
            insecure: false,
            extra_roots: Vec::new(),
            body_limit: DEFAULT_BODY_LIMIT,
            head_limit: DEFAULT_HEAD_LIMIT,
            max_redirects: 10,
            version: HttpVersion::Auto,
        }
    }
}

/// Which HTTP client implementation users get. The lean client is the default (it is
/// faster and holds less per user; see `docs/benchmarks.md`); reqwest is kept for
/// comparison (`SWARM_HTTP_CLIENT=reqwest` on the command line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Implementation {
    #[default]
    Lean,
    Reqwest,
}

impl Implementation {
    /// The client named `lean` or `reqwest`; `None` for any other name.
    pub fn from_name(name: &str) -> Option<Implementation> {
        match name {
            "lean" => Some(Implementation::Lean),
            "reqwest" => Some(Implementation::Reqwest),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_are_named_lean_and_reqwest() {
        assert_eq!(
            Implementation::from_name("lean"),
            Some(Implementation::Lean)
        );
        assert_eq!(
            Implementation::from_name("reqwest"),
            Some(Implementation::Reqwest)
        );
        assert_eq!(Implementation::from_name("hyper"), None);
        assert_eq!(HttpConfig::default().client, Implementation::Lean);
    }
}
