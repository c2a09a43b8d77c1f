//! The small internal HTTP client interface every virtual user sends through.
//!
//! # The contract a client must meet
//!
//! A [`Client`] belongs to exactly one virtual user and is never shared:
//!
//! - **Cookies**: it keeps its own cookie jar, as a browser does: `Set-Cookie` from any
//!   response (redirect hops included) is stored and sent back on later matching
//!   requests of the same client, and never seen by another client.
//! - **Connections**: it keeps its own keep-alive connections and reuses them.
//! - **Redirects**: it follows redirects (301/302/303 turn into a body-less `GET`,
//!   307/308 keep method and body) up to [`HttpShared::max_redirects`]; one more is
//!   [`ProtocolFailure::TooManyRedirects`].
//! - **Timeout**: [`HttpRequest::timeout`] bounds the whole exchange, from connecting
//!   to the last byte of the body (redirect hops included); past it the result is
//!   [`TransportFailure::Timeout`].
//! - **Body limit**: the response body is streamed and the read stops as soon as it
//!   exceeds [`HttpShared::body_limit`] ([`ProtocolFailure::BodyTooLarge`]), so a huge
//!   body never costs more than the limit in memory.
//! - **Errors** are typed, never formatted: refused, reset or closed mid-exchange,
//!   timed out, DNS, TLS and other connect errors are [`TransportFailure`]s; a reply
//!   that is not HTTP is [`ProtocolFailure::InvalidHttp`]; a URL or header the client
//!   cannot send is [`CheckFailure::InvalidRequest`].
//! - **TLS** uses [`HttpShared::user_tls_config`]: the shared rustls settings (the
//!   `ring` provider; verification off under `--insecure`; ALPN as `http.version`
//!   allows) with a session cache of the user's own. A bad certificate fails by what
//!   is wrong with it (expired, unknown issuer, another host's).
//! - **Version** ([`HttpShared::version`], the plan's `http.version`): HTTP/2 where
//!   TLS negotiates `h2` under `auto`, required over TLS under `"2"` (else
//!   [`ProtocolFailure::NoHttp2`]), with prior knowledge on cleartext under `h2c`;
//!   HTTP/1.1 otherwise. One HTTP/2 connection per origin carries all of a user's
//!   requests to it. [`Response::version`] says which version answered.
//! - **Headers**: it sends the caller's headers as given, plus `host`,
//!   `content-length`, the cookies, and `user-agent: `[`USER_AGENT`] unless the
//!   caller set one. (reqwest also adds `accept: */*` when the caller has none.)
//! - A response with any status is `Ok`: judging statuses is the caller's job.
//! - No decompression: the body is returned as received.
//!
//! [`Client`] is an enum rather than a trait object so the hot path dispatches
//! without a virtual call or a boxed future; a new implementation is a new variant.
//!
//! [`ProtocolFailure`]: crate::metrics::failure::ProtocolFailure
//! [`ProtocolFailure::TooManyRedirects`]: crate::metrics::failure::ProtocolFailure::TooManyRedirects
//! [`ProtocolFailure::BodyTooLarge`]: crate::metrics::failure::ProtocolFailure::BodyTooLarge
//! [`ProtocolFailure::InvalidHttp`]: crate::metrics::failure::ProtocolFailure::InvalidHttp
//! [`ProtocolFailure::NoHttp2`]: crate::metrics::failure::ProtocolFailure::NoHttp2
//! [`CheckFailure::InvalidRequest`]: crate::metrics::failure::CheckFailure::InvalidRequest

mod fixed;
pub mod group;
pub mod lean;
pub mod reqwest_client;
mod session;
pub(crate) mod tls;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, Method, StatusCode};

pub use crate::engine::config::{HttpConfig, HttpVersion, Implementation};
use crate::metrics::failure::{FailureKind, TransportFailure};
use crate::metrics::stats::HttpVersionUsed;

pub use fixed::FixedCall;
pub use lean::LeanClient;
pub use reqwest_client::ReqwestClient;
pub use session::HttpSession;

/// TLS sessions a user remembers (8 tickets per server, so about two servers).
const USER_TLS_SESSIONS: usize = 16;

/// The `user-agent` sent unless the plan sets one.
pub const USER_AGENT: &str = concat!("swarm/", env!("CARGO_PKG_VERSION"));

/// What all users of a run share: TLS settings and limits. Cheap to clone.
#[derive(Clone)]
pub struct HttpShared {
    inner: Arc<SharedInner>,
}

struct SharedInner {
    tls: Arc<rustls::ClientConfig>,
    body_limit: usize,
    head_limit: usize,
    max_redirects: u32,
    implementation: Implementation,
    version: HttpVersion,
}

/// Why the HTTP layer could not be set up for a run.
#[derive(Debug, thiserror::Error)]
pub enum HttpSetupError {
    #[error("tls setup failed: {0}")]
    Tls(#[from] rustls::Error),
    #[error("http client setup failed: {0}")]
    Client(#[from] reqwest::Error),
}

impl HttpShared {
    /// Builds the shared settings, and one client as a probe so that a setup problem
    /// is reported when the run starts rather than by every user.
    pub fn new(config: &HttpConfig) -> Result<HttpShared, HttpSetupError> {
        let shared = HttpShared {
            inner: Arc::new(SharedInner {
                tls: Arc::new(tls::client_config(
                    config.insecure,
                    &config.extra_roots,
                    config.version,
                )?),
                body_limit: config.body_limit,
                head_limit: config.head_limit,
                max_redirects: config.max_redirects,
                implementation: config.client,
                version: config.version,
            }),
        };
        shared.client()?;
        Ok(shared)
    }

    /// The TLS configuration for one user: the shared settings with a session cache
    /// of its own, so users do not resume each other's TLS sessions (distinct browsers
    /// would not).
    pub fn user_tls_config(&self) -> rustls::ClientConfig {
        let mut config = rustls::ClientConfig::clone(&self.inner.tls);
        config.resumption = rustls::client::Resumption::in_memory_sessions(USER_TLS_SESSIONS);
        config
    }

    /// Response bodies larger than this fail with
    /// [`ProtocolFailure::BodyTooLarge`](crate::metrics::failure::ProtocolFailure::BodyTooLarge).
    pub fn body_limit(&self) -> usize {
        self.inner.body_limit
    }

    /// Response heads larger than this fail with
    /// [`ProtocolFailure::BodyTooLarge`](crate::metrics::failure::ProtocolFailure::BodyTooLarge) too.
    pub fn head_limit(&self) -> usize {
        self.inner.head_limit
    }

    /// Redirects followed per request before
    /// [`ProtocolFailure::TooManyRedirects`](crate::metrics::failure::ProtocolFailure::TooManyRedirects).
    pub fn max_redirects(&self) -> u32 {
        self.inner.max_redirects
    }

    /// Which HTTP version requests speak.
    pub fn version(&self) -> HttpVersion {
        self.inner.version
    }

    /// A new client with its own cookie jar and connections.
    pub fn client(&self) -> Result<Client, HttpSetupError> {
        Ok(match self.inner.implementation {
            Implementation::Lean => Client::Lean(LeanClient::new()),
            Implementation::Reqwest => Client::Reqwest(ReqwestClient::new(self)?),
        })
    }
}

impl std::fmt::Debug for HttpShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpShared")
            .field("body_limit", &self.inner.body_limit)
            .field("max_redirects", &self.inner.max_redirects)
            .finish_non_exhaustive()
    }
}

/// One request, borrowed from the caller's reusable buffers.
#[derive(Debug, Clone, Copy)]
pub struct HttpRequest<'a> {
    pub method: &'a Method,
    /// An absolute `http://` or `https://` URL, query included.
    pub url: &'a str,
    /// Every header to send (content-type included when there is a body).
    pub headers: &'a HeaderMap,
    /// The body; empty means none.
    pub body: &'a [u8],
    /// Bounds the whole exchange, body included.
    pub timeout: Duration,
    /// The lean client's HTTP/1.1 head for exactly this request, made once for a
    /// call without templates; `None` writes the head from the fields above.
    pub head: Option<&'a lean::FixedHead>,
}

/// A complete response in owned form (reqwest's): the body has been read in full
/// (within the limit).
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: StatusCode,
    pub version: HttpVersionUsed,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// A complete response as the request pipeline judges it. The lean client's borrows
/// the thread's pooled buffer, which goes back to the pool when it is dropped, so
/// nothing is copied or allocated to hand it over: keep it only while the checks run.
#[derive(Debug)]
pub enum Response {
    Lean(lean::Response),
    Owned(HttpResponse),
}

impl Response {
    /// The status code.
    pub fn status(&self) -> u16 {
        match self {
            Response::Lean(r) => r.status(),
            Response::Owned(r) => r.status.as_u16(),
        }
    }

    /// The HTTP version the response came in.
    pub fn version(&self) -> HttpVersionUsed {
        match self {
            Response::Lean(r) => r.version(),
            Response::Owned(r) => r.version,
        }
    }

    /// The body, as received (de-chunked, never decompressed).
    pub fn body(&self) -> &[u8] {
        match self {
            Response::Lean(r) => r.body(),
            Response::Owned(r) => &r.body,
        }
    }
}

/// Reading a response header by name, whichever client produced the response.
pub trait Headers {
    /// The first value of header `name`, as received.
    fn first(&self, name: &HeaderName) -> Option<&[u8]>;
}

impl Headers for HeaderMap {
    fn first(&self, name: &HeaderName) -> Option<&[u8]> {
        self.get(name).map(|v| v.as_bytes())
    }
}

impl Headers for Response {
    fn first(&self, name: &HeaderName) -> Option<&[u8]> {
        match self {
            Response::Lean(r) => r.header(name.as_str()),
            Response::Owned(r) => r.headers.first(name),
        }
    }
}

/// The largest header block an HTTP/2 connection accepts. Both clients apply the
/// head limit themselves, counted as HTTP/1.1 carries the head, so a head past it
/// fails as too large; HTTP/2's own bound, four times that, only keeps an endless
/// header block from being buffered (past it the stream breaks as a protocol error).
pub(crate) fn h2_header_list_size(head_limit: usize) -> u32 {
    u32::try_from(head_limit.saturating_mul(4)).unwrap_or(u32::MAX)
}

/// The failure an HTTP/2 error (other than I/O) names: a frame or header block that
/// breaks HTTP/2's rules, found on our side, is an invalid reply; a stream or
/// connection the server broke off is a reset.
pub(crate) fn h2_failure(e: &h2::Error) -> FailureKind {
    let malformed = matches!(
        e.reason(),
        Some(
            h2::Reason::PROTOCOL_ERROR
                | h2::Reason::COMPRESSION_ERROR
                | h2::Reason::FRAME_SIZE_ERROR
        )
    );
    if malformed && !e.is_remote() {
        FailureKind::Protocol(crate::metrics::failure::ProtocolFailure::InvalidHttp)
    } else {
        FailureKind::Transport(TransportFailure::Reset)
    }
}

/// Whether `url` is an `https://` URL (any case).
pub(crate) fn is_https(url: &str) -> bool {
    url.get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
}

/// The failure an I/O error names, if it names one: refused, reset (or closed
/// under us), timed out. Each client maps the rest by where it happened.
pub(crate) fn io_failure(e: &std::io::Error) -> Option<FailureKind> {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused => Some(FailureKind::Transport(TransportFailure::Refused)),
        K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof => {
            Some(FailureKind::Transport(TransportFailure::Reset))
        }
        K::TimedOut => Some(FailureKind::Transport(TransportFailure::Timeout)),
        _ => None,
    }
}

/// A per-user HTTP client. See the module documentation for the contract;
/// [`execute`](crate::engine::request::execute) sends through it, with the request
/// [`HttpSession::outgoing`] hands it.
pub enum Client {
    /// The lean HTTP/1.1 client ([`lean`]).
    Lean(LeanClient),
    /// reqwest (hyper underneath), one `reqwest::Client` per user.
    Reqwest(ReqwestClient),
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Client::Lean(_) => f.write_str("Client::Lean"),
            Client::Reqwest(_) => f.write_str("Client::Reqwest"),
        }
    }
}
