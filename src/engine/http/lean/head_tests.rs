//! Unit tests of the head reader: plain heads read in one pass, everything else as
//! `httparse` reads it, and both paths agreeing with the httparse-only reader this
//! one replaced (kept below as the reference) on generated heads.
use super::*;
use proptest::prelude::*;

const NGINX: &[u8] = b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\n\
    Date: Thu, 03 Dec 2026 16:49:12 GMT\r\nContent-Type: application/json\r\n\
    Content-Length: 31\r\nConnection: keep-alive\r\n\r\n{\"status\":\"ok\",\"items\":[1,2,3]}";

fn parse(buf: &[u8]) -> Result<Option<ParsedHead>, FailureKind> {
    parse_head(buf, false)
}

fn invalid() -> Result<Option<ParsedHead>, FailureKind> {
    Err(FailureKind::Protocol(ProtocolFailure::InvalidHttp))
}

#[test]
fn a_plain_head_is_read_in_one_pass() {
    let mut facts = Facts::default();
    let shape = scan(NGINX, &mut facts).expect("read without httparse");
    assert_eq!((shape.version, shape.status), (1, 200));
    let head = parse(NGINX).unwrap().unwrap();
    assert_eq!(head.head_len, NGINX.len() - 31);
    assert_eq!(head.framing, Framing::Length(31));
    assert!(head.keep_alive && !head.follow_up);
    assert_eq!(head.version, HttpVersionUsed::Http11);
    let fields: Vec<_> = fields(&NGINX[head.fields.clone()]).collect();
    assert_eq!(fields.len(), 5);
    assert_eq!(fields[0], (&b"Server"[..], &b"nginx/1.22.1"[..]));
    assert_eq!(fields[4], (&b"Connection"[..], &b"keep-alive"[..]));
}

#[test]
fn every_prefix_of_a_head_asks_for_more() {
    let head_len = parse(NGINX).unwrap().unwrap().head_len;
    for end in 0..head_len {
        assert_eq!(parse(&NGINX[..end]), Ok(None), "{end} bytes");
    }
}

#[test]
fn values_keep_tabs_and_obs_text_and_lose_the_spaces_around_them() {
    let head = b"HTTP/1.1 200 \xe9t\xe9\r\nX-A:\t a\tb \xff  \t\r\nX-B:\r\nX-C:   \r\n\r\n";
    assert!(scan(head, &mut Facts::default()).is_some());
    let parsed = parse(head).unwrap().unwrap();
    let fields: Vec<_> = fields(&head[parsed.fields]).collect();
    assert_eq!(
        fields,
        [
            (&b"X-A"[..], &b"a\tb \xff"[..]),
            (b"X-B", b""),
            (b"X-C", b""),
        ]
    );
}

#[test]
fn heads_not_written_plainly_are_judged_by_httparse() {
    // Bare LF line ends, leading empty lines and a status line without a reason
    // are HTTP that httparse takes.
    for head in [
        &b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok"[..],
        b"\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok",
    ] {
        let parsed = parse(head).unwrap().unwrap();
        assert_eq!(parsed.framing, Framing::Length(2), "{head:?}");
        let fields: Vec<_> = fields(&head[parsed.fields]).collect();
        assert_eq!(fields, [(&b"Content-Length"[..], &b"2"[..])], "{head:?}");
    }
    for head in [
        // obs-fold, a space before the colon, a bare CR, control bytes in a value or
        // a name, an empty name, a status that is not three digits, HTTP/2's preface.
        &b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n"[..],
        b"HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: a\x7fb\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX\x01: a\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n: a\r\n\r\n",
        b"HTTP/1.1 2x0 OK\r\n\r\n",
        b"HTTP/1.2 200 OK\r\n\r\n",
        b"HTTP/1.1 200 O\x00K\r\n\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    ] {
        assert_eq!(parse(head), invalid(), "{head:?}");
    }
}

#[test]
fn lengths_that_disagree_are_refused() {
    let head = |lengths: &str| {
        let mut h = b"HTTP/1.1 200 OK\r\n".to_vec();
        for l in lengths.split('|') {
            h.extend_from_slice(format!("Content-Length: {l}\r\n").as_bytes());
        }
        h.extend_from_slice(b"\r\n");
        parse(&h).map(|p| p.map(|p| p.framing))
    };
    assert_eq!(head("5|5"), Ok(Some(Framing::Length(5))));
    assert_eq!(head("+5"), Ok(Some(Framing::Length(5))));
    assert_eq!(head("0005"), Ok(Some(Framing::Length(5))));
    for bad in ["5|6", "x", "-1", "5 5", "99999999999999999999999", ""] {
        assert_eq!(head(bad), invalid().map(|_| None), "{bad}");
    }
}

#[test]
fn framing_follows_transfer_encoding_then_length() {
    let framing = |head: &[u8], head_request| parse_head(head, head_request).unwrap().unwrap();
    let chunked =
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n";
    assert_eq!(framing(chunked, false).framing, Framing::Chunked);
    assert_eq!(framing(chunked, true).framing, Framing::None);
    let close = b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nConnection: x, close\r\n\r\n";
    let p = framing(close, false);
    assert_eq!((p.framing, p.keep_alive), (Framing::UntilClose, false));
    let kept = b"HTTP/1.0 204 No Content\r\nconnection: keep-alive\r\n\r\n";
    let p = framing(kept, false);
    assert_eq!((p.framing, p.keep_alive), (Framing::None, true));
    assert_eq!(p.version, HttpVersionUsed::Http10);
    let redirect = b"HTTP/1.1 302 Found\r\nLOCATION: /x\r\nContent-Length: 0\r\n\r\n";
    assert!(framing(redirect, false).follow_up);
    let cookie = b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nContent-Length: 0\r\n\r\n";
    assert!(framing(cookie, false).follow_up);
}

#[test]
fn too_many_headers_make_a_head_too_large() {
    let head = |n: usize| {
        let mut h = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..n {
            h.extend_from_slice(format!("X-{i}: {i}\r\n").as_bytes());
        }
        h.extend_from_slice(b"\r\n");
        parse(&h).map(|p| p.is_some())
    };
    assert_eq!(head(MAX_HEADERS), Ok(true));
    assert_eq!(
        head(MAX_HEADERS + 1),
        Err(FailureKind::Protocol(ProtocolFailure::BodyTooLarge))
    );
}

#[test]
fn a_value_ends_at_its_first_byte_out_of_place() {
    let allowed = |b: u8| b == b'\t' || (b' '..=0x7e).contains(&b) || b >= 0x80;
    for bad in 0..=255u8 {
        for at in 0..20 {
            let mut line = vec![b'a'; 24];
            line[3] = b'\t';
            line[at] = bad;
            for from in [0, 2, 9] {
                let expected = (from..24).find(|&i| !allowed(line[i])).unwrap_or(24);
                assert_eq!(value_end(&line, from), expected, "byte {bad:#x} at {at}");
            }
        }
    }
}

/// The names the scan recognises, and what each is.
const NAMES: [(&[u8], Header); 8] = [
    (b"date", Header::Other),
    (b"server", Header::Other),
    (b"location", Header::FollowUp),
    (b"connection", Header::Connection),
    (b"set-cookie", Header::FollowUp),
    (b"content-type", Header::Other),
    (b"content-length", Header::ContentLength),
    (b"transfer-encoding", Header::TransferEncoding),
];

/// A name read byte by byte, as the scan reads any name it does not recognise.
fn name_by_bytes(line: &[u8]) -> Option<(Header, usize)> {
    let end = line.iter().position(|&b| !TOKEN[b as usize])?;
    (end > 0 && line[end] == b':').then(|| (Header::of(&line[..end]), end))
}

#[test]
fn names_are_recognised_with_their_colon_in_any_case_eight_bytes_at_a_time() {
    for (lower, header) in NAMES {
        let line = [lower, b": v\r\n\r\n"].concat();
        let upper = line.to_ascii_uppercase();
        for line in [&line, &upper] {
            assert_eq!(name(line, 0, line[0]), Some((header, lower.len())));
        }
        // Every byte at every place of the name and its colon, and every byte after
        // a name cut short (which the byte-by-byte reading finds).
        for at in 0..=lower.len() + 1 {
            for b in 0..=255u8 {
                let mut got = line.clone();
                got[at] = b;
                assert_eq!(
                    name(&got, 0, got[0]),
                    name_by_bytes(&got),
                    "{:?}",
                    String::from_utf8_lossy(&got)
                );
            }
        }
        // Fewer words than the name takes: read byte by byte.
        for end in 1..line.len() {
            let cut = &line[..end];
            assert_eq!(name(cut, 0, cut[0]), name_by_bytes(cut), "{end} bytes");
        }
    }
}

#[test]
fn keep_alive_alone_is_compared_as_two_words() {
    for value in [&b"keep-alive"[..], b"KEEP-ALIVE", b"Keep-Alive"] {
        assert!(is_keep_alive(value));
    }
    for len in 9..=11 {
        let value = &b"keep-alive!"[..len];
        for at in 0..len {
            for b in 0..=255u8 {
                let mut got = value.to_vec();
                got[at] = b;
                assert_eq!(
                    is_keep_alive(&got),
                    got.eq_ignore_ascii_case(b"keep-alive"),
                    "{:?}",
                    String::from_utf8_lossy(&got)
                );
            }
        }
    }
}

#[test]
fn content_lengths_are_read_as_str_parse_reads_them() {
    let by_str = |v: &[u8]| -> Option<usize> { std::str::from_utf8(v).ok()?.trim().parse().ok() };
    for len in 0..=21 {
        for digits in [vec![b'9'; len], [&b"1"[..], &vec![b'0'; len]].concat()] {
            assert_eq!(content_length(&digits), by_str(&digits), "{digits:?}");
            for at in 0..digits.len() {
                for b in [b'+', b'-', b' ', b'/', b':', b'a', 0x80, 0xff] {
                    let mut got = digits.clone();
                    got[at] = b;
                    assert_eq!(content_length(&got), by_str(&got), "{got:?}");
                }
            }
        }
    }
}

#[test]
fn the_usual_status_line_is_compared_as_two_words() {
    let mut facts = Facts::default();
    let shape = scan(b"HTTP/1.1 200 OK\r\n\r\n", &mut facts).expect("read plainly");
    assert_eq!((shape.version, shape.status, shape.head_len), (1, 200, 19));
    // Every byte out of place in it, and the head cut anywhere.
    for at in 0..19 {
        for b in 0..=255u8 {
            let mut head = b"HTTP/1.1 200 OK\r\nX: y\r\n\r\n".to_vec();
            head[at] = b;
            agrees_with_httparse(&head).unwrap();
        }
    }
}

/// Heads of the names the scan recognises and of others, in mixed case.
const MIXED: &[u8] = b"HTTP/1.1 302 Found\r\nDATE: Thu, 03 Dec 2026 16:49:12 GMT\r\n\
    sErVeR: x\r\nLocation: /next\r\nconnection: Keep-Alive\r\nSet-Cookie: a=b; Path=/\r\n\
    Content-type: text/plain\r\nX-Request-Id: 5f2b1c9e-8a7d\r\nTransfer-Encoding: chunked\r\n\
    Content-Length: 12\r\nVary: *\r\nA: \r\n\r\n";

#[test]
fn every_byte_out_of_place_is_read_as_httparse_reads_it() {
    for head in [NGINX, MIXED] {
        let head_len = parse(head).unwrap().unwrap().head_len;
        for at in 0..head_len {
            for b in 0..=255u8 {
                let mut got = head.to_vec();
                got[at] = b;
                agrees_with_httparse(&got).unwrap();
                agrees_with_httparse(&got[..head_len]).unwrap();
            }
        }
    }
}

#[test]
fn names_and_values_of_every_length_are_read_as_httparse_reads_them() {
    // Every length of names that start like the recognised ones, and of values with
    // a tab and obs-text, with spaces and tabs around them, around a word's size.
    let names: [&[u8]; 6] = [
        b"Content-Length-Transfer-En",
        b"Set-Cookie-Date-Server-Loc",
        b"connection-keep-alive-xyzw",
        b"Transfer-Encoding-Location",
        b"Server-Date-Location-abcde",
        b"DATE-LOCATION-SERVER-ABCDE",
    ];
    let value = b"keep-alive 12\tchunked \xe9close";
    for name in names {
        for name_len in 0..=name.len() {
            for value_len in 0..=value.len() {
                for ows in [&b""[..], b" ", b" \t "] {
                    let mut head = b"HTTP/1.1 200 OK\r\n".to_vec();
                    for part in [&name[..name_len], b":", ows, &value[..value_len], ows] {
                        head.extend_from_slice(part);
                    }
                    head.extend_from_slice(b"\r\n\r\n");
                    agrees_with_httparse(&head).unwrap();
                    agrees_with_httparse(&head[..head.len() - 1]).unwrap();
                }
            }
        }
    }
}

/// Headers as (name, value), owned.
type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// The head reader this one replaced: everything through `httparse`.
fn reference(buf: &[u8]) -> Result<Option<(ParsedHead, Fields)>, FailureKind> {
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
        Err(_) => return invalid().map(|_| None),
    };
    let status = resp
        .code
        .filter(|c| *c >= 100)
        .ok_or(FailureKind::Protocol(ProtocolFailure::InvalidHttp))?;
    let mut keep_alive = resp.version == Some(1);
    let (mut length, mut chunked, mut follow_up) = (None::<usize>, false, false);
    let mut fields = Vec::new();
    for h in resp.headers.iter() {
        let name = h.name.as_bytes();
        fields.push((name.to_vec(), h.value.to_vec()));
        if name.eq_ignore_ascii_case(b"content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
                .ok_or(FailureKind::Protocol(ProtocolFailure::InvalidHttp))?;
            if length.is_some_and(|l| l != n) {
                return invalid().map(|_| None);
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            chunked = last_token_is(h.value, b"chunked");
        } else if name.eq_ignore_ascii_case(b"connection") {
            if has_token(h.value, b"close") {
                keep_alive = false;
            } else if has_token(h.value, b"keep-alive") {
                keep_alive = true;
            }
        }
        follow_up |=
            name.eq_ignore_ascii_case(b"set-cookie") || name.eq_ignore_ascii_case(b"location");
    }
    let framing = if status == 204 || status == 304 || (100..200).contains(&status) {
        Framing::None
    } else if chunked {
        Framing::Chunked
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        Framing::UntilClose
    };
    let head = ParsedHead {
        status,
        head_len,
        fields: 0..0,
        framing,
        keep_alive,
        version: match resp.version {
            Some(1) => HttpVersionUsed::Http11,
            _ => HttpVersionUsed::Http10,
        },
        follow_up,
    };
    Ok(Some((head, fields)))
}

/// A header line of a name the scan recognises in any case, perhaps cut short, with
/// any value, perhaps with one byte out of place.
fn named_line() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(&NAMES[..]),
        any::<u32>(),
        prop_oneof![4 => Just(0usize), 1 => 1..4usize],
        "[ -~\t]{0,20}",
        proptest::option::of((any::<prop::sample::Index>(), any::<u8>())),
    )
        .prop_map(|((name, _), case, cut, value, out_of_place)| {
            let mut line: Vec<u8> = name[..name.len().saturating_sub(cut)]
                .iter()
                .enumerate()
                .map(|(i, &b)| {
                    if case >> (i % 32) & 1 == 1 {
                        b.to_ascii_uppercase()
                    } else {
                        b
                    }
                })
                .collect();
            line.extend_from_slice(b": ");
            line.extend_from_slice(value.as_bytes());
            line.extend_from_slice(b"\r\n");
            if let Some((at, b)) = out_of_place {
                let at = at.index(line.len());
                line[at] = b;
            }
            line
        })
}

/// Pieces heads are made of: plain ones, and the odd bytes and lines a hostile or
/// careless server sends.
fn piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => named_line(),
        4 => Just(b"HTTP/1.1 200 OK\r\n".to_vec()),
        1 => Just(b"HTTP/1.0 304 Not Modified\r\n".to_vec()),
        1 => Just(b"HTTP/1.1 100 Continue\r\n".to_vec()),
        1 => Just(b"HTTP/1.1 099\r\n".to_vec()),
        6 => Just(b"Content-Length: 12\r\n".to_vec()),
        1 => Just(b"content-length:3\r\n".to_vec()),
        1 => Just(b"Content-Length: +3 \r\n".to_vec()),
        2 => Just(b"Transfer-Encoding: chunked\r\n".to_vec()),
        2 => Just(b"Connection: close\r\n".to_vec()),
        2 => Just(b"Connection: keep-alive\r\n".to_vec()),
        1 => Just(b"Set-Cookie: a=b\r\n".to_vec()),
        1 => Just(b"Location: /next\r\n".to_vec()),
        6 => Just(b"X-Y: some value\r\n".to_vec()),
        1 => Just(b"Content-Length : 3\r\n".to_vec()),
        1 => Just(b"X: a long value\x7f with a\x00 b\x01\r\n".to_vec()),
        1 => Just(b"X: a long value\twith tabs\t and \xe9\xff\r\n".to_vec()),
        1 => Just(b" folded\r\n".to_vec()),
        4 => Just(b"\r\n".to_vec()),
        1 => Just(b"\n".to_vec()),
        1 => Just(b"\r".to_vec()),
        1 => Just(b" ".to_vec()),
        1 => Just(b"\t".to_vec()),
        1 => Just(b":".to_vec()),
        2 => proptest::collection::vec(any::<u8>(), 0..6),
        2 => "[a-zA-Z0-9 :\\t,;-]{0,12}".prop_map(String::into_bytes),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    /// Every head, whole or cut short, is read as the httparse-only reader read it:
    /// the same verdict, and for a complete head the same status, framing,
    /// connection, version, length and headers.
    #[test]
    fn heads_are_read_as_httparse_reads_them(
        pieces in proptest::collection::vec(piece(), 0..12),
        cut in any::<prop::sample::Index>(),
    ) {
        let whole = pieces.concat();
        agrees_with_httparse(&whole)?;
        agrees_with_httparse(&whole[..cut.index(whole.len() + 1)])?;
    }
}

fn agrees_with_httparse(buf: &[u8]) -> Result<(), TestCaseError> {
    match (reference(buf), parse(buf)) {
        (Ok(Some((expected, expected_fields))), Ok(Some(got))) => {
            let got_fields: Fields = fields(&buf[got.fields.clone()])
                .map(|(n, v)| (n.to_vec(), v.to_vec()))
                .collect();
            prop_assert_eq!(got_fields, expected_fields);
            prop_assert_eq!(
                ParsedHead {
                    fields: 0..0,
                    ..got
                },
                expected
            );
        }
        (expected, got) => prop_assert_eq!(got, expected.map(|h| h.map(|(h, _)| h))),
    }
    Ok(())
}
