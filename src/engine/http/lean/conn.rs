//! One keep-alive connection (plain TCP or TLS) and how it is opened: name lookup,
//! connect, and the TLS handshake with the run's shared client configuration.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::metrics::failure::{FailureKind, TransportFailure};

/// An open connection. TLS state is boxed so an idle plain connection stays small.
#[derive(Debug)]
pub(crate) enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Conn {
    /// Whether a connection that sat idle is still usable: the server has not closed
    /// it and sent nothing unasked (a keep-alive connection must be silent between
    /// requests). Costs one non-blocking read.
    pub(crate) fn looks_alive(&self) -> bool {
        let tcp = match self {
            Conn::Plain(s) => s,
            Conn::Tls(s) => s.get_ref().0,
        };
        let mut probe = [0u8; 1];
        matches!(tcp.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Writes all of `buf`, flushed. A plain socket takes a request head at once as
    /// a rule, so it is offered the bytes straight away (one `send`, without the
    /// readiness and budget bookkeeping of `poll_write`); only what it does not take
    /// waits for the socket to become writable.
    pub(crate) async fn send_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let mut rest = buf;
        if let Conn::Plain(s) = self {
            match s.try_write(rest) {
                Ok(n) => rest = rest.get(n..).unwrap_or_default(),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            if rest.is_empty() {
                return Ok(());
            }
        }
        self.write_all(rest).await?;
        // TLS buffers its records.
        if matches!(self, Conn::Tls(_)) {
            self.flush().await?;
        }
        Ok(())
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Opens a connection to `host:port`, with TLS when `tls` is given.
pub(crate) async fn connect(
    host: &str,
    port: u16,
    tls: Option<&Arc<ClientConfig>>,
) -> Result<Conn, FailureKind> {
    let tcp = connect_tcp(host, port).await?;
    let _ = tcp.set_nodelay(true);
    let Some(config) = tls else {
        return Ok(Conn::Plain(tcp));
    };
    let name = ServerName::try_from(host.to_owned())
        .map_err(|_| FailureKind::Transport(TransportFailure::Tls))?;
    let stream = TlsConnector::from(Arc::clone(config))
        .connect(name, tcp)
        .await
        .map_err(|e| match e.kind() {
            io::ErrorKind::TimedOut => FailureKind::Transport(TransportFailure::Timeout),
            // A rustls error says what was wrong (a bad certificate, by reason); a
            // server that hung up mid-handshake does not speak TLS here.
            _ => tls_error(&e).map_or(TransportFailure::Tls.into(), FailureKind::from_tls),
        })?;
    Ok(Conn::Tls(Box::new(stream)))
}

/// The rustls error inside an I/O error, if it carries one (TLS streams report
/// those as `InvalidData`).
pub(crate) fn tls_error(e: &io::Error) -> Option<&rustls::Error> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
}

async fn connect_tcp(host: &str, port: u16) -> Result<TcpStream, FailureKind> {
    // IP literals and localhost need no resolver (which would cost a blocking-pool hop).
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return TcpStream::connect(SocketAddr::new(ip, port))
            .await
            .map_err(|e| connect_error(&e));
    }
    let addrs: Vec<SocketAddr> = if host.eq_ignore_ascii_case("localhost") {
        vec![
            SocketAddr::from(([127, 0, 0, 1], port)),
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port)),
        ]
    } else {
        tokio::net::lookup_host((host, port))
            .await
            .map_err(|_| FailureKind::Transport(TransportFailure::Dns))?
            .collect()
    };
    let mut last = FailureKind::Transport(TransportFailure::Dns);
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => return Ok(s),
            Err(e) => last = connect_error(&e),
        }
    }
    Err(last)
}

fn connect_error(e: &io::Error) -> FailureKind {
    crate::engine::http::io_failure(e).unwrap_or(FailureKind::Transport(TransportFailure::Connect))
}
