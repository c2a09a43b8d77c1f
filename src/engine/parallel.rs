//! Executing a `parallel:` group for one virtual user: every call is rendered from
//! the variables as they were before the group, the calls are sent at once
//! ([`HttpSession::send_group`](super::http::HttpSession::send_group)), and once all
//! have answered each is judged and takes its captures, in the group's order.
//!
//! Each call is measured on its own, from the group's start to the end of its own
//! reply. The sequential path ([`super::request::execute`]) does not come through
//! here: a flow without `parallel:` pays nothing for it.

use std::time::Instant;

use super::http::group::Branch;
use super::request::{Outcome, VuContext, failed, judge, not_sent};
use crate::compile::graph::{CallKind, Parallel};
use crate::metrics::failure::{CheckFailure, FailureKind, TransportFailure};

/// Renders, sends and judges the calls of `group`; the outcome at index `i` is
/// `group.calls[i]`'s. `start` is when latency is measured from, as for
/// [`execute`](super::request::execute).
pub async fn execute_group(group: &Parallel, ctx: &mut VuContext, start: Instant) -> Vec<Outcome> {
    let mut branches: Vec<Branch> = Vec::with_capacity(group.calls.len());
    // Per call: why it could not be rendered, if it could not (it is not sent).
    let mut unsent: Vec<Option<FailureKind>> = Vec::with_capacity(group.calls.len());
    {
        let (mut scope, sessions) = ctx.scope();
        for call in &group.calls {
            let rendered = match &call.kind {
                CallKind::Http(h) => sessions.http.render_branch(h, call.timeout, &mut scope),
                // The compiler lets only HTTP calls into a group.
                _ => Err(CheckFailure::InvalidRequest.into()),
            };
            match rendered {
                Ok(b) => {
                    branches.push(b);
                    unsent.push(None);
                }
                Err(kind) => unsent.push(Some(kind)),
            }
        }
    }
    let mut sent = ctx
        .sessions
        .http
        .send_group(&branches, start)
        .await
        .into_iter();
    let slots = &mut ctx.slots;
    let judged = group.calls.iter().zip(unsent).map(|(call, unsent)| {
        if let Some(kind) = unsent {
            return not_sent(call, slots, kind);
        }
        let Some((response, end)) = sent.next() else {
            // `send_group` answers for every branch; this only avoids a panic path.
            return failed(call, slots, start.elapsed(), TransportFailure::Reset.into());
        };
        let latency = end.saturating_duration_since(start);
        match response {
            Ok(r) => Outcome {
                version: Some(r.version()),
                ..judge(call, slots, latency, r.status(), &r, r.body())
            },
            Err(kind) => failed(call, slots, latency, kind),
        }
    });
    judged.collect()
}
