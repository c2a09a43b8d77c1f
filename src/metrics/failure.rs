//! Why a request failed, as a small typed value: counted on the hot path without
//! formatting a string, and described only when a report is written.
//!
//! A failure belongs to one of three layers, so that each protocol adds its reasons
//! where they belong and the reports can group them: the **transport** (the
//! connection itself), the **protocol** spoken over it (an invalid reply, a status),
//! and the plan's own **checks** (expectations, captures, templates).

use serde::{Deserialize, Serialize};

use crate::compile::graph::{CaptureId, CompiledPlan, ExpectId, SlotId};

/// The reason a request failed. Ordered by layer, then by reason, so reports list
/// equal counts in a stable order.
///
/// Serializable because the measurement unit carries failures by kind
/// (`metrics::wire`). Serde's externally tagged form: the compact
/// non-self-describing format the unit uses cannot read adjacently tagged enums, and
/// it encodes a variant by its index, so reordering the variants (or the layers'
/// reasons) needs a new `wire::WIRE_VERSION`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    Transport(TransportFailure),
    Protocol(ProtocolFailure),
    Check(CheckFailure),
}

/// The connection failed, whatever protocol it carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransportFailure {
    /// The target refused the connection.
    Refused,
    /// The connection was reset or closed mid-request.
    Reset,
    /// No complete response within the request's timeout.
    Timeout,
    /// The host name did not resolve.
    Dns,
    /// The TLS handshake failed for a reason other than the certificates below.
    Tls,
    /// The server's certificate has expired (or is not valid yet).
    TlsExpired,
    /// The server's certificate was not issued by a trusted authority (self-signed,
    /// or a private CA that is not among the trusted roots).
    TlsUnknownIssuer,
    /// The server's certificate is not valid for the host name in the URL.
    TlsHostname,
    /// Another error while connecting.
    Connect,
}

/// The connection worked, but the exchange broke the protocol's rules or the target
/// answered with a failure of its own. A new protocol adds its reasons here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProtocolFailure {
    /// The response was not valid HTTP.
    InvalidHttp,
    /// The response was larger than its limit: the body past `max_response_body`, or
    /// the head past `max_response_head` (the name predates the head limit).
    BodyTooLarge,
    /// More redirects than the limit.
    TooManyRedirects,
    /// A status of 400 or more, without an `expect.status`.
    HttpStatus(u16),
    /// `http.version: "2"` (or `h2c` over TLS), but the server did not agree to
    /// HTTP/2, or the URL is cleartext where HTTP/2 needs TLS.
    NoHttp2,
    /// A gRPC status other than OK (its code), without an `expect.status`.
    GrpcStatus(u16),
    /// The server closed the WebSocket or TCP connection before the reply.
    ServerClosed,
    /// A WebSocket or TCP step found no open connection (its connect step failed).
    NotConnected,
    /// The server broke the WebSocket protocol (a bad handshake or frame).
    InvalidWebSocket,
}

/// The plan's own checks: the reply arrived, but the plan does not accept it, or the
/// request could not be made from the plan's templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckFailure {
    /// An expectation did not hold.
    Expect(ExpectId),
    /// A capture found nothing.
    Capture(CaptureId),
    /// A template needed a variable that no capture set (an earlier capture failed).
    Unset(SlotId),
    /// The body was not JSON, but a JSONPath expectation or capture needed it.
    NotJson,
    /// The rendered request could not be sent: its URL or a header value is invalid.
    InvalidRequest,
}

impl FailureKind {
    /// The reason a TLS handshake failed, from the rustls error it reported: a bad
    /// certificate by what is wrong with it; a server that refused every protocol
    /// offered (only `h2` is, under `http.version: "2"`) as
    /// [`ProtocolFailure::NoHttp2`]; anything else as [`TransportFailure::Tls`].
    pub fn from_tls(e: &rustls::Error) -> FailureKind {
        use rustls::CertificateError as C;
        if let rustls::Error::AlertReceived(rustls::AlertDescription::NoApplicationProtocol) = e {
            return ProtocolFailure::NoHttp2.into();
        }
        let transport = match e {
            rustls::Error::InvalidCertificate(
                C::Expired
                | C::ExpiredContext { .. }
                | C::NotValidYet
                | C::NotValidYetContext { .. },
            ) => TransportFailure::TlsExpired,
            rustls::Error::InvalidCertificate(C::UnknownIssuer) => {
                TransportFailure::TlsUnknownIssuer
            }
            // A self-signed certificate made as most are (`openssl req -x509`) is a CA
            // certificate, which webpki rejects as a server's before looking for its
            // issuer: it is self-signed all the same, and no trusted CA issued it.
            rustls::Error::InvalidCertificate(C::Other(other))
                if matches!(
                    other.0.downcast_ref::<webpki::Error>(),
                    Some(webpki::Error::CaUsedAsEndEntity)
                ) =>
            {
                TransportFailure::TlsUnknownIssuer
            }
            rustls::Error::InvalidCertificate(
                C::NotValidForName | C::NotValidForNameContext { .. },
            ) => TransportFailure::TlsHostname,
            _ => TransportFailure::Tls,
        };
        transport.into()
    }
}

impl From<TransportFailure> for FailureKind {
    fn from(f: TransportFailure) -> Self {
        FailureKind::Transport(f)
    }
}

impl From<ProtocolFailure> for FailureKind {
    fn from(f: ProtocolFailure) -> Self {
        FailureKind::Protocol(f)
    }
}

impl From<CheckFailure> for FailureKind {
    fn from(f: CheckFailure) -> Self {
        FailureKind::Check(f)
    }
}

impl FailureKind {
    /// A one-line description for tables and reports, e.g. `connection refused` or
    /// `expected status 200`.
    pub fn describe(&self, plan: &CompiledPlan) -> String {
        match self {
            FailureKind::Transport(t) => t.describe().into(),
            FailureKind::Protocol(p) => p.describe(),
            FailureKind::Check(c) => c.describe(plan),
        }
    }
}

impl TransportFailure {
    pub fn describe(self) -> &'static str {
        match self {
            TransportFailure::Refused => "connection refused",
            TransportFailure::Reset => "connection reset",
            TransportFailure::Timeout => "timeout",
            TransportFailure::Dns => "DNS lookup failed",
            TransportFailure::Tls => "TLS error",
            TransportFailure::TlsExpired => "tls: certificate expired",
            TransportFailure::TlsUnknownIssuer => "tls: unknown issuer",
            TransportFailure::TlsHostname => "tls: hostname mismatch",
            TransportFailure::Connect => "connection failed",
        }
    }
}

impl ProtocolFailure {
    pub fn describe(self) -> String {
        match self {
            ProtocolFailure::InvalidHttp => "protocol error (invalid HTTP response)".into(),
            ProtocolFailure::BodyTooLarge => "response too large".into(),
            ProtocolFailure::TooManyRedirects => "too many redirects".into(),
            ProtocolFailure::HttpStatus(s) => format!("HTTP {s}"),
            ProtocolFailure::NoHttp2 => "HTTP/2 not negotiated".into(),
            ProtocolFailure::GrpcStatus(code) => match crate::compile::grpc_code_name(code) {
                Some(name) => format!("grpc: {name}"),
                None => format!("grpc: status {code}"),
            },
            ProtocolFailure::ServerClosed => "closed by the server".into(),
            ProtocolFailure::NotConnected => "not connected (the connect step failed)".into(),
            ProtocolFailure::InvalidWebSocket => "protocol error (invalid WebSocket)".into(),
        }
    }
}

impl CheckFailure {
    pub fn describe(self, plan: &CompiledPlan) -> String {
        match self {
            CheckFailure::Expect(id) => match plan.expectations.get(id.0 as usize) {
                Some(e) => format!("expected {}", e.description),
                None => format!("expectation #{}", id.0),
            },
            CheckFailure::Capture(id) => match plan.captures.get(id.0 as usize) {
                Some(c) => format!("{} found nothing", c.description),
                None => format!("capture #{}", id.0),
            },
            CheckFailure::Unset(slot) => match plan.slots.get(slot.0 as usize) {
                Some(s) => format!("variable `{}` is unset (its capture failed)", s.name),
                None => format!("variable #{} is unset", slot.0),
            },
            CheckFailure::NotJson => "response body is not JSON".into(),
            CheckFailure::InvalidRequest => "invalid request (bad URL or header value)".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Failures are counted per request on the hot path: the value must stay small
    /// and be copied, never allocated.
    #[test]
    fn a_failure_stays_a_small_value() {
        assert!(std::mem::size_of::<FailureKind>() <= 12);
        assert!(std::mem::size_of::<Result<(), FailureKind>>() <= 12);
    }

    /// Reports list failures with equal counts in this order; it is the order of
    /// the single enum that came before the layers.
    #[test]
    fn failures_order_by_layer_then_reason() {
        let kinds = [
            FailureKind::Transport(TransportFailure::Refused),
            TransportFailure::Connect.into(),
            ProtocolFailure::InvalidHttp.into(),
            ProtocolFailure::HttpStatus(500).into(),
            CheckFailure::Expect(ExpectId(0)).into(),
            CheckFailure::InvalidRequest.into(),
        ];
        assert!(kinds.windows(2).all(|w| w[0] < w[1]));
    }
}
