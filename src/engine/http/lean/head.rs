//! Reading an HTTP/1.1 response head: the status line, the header lines, and what
//! the body's framing and the connection need from them.
//!
//! A head is checked in one pass over its bytes ([`scan`]): the status line, then
//! each header line (a name of token bytes, a colon, a value of visible bytes,
//! spaces, tabs and obs-text, then CRLF), looking closely only at the few headers
//! that frame the body or govern the connection. The usual status line and the
//! names nearly every response carries are compared eight bytes at a time, with
//! their colon; any other name is checked byte by byte. Nothing is recorded per
//! header: the checks find a header by scanning the head again ([`fields`]), which
//! most steps never do. The scan accepts only heads written plainly, a strict subset
//! of what `httparse` accepts, and reads them as `httparse` does; anything else (a
//! bare LF, leading empty lines, a head not yet complete, a byte out of place, too
//! many headers) is judged by `httparse` itself, so which heads are refused, and
//! why, does not depend on which path read them.

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
    /// A header made the head unusable: a bad Content-Length, or two that disagree.
    bad: bool,
}

/// What a header is to the head reader: one whose value frames the body, governs
/// the connection or asks the client to act, or any other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Header {
    ContentLength,
    TransferEncoding,
    Connection,
    /// `set-cookie` or `location`: the client must act on it.
    FollowUp,
    Other,
}

impl Header {
    /// The header a name (of any case) is.
    fn of(name: &[u8]) -> Self {
        let is = |lower: &[u8]| name.eq_ignore_ascii_case(lower);
        if is(b"content-length") {
            Header::ContentLength
        } else if is(b"transfer-encoding") {
            Header::TransferEncoding
        } else if is(b"connection") {
            Header::Connection
        } else if is(b"set-cookie") || is(b"location") {
            Header::FollowUp
        } else {
            Header::Other
        }
    }
}

impl Facts {
    /// Takes in one header of the head `httparse` read.
    fn header(&mut self, name: &[u8], value: &[u8]) {
        self.take(Header::of(name), value);
    }

    /// Takes in a header's value (without the spaces and tabs around it). Inlined so
    /// that the scan's usual headers cost no call; lists are read out of line.
    #[inline(always)]
    fn take(&mut self, header: Header, value: &[u8]) {
        match header {
            Header::ContentLength => match content_length(value) {
                // Two different lengths: which one frames the body is ambiguous.
                Some(n) if self.length.is_none_or(|l| l == n) => self.length = Some(n),
                _ => self.bad = true,
            },
            Header::TransferEncoding => self.chunked = last_token_is(value, b"chunked"),
            Header::Connection => {
                // The usual value alone is read at once; a list, token by token.
                if is_keep_alive(value) {
                    self.keep_alive = Some(true);
                } else {
                    self.connection_list(value);
                }
            }
            Header::FollowUp => self.follow_up = true,
            Header::Other => {}
        }
    }

    /// A Connection value that is not `keep-alive` alone: `close` wins over
    /// `keep-alive` anywhere in the list.
    #[inline(never)]
    fn connection_list(&mut self, value: &[u8]) {
        if has_token(value, b"close") {
            self.keep_alive = Some(false);
        } else if has_token(value, b"keep-alive") {
            self.keep_alive = Some(true);
        }
    }
}

const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);

/// The eight bytes at `at`, the first one lowest, if there are eight.
fn word(buf: &[u8], at: usize) -> Option<u64> {
    buf.get(at..)?.first_chunk().map(|w| u64::from_le_bytes(*w))
}

/// Bytes recognised by their words, in any case (a header name and its colon, or
/// a value): the lower-case bytes, and per word the bits that must match: all of
/// each byte but bit 5 of a letter, which is its case, and none past the end.
struct Name {
    /// How many bytes, the colon included.
    len: usize,
    lower: [u64; 3],
    care: [u64; 3],
}

impl Name {
    /// `lower`: the bytes in lower case.
    const fn new(lower: &[u8]) -> Self {
        let (mut words, mut care) = ([0; 3], [0; 3]);
        let mut i = 0;
        while i < lower.len() {
            let bits = if lower[i].is_ascii_lowercase() {
                0xdf
            } else {
                0xff
            };
            words[i / 8] |= (lower[i] as u64) << (i % 8 * 8);
            care[i / 8] |= bits << (i % 8 * 8);
            i += 1;
        }
        Name {
            len: lower.len(),
            lower: words,
            care,
        }
    }

    /// Whether the bytes at `at` in `buf` are these, in any case: a byte may differ
    /// only in the case of a letter, so a name matched is all token bytes and its
    /// colon. `false` too when fewer words than it takes are there.
    #[inline(always)]
    fn at(&self, buf: &[u8], at: usize) -> bool {
        (0..self.len.div_ceil(8))
            .all(|i| word(buf, at + 8 * i).is_some_and(|w| (w ^ self.lower[i]) & self.care[i] == 0))
    }

    /// Whether `words` (the bytes past these ignored) are these, in any case.
    fn matches(&self, words: &[u64; 3]) -> bool {
        ((words[0] ^ self.lower[0]) & self.care[0])
            | ((words[1] ^ self.lower[1]) & self.care[1])
            | ((words[2] ^ self.lower[2]) & self.care[2])
            == 0
    }
}

/// The names the scan recognises word by word, with their colon: those it acts on
/// and those nearly every response carries. Any other name is checked byte by byte.
const DATE: Name = Name::new(b"date:");
const SERVER: Name = Name::new(b"server:");
const LOCATION: Name = Name::new(b"location:");
const CONNECTION: Name = Name::new(b"connection:");
const SET_COOKIE: Name = Name::new(b"set-cookie:");
const CONTENT_TYPE: Name = Name::new(b"content-type:");
const CONTENT_LENGTH: Name = Name::new(b"content-length:");
const TRANSFER_ENCODING: Name = Name::new(b"transfer-encoding:");

/// Which header the name at `at` (its first byte `first`) is, and where its colon
/// is: `None` when the line does not start with a name of token bytes and a colon.
fn name(buf: &[u8], at: usize, first: u8) -> Option<(Header, usize)> {
    // Bit 5 lower-cases a letter; the words compared tell whether it was one.
    let (header, name) = match first | 0x20 {
        b'c' if CONTENT_TYPE.at(buf, at) => (Header::Other, &CONTENT_TYPE),
        b'c' if CONTENT_LENGTH.at(buf, at) => (Header::ContentLength, &CONTENT_LENGTH),
        b'c' if CONNECTION.at(buf, at) => (Header::Connection, &CONNECTION),
        b'd' if DATE.at(buf, at) => (Header::Other, &DATE),
        b's' if SERVER.at(buf, at) => (Header::Other, &SERVER),
        b's' if SET_COOKIE.at(buf, at) => (Header::FollowUp, &SET_COOKIE),
        b'l' if LOCATION.at(buf, at) => (Header::FollowUp, &LOCATION),
        b't' if TRANSFER_ENCODING.at(buf, at) => (Header::TransferEncoding, &TRANSFER_ENCODING),
        _ => {
            // Any other name, or one too near the end of what came: byte by byte.
            let end = at + buf[at..].iter().position(|&b| !TOKEN[b as usize])?;
            return (end > at && buf[end] == b':').then(|| (Header::of(&buf[at..end]), end));
        }
    };
    Some((header, at + name.len - 1))
}

/// Whether `value` is `keep-alive` in any case, compared as two words.
fn is_keep_alive(value: &[u8]) -> bool {
    const KEEP_ALIVE: Name = Name::new(b"keep-alive");
    match value.split_first_chunk() {
        Some((head, &[a, b])) => KEEP_ALIVE.matches(&[
            u64::from_le_bytes(*head),
            u64::from(u16::from_le_bytes([a, b])),
            0,
        ]),
        _ => false,
    }
}

/// A Content-Length value: decimal digits, read as `str::parse` reads them (which
/// also takes a leading `+`) after trimming.
fn content_length(value: &[u8]) -> Option<usize> {
    if value.is_empty() || value.len() > 19 {
        return parsed(value);
    }
    let mut n = 0;
    for &b in value {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            return parsed(value);
        }
        n = n * 10 + usize::from(digit);
    }
    Some(n)
}

/// A Content-Length value that is not plain digits (or is too long to be read as
/// them without overflowing).
#[inline(never)]
fn parsed(value: &[u8]) -> Option<usize> {
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
    let (version, status, mut at) = status_line(buf)?;
    let start = at;
    let mut headers = 0;
    loop {
        let first = *buf.get(at)?;
        if first == b'\r' {
            return (*buf.get(at + 1)? == b'\n').then_some(Shape {
                version,
                status,
                fields: start..at + 2,
                head_len: at + 2,
            });
        }
        let (header, colon) = name(buf, at, first)?;
        // The spaces and tabs before the value are bytes a value may hold.
        let end = value_end(buf, colon + 1);
        if buf.get(end..end + 2)? != b"\r\n" || headers == MAX_HEADERS {
            return None;
        }
        headers += 1;
        if header != Header::Other {
            facts.take(header, buf[colon + 1..end].trim_ascii());
        }
        at = end + 2;
    }
}

/// The status line's version digit, status, and where the line after it starts.
fn status_line(buf: &[u8]) -> Option<(u8, u16, usize)> {
    // The usual one, compared as two words.
    const HTTP11: u64 = u64::from_le_bytes(*b"HTTP/1.1");
    const OK: u64 = u64::from_le_bytes(*b" 200 OK\r");
    if word(buf, 0) == Some(HTTP11) && word(buf, 8) == Some(OK) {
        return (*buf.get(16)? == b'\n').then_some((1, 200, 17));
    }
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
    let end = match line[12] {
        b'\r' => 12,
        b' ' => value_end(buf, 13),
        _ => return None,
    };
    (buf.get(end..end + 2)? == b"\r\n").then_some((version, status, end + 2))
}

/// The first byte at or after `at` that may not be in a header value (the CR of the
/// line's end, for a line written plainly), or `buf.len()`. A value may hold tabs,
/// `0x20..=0x7e` and obs-text (`0x80..`); eight bytes are looked at in one step.
fn value_end(buf: &[u8], mut at: usize) -> usize {
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
