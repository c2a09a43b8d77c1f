//! The TCP session against loopback servers: replies split across reads and
//! pipelined, the buffer released once emptied, and a send with no connection.

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

use super::*;
use crate::compile::graph::Template;
use crate::engine::http::HttpShared;

fn session() -> TcpSession {
    let http = HttpShared::new(&Default::default()).unwrap();
    TcpSession::new(&SocketShared::new(&http))
}

fn send(wait: Option<TcpAwait>) -> TcpCall {
    TcpCall::Send {
        payload: Payload::Text(Template::literal("")),
        wait,
    }
}

#[tokio::test]
async fn a_send_without_a_connection_fails_as_not_connected() {
    let mut s = session();
    s.pending = Pending::Send(b"PING\r\n".to_vec());
    let r = s.exchange(&send(None), Duration::from_secs(1)).await;
    assert_eq!(r, Err(ProtocolFailure::NotConnected.into()));
}

#[tokio::test]
async fn replies_are_cut_at_the_delimiter_across_reads_and_the_rest_kept() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        // The first reply's delimiter is split over two writes, and a second
        // reply follows in the same write.
        s.write_all(b"+a\r").await.unwrap();
        s.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        s.write_all(b"\n+bb\r\n12345").await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    let mut s = session();
    let connect = TcpCall::Connect {
        addr: Template::literal(addr.to_string()),
        tls: false,
    };
    s.pending = Pending::Connect {
        host: addr.ip().to_string(),
        port: addr.port(),
    };
    let timeout = Duration::from_secs(10);
    assert_eq!(s.exchange(&connect, timeout).await.unwrap().len(), 0);
    let until = send(Some(TcpAwait::Until(b"\r\n".to_vec())));
    for want in [&b"+a\r\n"[..], b"+bb\r\n"] {
        s.pending = Pending::Send(Vec::new());
        assert_eq!(&s.exchange(&until, timeout).await.unwrap()[..], want);
    }
    s.pending = Pending::Send(Vec::new());
    let five = send(Some(TcpAwait::Bytes(5)));
    assert_eq!(&s.exchange(&five, timeout).await.unwrap()[..], b"12345");
    // Nothing left: the buffer is released, so a waiting user holds none.
    let conn = s.conn.as_ref().unwrap();
    assert_eq!(conn.received.capacity(), 0);
    server.abort();
}
