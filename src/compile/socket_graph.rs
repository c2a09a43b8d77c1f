//! The compiled WebSocket and TCP calls: what a `ws`, `ws_send`, `ws_recv`,
//! `ws_close`, `tcp` or `tcp_send` step does, resolved once (templates parsed,
//! JSONPath matchers compiled, base64 decoded). Re-exported by [`super::graph`].

use http::HeaderName;

use super::graph::{JsonTemplate, Matcher, Template};
use super::jsonpath::JsonPath;

/// A WebSocket step. Each user has at most one WebSocket connection, which `Connect`
/// opens (replacing any open one) and `Close` closes.
#[derive(Debug)]
pub enum WsCall {
    /// Opens the connection: the URL (already `ws://` or `wss://`), the handshake's
    /// headers and the subprotocols offered.
    Connect {
        url: Template,
        headers: Vec<(HeaderName, Template)>,
        subprotocols: Vec<String>,
    },
    /// Sends a message; with `wait`, the call lasts until the matching message.
    Send {
        payload: Payload,
        wait: Option<WsAwait>,
    },
    /// Waits for a matching message without sending.
    Recv(WsAwait),
    /// Sends a close frame with this code and waits for the server's.
    Close(u16),
}

/// The message a WebSocket step waits for: the first text or binary message whose
/// JSON satisfies every matcher (any message when there are none). Messages that do
/// not match stay queued for a later wait.
#[derive(Debug, Default)]
pub struct WsAwait {
    pub matches: Vec<(JsonPath, Matcher)>,
}

/// A TCP step. Each user has at most one TCP connection, which `Connect` opens
/// (replacing any open one).
#[derive(Debug)]
pub enum TcpCall {
    /// Opens the connection to `host:port` (a template), with TLS when `tls`.
    Connect { addr: Template, tls: bool },
    /// Writes bytes; with `wait`, the call lasts until that reply is read.
    Send {
        payload: Payload,
        wait: Option<TcpAwait>,
    },
}

/// What a TCP step reads as its reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TcpAwait {
    /// Up to and including this delimiter.
    Until(Vec<u8>),
    /// Exactly this many bytes.
    Bytes(usize),
}

/// What a `ws_send` or `tcp_send` step sends.
#[derive(Debug)]
pub enum Payload {
    /// Text (a WebSocket text message).
    Text(Template),
    /// A JSON value rendered to text (a WebSocket text message).
    Json(JsonTemplate),
    /// Bytes (a WebSocket binary message), decoded from base64 at compile time.
    Binary(Vec<u8>),
}

/// `host:port` split in two, when the port is a number.
pub fn split_addr(addr: &str) -> Option<(&str, u16)> {
    let (host, port) = addr.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = port.parse().ok()?;
    (!host.is_empty()).then_some((host, port))
}
