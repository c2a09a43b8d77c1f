//! The reqwest implementation of the per-user [`Client`](super::Client): one
//! `reqwest::Client` per user, with its own cookie jar and connection pool.

use std::error::Error as StdError;
use std::io;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::{HttpRequest, HttpResponse, HttpSetupError, HttpShared, HttpVersion};
use crate::metrics::failure::{CheckFailure, FailureKind, ProtocolFailure, TransportFailure};
use crate::metrics::stats::HttpVersionUsed;

/// One user's reqwest client. A clone shares its cookie jar and connection pool.
#[derive(Clone)]
pub struct ReqwestClient {
    client: reqwest::Client,
    body_limit: usize,
    head_limit: usize,
    /// `http.version: "2"`: a reply in another version fails the request.
    require_h2: bool,
}

impl ReqwestClient {
    /// A client with a fresh cookie jar and no connections yet.
    pub fn new(shared: &HttpShared) -> Result<ReqwestClient, HttpSetupError> {
        // The TLS configuration's ALPN offers what `http.version` allows, and reqwest
        // speaks what was negotiated; only the cleartext choices are made here.
        let builder = match shared.version() {
            HttpVersion::Http1 => reqwest::Client::builder().http1_only(),
            HttpVersion::H2c => reqwest::Client::builder().http2_prior_knowledge(),
            HttpVersion::Auto | HttpVersion::Http2 => reqwest::Client::builder(),
        };
        let client = builder
            .tls_backend_preconfigured(shared.user_tls_config())
            .user_agent(super::USER_AGENT)
            .cookie_provider(Arc::new(reqwest::cookie::Jar::default()))
            .redirect(reqwest::redirect::Policy::limited(
                shared.max_redirects() as usize
            ))
            .no_proxy()
            .http2_max_header_list_size(super::h2_header_list_size(shared.head_limit()))
            .tcp_nodelay(true)
            .build()?;
        Ok(ReqwestClient {
            client,
            body_limit: shared.body_limit(),
            head_limit: shared.head_limit(),
            require_h2: shared.version() == HttpVersion::Http2,
        })
    }

    /// Sends the request and reads the body, all within the request's timeout.
    pub async fn send(&mut self, req: &HttpRequest<'_>) -> Result<HttpResponse, FailureKind> {
        match tokio::time::timeout(req.timeout, self.exchange(req)).await {
            Ok(result) => result,
            Err(_elapsed) => Err(FailureKind::Transport(TransportFailure::Timeout)),
        }
    }

    async fn exchange(&self, req: &HttpRequest<'_>) -> Result<HttpResponse, FailureKind> {
        // HTTP/2 is required, and cleartext would speak HTTP/1.1: nothing is sent.
        if self.require_h2 && !super::is_https(req.url) {
            return Err(FailureKind::Protocol(ProtocolFailure::NoHttp2));
        }
        let mut builder = self
            .client
            .request(req.method.clone(), req.url)
            .headers(req.headers.clone());
        if !req.body.is_empty() {
            builder = builder.body(Bytes::copy_from_slice(req.body));
        }
        let mut response = builder.send().await.map_err(|e| classify(&e))?;
        let status = response.status();
        let version = match response.version() {
            http::Version::HTTP_2 => HttpVersionUsed::Http2,
            http::Version::HTTP_10 | http::Version::HTTP_09 => HttpVersionUsed::Http10,
            _ => HttpVersionUsed::Http11,
        };
        // A server without ALPN leaves reqwest on HTTP/1.1 (one that refuses `h2`
        // fails the handshake instead).
        if self.require_h2 && version != HttpVersionUsed::Http2 {
            return Err(FailureKind::Protocol(ProtocolFailure::NoHttp2));
        }
        // swarm never asks to switch protocols, so a 101 is a server that broke HTTP
        // (hyper hands it over as a final response).
        if status == http::StatusCode::SWITCHING_PROTOCOLS {
            return Err(FailureKind::Protocol(ProtocolFailure::InvalidHttp));
        }
        let headers = std::mem::take(response.headers_mut());
        // hyper caps the head it buffers (about 400 KB, 100 headers); the plan's limit is
        // applied to what it parsed, counted as on the wire.
        let head_len: usize = headers
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 4)
            .sum();
        if head_len > self.head_limit {
            return Err(FailureKind::Protocol(ProtocolFailure::BodyTooLarge));
        }
        if response
            .content_length()
            .is_some_and(|len| len > self.body_limit as u64)
        {
            return Err(FailureKind::Protocol(ProtocolFailure::BodyTooLarge));
        }
        let body = read_body(&mut response, self.body_limit).await?;
        Ok(HttpResponse {
            status,
            version,
            headers,
            body,
        })
    }
}

/// Streams the body, stopping as soon as it passes `limit`.
async fn read_body(response: &mut reqwest::Response, limit: usize) -> Result<Bytes, FailureKind> {
    // The common case is one chunk: hand it over without a copy.
    let first = match response.chunk().await.map_err(|e| classify(&e))? {
        None => return Ok(Bytes::new()),
        Some(chunk) => chunk,
    };
    if first.len() > limit {
        return Err(FailureKind::Protocol(ProtocolFailure::BodyTooLarge));
    }
    let second = match response.chunk().await.map_err(|e| classify(&e))? {
        None => return Ok(first),
        Some(chunk) => chunk,
    };
    let mut buf = BytesMut::with_capacity((first.len() + second.len()).min(limit));
    buf.extend_from_slice(&first);
    let mut next = Some(second);
    while let Some(chunk) = next {
        if buf.len() + chunk.len() > limit {
            return Err(FailureKind::Protocol(ProtocolFailure::BodyTooLarge));
        }
        buf.extend_from_slice(&chunk);
        next = response.chunk().await.map_err(|e| classify(&e))?;
    }
    Ok(buf.freeze())
}

/// Maps a reqwest error to its typed reason by walking the error's sources.
pub(crate) fn classify(err: &reqwest::Error) -> FailureKind {
    if err.is_redirect() {
        return FailureKind::Protocol(ProtocolFailure::TooManyRedirects);
    }
    if err.is_builder() {
        return FailureKind::Check(CheckFailure::InvalidRequest);
    }
    if err.is_timeout() {
        return FailureKind::Transport(TransportFailure::Timeout);
    }
    if err.is_dns() {
        return FailureKind::Transport(TransportFailure::Dns);
    }
    let mut source: Option<&(dyn StdError + 'static)> = err.source();
    let mut undecodable = false;
    while let Some(e) = source {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return FailureKind::from_tls(tls);
        }
        let io = e.downcast_ref::<io::Error>();
        if let Some(kind) = io.and_then(super::io_failure) {
            return kind;
        }
        // hyper reports a body it cannot decode (a bad chunk size) as invalid input or
        // data; rustls wraps its errors the same way, so this is decided last.
        undecodable |= io.is_some_and(|e| {
            matches!(
                e.kind(),
                io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData
            )
        });
        if let Some(h2) = e.downcast_ref::<h2::Error>()
            && h2.get_io().is_none()
        {
            return super::h2_failure(h2);
        }
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            if h.is_parse_too_large() {
                return FailureKind::Protocol(ProtocolFailure::BodyTooLarge);
            }
            if h.is_parse() || h.is_parse_status() {
                return FailureKind::Protocol(ProtocolFailure::InvalidHttp);
            }
            if h.is_incomplete_message() || h.is_closed() || h.is_canceled() {
                return FailureKind::Transport(TransportFailure::Reset);
            }
        }
        // `io::Error::source` skips the error it wraps; descend into it instead.
        source = match io.and_then(io::Error::get_ref) {
            Some(inner) => Some(inner as &(dyn StdError + 'static)),
            None => e.source(),
        };
    }
    if err.is_connect() {
        FailureKind::Transport(TransportFailure::Connect)
    } else if undecodable {
        FailureKind::Protocol(ProtocolFailure::InvalidHttp)
    } else {
        FailureKind::Transport(TransportFailure::Reset)
    }
}
