//! One user's HTTP session: its client (cookie jar and keep-alive connections) and
//! the buffers its requests are rendered into, reused so the hot path allocates
//! little. It renders an [`HttpCall`] from the user's variables and sends it.

use std::time::Duration;

use http::header::{CONTENT_TYPE, HeaderValue};
use http::{HeaderMap, Method};

use super::{Client, HttpRequest, HttpShared, Response};
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
    bufs: Buffers,
}

/// One request rendered: reused between a user's requests, and one of each request
/// of a `parallel` group.
#[derive(Default)]
pub(super) struct Buffers {
    pub(super) url: String,
    scratch: String,
    pub(super) body: Vec<u8>,
    pub(super) headers: HeaderMap,
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
            bufs: Buffers::default(),
        }
    }

    /// Renders URL, query, headers and body into the session's buffers, and makes
    /// sure the session has a client. Fails with [`CheckFailure::Unset`] when a
    /// template reads an unset variable, with [`CheckFailure::InvalidRequest`] when a
    /// header value cannot be sent, and with [`TransportFailure::Connect`] when no
    /// client can be built; nothing is sent then.
    pub fn prepare(&mut self, call: &HttpCall, scope: &mut Scope) -> Result<(), FailureKind> {
        if self.client.is_none() {
            self.client = self.shared.client().ok();
        }
        self.bufs.render(call, scope)?;
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
    /// Sends what [`HttpSession::prepare`] rendered and reads the whole response,
    /// following redirects, all within `timeout`.
    ///
    /// Not an `async fn`: the returned future holds only what the exchange needs, and
    /// the client is picked inside it with a `match` (no trait object). A user's task
    /// is as large as its largest state, so every byte here is carried by every
    /// thinking user.
    pub fn send<'s>(
        &'s mut self,
        method: &'s Method,
        timeout: Duration,
    ) -> impl Future<Output = Result<Response, FailureKind>> + 's {
        let req = HttpRequest {
            method,
            url: &self.bufs.url,
            headers: &self.bufs.headers,
            body: &self.bufs.body,
            timeout,
        };
        let shared = &self.shared;
        let client = self.client.as_mut();
        async move {
            match client {
                Some(Client::Lean(c)) => c.send(shared, &req).await.map(Response::Lean),
                // Boxed while in flight: this future (about 640 bytes) would otherwise
                // be carried by every thinking user, whichever client it uses.
                Some(Client::Reqwest(c)) => Box::pin(c.send(&req)).await.map(Response::Owned),
                None => Err(TransportFailure::Connect.into()),
            }
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
