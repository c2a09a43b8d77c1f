//! WebSocket steps for one user: its connection (`ws`), the messages it sends
//! (`ws_send`), the messages it waits for (`await`, `ws_recv`) and the close
//! (`ws_close`), over tokio-tungstenite (see `docs/benchmarks.md` for why).
//!
//! A wait takes the first message that matches, from the queue of messages that
//! earlier waits passed over, then from the socket; a message that does not match
//! joins the queue for a later wait. The queue is bounded ([`MAX_QUEUED`] messages,
//! and the reply limit in bytes): past that the oldest are dropped, so a server that
//! pushes without end cannot grow a user without end.
//!
//! Memory: nothing until the user's first `ws` step; then a boxed connection whose
//! read buffer is [`READ_BUFFER`] bytes, and no write buffer between sends.

mod socket;

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::HeaderValue;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

use super::expect::LazyJson;
use super::http::lean::conn::Conn;
use super::render::{self, Scope};
use super::tcp::{SocketShared, render_payload};
use crate::compile::graph::{WsAwait, WsCall};
use crate::metrics::failure::{CheckFailure, FailureKind, ProtocolFailure, TransportFailure};

pub use socket::READ_BUFFER;

/// The most messages kept for a later wait.
pub const MAX_QUEUED: usize = 256;

/// One user's WebSocket state.
#[derive(Debug)]
pub struct WsSession {
    shared: SocketShared,
    conn: Option<Box<WsConn>>,
    pending: Pending,
}

#[derive(Debug)]
struct WsConn {
    stream: WebSocketStream<Conn>,
    /// Messages no wait matched yet, oldest first.
    queue: VecDeque<Bytes>,
    queued_bytes: usize,
}

/// What [`WsSession::prepare`] rendered, taken by the exchange.
#[derive(Debug, Default)]
enum Pending {
    #[default]
    None,
    Connect(Box<http::Request<()>>),
    Send(Message),
}

impl WsSession {
    pub fn new(shared: &SocketShared) -> WsSession {
        WsSession {
            shared: shared.clone(),
            conn: None,
            pending: Pending::None,
        }
    }

    /// Renders the handshake request or the message to send. A URL or header that
    /// cannot be sent is [`CheckFailure::InvalidRequest`].
    pub fn prepare(&mut self, call: &WsCall, scope: &mut Scope) -> Result<(), FailureKind> {
        let unset = |slot| FailureKind::Check(CheckFailure::Unset(slot));
        self.pending = match call {
            WsCall::Connect {
                url,
                headers,
                subprotocols,
            } => {
                let mut text = String::new();
                render::render_str(url, scope, &mut text).map_err(unset)?;
                let mut req = socket::request(&text).ok_or(CheckFailure::InvalidRequest)?;
                for (name, template) in headers {
                    let mut value = String::new();
                    render::render_str(template, scope, &mut value).map_err(unset)?;
                    let value =
                        HeaderValue::from_str(&value).map_err(|_| CheckFailure::InvalidRequest)?;
                    req.headers_mut().append(name.clone(), value);
                }
                if !subprotocols.is_empty() {
                    let offered = HeaderValue::from_str(&subprotocols.join(", "))
                        .map_err(|_| CheckFailure::InvalidRequest)?;
                    req.headers_mut().insert("sec-websocket-protocol", offered);
                }
                Pending::Connect(Box::new(req))
            }
            WsCall::Send { payload, .. } => {
                let (bytes, text) = render_payload(payload, scope)?;
                Pending::Send(match text {
                    true => Message::Text(
                        String::from_utf8(bytes)
                            .map_err(|_| CheckFailure::InvalidRequest)?
                            .into(),
                    ),
                    false => Message::Binary(bytes.into()),
                })
            }
            WsCall::Recv(_) | WsCall::Close(_) => Pending::None,
        };
        Ok(())
    }

    /// Runs the step within `timeout`; the reply is the awaited message (empty when
    /// the step awaits none). A failed exchange drops the connection, except a
    /// timed-out wait: the message may still come, for a later wait.
    pub async fn exchange(
        &mut self,
        call: &WsCall,
        timeout: Duration,
    ) -> Result<Bytes, FailureKind> {
        let pending = std::mem::take(&mut self.pending);
        match tokio::time::timeout(timeout, self.run(call, pending)).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(kind)) => {
                self.conn = None;
                Err(kind)
            }
            Err(_) => {
                if matches!(call, WsCall::Connect { .. } | WsCall::Close(_)) {
                    self.conn = None;
                }
                Err(TransportFailure::Timeout.into())
            }
        }
    }

    async fn run(&mut self, call: &WsCall, pending: Pending) -> Result<Bytes, FailureKind> {
        let limit = self.shared.limit();
        match (call, pending) {
            (WsCall::Connect { .. }, Pending::Connect(req)) => {
                self.conn = None;
                let stream = socket::connect(*req, &self.shared).await?;
                self.conn = Some(Box::new(WsConn {
                    stream,
                    queue: VecDeque::new(),
                    queued_bytes: 0,
                }));
                Ok(Bytes::new())
            }
            (WsCall::Send { wait, .. }, Pending::Send(message)) => {
                let conn = self.conn.as_mut().ok_or(ProtocolFailure::NotConnected)?;
                conn.stream.send(message).await.map_err(socket::failure)?;
                match wait {
                    Some(w) => conn.wait(w, limit).await,
                    None => Ok(Bytes::new()),
                }
            }
            (WsCall::Recv(w), _) => {
                let conn = self.conn.as_mut().ok_or(ProtocolFailure::NotConnected)?;
                conn.wait(w, limit).await
            }
            (WsCall::Close(code), _) => {
                let mut conn = self.conn.take().ok_or(ProtocolFailure::NotConnected)?;
                let frame = CloseFrame {
                    code: (*code).into(),
                    reason: "".into(),
                };
                conn.stream
                    .send(Message::Close(Some(frame)))
                    .await
                    .map_err(socket::failure)?;
                // The close is done when the server answers it (or hangs up).
                while let Some(Ok(m)) = conn.stream.next().await {
                    if m.is_close() {
                        break;
                    }
                }
                Ok(Bytes::new())
            }
            _ => Err(CheckFailure::InvalidRequest.into()),
        }
    }
}

impl WsConn {
    /// The first message that matches `w`: from the queue, else from the socket.
    async fn wait(&mut self, w: &WsAwait, limit: usize) -> Result<Bytes, FailureKind> {
        if let Some(i) = self.queue.iter().position(|m| matches(w, m)) {
            let m = self.queue.remove(i).unwrap_or_default();
            self.queued_bytes -= m.len();
            if self.queue.is_empty() {
                self.queue = VecDeque::new();
            }
            return Ok(m);
        }
        loop {
            let message = match self.stream.next().await {
                None => return Err(ProtocolFailure::ServerClosed.into()),
                Some(Err(e)) => return Err(socket::failure(e)),
                Some(Ok(m)) => m,
            };
            let data = match message {
                Message::Text(t) => Bytes::from(t),
                Message::Binary(b) => b,
                Message::Close(_) => return Err(ProtocolFailure::ServerClosed.into()),
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
            };
            if matches(w, &data) {
                return Ok(data);
            }
            self.queued_bytes += data.len();
            self.queue.push_back(data);
            while self.queue.len() > MAX_QUEUED || self.queued_bytes > limit {
                let dropped = self.queue.pop_front().unwrap_or_default();
                self.queued_bytes -= dropped.len();
            }
        }
    }
}

/// Whether a message satisfies every matcher of the wait (any message, without
/// matchers); a message that is not JSON matches none.
fn matches(w: &WsAwait, message: &[u8]) -> bool {
    let mut json = LazyJson::new(message);
    w.matches
        .iter()
        .all(|(path, m)| json.holds(path, m).unwrap_or(false))
}

#[cfg(test)]
mod tests;
