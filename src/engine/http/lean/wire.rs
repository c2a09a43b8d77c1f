//! HTTP/1.1 on the wire: splitting a URL into what a connection needs, writing the
//! request bytes, and reading a response (its head read by [`super::head`], then a body
//! framed by Content-Length, chunked encoding, or the end of the connection).

use std::io;
use std::ops::Range;

use http::{HeaderMap, header};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::metrics::failure::{FailureKind, ProtocolFailure, TransportFailure};
use crate::metrics::stats::HttpVersionUsed;

use super::head::{Framing, ParsedHead, parse_head};
use super::pool::Scratch;
/// Longest chunk-size line (with extensions) or trailer line accepted.
const MAX_LINE: usize = 4 * 1024;

/// The parts of an absolute `http://` or `https://` URL a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Target<'a> {
    pub(crate) tls: bool,
    /// The host without brackets (an IPv6 literal is bare).
    pub(crate) host: &'a str,
    pub(crate) port: u16,
    /// `host[:port]` as written, for the Host header.
    pub(crate) authority: &'a str,
    /// Path and query; `/` when empty. Without the fragment.
    pub(crate) path: &'a str,
}

/// Splits an absolute URL without allocating. `None` when it is not a usable
/// `http(s)://` URL.
#[cfg(test)]
pub(crate) fn parse_target(url: &str) -> Option<Target<'_>> {
    parse_origin(url).map(|origin| origin.target(url))
}

/// Where a URL's origin (`scheme://authority`) ends and what it says, as offsets
/// into the URL, so that a later URL with the same origin text needs no parsing
/// ([`OriginSpan::matches`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OriginSpan {
    /// The length of `scheme://authority`.
    pub(crate) end: usize,
    tls: bool,
    host: Range<usize>,
    port: u16,
    authority: Range<usize>,
}

impl OriginSpan {
    /// Whether `url` starts with the same origin text as `origin` (the URL this span
    /// was parsed from), so the span describes it too.
    pub(crate) fn matches(&self, origin: &str, url: &str) -> bool {
        url.as_bytes().starts_with(origin.as_bytes())
            && matches!(
                url.as_bytes().get(self.end),
                None | Some(b'/' | b'?' | b'#')
            )
    }

    /// The target of `url`, which this span describes.
    pub(crate) fn target<'a>(&self, url: &'a str) -> Target<'a> {
        let mut path = &url[self.end..];
        if let Some(hash) = find_hash(path.as_bytes()) {
            path = &path[..hash];
        }
        if path.is_empty() {
            // "http://h?q" is "/?q": the path is written before the query.
            path = "/";
        }
        Target {
            tls: self.tls,
            host: &url[self.host.clone()],
            port: self.port,
            authority: &url[self.authority.clone()],
            path,
        }
    }
}

/// Where the fragment of a URL's path starts. A byte search (`#` is ASCII, so it
/// sits on a char boundary) that runs for every request: a short path, the usual
/// one, is walked byte by byte, which costs less than setting up `memchr`.
fn find_hash(path: &[u8]) -> Option<usize> {
    if path.len() <= 32 {
        path.iter().position(|&b| b == b'#')
    } else {
        memchr::memchr(b'#', path)
    }
}

/// Parses the origin part of an absolute URL.
pub(crate) fn parse_origin(url: &str) -> Option<OriginSpan> {
    let (tls, start) = if url.len() > 7 && url[..7].eq_ignore_ascii_case("http://") {
        (false, 7)
    } else if url.len() > 8 && url[..8].eq_ignore_ascii_case("https://") {
        (true, 8)
    } else {
        return None;
    };
    let rest = &url[start..];
    let end = start + rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let mut auth_start = start;
    if let Some(at) = url[start..end].rfind('@') {
        auth_start = start + at + 1;
    }
    let authority = &url[auth_start..end];
    let default_port = if tls { 443 } else { 80 };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let close = v6.find(']')?;
        let port = match &v6[close + 1..] {
            "" => default_port,
            p => p.strip_prefix(':')?.parse().ok()?,
        };
        (auth_start + 1..auth_start + 1 + close, port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, "")) => (auth_start..auth_start + h.len(), default_port),
            Some((h, p)) => (auth_start..auth_start + h.len(), p.parse().ok()?),
            None => (auth_start..end, default_port),
        }
    };
    if host.is_empty() {
        return None;
    }
    Some(OriginSpan {
        end,
        tls,
        host,
        port,
        authority: auth_start..end,
    })
}

/// Whether a byte may go into a request target as is; others are percent-encoded.
fn path_byte_ok(b: u8) -> bool {
    b > 0x20
        && b < 0x7f
        && !matches!(
            b,
            b'"' | b'<' | b'>' | b'\\' | b'^' | b'`' | b'{' | b'|' | b'}'
        )
}

/// Appends `path`, percent-encoding what must not appear raw in a request line.
pub(crate) fn push_path(out: &mut Vec<u8>, path: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    if path.starts_with('?') {
        out.push(b'/');
    }
    let bytes = path.as_bytes();
    if bytes.iter().all(|&b| path_byte_ok(b)) {
        out.extend_from_slice(bytes);
        return;
    }
    for &b in bytes {
        if path_byte_ok(b) {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
        }
    }
}

/// What a request line and its headers are made of.
pub(crate) struct Head<'a> {
    pub(crate) method: &'a str,
    pub(crate) target: &'a Target<'a>,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) body: &'a [u8],
    /// What a redirect took from the caller's headers.
    pub(crate) dropped: Dropped,
    /// This head, written once ([`FixedHead`]): then it alone is written, and the
    /// fields above serve the cookies and HTTP/2.
    pub(crate) fixed: Option<&'a FixedHead>,
}

/// Caller headers a redirect leaves behind, as browsers and reqwest do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Dropped {
    /// `authorization`, `proxy-authorization` and `cookie`: a redirect left the
    /// origin they were written for.
    pub(crate) credentials: bool,
    /// `content-type` and `content-encoding`: the request became a body-less GET.
    pub(crate) content: bool,
}

/// Writes the request into `out` (cleared first). `cookies` appends the user's
/// cookies (the Cookie header's value) and returns whether it wrote anything; it is
/// not called when the caller sends a `cookie` header of its own, which then goes
/// as written (as reqwest does), so there is only ever one. A head made once
/// ([`Head::fixed`]) is copied around the cookies instead of written again.
pub(crate) fn write_request(
    out: &mut Vec<u8>,
    head: &Head<'_>,
    cookies: impl FnOnce(&mut Vec<u8>) -> bool,
) {
    out.clear();
    if let Some(fixed) = head.fixed {
        let (before, after) = fixed.bytes.split_at(fixed.cookie_at);
        out.extend_from_slice(before);
        if fixed.jar {
            write_cookies(out, cookies);
        }
        out.extend_from_slice(after);
        return;
    }
    if write_start(out, head) {
        write_cookies(out, cookies);
    }
    write_end(out, head);
}

/// A request head (and body) written once for every request of a call that has no
/// templates, with the place where each user's cookies go. Only the first hop of
/// a request uses it: a redirect's head is written as usual.
#[derive(Debug)]
pub struct FixedHead {
    /// The request line, the headers, the body: exactly what [`write_request`]
    /// writes for the call when the user has no cookies.
    bytes: Box<[u8]>,
    /// Where the user's Cookie header goes in `bytes`.
    cookie_at: usize,
    /// Whether the user's cookies are sent (the call sets no `cookie` header).
    jar: bool,
}

impl FixedHead {
    /// The head of `method` to the absolute `url` with these headers and body, as
    /// [`write_request`] writes it; `None` when `url` is not a usable http(s) URL
    /// (the request then fails as it would have).
    pub(crate) fn new(
        method: &str,
        url: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Option<FixedHead> {
        let target = parse_origin(url)?.target(url);
        let head = Head {
            method,
            target: &target,
            headers,
            body,
            dropped: Dropped::default(),
            fixed: None,
        };
        let mut bytes = Vec::new();
        let jar = write_start(&mut bytes, &head);
        let cookie_at = bytes.len();
        write_end(&mut bytes, &head);
        Some(FixedHead {
            bytes: bytes.into(),
            cookie_at,
            jar,
        })
    }
}

/// The request line and the headers before the cookies; whether the user's cookies
/// go next (the caller sent no `cookie` header).
fn write_start(out: &mut Vec<u8>, head: &Head<'_>) -> bool {
    out.extend_from_slice(head.method.as_bytes());
    out.push(b' ');
    push_path(out, head.target.path);
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let (mut has_host, mut has_agent, mut has_cookie) = (false, false, false);
    for (name, value) in head.headers {
        if skipped(head, name) {
            continue;
        }
        has_host |= name == header::HOST;
        has_agent |= name == header::USER_AGENT;
        has_cookie |= name == header::COOKIE;
        // A `HeaderName` is lower-case and holds only token characters.
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        // `HeaderValue` never holds CR or LF, so a value cannot inject a header.
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !has_host {
        out.extend_from_slice(b"host: ");
        out.extend_from_slice(head.target.authority.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !has_agent {
        out.extend_from_slice(b"user-agent: ");
        out.extend_from_slice(crate::engine::http::USER_AGENT.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    !has_cookie
}

/// The user's Cookie header, when its jar has cookies for the request.
fn write_cookies(out: &mut Vec<u8>, cookies: impl FnOnce(&mut Vec<u8>) -> bool) {
    let mark = out.len();
    out.extend_from_slice(b"cookie: ");
    if cookies(out) {
        out.extend_from_slice(b"\r\n");
    } else {
        out.truncate(mark);
    }
}

/// The body's length, the end of the head, and the body.
fn write_end(out: &mut Vec<u8>, head: &Head<'_>) {
    let bodiless = matches!(head.method, "GET" | "HEAD" | "DELETE" | "OPTIONS" | "TRACE");
    if !head.body.is_empty() || !bodiless {
        out.extend_from_slice(b"content-length: ");
        out.extend_from_slice(itoa::Buffer::new().format(head.body.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(head.body);
}

/// Whether the caller's header `name` stays out of the request: the body's length
/// is ours to state (a template must not contradict it), and a redirect may have
/// dropped credentials or content headers ([`Dropped`]).
pub(crate) fn skipped(head: &Head<'_>, name: &header::HeaderName) -> bool {
    name == header::CONTENT_LENGTH
        || name == header::TRANSFER_ENCODING
        || head.dropped.credentials
            && (name == header::AUTHORIZATION
                || name == header::PROXY_AUTHORIZATION
                || name == header::COOKIE)
        || head.dropped.content
            && (name == header::CONTENT_TYPE || name == header::CONTENT_ENCODING)
}

/// How a read of a response ended badly.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The connection ended before any byte of the response: on a reused keep-alive
    /// connection this means the server had closed it, and the request may be retried.
    ClosedBeforeResponse,
    Failed(FailureKind),
}

impl From<FailureKind> for ReadError {
    fn from(k: FailureKind) -> Self {
        ReadError::Failed(k)
    }
}

/// Maps an I/O error during an exchange on an open connection.
pub(crate) fn exchange_error(e: &io::Error) -> FailureKind {
    if let Some(tls) = super::conn::tls_error(e) {
        return FailureKind::from_tls(tls);
    }
    // An open connection cannot be refused; whatever else breaks it is a reset.
    match crate::engine::http::io_failure(e) {
        Some(FailureKind::Transport(TransportFailure::Timeout)) => {
            FailureKind::Transport(TransportFailure::Timeout)
        }
        _ => FailureKind::Transport(TransportFailure::Reset),
    }
}

/// What the response head said about the connection and the body.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Parsed {
    pub(crate) status: u16,
    pub(crate) body_start: usize,
    /// The connection can carry the next request.
    pub(crate) keep_alive: bool,
    pub(crate) version: HttpVersionUsed,
    /// A `set-cookie` or `location` header came: the client must look at the headers.
    pub(crate) follow_up: bool,
}

/// Reads more bytes into `buf`; `Ok(0)` is the end of the connection.
async fn fill<R: AsyncRead + Unpin>(io: &mut R, buf: &mut Vec<u8>) -> Result<usize, FailureKind> {
    if buf.capacity() - buf.len() < 2048 {
        buf.reserve(buf.capacity().max(8192));
    }
    io.read_buf(buf).await.map_err(|e| exchange_error(&e))
}

/// Reads one response into `s.buf` (head, then the de-chunked body). `head_request`:
/// the request was a HEAD, so no body follows whatever the headers say.
pub(crate) async fn read_response<R: AsyncRead + Unpin>(
    io: &mut R,
    s: &mut Scratch,
    head_request: bool,
    head_limit: usize,
    body_limit: usize,
) -> Result<Parsed, ReadError> {
    s.buf.clear();
    loop {
        let ParsedHead {
            status,
            head_len,
            fields,
            framing,
            keep_alive,
            version,
            follow_up,
        } = loop {
            // An empty buffer (the usual start) holds no head to look at.
            if !s.buf.is_empty()
                && let Some(head) = parse_head(&s.buf, head_request)?
            {
                break head;
            }
            // Past the limit the head is never complete ("endless headers"): the
            // response is too large, like a body past its limit.
            if s.buf.len() > head_limit {
                return Err(FailureKind::Protocol(ProtocolFailure::BodyTooLarge).into());
            }
            let had = s.buf.len();
            match fill(io, &mut s.buf).await {
                Ok(0) | Err(FailureKind::Transport(TransportFailure::Reset)) if had == 0 => {
                    return Err(ReadError::ClosedBeforeResponse);
                }
                Ok(0) => return Err(FailureKind::Transport(TransportFailure::Reset).into()),
                Ok(_) => {}
                Err(kind) => return Err(kind.into()),
            }
        };
        // swarm never asks to switch protocols (it sends no `upgrade`), so a 101 is a
        // server that broke HTTP; what follows it is not HTTP either.
        if status == 101 {
            return Err(FailureKind::Protocol(ProtocolFailure::InvalidHttp).into());
        }
        // 1xx interim responses (100 Continue, 103 Early Hints) precede the real one.
        if (100..200).contains(&status) {
            s.buf.drain(..head_len);
            continue;
        }
        s.fields = fields;
        let keep_alive = read_body(io, s, head_len, framing, body_limit).await? && keep_alive;
        return Ok(Parsed {
            status,
            body_start: head_len,
            keep_alive,
            version,
            follow_up,
        });
    }
}

/// Reads the body after the head; returns whether the connection stays usable.
async fn read_body<R: AsyncRead + Unpin>(
    io: &mut R,
    s: &mut Scratch,
    head_len: usize,
    framing: Framing,
    limit: usize,
) -> Result<bool, FailureKind> {
    match framing {
        Framing::None => Ok(s.buf.len() == head_len),
        Framing::Length(n) => {
            if n > limit {
                return Err(FailureKind::Protocol(ProtocolFailure::BodyTooLarge));
            }
            let total = head_len + n;
            if s.buf.capacity() < total {
                s.buf.reserve(total - s.buf.len());
            }
            while s.buf.len() < total {
                if fill(io, &mut s.buf).await? == 0 {
                    return Err(FailureKind::Transport(TransportFailure::Reset));
                }
            }
            // Bytes past the body were never asked for: the stream is out of step.
            let clean = s.buf.len() == total;
            s.buf.truncate(total);
            Ok(clean)
        }
        Framing::UntilClose => {
            while fill(io, &mut s.buf).await? != 0 {
                if s.buf.len() - head_len > limit {
                    return Err(FailureKind::Protocol(ProtocolFailure::BodyTooLarge));
                }
            }
            Ok(false)
        }
        Framing::Chunked => read_chunked(io, s, head_len, limit).await,
    }
}

/// Position of the next CRLF at or after `from`.
fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?
        .windows(2)
        .position(|w| w == b"\r\n")
        .map(|i| from + i)
}

/// De-chunks in place: decoded bytes are moved down to `wr`, behind the read cursor.
async fn read_chunked<R: AsyncRead + Unpin>(
    io: &mut R,
    s: &mut Scratch,
    head_len: usize,
    limit: usize,
) -> Result<bool, FailureKind> {
    let mut rd = head_len;
    let mut wr = head_len;
    loop {
        let line_end = next_line(io, s, &mut rd, wr).await?;
        let line = &s.buf[rd..line_end];
        let digits = line
            .split(|&b| b == b';')
            .next()
            .unwrap_or_default()
            .trim_ascii();
        let size = std::str::from_utf8(digits)
            .ok()
            .and_then(|d| usize::from_str_radix(d, 16).ok())
            .filter(|_| !digits.is_empty())
            .ok_or(FailureKind::Protocol(ProtocolFailure::InvalidHttp))?;
        rd = line_end + 2;
        if size == 0 {
            // Trailers, up to the empty line.
            loop {
                let end = next_line(io, s, &mut rd, wr).await?;
                let empty = end == rd;
                rd = end + 2;
                if empty {
                    break;
                }
            }
            let clean = s.buf.len() == rd;
            s.buf.truncate(wr);
            return Ok(clean);
        }
        if size > limit || wr - head_len + size > limit {
            return Err(FailureKind::Protocol(ProtocolFailure::BodyTooLarge));
        }
        while s.buf.len() < rd + size + 2 {
            compact(s, &mut rd, wr);
            if fill(io, &mut s.buf).await? == 0 {
                return Err(FailureKind::Transport(TransportFailure::Reset));
            }
        }
        if &s.buf[rd + size..rd + size + 2] != b"\r\n" {
            return Err(FailureKind::Protocol(ProtocolFailure::InvalidHttp));
        }
        s.buf.copy_within(rd..rd + size, wr);
        wr += size;
        rd += size + 2;
    }
}

/// Drops the gap between decoded bytes and the read cursor, so the buffer holds at
/// most the decoded body plus what is still undecoded.
fn compact(s: &mut Scratch, rd: &mut usize, wr: usize) {
    if *rd > wr {
        s.buf.drain(wr..*rd);
        *rd = wr;
    }
}

/// Waits for a whole line starting at `rd`; returns the position of its CRLF.
async fn next_line<R: AsyncRead + Unpin>(
    io: &mut R,
    s: &mut Scratch,
    rd: &mut usize,
    wr: usize,
) -> Result<usize, FailureKind> {
    loop {
        if let Some(end) = find_crlf(&s.buf, *rd) {
            return Ok(end);
        }
        if s.buf.len() - *rd > MAX_LINE {
            return Err(FailureKind::Protocol(ProtocolFailure::InvalidHttp));
        }
        compact(s, rd, wr);
        if fill(io, &mut s.buf).await? == 0 {
            return Err(FailureKind::Transport(TransportFailure::Reset));
        }
    }
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
