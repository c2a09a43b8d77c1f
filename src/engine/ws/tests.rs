//! The WebSocket session against a loopback server: waits take matching messages
//! from the queue first, the queue is bounded, and a wait with no connection fails.

use std::time::Duration;

use futures_util::SinkExt;
use tokio::net::TcpListener;

use super::*;
use crate::compile::graph::Matcher;
use crate::compile::jsonpath::JsonPath;
use crate::engine::http::HttpShared;

fn session() -> WsSession {
    let http = HttpShared::new(&Default::default()).unwrap();
    WsSession::new(&SocketShared::new(&http))
}

fn seq(n: i64) -> WsAwait {
    WsAwait {
        matches: vec![(JsonPath::parse("$.seq").unwrap(), Matcher::Eq(n.into()))],
    }
}

#[tokio::test]
async fn a_wait_without_a_connection_fails_as_not_connected() {
    let mut s = session();
    let r = s
        .exchange(&WsCall::Recv(WsAwait::default()), Duration::from_secs(1))
        .await;
    assert_eq!(r, Err(ProtocolFailure::NotConnected.into()));
}

#[tokio::test]
async fn waits_take_matches_from_the_queue_first_and_the_queue_is_bounded() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let pushed = MAX_QUEUED as i64 + 50;
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(stream).await.unwrap();
        for n in 1..=pushed {
            let m = format!(r#"{{"seq":{n}}}"#);
            ws.send(Message::Text(m.into())).await.unwrap();
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    let mut s = session();
    let timeout = Duration::from_secs(10);
    let connect = WsCall::Connect {
        url: crate::compile::graph::Template::literal(""),
        headers: Vec::new(),
        subprotocols: Vec::new(),
    };
    let req = socket::request(&format!("http://{addr}/")).unwrap();
    s.pending = Pending::Connect(Box::new(req));
    s.exchange(&connect, timeout).await.unwrap();

    // The last message: every earlier one is passed over, and the queue keeps the
    // newest MAX_QUEUED of them.
    let last = s
        .exchange(&WsCall::Recv(seq(pushed)), timeout)
        .await
        .unwrap();
    assert_eq!(&last[..], format!(r#"{{"seq":{pushed}}}"#).as_bytes());
    let conn = s.conn.as_ref().unwrap();
    assert_eq!(conn.queue.len(), MAX_QUEUED);
    // The oldest were dropped; a kept one is taken from the queue, out of order.
    let kept = pushed - 10;
    let m = s.exchange(&WsCall::Recv(seq(kept)), timeout).await.unwrap();
    assert_eq!(&m[..], format!(r#"{{"seq":{kept}}}"#).as_bytes());
    // Without a match, the oldest queued message.
    let first_kept = pushed - MAX_QUEUED as i64;
    let m = s
        .exchange(&WsCall::Recv(WsAwait::default()), timeout)
        .await
        .unwrap();
    assert_eq!(&m[..], format!(r#"{{"seq":{first_kept}}}"#).as_bytes());
    // A dropped message never matches again: the wait times out, and keeps the
    // connection.
    let r = s
        .exchange(&WsCall::Recv(seq(1)), Duration::from_millis(200))
        .await;
    assert_eq!(r, Err(TransportFailure::Timeout.into()));
    assert!(s.conn.is_some());
    server.abort();
}
