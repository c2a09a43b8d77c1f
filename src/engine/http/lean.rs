//! The lean HTTP/1.1 client: one per virtual user, holding almost nothing while its
//! user thinks.
//!
//! A user keeps only its keep-alive connections (a socket, plus TLS state for https)
//! and its cookie jar. Request bytes and the response are written into a scratch
//! buffer borrowed from a per-thread pool for the length of the request
//! ([`pool`]), so ten thousand idle users cost little more than their sockets.
//! Responses are parsed with `httparse`; bodies framed by Content-Length, chunked
//! encoding or the end of the connection are read up to a body limit ([`wire`]).
//! A keep-alive connection the server closed while the user thought is replaced
//! transparently: it is probed before reuse after an idle spell, and an idempotent
//! request that meets a connection closed before any response byte is retried once
//! on a new one. Redirects are followed up to a limit, and cookies are kept per user
//! ([`cookies`]). Every failure maps to a [`FailureKind`]; nothing formats a string.

pub(crate) mod conn;
mod cookies;
mod pool;
mod wire;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rustls::ClientConfig;

use tokio::io::AsyncWriteExt;

use super::{HttpRequest, HttpShared};
use crate::metrics::failure::{CheckFailure, FailureKind, ProtocolFailure, TransportFailure};

use conn::Conn;
use cookies::CookieJar;
pub use pool::Response;
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
        // is boxed, not the timeout around it, so it is moved once, into the box.
        let follow = Box::pin(self.follow(shared, req, now));
        let exchange = match now.checked_add(req.timeout) {
            Some(deadline) => tokio::time::timeout_at(deadline.into(), follow),
            None => tokio::time::timeout(req.timeout, follow),
        };
        match exchange.await {
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
            };
            let parsed = self.exchange(shared, &head, i, scratch.get(), now).await?;
            let s = scratch.get();
            let mut location = None;
            for (name, value) in &s.headers {
                let name = &s.buf[name.start as usize..name.end as usize];
                let value = &s.buf[value.start as usize..value.end as usize];
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

    /// One request and response on the keep-alive connection of origin slot `i`.
    async fn exchange(
        &mut self,
        shared: &HttpShared,
        head: &Head<'_>,
        i: usize,
        s: &mut pool::Scratch,
        now: Instant,
    ) -> Result<Parsed, FailureKind> {
        let target = head.target;
        wire::write_request(&mut s.out, head, |out| {
            self.jar
                .write_header(out, target.host, target.path, target.tls)
        });
        let origin = &mut self.origins[i];
        let tls = target.tls.then(|| {
            let config = self
                .tls
                .get_or_insert_with(|| Arc::new(shared.user_tls_config()));
            Arc::clone(config)
        });
        let tls = tls.as_ref();
        // `idle_since` is when the connection's last request started, so a connection
        // counts as idle for at least as long as it was: never probed too little.
        let fresh = now.saturating_duration_since(origin.idle_since) < PROBE_AFTER;
        let (mut conn, mut reused) = match origin.conn.take() {
            Some(c) if fresh || c.looks_alive() => (c, true),
            _ => (connect(target, tls).await?, false),
        };
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
                    conn = connect(target, tls).await?;
                    reused = false;
                }
                Err(ReadError::ClosedBeforeResponse) => {
                    return Err(FailureKind::Transport(TransportFailure::Reset));
                }
                Err(ReadError::Failed(kind)) => return Err(kind),
            }
        }
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
        self.origins.push(Origin {
            text,
            span,
            conn: None,
            idle_since: now,
        });
        Some(self.origins.len() - 1)
    }
}

/// Opens a connection to the target's origin. The connect future (about 1.2 KB, most
/// of it the TLS handshake) is boxed: inline, it would make every exchange's state
/// that large, and that state is moved and zeroed per request, though connecting is
/// rare on keep-alive connections.
async fn connect(
    target: &wire::Target<'_>,
    tls: Option<&Arc<ClientConfig>>,
) -> Result<Conn, FailureKind> {
    Box::pin(conn::connect(target.host, target.port, tls)).await
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
    let written = async {
        conn.write_all(&s.out).await?;
        if conn.needs_flush() {
            conn.flush().await?;
        }
        Ok::<_, std::io::Error>(())
    }
    .await;
    if let Err(e) = written {
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
