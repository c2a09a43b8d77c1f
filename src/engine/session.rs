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
use super::tcp::{SocketShared, TcpSession};
use super::ws::WsSession;

/// What every user of a run shares, per protocol. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Protocols {
    pub http: HttpShared,
    pub grpc: GrpcShared,
    /// WebSocket and TCP: TLS settings and the reply limit.
    pub sockets: SocketShared,
}

impl Protocols {
    /// Builds each protocol's shared settings; a setup problem fails the run before
    /// any user starts.
    pub fn new(config: &EngineConfig) -> Result<Protocols, HttpSetupError> {
        let http = HttpShared::new(&config.http)?;
        let sockets = SocketShared::new(&http);
        Ok(Protocols {
            grpc: GrpcShared::new(&http),
            http,
            sockets,
        })
    }

    /// A new user's sessions: no cookies, no connections yet.
    pub fn sessions(&self, user: u32) -> Sessions {
        Sessions {
            http: HttpSession::new(user, &self.http),
            grpc: GrpcSession::new(&self.grpc),
            sockets: Sockets {
                shared: self.sockets.clone(),
                open: None,
            },
        }
    }
}

/// One user's state per protocol, kept between its calls and never shared.
#[derive(Debug)]
pub struct Sessions {
    pub http: HttpSession,
    pub grpc: GrpcSession,
    /// WebSocket and TCP, made on a user's first such step: a user of an HTTP-only
    /// plan pays two words for them.
    pub sockets: Sockets,
}

/// A user's WebSocket and TCP sessions, once it has used either.
#[derive(Debug)]
pub struct Sockets {
    shared: SocketShared,
    open: Option<Box<SocketSessions>>,
}

#[derive(Debug)]
pub struct SocketSessions {
    pub ws: WsSession,
    pub tcp: TcpSession,
}

impl Sockets {
    /// The sessions, made on first use.
    pub fn get(&mut self) -> &mut SocketSessions {
        let shared = &self.shared;
        self.open.get_or_insert_with(|| {
            Box::new(SocketSessions {
                ws: WsSession::new(shared),
                tcp: TcpSession::new(shared),
            })
        })
    }
}
