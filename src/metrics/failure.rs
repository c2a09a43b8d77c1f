//! Why a request failed, as a small typed value: counted on the hot path without
//! formatting a string, and described only when a report is written.

use serde::{Deserialize, Serialize};

use crate::compile::graph::{CaptureId, CompiledPlan, ExpectId, SlotId};

/// The reason a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum FailureKind {
    /// The target refused the connection.
    Refused,
    /// The connection was reset or closed mid-request.
    Reset,
    /// No complete response within the request's timeout.
    Timeout,
    /// The host name did not resolve.
    Dns,
    /// The TLS handshake failed.
    Tls,
    /// Another error while connecting.
    Connect,
    /// The response was not valid HTTP.
    Protocol,
    /// The response was larger than its limit: the body past `max_response_body`, or
    /// the head past `max_response_head` (the name predates the head limit).
    BodyTooLarge,
    /// More redirects than the limit.
    TooManyRedirects,
    /// A status of 400 or more, without an `expect.status`.
    Status(u16),
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
    /// A one-line description for tables and reports, e.g. `connection refused` or
    /// `expectation failed: status 200`.
    pub fn describe(&self, plan: &CompiledPlan) -> String {
        match self {
            FailureKind::Refused => "connection refused".into(),
            FailureKind::Reset => "connection reset".into(),
            FailureKind::Timeout => "timeout".into(),
            FailureKind::Dns => "DNS lookup failed".into(),
            FailureKind::Tls => "TLS error".into(),
            FailureKind::Connect => "connection failed".into(),
            FailureKind::Protocol => "protocol error (invalid HTTP response)".into(),
            FailureKind::BodyTooLarge => "response too large".into(),
            FailureKind::TooManyRedirects => "too many redirects".into(),
            FailureKind::Status(s) => format!("HTTP {s}"),
            FailureKind::Expect(id) => match plan.expectations.get(id.0 as usize) {
                Some(e) => format!("expected {}", e.description),
                None => format!("expectation #{}", id.0),
            },
            FailureKind::Capture(id) => match plan.captures.get(id.0 as usize) {
                Some(c) => format!("{} found nothing", c.description),
                None => format!("capture #{}", id.0),
            },
            FailureKind::Unset(slot) => match plan.slots.get(slot.0 as usize) {
                Some(s) => format!("variable `{}` is unset (its capture failed)", s.name),
                None => format!("variable #{} is unset", slot.0),
            },
            FailureKind::NotJson => "response body is not JSON".into(),
            FailureKind::InvalidRequest => "invalid request (bad URL or header value)".into(),
        }
    }
}
