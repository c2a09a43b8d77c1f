//! HTTP/2 for the lean client: a user's one connection to an origin, once TLS
//! negotiated `h2` (or with prior knowledge under `h2c`), carried by hyper's HTTP/2
//! client. Requests go out as streams of that connection; each response is copied
//! into the request's pooled scratch in the form the HTTP/1.1 reader leaves it
//! (header lines, then the body), so redirects, cookies, limits and the checks
//! treat both versions alike.
//!
//! HTTP/1.1 stays on the lean client's own code: nothing here runs for it.

use bytes::Bytes;
use http::{HeaderValue, header};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::conn::Conn;
use super::pool::Scratch;
use super::wire::{self, Head, Parsed};
use crate::metrics::failure::{FailureKind, ProtocolFailure, TransportFailure};
use crate::metrics::stats::HttpVersionUsed;

/// A user's HTTP/2 connection to one origin. The connection itself runs as a task
/// of the user's thread, and closes when this handle and its clones are dropped (a
/// clone sends on the same connection: the requests of a `parallel` group do).
#[derive(Clone)]
pub(crate) struct H2 {
    send: http2::SendRequest<Full<Bytes>>,
}

impl std::fmt::Debug for H2 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H2")
            .field("closed", &self.send.is_closed())
            .finish()
    }
}

impl H2 {
    /// Whether the server has closed the connection (it can carry no new stream).
    pub(crate) fn is_closed(&self) -> bool {
        self.send.is_closed()
    }
}

/// Whether TLS negotiated HTTP/2 on `conn` (ALPN `h2`).
pub(crate) fn negotiated(conn: &Conn) -> bool {
    match conn {
        Conn::Tls(s) => s.get_ref().1.alpn_protocol() == Some(b"h2"),
        Conn::Plain(_) => false,
    }
}

/// Starts HTTP/2 on an open connection.
pub(crate) async fn handshake(conn: Conn, head_limit: usize) -> Result<H2, FailureKind> {
    let (send, connection) = http2::Builder::new(TokioExecutor::new())
        .max_header_list_size(crate::engine::http::h2_header_list_size(head_limit))
        .handshake(TokioIo::new(conn))
        .await
        .map_err(|e| error(&e))?;
    tokio::spawn(async move {
        // It ends when the user drops its handle or the server goes away; a broken
        // connection shows in the exchanges that use it.
        let _ = connection.await;
    });
    Ok(H2 { send })
}

/// One request on a stream of `h2`; the response goes into `s` as
/// [`wire::read_response`] would leave it. `cookie` is the Cookie header's value
/// (empty for none).
pub(crate) async fn exchange(
    h2: &mut H2,
    head: &Head<'_>,
    cookie: &[u8],
    s: &mut Scratch,
    head_limit: usize,
    body_limit: usize,
) -> Result<Parsed, FailureKind> {
    let request = build(head, cookie)?;
    h2.send.ready().await.map_err(|e| error(&e))?;
    let response = h2.send.send_request(request).await.map_err(|e| error(&e))?;
    let (parts, mut body) = response.into_parts();
    s.buf.clear();
    let mut follow_up = false;
    for (name, value) in &parts.headers {
        // Written as HTTP/1.1 carries it, so the head limit counts the same bytes and
        // the checks read both versions alike.
        s.buf.extend_from_slice(name.as_str().as_bytes());
        s.buf.extend_from_slice(b": ");
        s.buf.extend_from_slice(value.as_bytes());
        s.buf.extend_from_slice(b"\r\n");
        follow_up |= name == header::SET_COOKIE || name == header::LOCATION;
        if s.buf.len() > head_limit {
            return Err(ProtocolFailure::BodyTooLarge.into());
        }
    }
    s.fields = 0..s.buf.len();
    let body_start = s.buf.len();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > body_limit) {
        return Err(ProtocolFailure::BodyTooLarge.into());
    }
    // A HEAD response has no body whatever its headers say; hyper ends its stream.
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| error(&e))?;
        if let Ok(data) = frame.into_data() {
            if s.buf.len() - body_start + data.len() > body_limit {
                return Err(ProtocolFailure::BodyTooLarge.into());
            }
            s.buf.extend_from_slice(&data);
        }
    }
    Ok(Parsed {
        status: parts.status.as_u16(),
        body_start,
        keep_alive: true,
        version: HttpVersionUsed::Http2,
        follow_up,
    })
}

/// The request as hyper's HTTP/2 client takes it: an absolute URI (for the
/// `:scheme` and `:authority` pseudo-headers), the caller's headers less those
/// HTTP/2 forbids or the request states itself, the user-agent and the cookies.
fn build(head: &Head<'_>, cookie: &[u8]) -> Result<http::Request<Full<Bytes>>, FailureKind> {
    let target = head.target;
    let mut uri = Vec::with_capacity(16 + target.authority.len() + target.path.len());
    uri.extend_from_slice(if target.tls { b"https://" } else { b"http://" });
    uri.extend_from_slice(target.authority.as_bytes());
    wire::push_path(&mut uri, target.path);
    let invalid = || FailureKind::from(crate::metrics::failure::CheckFailure::InvalidRequest);
    let uri = http::Uri::from_maybe_shared(Bytes::from(uri)).map_err(|_| invalid())?;
    let method = http::Method::from_bytes(head.method.as_bytes()).map_err(|_| invalid())?;
    let mut request = http::Request::new(Full::new(Bytes::copy_from_slice(head.body)));
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = http::Version::HTTP_2;
    let headers = request.headers_mut();
    let mut has_agent = false;
    for (name, value) in head.headers {
        let skip = wire::skipped(head, name)
            || name == header::HOST
            || name == header::CONNECTION
            || name == header::UPGRADE
            || name == "keep-alive"
            || name == "proxy-connection";
        if skip {
            continue;
        }
        has_agent |= name == header::USER_AGENT;
        headers.append(name.clone(), value.clone());
    }
    if !has_agent {
        headers.insert(
            header::USER_AGENT,
            HeaderValue::from_static(crate::engine::http::USER_AGENT),
        );
    }
    if !cookie.is_empty() && !headers.contains_key(header::COOKIE) {
        let value = HeaderValue::from_bytes(cookie).map_err(|_| invalid())?;
        headers.insert(header::COOKIE, value);
    }
    Ok(request)
}

/// Maps an HTTP/2 failure: I/O as on HTTP/1.1 (TLS by reason), HTTP/2's own errors
/// as [`crate::engine::http::h2_failure`] says.
fn error(e: &hyper::Error) -> FailureKind {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return wire::exchange_error(io);
        }
        if let Some(h2) = err.downcast_ref::<h2::Error>() {
            return match h2.get_io() {
                Some(io) => wire::exchange_error(io),
                None => crate::engine::http::h2_failure(h2),
            };
        }
        source = err.source();
    }
    if e.is_parse() || e.is_user() {
        ProtocolFailure::InvalidHttp.into()
    } else {
        TransportFailure::Reset.into()
    }
}
