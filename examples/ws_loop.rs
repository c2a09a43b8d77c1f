//! The floor for swarm's WebSocket steps: `users` raw WebSocket connections on one
//! current-thread runtime, each sending a small text message and reading the echo as
//! fast as it can, for `seconds`, with no plan, templates, checks or measurements.
//! `bench/run.sh ws` compares `swarm check` with it, and the two crates considered
//! for the steps with each other: tokio-tungstenite (what swarm uses) and
//! fastwebsockets with its fragment collector.
//!
//! Usage: `ws_loop URL [USERS] [SECONDS] [tungstenite|fastwebsockets]`, URL like
//! `ws://127.0.0.1:8080/ws`; prints `messages failures seconds`.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use fastwebsockets::{FragmentCollector, Frame, OpCode, Payload, Role, WebSocket};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

const MESSAGE: &str = r#"{"type":"echo","n":1}"#;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let url = args.get(1).cloned().unwrap_or_else(|| usage());
    let users: usize = args
        .get(2)
        .map_or(50, |a| a.parse().unwrap_or_else(|_| usage()));
    let seconds: u64 = args
        .get(3)
        .map_or(10, |a| a.parse().unwrap_or_else(|_| usage()));
    let fast = match args.get(4).map(String::as_str) {
        None | Some("tungstenite") => false,
        Some("fastwebsockets") => true,
        Some(_) => usage(),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let local = tokio::task::LocalSet::new();
    let (done, failed) = (Rc::new(Cell::new(0u64)), Rc::new(Cell::new(0u64)));
    let start = Instant::now();
    let end = start + Duration::from_secs(seconds);
    local.block_on(&rt, async {
        let tasks: Vec<_> = (0..users)
            .map(|_| {
                let (url, done, failed) = (url.clone(), done.clone(), failed.clone());
                tokio::task::spawn_local(async move {
                    let ok = if fast {
                        fast_loop(&url, end, &done).await
                    } else {
                        tungstenite_loop(&url, end, &done).await
                    };
                    if ok.is_err() {
                        failed.set(failed.get() + 1);
                    }
                })
            })
            .collect();
        for t in tasks {
            let _ = t.await;
        }
    });
    let took = start.elapsed().as_secs_f64();
    println!("{} {} {took:.3}", done.get(), failed.get());
}

fn usage() -> ! {
    eprintln!("usage: ws_loop URL [USERS] [SECONDS] [tungstenite|fastwebsockets]");
    std::process::exit(2);
}

async fn tungstenite_loop(url: &str, end: Instant, done: &Cell<u64>) -> Result<(), String> {
    let rest = url.strip_prefix("ws://").ok_or("a ws:// URL")?;
    let host = rest.split('/').next().unwrap_or(rest);
    let stream = TcpStream::connect(host).await.map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let (mut ws, _) = tokio_tungstenite::client_async(url, stream)
        .await
        .map_err(|e| e.to_string())?;
    while Instant::now() < end {
        ws.send(Message::Text(MESSAGE.into()))
            .await
            .map_err(|e| e.to_string())?;
        match ws.next().await {
            Some(Ok(Message::Text(_))) => done.set(done.get() + 1),
            other => return Err(format!("{other:?}")),
        }
    }
    Ok(())
}

async fn fast_loop(url: &str, end: Instant, done: &Cell<u64>) -> Result<(), String> {
    let rest = url.strip_prefix("ws://").ok_or("a ws:// URL")?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut stream = TcpStream::connect(host).await.map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    // The handshake by hand: fastwebsockets' own needs its `upgrade` feature (hyper).
    let head = format!(
        "GET /{path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream
        .write_all(head.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut reply = Vec::new();
    while !reply.ends_with(b"\r\n\r\n") {
        let b = stream.read_u8().await.map_err(|e| e.to_string())?;
        reply.push(b);
        if reply.len() > 8192 {
            return Err("handshake reply too long".into());
        }
    }
    if !reply.starts_with(b"HTTP/1.1 101") {
        return Err(String::from_utf8_lossy(&reply).into_owned());
    }
    let mut ws = FragmentCollector::new(WebSocket::after_handshake(stream, Role::Client));
    while Instant::now() < end {
        let frame = Frame::text(Payload::Borrowed(MESSAGE.as_bytes()));
        ws.write_frame(frame).await.map_err(|e| e.to_string())?;
        let reply = ws.read_frame().await.map_err(|e| e.to_string())?;
        match reply.opcode {
            OpCode::Text => done.set(done.get() + 1),
            other => return Err(format!("{other:?}")),
        }
    }
    Ok(())
}
