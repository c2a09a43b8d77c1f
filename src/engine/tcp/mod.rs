//! TCP steps for one user: its connection (`tcp: host:port`, plain or TLS), the
//! bytes it writes (`tcp_send`) and the reply it reads (`await: { until | bytes }`).
//!
//! Also what WebSocket and TCP share ([`SocketShared`]: the TLS settings and the
//! reply limit) and how a payload is rendered ([`render_payload`]).
//!
//! Memory: a user holds nothing until its first `tcp` step; then a boxed connection
//! and the bytes received past the last reply (usually none: an emptied buffer is
//! released, so a user that only waits holds no buffer).

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use rustls::ClientConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::http::HttpShared;
use super::http::lean::conn::{Conn, connect};
use super::render::{self, Scope};
use crate::compile::graph::{Payload, TcpAwait, TcpCall, split_addr};
use crate::metrics::failure::{CheckFailure, FailureKind, ProtocolFailure, TransportFailure};

/// How much is read from the socket at a time.
const READ_CHUNK: usize = 4096;

/// What every WebSocket and TCP user of a run shares. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SocketShared {
    inner: Arc<SharedInner>,
}

#[derive(Debug)]
struct SharedInner {
    /// For `wss://`: ALPN offers HTTP/1.1, the protocol of the handshake.
    ws_tls: Arc<ClientConfig>,
    /// For `tls: true`: no ALPN, the protocol is the plan's own.
    tcp_tls: Arc<ClientConfig>,
    /// A WebSocket message, or a TCP reply, larger than this fails as "response too
    /// large" (`defaults.max_response_body`).
    limit: usize,
}

impl SocketShared {
    /// The TLS settings come from HTTP's (the same roots, `--insecure` and extra CAs).
    pub fn new(http: &HttpShared) -> SocketShared {
        let mut ws_tls = http.user_tls_config();
        // A WebSocket handshake is an HTTP/1.1 upgrade, whatever `http.version` offers.
        ws_tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let mut tcp_tls = ws_tls.clone();
        tcp_tls.alpn_protocols.clear();
        SocketShared {
            inner: Arc::new(SharedInner {
                ws_tls: Arc::new(ws_tls),
                tcp_tls: Arc::new(tcp_tls),
                limit: http.body_limit(),
            }),
        }
    }

    pub(super) fn ws_tls(&self) -> &Arc<ClientConfig> {
        &self.inner.ws_tls
    }

    /// The largest message or reply accepted.
    pub fn limit(&self) -> usize {
        self.inner.limit
    }
}

/// Renders what `ws_send`/`tcp_send` sends into a fresh buffer, handed to the socket
/// (so a user keeps no buffer between its sends). `true` when it is text.
pub fn render_payload(p: &Payload, scope: &mut Scope) -> Result<(Vec<u8>, bool), FailureKind> {
    let unset = |slot| FailureKind::Check(CheckFailure::Unset(slot));
    Ok(match p {
        Payload::Text(t) => {
            let mut out = String::new();
            render::render_str(t, scope, &mut out).map_err(unset)?;
            (out.into_bytes(), true)
        }
        Payload::Json(t) => {
            let (mut out, mut scratch) = (Vec::new(), String::new());
            render::render_json(t, scope, &mut out, &mut scratch).map_err(unset)?;
            (out, true)
        }
        Payload::Binary(b) => (b.clone(), false),
    })
}

/// One user's TCP state.
#[derive(Debug)]
pub struct TcpSession {
    shared: SocketShared,
    conn: Option<Box<TcpConn>>,
    /// What [`TcpSession::prepare`] rendered, taken by the exchange.
    pending: Pending,
}

#[derive(Debug)]
struct TcpConn {
    stream: Conn,
    /// Bytes received past the last reply.
    received: BytesMut,
}

#[derive(Debug, Default)]
enum Pending {
    #[default]
    None,
    Connect {
        host: String,
        port: u16,
    },
    Send(Vec<u8>),
}

impl TcpSession {
    pub fn new(shared: &SocketShared) -> TcpSession {
        TcpSession {
            shared: shared.clone(),
            conn: None,
            pending: Pending::None,
        }
    }

    /// Renders the address or the bytes to send. An address that is not `host:port`
    /// once rendered is [`CheckFailure::InvalidRequest`].
    pub fn prepare(&mut self, call: &TcpCall, scope: &mut Scope) -> Result<(), FailureKind> {
        self.pending = match call {
            TcpCall::Connect { addr, .. } => {
                let mut text = String::new();
                render::render_str(addr, scope, &mut text)
                    .map_err(|s| FailureKind::Check(CheckFailure::Unset(s)))?;
                let (host, port) = split_addr(text.trim()).ok_or(CheckFailure::InvalidRequest)?;
                Pending::Connect {
                    host: host.to_owned(),
                    port,
                }
            }
            TcpCall::Send { payload, .. } => Pending::Send(render_payload(payload, scope)?.0),
        };
        Ok(())
    }

    /// Connects, or writes and reads the reply, within `timeout`. The reply is what
    /// the `await` read (empty without one). A failed exchange drops the connection,
    /// a timeout too: a late reply would be read as the next step's, and a write cut
    /// short leaves the stream mid-message.
    pub async fn exchange(
        &mut self,
        call: &TcpCall,
        timeout: Duration,
    ) -> Result<BytesMut, FailureKind> {
        let pending = std::mem::take(&mut self.pending);
        let result = tokio::time::timeout(timeout, self.run(call, pending)).await;
        match result {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(kind)) => {
                self.conn = None;
                Err(kind)
            }
            Err(_) => {
                self.conn = None;
                Err(TransportFailure::Timeout.into())
            }
        }
    }

    async fn run(&mut self, call: &TcpCall, pending: Pending) -> Result<BytesMut, FailureKind> {
        match (call, pending) {
            (TcpCall::Connect { tls, .. }, Pending::Connect { host, port }) => {
                self.conn = None;
                let tls = tls.then_some(&self.shared.inner.tcp_tls);
                let stream = connect(&host, port, tls).await?;
                self.conn = Some(Box::new(TcpConn {
                    stream,
                    received: BytesMut::new(),
                }));
                Ok(BytesMut::new())
            }
            (TcpCall::Send { wait, .. }, Pending::Send(bytes)) => {
                let conn = self.conn.as_mut().ok_or(ProtocolFailure::NotConnected)?;
                conn.stream.write_all(&bytes).await.map_err(|e| io(&e))?;
                conn.stream.flush().await.map_err(|e| io(&e))?;
                drop(bytes);
                match wait {
                    None => Ok(BytesMut::new()),
                    Some(w) => conn.read_reply(w, self.shared.limit()).await,
                }
            }
            _ => Err(CheckFailure::InvalidRequest.into()),
        }
    }
}

impl TcpConn {
    /// Reads until the wait is satisfied; the reply is split off what was received,
    /// and the rest stays for the next read.
    async fn read_reply(&mut self, wait: &TcpAwait, limit: usize) -> Result<BytesMut, FailureKind> {
        let mut searched: usize = 0;
        loop {
            let end = match wait {
                TcpAwait::Bytes(n) if *n > limit => {
                    return Err(ProtocolFailure::BodyTooLarge.into());
                }
                TcpAwait::Bytes(n) => (self.received.len() >= *n).then_some(*n),
                TcpAwait::Until(delim) => {
                    let from = searched.saturating_sub(delim.len() - 1);
                    let found = find(&self.received[from..], delim).map(|i| from + i + delim.len());
                    searched = self.received.len();
                    found
                }
            };
            if let Some(end) = end {
                let reply = self.received.split_to(end);
                if self.received.is_empty() {
                    // Release the buffer: a waiting user holds none.
                    self.received = BytesMut::new();
                }
                return Ok(reply);
            }
            if self.received.len() >= limit {
                return Err(ProtocolFailure::BodyTooLarge.into());
            }
            let room = READ_CHUNK.min(limit - self.received.len());
            self.received.reserve(room);
            let n = (&mut self.stream)
                .take(room as u64)
                .read_buf(&mut self.received)
                .await
                .map_err(|e| io(&e))?;
            if n == 0 {
                return Err(ProtocolFailure::ServerClosed.into());
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A failed read or write: refused, reset or timed out when the error says so.
pub(super) fn io(e: &std::io::Error) -> FailureKind {
    super::http::io_failure(e).unwrap_or(FailureKind::Transport(TransportFailure::Reset))
}

#[cfg(test)]
mod tests;
