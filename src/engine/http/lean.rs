//! The lean HTTP/1.1 client: one per virtual user, holding almost nothing while its
//! user thinks. Where TLS negotiates HTTP/2 (or under `h2c`), it hands the
//! connection to hyper's HTTP/2 client (`h2`) and keeps that one connection.
//!
//! A user keeps only its keep-alive connections (a socket, plus TLS state for https)
//! and its cookie jar. Request bytes and the response are written into a scratch
//! buffer borrowed from a per-thread pool for the length of the request
//! (`pool`), so ten thousand idle users cost little more than their sockets.
//! A response head is read in one pass that looks closely only at the headers that
//! frame the body, with `httparse` judging any head not written plainly (`head`);
//! bodies framed by Content-Length, chunked encoding or the end of the connection
//! are read up to a body limit (`wire`).
//! A keep-alive connection the server closed while the user thought is replaced
//! transparently: it is probed before reuse after an idle spell, and an idempotent
//! request that meets a connection closed before any response byte is retried once
//! on a new one. Redirects are followed up to a limit, and cookies are kept per user
//! (`cookies`). Every failure maps to a [`FailureKind`]; nothing formats a string.

pub(crate) mod conn;
mod cookies;
mod fork;
mod h2;
mod head;
mod pool;
mod wire;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rustls::ClientConfig;

use super::{HttpRequest, HttpShared, HttpVersion};
use crate::engine::deadline;
use crate::metrics::failure::{CheckFailure, FailureKind, ProtocolFailure, TransportFailure};

use conn::Conn;
use cookies::CookieJar;
pub use pool::Response;
pub use wire::FixedHead;
use wire::{Dropped, Head, OriginSpan, Parsed, ReadError};

/// A connection idle for longer than this is probed before reuse (one non-blocking
/// read); busier connections are trusted, and the retry below covers the race.
const PROBE_AFTER: Duration = Duration::from_millis(500);
/// Origins a user keeps a connection to at once; the oldest is closed beyond that.
const MAX_ORIGINS: usize = 4;

/// A user's keep-alive connection to one origin.
#[derive(Debug)]
struct Origin {
    /// The URL text up to the path (`scheme://authority`) that last named this origin;
    /// a URL that starts with the same text is not parsed again.
    text: Box<str>,
    /// Where scheme, host and port sit in `text`.
    span: OriginSpan,
    conn: Option<Conn>,
    /// The HTTP/2 connection, once TLS negotiated `h2` (or under `h2c`): it carries
    /// every later request to the origin, and `conn` stays empty.
    h2: Option<Box<h2::H2>>,
    idle_since: Instant,
}

/// One user's HTTP client: its connections, its cookies and, once it speaks https,
/// its TLS configuration (the run's settings with a session cache of its own, so
/// users do not resume each other's sessions: [`HttpShared::user_tls_config`]).
#[derive(Debug, Default)]
pub struct LeanClient {
    origins: Vec<Origin>,
    jar: CookieJar,
    tls: Option<Arc<ClientConfig>>,
}

impl LeanClient {
    pub fn new() -> LeanClient {
        LeanClient::default()
    }

    /// Sends a request and reads the whole response, following redirects.
    pub async fn send(
        &mut self,
        shared: &HttpShared,
        req: &HttpRequest<'_>,
    ) -> Result<Response, FailureKind> {
        // One clock read serves the deadline and the connections' idle times.
        let now = Instant::now();
        // A connection in use lives inside this future, so a timeout drops it: a
        // half-read response can never leak into the next request. The exchange's
        // state (about 900 bytes of nested futures) is boxed for the length of the
        // request: a user's task is sized for its largest state, so without the box
        // every thinking user would carry it (9 MB for 10,000 users). Only the exchange
        // is boxed, not the timeout around it, and it is made in its box: with the box
        // allocated first, the optimizer builds the future in place (rustc 1.95,
        // measured), where `Box::pin` built it on the stack and then copied all of
        // it into the box (about 120 instructions a request).
        // The deadline is kept in the thread's list ([`deadline`]), not a tokio timer
        // of its own: registering and removing one cost about 500 instructions.
        let follow = Box::into_pin(Box::write(Box::new_uninit(), self.follow(shared, req, now)));
        match deadline::timeout_at(now.checked_add(req.timeout), follow).await {
            Ok(r) => r,
            Err(_) => Err(FailureKind::Transport(TransportFailure::Timeout)),
        }
    }

    async fn follow(
        &mut self,
        shared: &HttpShared,
        req: &HttpRequest<'_>,
        now: Instant,
    ) -> Result<Response, FailureKind> {
        let mut scratch = pool::Pooled::take();
        let mut method = req.method.as_str();
        let mut body = req.body;
        let mut redirected: Option<String> = None;
        let mut redirects = 0;
        let mut dropped = Dropped::default();
        loop {
            let url = redirected.as_deref().unwrap_or(req.url);
            let i = self
                .origin(url, now)
                .ok_or(FailureKind::Check(CheckFailure::InvalidRequest))?;
            let target = self.origins[i].span.target(url);
            let head = Head {
                method,
                target: &target,
                headers: req.headers,
                body,
                dropped,
                // The head made once is the first hop's; a redirect writes its own.
                fixed: req.head.filter(|_| redirected.is_none()),
            };
            let parsed = self.exchange(shared, &head, i, scratch.get(), now).await?;
            let s = scratch.get();
            let mut location = None;
            let fields = if parsed.follow_up {
                s.buf.get(s.fields.clone()).unwrap_or_default()
            } else {
                &[]
            };
            for (name, value) in head::fields(fields) {
                if name.eq_ignore_ascii_case(b"set-cookie") {
                    self.jar
                        .store(target.host, target.path, value, SystemTime::now());
                } else if name.eq_ignore_ascii_case(b"location") {
                    location = Some(value);
                }
            }
            let next = match (parsed.status, location) {
                (301 | 302 | 303 | 307 | 308, Some(loc)) => resolve(url, loc),
                _ => None,
            };
            let Some(next) = next else {
                return Ok(Response {
                    status: parsed.status,
                    version: parsed.version,
                    scratch,
                    body_start: parsed.body_start,
                });
            };
            if redirects >= shared.max_redirects() {
                return Err(FailureKind::Protocol(ProtocolFailure::TooManyRedirects));
            }
            redirects += 1;
            // As browsers do: 303 always becomes a GET, and so do 301/302 after a POST;
            // 307 and 308 repeat the request as it was.
            if parsed.status == 303 && method != "HEAD"
                || matches!(parsed.status, 301 | 302) && method == "POST"
            {
                method = "GET";
                body = &[];
                dropped.content = true;
            }
            // Credentials stay with the origin they were written for.
            dropped.credentials |= wire::parse_origin(&next).is_none_or(|o| {
                let t = o.target(&next);
                t.port != target.port || !t.host.eq_ignore_ascii_case(target.host)
            });
            redirected = Some(next);
        }
    }

    /// One request and response on the connection of origin slot `i`: its HTTP/2
    /// connection if it has one, else its keep-alive HTTP/1.1 connection, else a new
    /// connection, which speaks HTTP/2 if TLS negotiated it (or under `h2c`).
    ///
    /// Picking the connection and the HTTP/1.1 round trip are awaited one after the
    /// other, and the HTTP/2 exchange is boxed, so the state this future keeps (moved
    /// and zeroed per request) is no larger than the HTTP/1.1 exchange needs.
    async fn exchange(
        &mut self,
        shared: &HttpShared,
        head: &Head<'_>,
        i: usize,
        s: &mut pool::Scratch,
        now: Instant,
    ) -> Result<Parsed, FailureKind> {
        let (mut conn, mut reused) = match self.kept(shared, head.target, i, now) {
            Some(conn) => (conn, true),
            None => match self.connection(shared, head.target, i, now).await? {
                Picked::H1(conn, reused) => (conn, reused),
                Picked::H2 => return Box::pin(self.exchange_h2(shared, head, i, s, now)).await,
            },
        };
        let target = head.target;
        wire::write_request(&mut s.out, head, |out| {
            self.jar
                .write_header(out, target.host, target.path, target.tls)
        });
        let origin = &mut self.origins[i];
        let head_request = head.method == "HEAD";
        loop {
            match round_trip(
                &mut conn,
                s,
                head_request,
                shared.head_limit(),
                shared.body_limit(),
            )
            .await
            {
                Ok(parsed) => {
                    if parsed.keep_alive {
                        origin.conn = Some(conn);
                        origin.idle_since = now;
                    }
                    return Ok(parsed);
                }
                // The server closed the idle connection just as we used it: nothing
                // was processed, so an idempotent request is safe to send again.
                Err(ReadError::ClosedBeforeResponse) if reused && idempotent(head.method) => {
                    let tls = self.tls.as_ref().filter(|_| target.tls);
                    let link = Box::pin(open(target, tls, shared.version(), shared.head_limit()));
                    conn = match link.await? {
                        Link::H1(c) => c,
                        // The server switched to HTTP/2 between two connections; the
                        // request, written for HTTP/1.1, is not sent again.
                        Link::H2(_) => return Err(FailureKind::Transport(TransportFailure::Reset)),
                    };
                    reused = false;
                }
                Err(ReadError::ClosedBeforeResponse) => {
                    return Err(FailureKind::Transport(TransportFailure::Reset));
                }
                Err(ReadError::Failed(kind)) => return Err(kind),
            }
        }
    }

    /// Origin slot `i`'s kept HTTP/1.1 connection, taken out, when it is fresh enough
    /// to carry the request without a probe: the usual case, decided without entering
    /// [`LeanClient::connection`]'s state machine, which handles every other.
    fn kept(
        &mut self,
        shared: &HttpShared,
        target: &wire::Target<'_>,
        i: usize,
        now: Instant,
    ) -> Option<Conn> {
        if shared.version() == HttpVersion::Http2 && !target.tls {
            return None;
        }
        let origin = &mut self.origins[i];
        if origin.h2.is_some() || !origin.fresh(now) {
            return None;
        }
        origin.conn.take()
    }

    /// The connection for a request to origin slot `i`, opened if needed: an HTTP/2
    /// connection stays in its slot.
    async fn connection(
        &mut self,
        shared: &HttpShared,
        target: &wire::Target<'_>,
        i: usize,
        now: Instant,
    ) -> Result<Picked, FailureKind> {
        let version = shared.version();
        // HTTP/2 is required, and HTTP/2 on cleartext is only `h2c`: nothing is sent.
        if version == HttpVersion::Http2 && !target.tls {
            return Err(FailureKind::Protocol(ProtocolFailure::NoHttp2));
        }
        let origin = &mut self.origins[i];
        if let Some(h2) = &origin.h2 {
            if !h2.is_closed() {
                return Ok(Picked::H2);
            }
            origin.h2 = None;
        }
        let fresh = origin.fresh(now);
        if let Some(c) = origin.conn.take()
            && (fresh || c.looks_alive())
        {
            return Ok(Picked::H1(c, true));
        }
        let tls = target.tls.then(|| {
            let config = self
                .tls
                .get_or_insert_with(|| Arc::new(shared.user_tls_config()));
            Arc::clone(config)
        });
        // Boxed: connecting is rare on kept connections, and its state (the TLS
        // handshake, about 1.2 KB) would otherwise be part of every exchange's.
        match Box::pin(open(target, tls.as_ref(), version, shared.head_limit())).await? {
            Link::H1(c) => Ok(Picked::H1(c, false)),
            Link::H2(h) => {
                self.origins[i].h2 = Some(h);
                Ok(Picked::H2)
            }
        }
    }

    /// One request and response on a stream of origin slot `i`'s HTTP/2 connection.
    async fn exchange_h2(
        &mut self,
        shared: &HttpShared,
        head: &Head<'_>,
        i: usize,
        s: &mut pool::Scratch,
        now: Instant,
    ) -> Result<Parsed, FailureKind> {
        let target = head.target;
        s.out.clear();
        self.jar
            .write_header(&mut s.out, target.host, target.path, target.tls);
        let origin = &mut self.origins[i];
        origin.idle_since = now;
        let Some(h2) = origin.h2.as_deref_mut() else {
            return Err(FailureKind::Transport(TransportFailure::Connect));
        };
        let cookie = std::mem::take(&mut s.out);
        let result = h2::exchange(
            h2,
            head,
            &cookie,
            s,
            shared.head_limit(),
            shared.body_limit(),
        )
        .await;
        s.out = cookie;
        if result.is_err() {
            // A stream that failed may have taken the connection with it; the next
            // request opens a new one if so.
            let origin = &mut self.origins[i];
            origin.h2 = origin.h2.take().filter(|h| !h.is_closed());
        }
        result
    }

    /// The index of the origin slot for `url`, made if needed; `None` when `url` is
    /// not a usable http(s) URL. A URL that starts with an origin's text, as every
    /// request of a plan with one target does, is matched without parsing.
    fn origin(&mut self, url: &str, now: Instant) -> Option<usize> {
        if let Some(i) = self
            .origins
            .iter()
            .position(|o| o.span.matches(&o.text, url))
        {
            return Some(i);
        }
        let span = wire::parse_origin(url)?;
        let t = span.target(url);
        let text: Box<str> = url[..span.end].into();
        let same = self.origins.iter().position(|o| {
            let known = o.span.target(&o.text);
            known.port == t.port && known.tls == t.tls && known.host.eq_ignore_ascii_case(t.host)
        });
        if let Some(i) = same {
            // The same origin, written differently (`LOCALHOST`, `:80`): keep its
            // connection, remember the new text.
            let o = &mut self.origins[i];
            (o.text, o.span) = (text, span);
            return Some(i);
        }
        if self.origins.len() >= MAX_ORIGINS {
            self.origins.remove(0);
        }
        // One slot at a time: most users talk to one origin, and a first push would
        // otherwise reserve four (about 500 bytes per user).
        self.origins.reserve_exact(1);
        self.origins.push(Origin {
            text,
            span,
            conn: None,
            h2: None,
            idle_since: now,
        });
        Some(self.origins.len() - 1)
    }
}

impl Origin {
    /// Whether the kept connection was used recently enough to be trusted without a
    /// probe. `idle_since` is when its last request started, so a connection counts
    /// as idle for at least as long as it was: never probed too little. Compared as
    /// instants: the duration between two costs about 40 instructions more.
    fn fresh(&self, now: Instant) -> bool {
        self.idle_since
            .checked_add(PROBE_AFTER)
            .is_some_and(|probe_at| now < probe_at)
    }
}

/// The connection a request goes out on: HTTP/1.1 (and whether it carried an
/// earlier request), or the origin's HTTP/2 connection, which stays in its slot.
enum Picked {
    H1(Conn, bool),
    H2,
}

/// A new connection to an origin, in the version it speaks.
enum Link {
    H1(Conn),
    H2(Box<h2::H2>),
}

/// Opens a connection to the target's origin: HTTP/2 when TLS negotiated `h2`, or on
/// cleartext under `h2c`; HTTP/1.1 otherwise, unless HTTP/2 is required
/// ([`ProtocolFailure::NoHttp2`]: a server without ALPN leaves the choice to us).
async fn open(
    target: &wire::Target<'_>,
    tls: Option<&Arc<ClientConfig>>,
    version: HttpVersion,
    head_limit: usize,
) -> Result<Link, FailureKind> {
    let conn = conn::connect(target.host, target.port, tls).await?;
    let speaks_h2 = if target.tls {
        h2::negotiated(&conn)
    } else {
        version == HttpVersion::H2c
    };
    if speaks_h2 {
        return Ok(Link::H2(Box::new(h2::handshake(conn, head_limit).await?)));
    }
    if target.tls && matches!(version, HttpVersion::Http2 | HttpVersion::H2c) {
        return Err(FailureKind::Protocol(ProtocolFailure::NoHttp2));
    }
    Ok(Link::H1(conn))
}

/// Writes the request and reads the response. A write that fails, or a connection
/// that ends before the first response byte, reads as [`ReadError::ClosedBeforeResponse`].
async fn round_trip(
    conn: &mut Conn,
    s: &mut pool::Scratch,
    head_request: bool,
    head_limit: usize,
    body_limit: usize,
) -> Result<Parsed, ReadError> {
    if let Err(e) = conn.send_all(&s.out).await {
        return Err(match wire::exchange_error(&e) {
            FailureKind::Transport(TransportFailure::Reset) => ReadError::ClosedBeforeResponse,
            kind => ReadError::Failed(kind),
        });
    }
    wire::read_response(conn, s, head_request, head_limit, body_limit).await
}

fn idempotent(method: &str) -> bool {
    matches!(
        method,
        "GET" | "HEAD" | "PUT" | "DELETE" | "OPTIONS" | "TRACE"
    )
}

/// Resolves a Location header against the URL that answered; `None` when it is not a
/// usable http(s) URL (the redirect response is then returned as is).
fn resolve(base: &str, location: &[u8]) -> Option<String> {
    let location = std::str::from_utf8(location).ok()?.trim();
    let url = url::Url::parse(base).ok()?.join(location).ok()?;
    matches!(url.scheme(), "http" | "https").then(|| url.into())
}
