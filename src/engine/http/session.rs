//! One user's HTTP session: its client (cookie jar and keep-alive connections). It
//! renders an [`HttpCall`] from the user's variables and sends it. The buffers a
//! request is rendered into come from a per-thread pool and go back when it has
//! been sent, so a thinking user holds none; a call without templates is not
//! rendered at all ([`FixedCall`]).

use std::cell::RefCell;
use std::time::Duration;

use http::HeaderMap;
use http::header::{CONTENT_TYPE, HeaderValue};

use super::{Client, FixedCall, HttpRequest, HttpShared};
use crate::compile::graph::{Body, HttpCall};
use crate::engine::render::{self, Scope};
use crate::metrics::failure::{CheckFailure, FailureKind, TransportFailure};

/// One user's HTTP state, kept between its requests.
pub struct HttpSession {
    /// The run's settings (TLS, limits), shared by every user.
    pub(super) shared: HttpShared,
    /// `None` only when the client could not be built; [`HttpSession::prepare`]
    /// tries again and otherwise fails the request as a connect failure.
    /// [`HttpShared::new`] builds a probe client, so a broken setup fails the run
    /// before any user starts.
    pub(super) client: Option<Client>,
    /// The request [`HttpSession::prepare`] rendered, until it is sent; `None` while
    /// the user thinks, and for a call rendered once.
    rendered: Option<Box<Buffers>>,
}

/// One request rendered: pooled per thread between a user's requests, and one of
/// each request of a `parallel` group.
#[derive(Default)]
pub(super) struct Buffers {
    pub(super) url: String,
    scratch: String,
    pub(super) body: Vec<u8>,
    pub(super) headers: HeaderMap,
}

/// Buffers kept per thread for the requests rendered next; more in flight at once
/// are freed after their request.
const KEEP_IDLE: usize = 256;
/// A buffer that grew past this is shrunk before it goes back to the pool.
const KEEP_CAPACITY: usize = 64 * 1024;

thread_local! {
    // Boxed: a session holds its buffers by one pointer while its request is made,
    // and they move between it and the pool without being copied.
    #[allow(clippy::vec_box)]
    static POOL: RefCell<Vec<Box<Buffers>>> = const { RefCell::new(Vec::new()) };
}

/// Render buffers from this thread's pool, or new ones.
fn take() -> Box<Buffers> {
    let bufs = POOL.try_with(|p| p.borrow_mut().pop()).ok().flatten();
    bufs.unwrap_or_default()
}

/// Gives render buffers back to this thread's pool, cleared. Buffers a request
/// dropped in flight (the end of the run) are freed instead, which is as good.
fn give_back(mut bufs: Box<Buffers>) {
    bufs.url.clear();
    bufs.scratch.clear();
    bufs.body.clear();
    bufs.headers.clear();
    for s in [&mut bufs.url, &mut bufs.scratch] {
        if s.capacity() > KEEP_CAPACITY {
            s.shrink_to(0);
        }
    }
    if bufs.body.capacity() > KEEP_CAPACITY {
        bufs.body.shrink_to(0);
    }
    // During thread teardown the pool may be gone; the buffers are then freed.
    let _ = POOL.try_with(|p| {
        let mut p = p.borrow_mut();
        if p.len() < KEEP_IDLE {
            p.push(bufs);
        }
    });
}

impl HttpSession {
    /// A session with a fresh cookie jar and no connections yet.
    pub fn new(user: u32, shared: &HttpShared) -> HttpSession {
        let client = match shared.client() {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::error!(user, error = %e, "could not build the http client");
                None
            }
        };
        HttpSession {
            shared: shared.clone(),
            client,
            rendered: None,
        }
    }

    /// Renders URL, query, headers and body into buffers from the thread's pool
    /// (unless the call is rendered once: [`FixedCall`]), and makes sure the session
    /// has a client. Fails with [`CheckFailure::Unset`] when a template reads an
    /// unset variable, with [`CheckFailure::InvalidRequest`] when a header value
    /// cannot be sent, and with [`TransportFailure::Connect`] when no client can be
    /// built; nothing is sent then.
    pub fn prepare(&mut self, call: &HttpCall, scope: &mut Scope) -> Result<(), FailureKind> {
        if self.client.is_none() {
            self.client = self.shared.client().ok();
        }
        self.release();
        if FixedCall::get(call).is_none() {
            let mut bufs = take();
            if let Err(e) = bufs.render(call, scope) {
                give_back(bufs);
                return Err(e);
            }
            self.rendered = Some(bufs);
        }
        match self.client {
            Some(_) => Ok(()),
            None => Err(TransportFailure::Connect.into()),
        }
    }
}

impl Buffers {
    /// Renders URL, query, headers and body of `call` into these buffers.
    pub(super) fn render(&mut self, call: &HttpCall, scope: &mut Scope) -> Result<(), FailureKind> {
        let bufs = self;
        bufs.url.clear();
        render::render_str(&call.url, scope, &mut bufs.url).map_err(CheckFailure::Unset)?;
        render::append_query(&call.query, scope, &mut bufs.url, &mut bufs.scratch)
            .map_err(CheckFailure::Unset)?;

        bufs.headers.clear();
        for (name, template) in &call.headers {
            let value = match template.as_literal() {
                Some(lit) => HeaderValue::from_str(lit),
                None => {
                    bufs.scratch.clear();
                    render::render_str(template, scope, &mut bufs.scratch)
                        .map_err(CheckFailure::Unset)?;
                    HeaderValue::from_str(&bufs.scratch)
                }
            };
            let value = value.map_err(|_| CheckFailure::InvalidRequest)?;
            bufs.headers.append(name.clone(), value);
        }

        bufs.body.clear();
        let content_type = match &call.body {
            None => None,
            Some(Body::Json(t)) => {
                render::render_json(t, scope, &mut bufs.body, &mut bufs.scratch)
                    .map_err(CheckFailure::Unset)?;
                Some("application/json")
            }
            Some(Body::Form(pairs)) => {
                render::render_form(pairs, scope, &mut bufs.body, &mut bufs.scratch)
                    .map_err(CheckFailure::Unset)?;
                Some("application/x-www-form-urlencoded")
            }
            Some(Body::Raw(t)) => {
                match t.as_literal() {
                    Some(lit) => bufs.body.extend_from_slice(lit.as_bytes()),
                    None => {
                        bufs.scratch.clear();
                        render::render_str(t, scope, &mut bufs.scratch)
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
}

impl HttpSession {
    /// What sending `call` as [`HttpSession::prepare`] rendered it takes: the
    /// request, bounded by `timeout`, the run's settings, and the client; `None`
    /// when nothing was prepared. Call [`HttpSession::release`] once the response
    /// is in.
    ///
    /// Not a future that sends: the caller's future awaits the client itself
    /// ([`request::execute`](crate::engine::request::execute)), without one more
    /// state machine between them (about 60 instructions a request).
    pub fn outgoing<'s>(
        &'s mut self,
        call: &'s HttpCall,
        timeout: Duration,
    ) -> Option<(HttpRequest<'s>, &'s HttpShared, Option<&'s mut Client>)> {
        let req = match (self.rendered.as_deref(), FixedCall::made(call)) {
            (Some(b), _) => HttpRequest {
                method: &call.method,
                url: &b.url,
                headers: &b.headers,
                body: &b.body,
                timeout,
                head: None,
            },
            (None, Some(f)) => HttpRequest {
                method: &call.method,
                url: &f.url,
                headers: &f.headers,
                body: &f.body,
                timeout,
                head: f.head.as_ref(),
            },
            (None, None) => return None,
        };
        Some((req, &self.shared, self.client.as_mut()))
    }

    /// Gives the buffers of the request just sent back to the thread's pool, so the
    /// user holds none while it thinks.
    pub fn release(&mut self) {
        if let Some(bufs) = self.rendered.take() {
            give_back(bufs);
        }
    }
}

impl std::fmt::Debug for HttpSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSession")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use http::Method;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;
    use serde_json::{Value, json};

    use super::*;
    use crate::compile::graph::{Segment, SlotId, Template};

    fn call() -> HttpCall {
        HttpCall {
            method: Method::GET,
            url: Template {
                segments: vec![
                    Segment::Literal("http://127.0.0.1:1/u/".into()),
                    Segment::Slot(SlotId(0)),
                ],
            },
            headers: Vec::new(),
            query: Vec::new(),
            body: None,
            fixed: FixedCall::default(),
        }
    }

    fn prepare(session: &mut HttpSession, call: &HttpCall, slot: Option<Value>) -> bool {
        let slots = [slot];
        let mut rng = SmallRng::seed_from_u64(1);
        let mut scope = Scope {
            user: 0,
            iteration: 0,
            slots: &slots,
            rows: &[],
            rng: &mut rng,
        };
        session.prepare(call, &mut scope).is_ok()
    }

    /// A user holds render buffers only from `prepare` to `release`; they come
    /// from the thread's pool and go back there, also when rendering fails.
    #[test]
    fn render_buffers_are_held_only_while_a_request_is_made() {
        let shared = HttpShared::new(&Default::default()).unwrap();
        let mut session = HttpSession::new(0, &shared);
        let call = call();
        assert!(session.rendered.is_none());
        assert!(prepare(&mut session, &call, Some(json!(7))));
        let bufs = session
            .rendered
            .as_deref()
            .expect("rendered into pooled buffers");
        assert_eq!(bufs.url, "http://127.0.0.1:1/u/7");
        let pooled = || POOL.with(|p| p.borrow().len());
        assert_eq!(pooled(), 0);
        session.release();
        assert!(session.rendered.is_none(), "a thinking user holds none");
        assert_eq!(pooled(), 1, "the buffers went back to the pool");

        // The same buffers, cleared, serve the next request, even one that fails.
        assert!(!prepare(&mut session, &call, None));
        assert!(session.rendered.is_none());
        assert_eq!(pooled(), 1);
        assert!(prepare(&mut session, &call, Some(json!("x"))));
        assert_eq!(pooled(), 0);
        assert_eq!(
            session.rendered.as_deref().unwrap().url,
            "http://127.0.0.1:1/u/x"
        );
        session.release();
        assert_eq!(pooled(), 1);
    }
}
