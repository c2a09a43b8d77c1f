//! TEMPORARY stand-in for the request helper's HTTP layer (branch `request`), so the
//! engine builds and its tests run before that lands. Reverted before merging it.

use crate::engine::config::EngineConfig;

/// What all users of a run share. Cheap to clone.
#[derive(Debug, Clone)]
pub struct HttpShared {
    pub(crate) body_limit: usize,
}

/// Why the HTTP layer could not be set up for a run.
#[derive(Debug, thiserror::Error)]
pub enum HttpSetupError {
    #[error("http client setup failed: {0}")]
    Client(String),
}

impl HttpShared {
    pub fn new(config: &EngineConfig) -> Result<HttpShared, HttpSetupError> {
        Ok(HttpShared {
            body_limit: config.body_limit,
        })
    }
}
