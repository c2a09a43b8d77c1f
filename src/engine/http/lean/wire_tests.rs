//! Unit tests of the wire format: URL splitting, request bytes, response framing.
use super::*;

#[test]
fn targets_split_without_allocating() {
    let t = parse_target("http://127.0.0.1:8080/a/b?x=1#frag").unwrap();
    assert_eq!(
        (t.tls, t.host, t.port, t.authority, t.path),
        (false, "127.0.0.1", 8080, "127.0.0.1:8080", "/a/b?x=1")
    );
    let t = parse_target("HTTPS://example.com").unwrap();
    assert_eq!(
        (t.tls, t.host, t.port, t.path),
        (true, "example.com", 443, "/")
    );
    let t = parse_target("http://[::1]:9/x").unwrap();
    assert_eq!((t.host, t.port, t.authority), ("::1", 9, "[::1]:9"));
    let t = parse_target("http://u:p@h?q=1").unwrap();
    assert_eq!((t.host, t.port, t.path), ("h", 80, "?q=1"));
    // A path too long for the byte walk is searched with `memchr`; either way the
    // fragment goes, and a `#` at the very end leaves the path whole.
    for path in ["/short?x=1", &format!("/{}?x=1", "long".repeat(20))] {
        for url in [format!("http://h{path}#frag"), format!("http://h{path}#")] {
            assert_eq!(parse_target(&url).unwrap().path, path, "{url}");
        }
        let url = format!("http://h{path}");
        assert_eq!(parse_target(&url).unwrap().path, path, "{url}");
    }
    assert!(parse_target("ftp://h/").is_none());
    assert!(parse_target("http://h:99999/").is_none());
    assert!(parse_target("http:///x").is_none());
}

#[test]
fn an_origin_span_describes_every_url_that_starts_with_its_text() {
    let first = "http://u@Host:8080/a?b";
    let span = parse_origin(first).unwrap();
    let text = &first[..span.end];
    assert_eq!(text, "http://u@Host:8080");
    for url in [
        "http://u@Host:8080",
        "http://u@Host:8080/",
        "http://u@Host:8080/x/y?z=1#f",
        "http://u@Host:8080?q",
        "http://u@Host:8080#f",
    ] {
        assert!(span.matches(text, url), "{url}");
        assert_eq!(Some(span.target(url)), parse_target(url), "{url}");
    }
    for url in [
        "http://u@Host:80800/",
        "http://u@Host:8080.evil/",
        "http://u@Host:808/",
        "https://u@Host:8080/",
        "http://u@host:8080/",
        "http://u@Host:8080@x/",
    ] {
        assert!(!span.matches(text, url), "{url}");
    }
}

fn request(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> String {
    let target = parse_target(url).unwrap();
    let mut map = HeaderMap::new();
    for (n, v) in headers {
        let v = http::HeaderValue::from_bytes(v.as_bytes()).unwrap();
        map.append(http::HeaderName::from_bytes(n.as_bytes()).unwrap(), v);
    }
    let headers = &map;
    let mut out = Vec::new();
    write_request(
        &mut out,
        &Head {
            method,
            target: &target,
            headers,
            body,
            dropped: Dropped::default(),
            fixed: None,
        },
        |out| {
            out.extend_from_slice(b"a=1");
            true
        },
    );
    String::from_utf8(out).unwrap()
}

#[test]
fn requests_are_written_with_host_length_and_cookies() {
    let r = request("POST", "http://h:1/p q?x", &[("x-a", "1")], b"{}");
    assert_eq!(
        r,
        "POST /p%20q?x HTTP/1.1\r\nx-a: 1\r\nhost: h:1\r\nuser-agent: swarm/0.1.0\r\n\
         cookie: a=1\r\ncontent-length: 2\r\n\r\n{}"
    );
    let r = request(
        "GET",
        "http://h?q",
        &[("Host", "other"), ("content-length", "9")],
        b"",
    );
    assert_eq!(
        r,
        "GET /?q HTTP/1.1\r\nhost: other\r\nuser-agent: swarm/0.1.0\r\ncookie: a=1\r\n\r\n"
    );
}

/// A head written once and copied around the cookies is byte for byte the head
/// written per request, with cookies and without, and with the caller's own cookie.
#[test]
fn a_fixed_head_writes_what_the_head_would() {
    type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a [u8]);
    let cases: [Case; 5] = [
        ("GET", "http://h:1/json", &[], b""),
        ("POST", "http://h:1/p q?x", &[("x-a", "1")], b"{}"),
        ("DELETE", "https://[::1]/", &[("content-length", "9")], b""),
        (
            "GET",
            "http://h?q",
            &[("cookie", "mine=1"), ("host", "o")],
            b"",
        ),
        ("PUT", "http://h/u", &[("user-agent", "me")], b"body"),
    ];
    for (method, url, headers, body) in cases {
        let mut map = HeaderMap::new();
        for (n, v) in headers {
            let v = http::HeaderValue::from_bytes(v.as_bytes()).unwrap();
            map.append(http::HeaderName::from_bytes(n.as_bytes()).unwrap(), v);
        }
        let target = parse_target(url).unwrap();
        let fixed = FixedHead::new(method, url, &map, body).unwrap();
        for jar in [&b"a=1; b=2"[..], b""] {
            let write = |fixed| {
                let mut out = b"stale".to_vec();
                let head = Head {
                    method,
                    target: &target,
                    headers: &map,
                    body,
                    dropped: Dropped::default(),
                    fixed,
                };
                write_request(&mut out, &head, |out| {
                    out.extend_from_slice(jar);
                    !jar.is_empty()
                });
                String::from_utf8(out).unwrap()
            };
            assert_eq!(write(Some(&fixed)), write(None), "{method} {url} {jar:?}");
        }
    }
    assert!(FixedHead::new("GET", "ftp://h/", &HeaderMap::new(), b"").is_none());
}

async fn read(wire: &[u8], limit: usize) -> (Result<Parsed, ReadError>, Scratch) {
    let mut s = Scratch::default();
    let mut io = wire;
    let r = read_response(&mut io, &mut s, false, 64 * 1024, limit).await;
    (r, s)
}

#[tokio::test]
async fn chunked_bodies_are_decoded_in_place() {
    let wire =
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
        5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nx-trailer: 1\r\n\r\n";
    let (r, s) = read(wire, 100).await;
    let p = r.unwrap();
    assert_eq!(p.status, 200);
    assert!(p.keep_alive);
    assert_eq!(&s.buf[p.body_start..], b"hello world");
    let (r, _) = read(wire, 8).await;
    assert!(matches!(
        r,
        Err(ReadError::Failed(FailureKind::Protocol(
            ProtocolFailure::BodyTooLarge
        )))
    ));
}

#[tokio::test]
async fn framing_and_errors() {
    let (r, s) = read(b"HTTP/1.0 200 OK\r\nX: y\r\n\r\nuntil close", 100).await;
    let p = r.unwrap();
    assert!(!p.keep_alive);
    assert_eq!(&s.buf[p.body_start..], b"until close");
    assert_eq!(
        super::super::head::fields(&s.buf[s.fields.clone()]).count(),
        1
    );
    let (r, _) = read(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", 100).await;
    assert!(matches!(
        r,
        Err(ReadError::Failed(FailureKind::Transport(
            TransportFailure::Reset
        )))
    ));
    let (r, _) = read(b"", 100).await;
    assert!(matches!(r, Err(ReadError::ClosedBeforeResponse)));
    let (r, _) = read(b"SSH-2.0-OpenSSH\r\n\r\n", 100).await;
    assert!(matches!(
        r,
        Err(ReadError::Failed(FailureKind::Protocol(
            ProtocolFailure::InvalidHttp
        )))
    ));
    let (r, _) = read(b"HTTP/1.1 099 Odd\r\nContent-Length: 0\r\n\r\n", 100).await;
    assert!(matches!(
        r,
        Err(ReadError::Failed(FailureKind::Protocol(
            ProtocolFailure::InvalidHttp
        )))
    ));
    let (r, _) = read(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        100,
    )
    .await;
    assert!(matches!(
        r,
        Err(ReadError::Failed(FailureKind::Protocol(
            ProtocolFailure::InvalidHttp
        )))
    ));
    let (r, _) = read(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n", 100).await;
    assert!(!r.unwrap().keep_alive);
}
