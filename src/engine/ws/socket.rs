//! Opening a WebSocket connection: the URL's scheme (`http`/`ws` plain,
//! `https`/`wss` TLS), the TCP connection and TLS handshake shared with the HTTP
//! client, and the WebSocket handshake with its limits; and how tungstenite's errors
//! become failure kinds.

use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::engine::http::lean::conn::{Conn, connect as connect_tcp};
use crate::engine::tcp::SocketShared;
use crate::metrics::failure::{FailureKind, ProtocolFailure, TransportFailure};

/// The read buffer of each connection. tungstenite's default (128 KiB) would be held
/// by every idle user; messages larger than this are still read whole (up to the
/// limit), the buffer growing for them.
pub const READ_BUFFER: usize = 4096;

/// The handshake request for a rendered URL: `http(s)://` becomes `ws(s)://`;
/// `None` when the URL is not a WebSocket URL.
pub(super) fn request(url: &str) -> Option<http::Request<()>> {
    let url = url.trim();
    let ws = if let Some(rest) = url.strip_prefix("http://") {
        format!("ws://{rest}")
    } else if let Some(rest) = url.strip_prefix("https://") {
        format!("wss://{rest}")
    } else {
        url.to_owned()
    };
    ws.into_client_request().ok()
}

/// Connects and shakes hands. The limits of [`SocketShared::limit`] apply to each
/// frame and message, so a huge frame fails as soon as its header announces it.
pub(super) async fn connect(
    req: http::Request<()>,
    shared: &SocketShared,
) -> Result<WebSocketStream<Conn>, FailureKind> {
    let uri = req.uri();
    let tls = match uri.scheme_str() {
        Some("wss") => true,
        Some("ws") => false,
        _ => return Err(ProtocolFailure::InvalidWebSocket.into()),
    };
    let host = uri.host().unwrap_or_default();
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let stream = connect_tcp(&host, port, tls.then(|| shared.ws_tls())).await?;
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_message_size(Some(shared.limit()))
        .max_frame_size(Some(shared.limit()));
    let (ws, _response) = tokio_tungstenite::client_async_with_config(req, stream, Some(config))
        .await
        .map_err(failure)?;
    Ok(ws)
}

/// The failure kind of a tungstenite error.
pub(super) fn failure(e: WsError) -> FailureKind {
    match e {
        WsError::ConnectionClosed | WsError::AlreadyClosed => ProtocolFailure::ServerClosed.into(),
        WsError::Io(e) => super::super::tcp::io(&e),
        WsError::Capacity(CapacityError::MessageTooLong { .. }) => {
            ProtocolFailure::BodyTooLarge.into()
        }
        WsError::Http(response) => ProtocolFailure::HttpStatus(response.status().as_u16()).into(),
        WsError::Tls(_) => TransportFailure::Tls.into(),
        _ => ProtocolFailure::InvalidWebSocket.into(),
    }
}
