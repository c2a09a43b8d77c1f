//! Reading an HTTP/1.1 response head: the status line, the header lines, and what
//! the body's framing and the connection need from them.
//!
//! A head is checked in one pass over its bytes ([`scan`]): the status line, then
//! each header line (a name of token bytes, a colon, a value of visible bytes,
//! spaces, tabs and obs-text, then CRLF), looking closely only at the few headers
//! that frame the body or govern the connection. Nothing is recorded per header:
//! the checks find a header by scanning the head again ([`fields`]), which most
//! steps never do. The scan accepts only heads written plainly, a strict subset of
//! what `httparse` accepts, and reads them as `httparse` does; anything else (a bare
//! LF, leading empty lines, a head not yet complete, a byte out of place, too many
//! headers) is judged by `httparse` itself, so which heads are refused, and why,
//! does not depend on which path read them.

use std::mem::MaybeUninit;
use std::ops::Range;

use crate::metrics::failure::{FailureKind, ProtocolFailure};
use crate::metrics::stats::HttpVersionUsed;

/// Most response headers accepted.
const MAX_HEADERS: usize = 96;

/// What a complete response head says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParsedHead {
    pub(crate) status: u16,
    /// Where the body starts: the head's length.
    pub(crate) head_len: usize,
    /// Where the header lines sit (from the first one to the end of the head).
    pub(crate) fields: Range<usize>,
    pub(crate) framing: Framing,
    pub(crate) keep_alive: bool,
    pub(crate) version: HttpVersionUsed,
    /// A `set-cookie` or `location` header came, which the client must act on.
    pub(crate) follow_up: bool,
}

/// How the body after the head is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    None,
    Length(usize),
    Chunked,
    UntilClose,
}

/// Parses the head at the start of `buf` if it is complete: `Ok(None)` asks for more
/// bytes. `head_request`: the request was a HEAD, so no body follows.
pub(crate) fn parse_head(
    buf: &[u8],
    head_request: bool,
) -> Result<Option<ParsedHead>, FailureKind> {
    let mut facts = Facts::default();
    let Shape {
        version,
        status,
        fields,
        head_len,
    } = match scan(buf, &mut facts) {
        Some(plain) => plain,
        None => match judged_by_httparse(buf, &mut facts)? {
            Some(head) => head,
            None => return Ok(None),
        },
    };
    // httparse takes any three digits; a status below 100 is not HTTP.
    if status < 100 || facts.bad {
        return Err(FailureKind::Protocol(ProtocolFailure::InvalidHttp));
    }
    let framing = if head_request || status == 204 || status == 304 || (100..200).contains(&status)
    {
        Framing::None
    } else if facts.chunked {
        Framing::Chunked
    } else if let Some(n) = facts.length {
        Framing::Length(n)
    } else {
        Framing::UntilClose
    };
    Ok(Some(ParsedHead {
        status,
        head_len,
        fields,
        framing,
        keep_alive: facts.keep_alive.unwrap_or(version == 1),
        version: if version == 1 {
            HttpVersionUsed::Http11
        } else {
            HttpVersionUsed::Http10
        },
        follow_up: facts.follow_up,
    }))
}

/// The status line and where the parts of a complete head sit.
struct Shape {
    /// The minor digit of `HTTP/1.x`.
    version: u8,
    status: u16,
    fields: Range<usize>,
    head_len: usize,
}

/// What the header lines said about framing and the connection, gathered one header
/// at a time by either path.
#[derive(Default)]
struct Facts {
    length: Option<usize>,
    chunked: bool,
    /// `Connection: close` or `keep-alive`, the last one that said either.
    keep_alive: Option<bool>,
    follow_up: bool,
    headers: usize,
    /// A header made the head unusable: a bad Content-Length, or two that disagree.
    bad: bool,
}

impl Facts {
    /// Takes in one header; names are compared only when their length matches.
    fn header(&mut self, name: &[u8], value: &[u8]) {
        self.headers += 1;
        match name.len() {
            14 if is(name, b"content-length") => {
                match content_length(value) {
                    // Two different lengths: which one frames the body is ambiguous.
                    Some(n) if self.length.is_none_or(|l| l == n) => self.length = Some(n),
                    _ => self.bad = true,
                }
            }
            17 if is(name, b"transfer-encoding") => {
                self.chunked = last_token_is(value, b"chunked");
            }
            10 if is(name, b"connection") => {
                // The usual value alone is read at once; a list, token by token.
                if value.len() == 10 && is(value, b"keep-alive") {
                    self.keep_alive = Some(true);
                } else if has_token(value, b"close") {
                    self.keep_alive = Some(false);
                } else if has_token(value, b"keep-alive") {
                    self.keep_alive = Some(true);
                }
            }
            10 if is(name, b"set-cookie") => self.follow_up = true,
            8 if is(name, b"location") => self.follow_up = true,
            _ => {}
        }
    }
}

/// Whether `got` is `lower` (lower-case letters and `-`, at least 8 bytes, as long
/// as `got`) in any case, eight bytes at a time. Setting bit 5 lower-cases a letter
/// and changes neither `-` nor a byte that could pass for one here: only CR (0x0d)
/// becomes `-`, and a CR is in neither a header name nor a value.
fn is(got: &[u8], lower: &[u8]) -> bool {
    const CASE: u64 = u64::from_ne_bytes([0x20; 8]);
    let word = |s: &[u8], at: usize| {
        s.get(at..at + 8)
            .map(|w| u64::from_le_bytes(w.try_into().unwrap_or_default()))
    };
    let last = lower.len().saturating_sub(8);
    let mut at = 0;
    loop {
        // The last word overlaps the one before it rather than running past the end.
        let at_now = at.min(last);
        match (word(got, at_now), word(lower, at_now)) {
            (Some(g), Some(l)) if g | CASE == l => {}
            _ => return false,
        }
        if at_now == last {
            return got.len() == lower.len();
        }
        at += 8;
    }
}

/// A Content-Length value: decimal digits, read as `str::parse` reads them (which
/// also takes a leading `+`) after trimming.
fn content_length(value: &[u8]) -> Option<usize> {
    if !value.is_empty() && value.len() <= 19 && value.iter().all(u8::is_ascii_digit) {
        return Some(value.iter().fold(0, |n, d| n * 10 + usize::from(d - b'0')));
    }
    std::str::from_utf8(value).ok()?.trim().parse().ok()
}

fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

fn last_token_is(value: &[u8], token: &[u8]) -> bool {
    value
        .rsplit(|&b| b == b',')
        .next()
        .is_some_and(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

/// Bytes a header name is made of (RFC 9110's `tchar`), as `httparse` takes them.
static TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = matches!(b as u8, b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z' | b'!' | b'#' | b'$'
            | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~');
        b += 1;
    }
    t
};

/// Reads a plainly written head: `HTTP/1.x NNN reason` and `name: value` lines, each
/// ended by CRLF, then an empty line; `None` for anything else, including a head not
/// yet complete.
fn scan(buf: &[u8], facts: &mut Facts) -> Option<Shape> {
    let line = buf.get(..13)?;
    if &line[..7] != b"HTTP/1." || line[8] != b' ' {
        return None;
    }
    let version = match line[7] {
        b'0' => 0,
        b'1' => 1,
        _ => return None,
    };
    let digits = &line[9..12];
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let status = digits
        .iter()
        .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    // No reason phrase, or a space and one (the reason's bytes are a value's).
    let mut at = match line[12] {
        b'\r' => 12,
        b' ' => value_end(buf, 13),
        _ => return None,
    };
    if buf.get(at..at + 2)? != b"\r\n" {
        return None;
    }
    at += 2;
    let start = at;
    loop {
        match *buf.get(at)? {
            b'\r' => {
                return (*buf.get(at + 1)? == b'\n').then_some(Shape {
                    version,
                    status,
                    fields: start..at + 2,
                    head_len: at + 2,
                });
            }
            b if !TOKEN[b as usize] => return None,
            _ => {}
        }
        let name_start = at;
        at += buf[at..].iter().position(|&b| !TOKEN[b as usize])?;
        if buf[at] != b':' {
            return None;
        }
        let name = name_start..at;
        at += 1;
        while matches!(*buf.get(at)?, b' ' | b'\t') {
            at += 1;
        }
        let value_start = at;
        at = value_end(buf, at);
        if buf.get(at..at + 2)? != b"\r\n" {
            return None;
        }
        let value = buf[value_start..at].trim_ascii_end();
        if facts.headers == MAX_HEADERS {
            return None;
        }
        facts.header(&buf[name], value);
        at += 2;
    }
}

/// The first byte at or after `at` that may not be in a header value (the CR of the
/// line's end, for a line written plainly), or `buf.len()`. A value may hold tabs,
/// `0x20..=0x7e` and obs-text (`0x80..`); eight bytes are looked at in one step.
fn value_end(buf: &[u8], mut at: usize) -> usize {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    while let Some(word) = buf.get(at..at + 8) {
        let w = u64::from_le_bytes(word.try_into().unwrap_or_default());
        // A byte below 0x20, or 0x7f; the lowest byte flagged is always a real one.
        let below = w.wrapping_sub(ONES * 0x20) & !w;
        let del = w ^ (ONES * 0x7f);
        let flagged = (below | (del.wrapping_sub(ONES) & !del)) & HIGH;
        if flagged == 0 {
            at += 8;
            continue;
        }
        let first = at + (flagged.trailing_zeros() / 8) as usize;
        if buf[first] != b'\t' {
            return first;
        }
        at = first + 1;
    }
    while let Some(&b) = buf.get(at) {
        if !(b == b'\t' || (b' '..=0x7e).contains(&b) || b >= 0x80) {
            break;
        }
        at += 1;
    }
    at
}

/// The head as `httparse` reads it: `Ok(None)` while incomplete, an error for what it
/// refuses. Its rules are the ones the plain [`scan`] must never be looser than.
fn judged_by_httparse(buf: &[u8], facts: &mut Facts) -> Result<Option<Shape>, FailureKind> {
    *facts = Facts::default();
    // Uninitialised slots: initialising 96 headers costs more than parsing a small head.
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut resp, buf, &mut slots);
    let head_len = match parsed {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(FailureKind::Protocol(ProtocolFailure::BodyTooLarge));
        }
        Err(_) => return Err(FailureKind::Protocol(ProtocolFailure::InvalidHttp)),
    };
    let base = buf.as_ptr() as usize;
    let start = resp
        .headers
        .first()
        .map_or(head_len, |h| h.name.as_ptr() as usize - base);
    for h in resp.headers.iter() {
        facts.header(h.name.as_bytes(), h.value);
    }
    Ok(Some(Shape {
        version: resp.version.unwrap_or(0),
        status: resp.code.unwrap_or(0),
        fields: start..head_len,
        head_len,
    }))
}

/// The header lines of a head (`fields` of [`ParsedHead`], or HTTP/2's headers
/// written the same way), as (name, value): the value without the spaces around it,
/// as `httparse` gives it. Found by scanning again, so only a step that asks for a
/// header pays for it.
pub(crate) fn fields(head: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    head.split(|&b| b == b'\n').map_while(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let colon = memchr::memchr(b':', line)?;
        let value = line[colon + 1..].trim_ascii_start();
        let value = match value.iter().rposition(|&b| b != b' ' && b != b'\t') {
            Some(last) => &value[..=last],
            None => &[],
        };
        Some((&line[..colon], value))
    })
}

#[cfg(test)]
#[path = "head_tests.rs"]
mod tests;
