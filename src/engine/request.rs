//! Executing one request step for one virtual user: render, send, judge, capture.
//!
//! [`VuContext`] is everything a user carries between requests: its variables, its
//! feeder rows, its own HTTP client (cookie jar and keep-alive connections) and the
//! buffers requests are rendered into, reused so the hot path allocates little.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::HeaderMap;
use http::header::{CONTENT_TYPE, HeaderValue};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use serde_json::Value;

use super::capture;
use super::expect::{self, LazyJson};
use super::http::{Client, HttpRequest, HttpShared};
use super::render::{self, Scope};
use crate::compile::graph::{Body, CompiledPlan, RequestStep};
use crate::metrics::failure::{CheckFailure, FailureKind, TransportFailure};

/// One virtual user's state.
pub struct VuContext {
    /// This user's index (`user()` in templates).
    pub user: u32,
    /// The current iteration (`iteration()` in templates).
    pub iteration: u64,
    /// Captured variables, indexed by [`SlotId`]; `None` is unset.
    pub slots: Vec<Option<Value>>,
    /// The current row of each feeder, indexed by `FeederId`; set by the engine.
    pub rows: Vec<Option<Arc<[String]>>>,
    /// `None` only when the client could not be built; [`execute`] tries again and
    /// otherwise fails the request as a connect failure. [`HttpShared::new`] builds
    /// a probe client, so a broken setup fails the run before any user starts.
    client: Option<Client>,
    rng: SmallRng,
    bufs: Buffers,
}

/// Reused between requests.
#[derive(Default)]
struct Buffers {
    url: String,
    scratch: String,
    body: Vec<u8>,
    headers: HeaderMap,
}

impl VuContext {
    pub fn new(user: u32, plan: &CompiledPlan, http: &HttpShared) -> VuContext {
        let client = match http.client() {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::error!(user, error = %e, "could not build the http client");
                None
            }
        };
        VuContext {
            user,
            iteration: 0,
            slots: vec![None; plan.slots.len()],
            rows: vec![None; plan.feeders.len()],
            client,
            rng: SmallRng::from_rng(&mut rand::rng()),
            bufs: Buffers::default(),
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
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

/// The result of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// From `start` to the end of the body; zero when nothing was sent.
    pub latency: Duration,
    /// The response body's length.
    pub bytes: u64,
    pub result: Result<(), FailureKind>,
}

/// Renders, sends and judges one request; updates the user's captures and cookies.
///
/// `start` is when latency is measured from (normally now; in the open model the
/// iteration's scheduled start, so waiting cannot hide).
pub async fn execute(
    step: &RequestStep,
    ctx: &mut VuContext,
    http: &HttpShared,
    start: Instant,
) -> Outcome {
    if let Err(kind) = render_request(step, ctx) {
        capture::clear(&step.captures, &mut ctx.slots);
        return not_sent(kind);
    }
    if ctx.client.is_none() {
        ctx.client = http.client().ok();
    }
    let Some(client) = ctx.client.as_mut() else {
        capture::clear(&step.captures, &mut ctx.slots);
        return not_sent(FailureKind::Transport(TransportFailure::Connect));
    };
    let req = HttpRequest {
        method: &step.method,
        url: &ctx.bufs.url,
        headers: &ctx.bufs.headers,
        body: &ctx.bufs.body,
        timeout: step.timeout,
    };
    let response = client.send(&req).await;
    let latency = start.elapsed();
    let response = match response {
        Ok(r) => r,
        Err(kind) => {
            capture::clear(&step.captures, &mut ctx.slots);
            return Outcome {
                latency,
                bytes: 0,
                result: Err(kind),
            };
        }
    };
    let mut json = if step.json_queries() == 1 {
        LazyJson::single(response.body())
    } else {
        LazyJson::new(response.body())
    };
    let checked = expect::check(
        &step.expect,
        response.status(),
        &response,
        &mut json,
        latency,
    );
    let captured = capture::apply(
        &step.captures,
        &response,
        &mut json,
        response.body(),
        &mut ctx.slots,
    );
    Outcome {
        latency,
        bytes: response.body().len() as u64,
        result: checked.and(captured),
    }
}

fn not_sent(kind: FailureKind) -> Outcome {
    Outcome {
        latency: Duration::ZERO,
        bytes: 0,
        result: Err(kind),
    }
}

/// Renders URL, query, headers and body into the user's buffers. Fails with
/// [`CheckFailure::Unset`] when a template reads an unset variable, and with
/// [`CheckFailure::InvalidRequest`] when a header value cannot be sent.
fn render_request(step: &RequestStep, ctx: &mut VuContext) -> Result<(), FailureKind> {
    let VuContext {
        user,
        iteration,
        slots,
        rows,
        rng,
        bufs,
        ..
    } = ctx;
    let mut scope = Scope {
        user: *user,
        iteration: *iteration,
        slots,
        rows,
        rng,
    };
    bufs.url.clear();
    render::render_str(&step.url, &mut scope, &mut bufs.url).map_err(CheckFailure::Unset)?;
    render::append_query(&step.query, &mut scope, &mut bufs.url, &mut bufs.scratch)
        .map_err(CheckFailure::Unset)?;

    bufs.headers.clear();
    for (name, template) in &step.headers {
        let value = match template.as_literal() {
            Some(lit) => HeaderValue::from_str(lit),
            None => {
                bufs.scratch.clear();
                render::render_str(template, &mut scope, &mut bufs.scratch)
                    .map_err(CheckFailure::Unset)?;
                HeaderValue::from_str(&bufs.scratch)
            }
        };
        let value = value.map_err(|_| FailureKind::Check(CheckFailure::InvalidRequest))?;
        bufs.headers.append(name.clone(), value);
    }

    bufs.body.clear();
    let content_type = match &step.body {
        None => None,
        Some(Body::Json(t)) => {
            render::render_json(t, &mut scope, &mut bufs.body, &mut bufs.scratch)
                .map_err(CheckFailure::Unset)?;
            Some("application/json")
        }
        Some(Body::Form(pairs)) => {
            render::render_form(pairs, &mut scope, &mut bufs.body, &mut bufs.scratch)
                .map_err(CheckFailure::Unset)?;
            Some("application/x-www-form-urlencoded")
        }
        Some(Body::Raw(t)) => {
            match t.as_literal() {
                Some(lit) => bufs.body.extend_from_slice(lit.as_bytes()),
                None => {
                    bufs.scratch.clear();
                    render::render_str(t, &mut scope, &mut bufs.scratch)
                        .map_err(CheckFailure::Unset)?;
                    bufs.body.extend_from_slice(bufs.scratch.as_bytes());
                }
            }
            None
        }
    };
    if let Some(ct) = content_type
        && !bufs.headers.contains_key(CONTENT_TYPE)
    {
        bufs.headers
            .insert(CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    Ok(())
}
