//! A misbehaving HTTP server on loopback, one behaviour per path, for tests/hostile/.
//! It speaks raw TCP (tokio) so it can break HTTP in ways a real server framework never
//! would. Every behaviour is bounded: the slowest stops after a minute, the largest
//! after 1 GB, and all end when the test process does.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// The behaviours, by path. `healthy` answers properly: the run's control group.
pub const PATHS: &[&str] = &[
    "healthy",
    "reset-before-head",
    "reset-mid-body",
    "close-owing-body",
    "garbage-status",
    "endless-headers",
    "huge-body",
    "huge-chunked-body",
    "bad-chunk-size",
    "drip",
    "silent",
    "http09",
    "continue-then-nothing",
    "switching-without-upgrade",
    "upload-not-read",
];

/// The longest any connection is kept busy.
const BOUND: Duration = Duration::from_secs(60);
const GIB: u64 = 1 << 30;

/// The running servers' addresses.
pub struct Hostile {
    /// The plain HTTP server with every path of [`PATHS`].
    pub http: SocketAddr,
    /// A bound socket that never listens: connecting to it is refused. It is kept
    /// (not closed) so nothing else can take the port.
    pub refused: SocketAddr,
    _refusing: TcpSocket,
    /// TLS servers whose certificates are expired, self-signed, and for another host.
    pub tls_expired: SocketAddr,
    pub tls_self_signed: SocketAddr,
    pub tls_wrong_host: SocketAddr,
}

/// Starts every server on free loopback ports (in the current tokio runtime).
pub async fn start() -> Hostile {
    // A receive buffer small enough that an unread upload stalls at once (accepted
    // sockets inherit it).
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1024).unwrap();
    let http = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = tokio::time::timeout(BOUND, serve(stream)).await;
            });
        }
    });
    let refusing = TcpSocket::new_v4().unwrap();
    refusing.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let refused = refusing.local_addr().unwrap();
    Hostile {
        http,
        refused,
        _refusing: refusing,
        tls_expired: tls_server(Cert::Expired).await,
        tls_self_signed: tls_server(Cert::SelfSigned).await,
        tls_wrong_host: tls_server(Cert::WrongHost).await,
    }
}

/// Reads a request head; returns its path (without the leading `/`).
async fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 || buf.len() > 64 * 1024 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let line = String::from_utf8_lossy(&buf);
    let target = line.split(' ').nth(1)?;
    Some(target.trim_start_matches('/').to_owned())
}

/// Closes with a TCP reset instead of a FIN.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

async fn serve(mut stream: TcpStream) {
    loop {
        let Some(path) = read_head(&mut stream).await else {
            return;
        };
        let w = &mut stream;
        match path.as_str() {
            "healthy" => {
                if w.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .await
                    .is_err()
                {
                    return;
                }
                continue;
            }
            "reset-before-head" => return reset(stream),
            "reset-mid-body" => {
                let _ = w
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n")
                    .await;
                let _ = w.write_all(&[b'x'; 1000]).await;
                let _ = w.flush().await;
                tokio::time::sleep(Duration::from_millis(50)).await;
                return reset(stream);
            }
            "close-owing-body" => {
                let _ = w
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n")
                    .await;
                let _ = w.shutdown().await;
            }
            "garbage-status" => {
                let _ = w.write_all(b"HTTP/1.1 abc \x01\x02 garbage\r\n\r\n").await;
            }
            "endless-headers" => {
                let _ = w.write_all(b"HTTP/1.1 200 OK\r\n").await;
                let line = format!("x-filler: {}\r\n", "a".repeat(1000));
                for _ in 0..1024 {
                    if w.write_all(line.as_bytes()).await.is_err() {
                        return;
                    }
                }
                let _ = w.write_all(b"content-length: 0\r\n\r\n").await;
            }
            "huge-body" => {
                let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {GIB}\r\n\r\n");
                if w.write_all(head.as_bytes()).await.is_ok() {
                    stream_bytes(w, GIB, false).await;
                }
            }
            "huge-chunked-body" => {
                let head = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
                if w.write_all(head.as_bytes()).await.is_ok() {
                    stream_bytes(w, GIB, true).await;
                }
            }
            "bad-chunk-size" => {
                let _ = w
                    .write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz9\r\nabc\r\n0\r\n\r\n")
                    .await;
            }
            "drip" => {
                let _ = w
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n")
                    .await;
                for _ in 0..100 {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    if w.write_all(b"x").await.is_err() {
                        return;
                    }
                }
            }
            "silent" => tokio::time::sleep(BOUND).await,
            "http09" => {
                let _ = w.write_all(b"<html>hello from 1991</html>\n").await;
            }
            "continue-then-nothing" => {
                let _ = w.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await;
                tokio::time::sleep(BOUND).await;
            }
            "switching-without-upgrade" => {
                let _ = w
                    .write_all(b"HTTP/1.1 101 Switching Protocols\r\n\r\n")
                    .await;
                let _ = w.write_all(b"\x00\x01garbage after the switch").await;
                tokio::time::sleep(BOUND).await;
            }
            // The body is never read: the client's send stalls once the socket buffers
            // fill, and nothing is ever answered.
            "upload-not-read" => tokio::time::sleep(BOUND).await,
            _ => {
                let _ = w
                    .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
                    .await;
            }
        }
        return;
    }
}

/// Writes `total` bytes of filler, generated as it goes (never held in memory), as one
/// body or as 64 KiB chunks; stops when the client goes away.
async fn stream_bytes(w: &mut TcpStream, total: u64, chunked: bool) {
    static FILLER: [u8; 64 * 1024] = [b'x'; 64 * 1024];
    let mut sent = 0;
    while sent < total {
        if chunked && w.write_all(b"10000\r\n").await.is_err() {
            return;
        }
        if w.write_all(&FILLER).await.is_err() {
            return;
        }
        if chunked && w.write_all(b"\r\n").await.is_err() {
            return;
        }
        sent += FILLER.len() as u64;
    }
    if chunked {
        let _ = w.write_all(b"0\r\n\r\n").await;
    }
}

enum Cert {
    Expired,
    SelfSigned,
    WrongHost,
}

/// A TLS server whose certificate is bad in one way; it answers 200 to whoever gets
/// through the handshake.
async fn tls_server(kind: Cert) -> SocketAddr {
    use tokio_rustls::rustls::{self, pki_types::PrivateKeyDer};
    let key = rcgen::KeyPair::generate().unwrap();
    let host = match kind {
        Cert::WrongHost => "wrong-host.invalid",
        _ => "localhost",
    };
    let mut params =
        rcgen::CertificateParams::new(vec![host.to_owned(), "127.0.0.1".to_owned()]).unwrap();
    if let Cert::Expired = kind {
        params.not_before = rcgen::date_time_ymd(2001, 1, 1);
        params.not_after = rcgen::date_time_ymd(2002, 1, 1);
    }
    if let Cert::WrongHost = kind {
        params.subject_alt_names = vec![rcgen::SanType::DnsName(
            "wrong-host.invalid".try_into().unwrap(),
        )];
    }
    let cert = params.self_signed(&key).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let _ = tokio::time::timeout(BOUND, async move {
                    let Ok(mut tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let mut buf = [0u8; 4096];
                    let _ = tls.read(&mut buf).await;
                    let _ = tls
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                        .await;
                })
                .await;
            });
        }
    });
    addr
}
