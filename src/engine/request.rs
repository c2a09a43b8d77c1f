//! Executing one measured call for one virtual user: render, send, judge, capture.
//!
//! [`VuContext`] is everything a user carries between calls: its variables, its
//! feeder rows, and its sessions, one per protocol ([`Sessions`]). [`execute`] is the
//! one loop every protocol goes through: the call's kind picks the session that
//! renders and sends it (a `match`, no virtual call), and the parts every call
//! shares, the expectations and captures, judge the reply.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::SmallRng;
use serde_json::Value;

use super::capture;
use super::expect::{self, LazyJson};
use super::http::{Client, Headers, Response};
use super::render::Scope;
use super::session::{Protocols, Sessions};
use crate::compile::graph::{Call, CallKind, CaptureSource, CompiledPlan};
use crate::metrics::failure::{CheckFailure, FailureKind, ProtocolFailure, TransportFailure};
use crate::metrics::stats::HttpVersionUsed;

/// One virtual user's state.
pub struct VuContext {
    /// This user's index (`user()` in templates).
    pub user: u32,
    /// The current iteration (`iteration()` in templates).
    pub iteration: u64,
    /// Captured variables, indexed by [`SlotId`](crate::compile::graph::SlotId); `None`
    /// is unset.
    pub slots: Vec<Option<Value>>,
    /// The current row of each feeder, indexed by `FeederId`; set by the engine.
    pub rows: Vec<Option<Arc<[String]>>>,
    /// The user's state per protocol: for HTTP its cookies and connections.
    pub sessions: Sessions,
    rng: SmallRng,
}

impl VuContext {
    pub fn new(user: u32, plan: &CompiledPlan, protocols: &Protocols) -> VuContext {
        VuContext {
            user,
            iteration: 0,
            slots: vec![None; plan.slots.len()],
            rows: vec![None; plan.feeders.len()],
            sessions: protocols.sessions(user),
            rng: SmallRng::from_rng(&mut rand::rng()),
        }
    }
}

impl std::fmt::Debug for VuContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VuContext")
            .field("user", &self.user)
            .field("iteration", &self.iteration)
            .field("slots", &self.slots)
            .field("rows", &self.rows)
            .field("sessions", &self.sessions)
            .finish_non_exhaustive()
    }
}

/// The result of one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// From `start` to the end of the reply; zero when nothing was sent.
    pub latency: Duration,
    /// The reply body's length.
    pub bytes: u64,
    pub result: Result<(), FailureKind>,
    /// The HTTP version of the reply; `None` when there was no HTTP reply.
    pub version: Option<HttpVersionUsed>,
}

/// Renders, sends and judges one call; updates the user's captures and session.
///
/// `start` is when latency is measured from (normally now; in the open model the
/// iteration's scheduled start, so waiting cannot hide).
pub async fn execute(call: &Call, ctx: &mut VuContext, start: Instant) -> Outcome {
    if let Err(kind) = ctx.prepare(call) {
        return not_sent(call, &mut ctx.slots, kind);
    }
    match &call.kind {
        CallKind::Http(http) => {
            // The client is picked here with a `match` (no trait object) and awaited
            // in this future, not in one of the session's: a state machine less per
            // request. Every byte held across the `await` is carried by every
            // thinking user: the lean client boxes its exchange; reqwest's future
            // (about 640 bytes) is boxed here.
            let response = match ctx.sessions.http.outgoing(http, call.timeout) {
                Some((req, shared, Some(Client::Lean(c)))) => {
                    c.send(shared, &req).await.map(Response::Lean)
                }
                Some((req, _, Some(Client::Reqwest(c)))) => {
                    Box::pin(c.send(&req)).await.map(Response::Owned)
                }
                Some((_, _, None)) => Err(TransportFailure::Connect.into()),
                // Not prepared: there is nothing to send.
                None => Err(CheckFailure::InvalidRequest.into()),
            };
            let latency = start.elapsed();
            ctx.sessions.http.release();
            // Judged where it lies: moving the response out costs a copy of it.
            match &response {
                Ok(r) => Outcome {
                    version: Some(r.version()),
                    ..judge(call, &mut ctx.slots, latency, r.status(), r, r.body())
                },
                Err(kind) => failed(call, &mut ctx.slots, latency, *kind),
            }
        }
        CallKind::Grpc(grpc) => {
            let json = reads_body(call);
            let reply = ctx.sessions.grpc.call(grpc, call.timeout, json).await;
            let latency = start.elapsed();
            match reply {
                // The default rule for gRPC: any status but OK fails.
                Ok(r) if r.code != 0 && call.expect.status.is_none() => {
                    let kind = ProtocolFailure::GrpcStatus(r.code).into();
                    failed(call, &mut ctx.slots, latency, kind)
                }
                Ok(r) => Outcome {
                    bytes: r.bytes,
                    ..judge(call, &mut ctx.slots, latency, r.code, &r.metadata, &r.json)
                },
                Err(kind) => failed(call, &mut ctx.slots, latency, kind),
            }
        }
        // Boxed: a socket exchange's state is not carried by every thinking user.
        CallKind::Ws(ws) => {
            let reply = Box::pin(ctx.sessions.sockets.get().ws.exchange(ws, call.timeout)).await;
            socket_reply(call, &mut ctx.slots, start.elapsed(), reply.as_deref())
        }
        CallKind::Tcp(tcp) => {
            let reply = Box::pin(ctx.sessions.sockets.get().tcp.exchange(tcp, call.timeout)).await;
            socket_reply(call, &mut ctx.slots, start.elapsed(), reply.as_deref())
        }
    }
}

/// Judges what a WebSocket or TCP step received: no status (the default status
/// rule never fails it) and no headers.
fn socket_reply(
    call: &Call,
    slots: &mut [Option<Value>],
    latency: Duration,
    reply: Result<&[u8], &FailureKind>,
) -> Outcome {
    match reply {
        Ok(body) => judge(call, slots, latency, 0, &http::HeaderMap::new(), body),
        Err(kind) => failed(call, slots, latency, *kind),
    }
}

/// Whether a check or capture reads the reply's body (so a gRPC reply is written as
/// JSON only then).
fn reads_body(call: &Call) -> bool {
    call.json_queries() > 0
        || call.expect.body.is_some()
        || call
            .captures
            .iter()
            .any(|c| !matches!(c.source, CaptureSource::Header(_)))
}

impl VuContext {
    /// The template scope of this user's variables, beside its sessions (a
    /// `parallel` group renders all its calls before sending any).
    pub(super) fn scope(&mut self) -> (Scope<'_>, &mut Sessions) {
        let scope = Scope {
            user: self.user,
            iteration: self.iteration,
            slots: &self.slots,
            rows: &self.rows,
            rng: &mut self.rng,
        };
        (scope, &mut self.sessions)
    }

    /// Renders `call` from this user's variables into the session that will send it.
    /// Kept out of [`execute`]'s future, so the template scope is not carried across
    /// the send.
    fn prepare(&mut self, call: &Call) -> Result<(), FailureKind> {
        let mut scope = Scope {
            user: self.user,
            iteration: self.iteration,
            slots: &self.slots,
            rows: &self.rows,
            rng: &mut self.rng,
        };
        match &call.kind {
            CallKind::Http(http) => self.sessions.http.prepare(http, &mut scope),
            CallKind::Grpc(grpc) => self.sessions.grpc.prepare(grpc, &mut scope),
            CallKind::Ws(ws) => self.sessions.sockets.get().ws.prepare(ws, &mut scope),
            CallKind::Tcp(tcp) => self.sessions.sockets.get().tcp.prepare(tcp, &mut scope),
        }
    }
}

/// Checks a reply against the call's expectations and takes its captures.
pub(super) fn judge(
    call: &Call,
    slots: &mut [Option<Value>],
    latency: Duration,
    status: u16,
    headers: &impl Headers,
    body: &[u8],
) -> Outcome {
    let mut json = if call.json_queries() == 1 {
        LazyJson::single(body)
    } else {
        LazyJson::new(body)
    };
    let checked = expect::check(&call.expect, status, headers, &mut json, latency);
    let captured = capture::apply(&call.captures, headers, &mut json, body, slots);
    Outcome {
        latency,
        bytes: body.len() as u64,
        result: checked.and(captured),
        version: None,
    }
}

/// A call that was sent but got no reply to judge: its captures are unset.
pub(super) fn failed(
    call: &Call,
    slots: &mut [Option<Value>],
    latency: Duration,
    kind: FailureKind,
) -> Outcome {
    capture::clear(&call.captures, slots);
    Outcome {
        latency,
        bytes: 0,
        result: Err(kind),
        version: None,
    }
}

/// A call that could not be sent: no latency to count.
pub(super) fn not_sent(call: &Call, slots: &mut [Option<Value>], kind: FailureKind) -> Outcome {
    failed(call, slots, Duration::ZERO, kind)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::compile::graph::{Expect, HttpCall, RequestId, Template};

    /// Every user's task carries the state of a call in flight while it thinks, so
    /// the seam must not add to it: the call's own future holds the user's context,
    /// the clock, and the session's exchange (whose inner state is boxed).
    #[test]
    fn a_call_in_flight_stays_small() {
        let plan = crate::report::fixture::plan(Vec::new());
        let protocols = Protocols::new(&Default::default()).unwrap();
        let mut ctx = VuContext::new(0, &plan, &protocols);
        let call = Call {
            request: RequestId(0),
            timeout: Duration::from_secs(1),
            expect: Expect::default(),
            captures: Vec::new(),
            feeders: Vec::new(),
            kind: CallKind::Http(HttpCall {
                method: http::Method::GET,
                url: Template::literal("http://127.0.0.1:1/"),
                headers: Vec::new(),
                query: Vec::new(),
                body: None,
                fixed: Default::default(),
            }),
        };
        let size = std::mem::size_of_val(&execute(&call, &mut ctx, Instant::now()));
        // 232 bytes with rustc 1.95 (248 while the HTTP session had a send future of
        // its own, 328 when the lean client kept a tokio timer per request); a
        // regression of a few words fails.
        assert!(size <= 272, "a call in flight is {size} bytes");
    }
}
