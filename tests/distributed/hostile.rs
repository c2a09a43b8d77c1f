//! A coordinator under abuse: bytes that are not a WebSocket, frames that are not
//! the protocol's, a frame past the size limit, and a worker that replays another
//! run's messages. Each is refused with a clear message while the coordinator keeps
//! serving the real workers.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use swarm::dist::proto::{self, Down, PATH, Up};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

use crate::cluster::{Coordinator, LIMIT, Setup, read_json, worker};
use crate::common::serial;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

async fn connect(addr: &str) -> Ws {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let url = format!("ws://{addr}{PATH}");
    tokio_tungstenite::client_async(url, tcp).await.unwrap().0
}

/// The next message from the coordinator, decoded, within 10 s.
async fn next_down(ws: &mut Ws) -> Option<Down> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await.ok()?? {
            Ok(Message::Binary(b)) => return proto::decode(&b).ok(),
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
            _ => return None,
        }
    }
}

#[test]
fn garbage_and_oversized_frames_are_refused_while_real_workers_are_served() {
    let _turn = serial();
    let s = Setup::new("{ users: 2, duration: 2s }", "/ok", &[]);
    let coordinator = Coordinator::start(&s.plan, 1, &[]);
    let addr = coordinator.url.trim_start_matches("http://").to_owned();
    rt().block_on(async {
        // Not HTTP at all: the connection is closed, with no answer worth reading.
        let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        tcp.write_all(&[0xff; 4096]).await.unwrap();
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut buf)).await;
        // The wrong path: a sentence naming the protocol.
        let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let req = "GET /other HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\nconnection: upgrade\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
        tcp.write_all(req.as_bytes()).await.unwrap();
        let mut buf = vec![0; 1024];
        let n = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        let answer = String::from_utf8_lossy(&buf[..n]);
        assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
        // A WebSocket whose first frame is garbage, or a text message.
        for msg in [
            Message::Binary(vec![1, 2, 3].into()),
            Message::Text("hello".into()),
        ] {
            let mut ws = connect(&addr).await;
            ws.send(msg).await.unwrap();
            assert!(matches!(next_down(&mut ws).await, Some(Down::Refused { .. })));
        }
        // A frame past the limit is refused before it is read whole.
        let mut ws = connect(&addr).await;
        let big = vec![0u8; proto::MAX_UP_FRAME + 1024];
        let _ = ws.send(Message::Binary(big.into())).await;
        let refused = next_down(&mut ws).await;
        assert!(!matches!(refused, Some(Down::Plan(_))), "{refused:?}");
        // A hello from a future protocol version.
        let mut ws = connect(&addr).await;
        let mut hello = proto::encode(&Up::Hello {
            name: "future".into(),
            version: "9".into(),
            threads: 1,
        });
        hello[3] = proto::PROTOCOL + 1;
        ws.send(Message::Binary(hello.into())).await.unwrap();
        match next_down(&mut ws).await {
            Some(Down::Refused { reason }) => assert!(reason.contains("version"), "{reason}"),
            other => panic!("{other:?}"),
        }
    });
    let _real = worker(&coordinator.url, "real", &[]);
    let (code, out, err) = coordinator.proc.finish(LIMIT);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(err.contains("refused a connection from"), "{err}");
    assert!(err.contains("protocol version"), "{err}");
}

#[test]
fn a_worker_replaying_another_runs_messages_is_refused_and_named() {
    let _turn = serial();
    let s = Setup::new("{ users: 2, duration: 20s }", "/ok", &[]);
    let json = s.file("run.json");
    let mut coordinator = Coordinator::start(&s.plan, 2, &["--json", &json]);
    let addr = coordinator.url.trim_start_matches("http://").to_owned();
    let _real = coordinator.join(["real"]);
    rt().block_on(async {
        let mut ws = connect(&addr).await;
        let hello = Up::Hello {
            name: "replayer".into(),
            version: "0".into(),
            threads: 1,
        };
        ws.send(Message::Binary(proto::encode(&hello).into()))
            .await
            .unwrap();
        let Some(Down::Plan(plan)) = next_down(&mut ws).await else {
            panic!("no plan");
        };
        let ready = Up::Ready {
            run: plan.run,
            fingerprint: plan.fingerprint,
        };
        ws.send(Message::Binary(proto::encode(&ready).into()))
            .await
            .unwrap();
        assert!(matches!(next_down(&mut ws).await, Some(Down::Start { .. })));
        // A status of some earlier run.
        let replay = Up::Status {
            run: [9; 16],
            status: Default::default(),
        };
        ws.send(Message::Binary(proto::encode(&replay).into()))
            .await
            .unwrap();
        loop {
            match next_down(&mut ws).await {
                Some(Down::Refused { reason }) => {
                    assert!(reason.contains("another run"), "{reason}");
                    break;
                }
                Some(Down::Cmd { .. }) => continue,
                other => panic!("{other:?}"),
            }
        }
    });
    let (code, out, err) = coordinator.proc.finish(LIMIT);
    assert_eq!(code, 3, "{out}\n{err}");
    assert!(err.contains("worker `replayer` was lost at"), "{err}");
    assert!(err.contains("another run"), "{err}");
    let report = read_json(&json);
    assert!(
        report["workers"].to_string().contains("another run"),
        "{report}"
    );
}
