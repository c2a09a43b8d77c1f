//! Loopback WebSocket and TCP servers, healthy and hostile, each bound to port 0.
//!
//! WebSocket, one behaviour per path: `/echo` answers `{"type":"ping"}` with a pong,
//! pushes N events on `{"type":"subscribe","count":N}` and echoes anything else;
//! `/close-mid-flow` answers the first message, then closes; `/silent` never
//! answers; `/never-match` pushes a non-matching message every few milliseconds but
//! never the awaited one; `/huge` answers with one 100 MB frame, streamed (the
//! server never holds it). TCP, one listener per behaviour: a line protocol (`PING`
//! -> `+PONG`), one that never answers, one that closes after its first answer, and
//! one that answers with 100 MB and no delimiter.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

/// What the huge answers send: 100 MB.
pub const HUGE: u64 = 100 * 1024 * 1024;

pub struct Servers {
    pub ws: SocketAddr,
    /// `/echo` and the line protocol again, over TLS with the self-signed
    /// `localhost` certificate of tests/fixtures.
    pub wss: SocketAddr,
    pub tcp_tls: SocketAddr,
    pub tcp_line: SocketAddr,
    pub tcp_silent: SocketAddr,
    pub tcp_close: SocketAddr,
    pub tcp_huge: SocketAddr,
}

pub async fn start() -> Servers {
    let tls = acceptor();
    let tls2 = tls.clone();
    Servers {
        ws: listen(|s| tokio::spawn(ws_connection(s))).await,
        wss: listen(move |s| {
            let tls = tls.clone();
            tokio::spawn(async move {
                if let Ok(s) = tls.accept(s).await {
                    ws_connection(s).await;
                }
            })
        })
        .await,
        tcp_tls: listen(move |s| {
            let tls = tls2.clone();
            tokio::spawn(async move {
                if let Ok(s) = tls.accept(s).await {
                    tcp_line(s, false).await;
                }
            })
        })
        .await,
        tcp_line: listen(|s| tokio::spawn(tcp_line(s, false))).await,
        tcp_silent: listen(|s| tokio::spawn(tcp_silent(s))).await,
        tcp_close: listen(|s| tokio::spawn(tcp_line(s, true))).await,
        tcp_huge: listen(|s| tokio::spawn(tcp_huge(s))).await,
    }
}

/// Binds port 0 and hands every accepted connection to `serve`.
async fn listen(
    serve: impl Fn(TcpStream) -> tokio::task::JoinHandle<()> + Send + 'static,
) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            serve(s);
        }
    });
    addr
}

fn acceptor() -> tokio_rustls::TlsAcceptor {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let cert = CertificateDer::from_pem_file(dir.join("localhost.crt")).unwrap();
    let key = PrivateKeyDer::from_pem_file(dir.join("localhost.key")).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config))
}

async fn ws_connection<S: AsyncRead + AsyncWrite + Unpin>(stream: S) {
    let mut path = String::new();
    #[expect(
        clippy::result_large_err,
        reason = "tungstenite's callback type returns its error response unboxed"
    )]
    let callback = |req: &Request, resp: Response| {
        path = req.uri().path().to_owned();
        Ok(resp)
    };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
        return;
    };
    let mut answered = 0;
    loop {
        let message = if path == "/never-match" {
            tokio::select! {
                m = ws.next() => m,
                () = tokio::time::sleep(Duration::from_millis(5)) => {
                    let noise = Message::Text(r#"{"type":"noise"}"#.into());
                    if ws.send(noise).await.is_err() {
                        return;
                    }
                    continue;
                }
            }
        } else {
            ws.next().await
        };
        let text = match message {
            Some(Ok(Message::Text(t))) => t.to_string(),
            Some(Ok(Message::Binary(b))) => String::from_utf8_lossy(&b).into_owned(),
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
            Some(Ok(_)) => continue,
        };
        match path.as_str() {
            "/silent" | "/never-match" => continue,
            "/huge" => {
                // One binary frame announcing 100 MB, then its payload in chunks: the
                // client must refuse it from the header, and hang up.
                let mut head = vec![0x82, 127];
                head.extend_from_slice(&HUGE.to_be_bytes());
                let raw = ws.get_mut();
                if raw.write_all(&head).await.is_err() {
                    return;
                }
                let chunk = vec![0u8; 64 * 1024];
                let mut sent = 0;
                while sent < HUGE {
                    if raw.write_all(&chunk).await.is_err() {
                        return;
                    }
                    sent += chunk.len() as u64;
                }
                return;
            }
            "/close-mid-flow" if answered == 1 => {
                let _ = ws.close(None).await;
                return;
            }
            _ => {}
        }
        answered += 1;
        for reply in answer(&text) {
            if ws.send(Message::Text(reply.into())).await.is_err() {
                return;
            }
        }
    }
}

fn answer(text: &str) -> Vec<String> {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else {
        return vec![text.to_owned()];
    };
    match v["type"].as_str() {
        Some("ping") => vec![serde_json::json!({"type": "pong", "id": v["id"]}).to_string()],
        Some("subscribe") => (1..=v["count"].as_u64().unwrap_or(1))
            .map(|seq| serde_json::json!({"type": "event", "seq": seq}).to_string())
            .collect(),
        _ => vec![text.to_owned()],
    }
}

/// `PING` -> `+PONG`, `ECHO x` -> `+x`; with `close_after_one`, closes after its
/// first answer.
async fn tcp_line<S: AsyncRead + AsyncWrite>(stream: S, close_after_one: bool) {
    let (read, mut write) = tokio::io::split(stream);
    let mut lines = BufReader::new(read).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let line = line.trim_end();
        let reply = match line.split_once(' ') {
            Some(("ECHO", rest)) => format!("+{rest}\r\n"),
            _ if line == "PING" => "+PONG\r\n".to_owned(),
            _ => "-ERR\r\n".to_owned(),
        };
        if write.write_all(reply.as_bytes()).await.is_err() || close_after_one {
            return;
        }
    }
}

/// Reads what comes, answers nothing.
async fn tcp_silent(mut stream: TcpStream) {
    let mut buf = [0u8; 1024];
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 {
            return;
        }
    }
}

/// Answers the first bytes with 100 MB that never hold the delimiter.
async fn tcp_huge(mut stream: TcpStream) {
    let mut buf = [0u8; 1024];
    if !matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {
        return;
    }
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0;
    while sent < HUGE {
        if stream.write_all(&chunk).await.is_err() {
            return;
        }
        sent += chunk.len() as u64;
    }
}
