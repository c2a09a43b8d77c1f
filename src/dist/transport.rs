//! The coordinator's port: TCP, optionally TLS (rustls), then a WebSocket
//! (tokio-tungstenite) whose binary messages are the protocol's frames.
//!
//! The token travels in the upgrade request (`Authorization: Bearer T`) and is
//! compared in constant time before the WebSocket exists, so a worker with a wrong
//! token gets a plain HTTP 401 with a sentence and the coordinator spends nothing
//! more on it. Sizes are capped by the WebSocket layer (a frame past the limit is an
//! error before it is buffered whole), and each handshake has a deadline.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use http::{HeaderValue, StatusCode};
use subtle::ConstantTimeEq;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};

use super::proto::{self, FrameError, MAX_DOWN_FRAME, MAX_UP_FRAME, PATH, PROTOCOL};

/// A TCP or TLS stream.
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// One end of a coordinator connection.
pub(crate) type Socket = WebSocketStream<Box<dyn Io>>;

/// How long a connection has to finish its TLS and WebSocket handshakes.
pub(crate) const HANDSHAKE: Duration = Duration::from_secs(10);

/// Why a connection could not be made or went wrong.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("could not connect to {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS handshake failed: {0}")]
    Tls(#[source] std::io::Error),
    #[error("the coordinator refused the worker: {0}")]
    Refused(String),
    #[error("WebSocket: {0}")]
    Ws(#[from] tungstenite::Error),
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("the handshake took longer than {}s", HANDSHAKE.as_secs())]
    Timeout,
    #[error("the connection closed")]
    Closed,
}

fn config(max: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(16 * 1024)
        .write_buffer_size(0)
        .max_message_size(Some(max))
        .max_frame_size(Some(max))
}

/// The coordinator's side of a new connection: TLS when configured, then the
/// WebSocket upgrade, refused unless the path names this protocol and the token
/// matches.
pub(crate) async fn accept(
    tcp: TcpStream,
    tls: Option<&tokio_rustls::TlsAcceptor>,
    token: Option<&str>,
) -> Result<Socket, LinkError> {
    let io: Box<dyn Io> = match tls {
        Some(acceptor) => Box::new(acceptor.accept(tcp).await.map_err(LinkError::Tls)?),
        None => Box::new(tcp),
    };
    #[expect(
        clippy::result_large_err,
        reason = "the signature tungstenite's handshake callback takes"
    )]
    let check = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        if req.uri().path() != PATH {
            return Err(refusal(
                StatusCode::NOT_FOUND,
                format!(
                    "this coordinator speaks protocol {PROTOCOL} at {PATH}, not {}: \
                     use a swarm of the same version",
                    req.uri().path()
                ),
            ));
        }
        if let Some(token) = token {
            let given = req
                .headers()
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or("");
            if !bool::from(given.as_bytes().ct_eq(token.as_bytes())) {
                return Err(refusal(
                    StatusCode::UNAUTHORIZED,
                    "wrong or missing token (--token or SWARM_TOKEN)".into(),
                ));
            }
        }
        Ok(resp)
    };
    Ok(
        tokio_tungstenite::accept_hdr_async_with_config(io, check, Some(config(MAX_UP_FRAME)))
            .await?,
    )
}

fn refusal(status: StatusCode, message: String) -> ErrorResponse {
    let mut resp = ErrorResponse::new(Some(message));
    *resp.status_mut() = status;
    resp
}

/// The worker's side: connects to `url` (`http://` or `https://`), upgrades with
/// the token, and reads what a refusal says.
pub(crate) async fn connect(
    url: &url::Url,
    token: Option<&str>,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<Socket, LinkError> {
    let host = url.host_str().unwrap_or("").to_owned();
    let port = url.port_or_known_default().unwrap_or(7700);
    let addr = format!("{host}:{port}");
    let tcp = TcpStream::connect(&addr)
        .await
        .map_err(|source| LinkError::Connect {
            addr: addr.clone(),
            source,
        })?;
    let _ = tcp.set_nodelay(true);
    let io: Box<dyn Io> = match tls {
        Some(config) => {
            let name = rustls::pki_types::ServerName::try_from(host.clone())
                .map_err(|e| LinkError::Tls(std::io::Error::other(e)))?;
            let connector = tokio_rustls::TlsConnector::from(config);
            Box::new(connector.connect(name, tcp).await.map_err(LinkError::Tls)?)
        }
        None => Box::new(tcp),
    };
    let ws_url = format!("ws://{addr}{PATH}");
    let mut request = tungstenite::client::IntoClientRequest::into_client_request(ws_url)?;
    if let Some(token) = token {
        let value = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| LinkError::Refused("the token is not a valid header value".into()))?;
        request
            .headers_mut()
            .insert(http::header::AUTHORIZATION, value);
    }
    match tokio_tungstenite::client_async_with_config(request, io, Some(config(MAX_DOWN_FRAME)))
        .await
    {
        Ok((socket, _)) => Ok(socket),
        Err(tungstenite::Error::Http(resp)) => {
            let body = resp
                .body()
                .as_deref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            Err(LinkError::Refused(format!(
                "HTTP {}: {body}",
                resp.status()
            )))
        }
        Err(e) => Err(e.into()),
    }
}

/// Sends one message as a frame.
pub(crate) async fn send<T: serde::Serialize>(
    socket: &mut Socket,
    msg: &T,
) -> Result<(), LinkError> {
    socket
        .send(Message::Binary(proto::encode(msg).into()))
        .await?;
    Ok(())
}

/// What came in on a socket.
pub(crate) enum Incoming<T> {
    Msg(T),
    /// A ping or a pong: the peer is alive.
    Alive,
}

/// Reads the next message: a frame decoded, a keep-alive, or an error (a text
/// message, a bad frame, the peer's close).
pub(crate) async fn recv<T: serde::de::DeserializeOwned>(
    socket: &mut Socket,
) -> Result<Incoming<T>, LinkError> {
    match socket.next().await {
        Some(Ok(Message::Binary(bytes))) => Ok(Incoming::Msg(proto::decode(&bytes)?)),
        Some(Ok(Message::Ping(_) | Message::Pong(_))) => Ok(Incoming::Alive),
        Some(Ok(Message::Text(_))) => Err(FrameError::Magic.into()),
        Some(Ok(Message::Close(_) | Message::Frame(_))) | None => Err(LinkError::Closed),
        Some(Err(e)) => Err(e.into()),
    }
}

/// Sends a keep-alive.
pub(crate) async fn ping(socket: &mut Socket) -> Result<(), LinkError> {
    socket.send(Message::Ping(Vec::new().into())).await?;
    Ok(())
}
