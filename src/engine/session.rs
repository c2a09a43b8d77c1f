//! The protocol seam on the engine's side: what the users of a run share per
//! protocol ([`Protocols`], built once from the [`EngineConfig`]), and what each user
//! keeps per protocol between its calls ([`Sessions`]: for HTTP its cookie jar,
//! connections and buffers).
//!
//! A new protocol adds its shared settings to [`Protocols`], its per-user session to
//! [`Sessions`] and an arm to the `match` in [`super::request::execute`]. A session
//! that holds nothing until its protocol is first used keeps idle users small.

use super::config::EngineConfig;
use super::grpc::{GrpcSession, GrpcShared};
use super::http::{HttpSession, HttpSetupError, HttpShared};

/// What every user of a run shares, per protocol. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Protocols {
    pub http: HttpShared,
    pub grpc: GrpcShared,
}

impl Protocols {
    /// Builds each protocol's shared settings; a setup problem fails the run before
    /// any user starts.
    pub fn new(config: &EngineConfig) -> Result<Protocols, HttpSetupError> {
        let http = HttpShared::new(&config.http)?;
        Ok(Protocols {
            grpc: GrpcShared::new(&http),
            http,
        })
    }

    /// A new user's sessions: no cookies, no connections yet.
    pub fn sessions(&self, user: u32) -> Sessions {
        Sessions {
            http: HttpSession::new(user, &self.http),
            grpc: GrpcSession::new(&self.grpc),
        }
    }
}

/// One user's state per protocol, kept between its calls and never shared.
#[derive(Debug)]
pub struct Sessions {
    pub http: HttpSession,
    pub grpc: GrpcSession,
}
