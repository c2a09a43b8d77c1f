//! One user's HTTP/2 connection for gRPC, as the tower service tonic calls through.
//!
//! hyper's HTTP/2 client connection is used directly (no pool, no balancer, no
//! background buffer task), so a user's gRPC calls share one connection of its own,
//! as its HTTP requests do. Errors are typed here ([`Failed`]), before tonic turns
//! them into statuses, so the caller can tell a transport failure from a status the
//! server sent. The response body is watched frame by frame: a message whose
//! declared length passes the limit fails at once as "response too large", before
//! tonic reserves room for it.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

use crate::engine::http::io_failure;
use crate::engine::http::lean::conn::tls_error;
use crate::metrics::failure::{FailureKind, ProtocolFailure, TransportFailure};

/// A failure met below gRPC: carried through tonic as a status's source.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("{0:?}")]
pub struct Failed(pub FailureKind);

impl Failed {
    /// The failure a hyper error names.
    fn from_hyper(e: &hyper::Error) -> Failed {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
        while let Some(err) = source {
            if let Some(io) = err.downcast_ref::<std::io::Error>()
                && let Some(kind) = io_failure(io)
            {
                return Failed(kind);
            }
            source = err.source();
        }
        if e.is_timeout() {
            Failed(TransportFailure::Timeout.into())
        } else if e.is_parse() {
            Failed(ProtocolFailure::InvalidHttp.into())
        } else {
            Failed(TransportFailure::Reset.into())
        }
    }
}

/// The failure inside a tonic status, if it came from below gRPC.
pub fn failed_in(status: &tonic::Status) -> Option<FailureKind> {
    let mut source = std::error::Error::source(status);
    while let Some(err) = source {
        if let Some(f) = err.downcast_ref::<Failed>() {
            return Some(f.0);
        }
        source = err.source();
    }
    None
}

/// Opens an HTTP/2 connection (prior knowledge over TCP, or ALPN `h2` over TLS) to
/// `origin` and drives it on the current runtime.
pub async fn connect(
    origin: &http::Uri,
    tls: Option<&Arc<rustls::ClientConfig>>,
    head_limit: usize,
) -> Result<SendRequest<tonic::body::Body>, FailureKind> {
    let host = origin.host().unwrap_or("localhost");
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let https = origin.scheme_str() == Some("https");
    let port = origin.port_u16().unwrap_or(if https { 443 } else { 80 });
    let tcp = TcpStream::connect((host, port))
        .await
        .map_err(|e| io_failure(&e).unwrap_or(TransportFailure::Connect.into()))?;
    let _ = tcp.set_nodelay(true);
    let mut builder = hyper::client::conn::http2::Builder::new(TokioExecutor::new());
    builder.max_header_list_size(u32::try_from(head_limit).unwrap_or(u32::MAX));
    let handshake_failed = |e: hyper::Error| Failed::from_hyper(&e).0;
    match (https, tls) {
        (true, Some(config)) => {
            let name = rustls::pki_types::ServerName::try_from(host.to_owned())
                .map_err(|_| FailureKind::from(TransportFailure::Tls))?;
            let stream = tokio_rustls::TlsConnector::from(config.clone())
                .connect(name, tcp)
                .await
                // A bad certificate fails by what is wrong with it, as over HTTP.
                .map_err(|e| match tls_error(&e) {
                    Some(tls) => FailureKind::from_tls(tls),
                    None => io_failure(&e).unwrap_or(TransportFailure::Tls.into()),
                })?;
            let (send, conn) = builder
                .handshake(TokioIo::new(stream))
                .await
                .map_err(handshake_failed)?;
            tokio::spawn(conn);
            Ok(send)
        }
        _ => {
            let (send, conn) = builder
                .handshake(TokioIo::new(tcp))
                .await
                .map_err(handshake_failed)?;
            tokio::spawn(conn);
            Ok(send)
        }
    }
}

/// The tower service tonic sends through: one HTTP/2 connection, with the body limit.
#[derive(Debug, Clone)]
pub struct H2 {
    pub send: SendRequest<tonic::body::Body>,
    pub limit: usize,
}

type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<http::Response<Limited>, Failed>> + Send + 'static>>;

impl tower_service::Service<http::Request<tonic::body::Body>> for H2 {
    type Response = http::Response<Limited>;
    type Error = Failed;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Failed>> {
        self.send.poll_ready(cx).map_err(|e| Failed::from_hyper(&e))
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> ResponseFuture {
        let sent = self.send.send_request(req);
        let limit = self.limit;
        Box::pin(async move {
            let response = sent.await.map_err(|e| Failed::from_hyper(&e))?;
            Ok(response.map(|body| Limited::new(body, limit)))
        })
    }
}

/// A response body that fails as soon as its gRPC messages declare more bytes in all
/// than the limit (each message is a 1-byte flag and a 4-byte big-endian length, then
/// the bytes), so neither one huge message nor an endless stream is held.
#[derive(Debug)]
pub struct Limited<B = Incoming> {
    inner: B,
    limit: usize,
    /// Bytes of the current message's 5-byte prefix seen so far.
    prefix: [u8; 5],
    prefix_len: usize,
    /// Bytes of the current message's body still to come.
    remaining: usize,
    /// The declared lengths of the messages so far.
    declared: usize,
}

impl<B> Limited<B> {
    fn new(inner: B, limit: usize) -> Limited<B> {
        Limited {
            inner,
            limit,
            prefix: [0; 5],
            prefix_len: 0,
            remaining: 0,
            declared: 0,
        }
    }

    /// Follows the message framing through `data`; `Err` when a message is too large.
    fn watch(&mut self, mut data: &[u8]) -> Result<(), Failed> {
        while !data.is_empty() {
            if self.remaining > 0 {
                let n = self.remaining.min(data.len());
                self.remaining -= n;
                data = &data[n..];
                continue;
            }
            let n = (5 - self.prefix_len).min(data.len());
            self.prefix[self.prefix_len..self.prefix_len + n].copy_from_slice(&data[..n]);
            self.prefix_len += n;
            data = &data[n..];
            if self.prefix_len == 5 {
                self.prefix_len = 0;
                let len = u32::from_be_bytes([
                    self.prefix[1],
                    self.prefix[2],
                    self.prefix[3],
                    self.prefix[4],
                ]) as usize;
                self.declared = self.declared.saturating_add(len);
                if self.declared > self.limit {
                    return Err(Failed(ProtocolFailure::BodyTooLarge.into()));
                }
                self.remaining = len;
            }
        }
        Ok(())
    }
}

impl<B> HttpBody for Limited<B>
where
    B: HttpBody<Data = Bytes, Error = hyper::Error> + Unpin,
{
    type Data = Bytes;
    type Error = Failed;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Failed>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.watch(data.chunk())?;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Failed::from_hyper(&e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_is_followed_across_chunks() {
        // Two messages of 3 and 2 bytes, then one that declares 11 bytes (limit 10),
        // split at every awkward place.
        let mut stream = vec![0, 0, 0, 0, 3, 1, 2, 3, 0, 0, 0, 0, 2, 9, 9];
        stream.extend([0, 0, 0, 0, 11]);
        for cut in 0..stream.len() {
            let mut l = Limited::new((), 10);
            let (a, b) = stream.split_at(cut);
            let result = l.watch(a).and_then(|()| l.watch(b));
            assert!(
                matches!(
                    result,
                    Err(Failed(FailureKind::Protocol(ProtocolFailure::BodyTooLarge)))
                ),
                "cut at {cut}: {result:?}"
            );
        }
        let mut l = Limited::new((), 10);
        assert!(l.watch(&stream[..15]).is_ok());
        // Small messages that add up past the limit fail too (3 + 2 + 6 > 10).
        let mut l = Limited::new((), 10);
        assert!(l.watch(&stream[..15]).is_ok());
        assert!(l.watch(&[0, 0, 0, 0, 6]).is_err());
    }
}
