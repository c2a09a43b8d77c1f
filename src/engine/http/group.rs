//! Sending the requests of a `parallel:` group for one user, at once.
//!
//! Each request is rendered into buffers of its own ([`HttpSession::render_branch`])
//! before any is sent, then the group goes out on *lanes*, each a fork of the user's
//! client sending one request after another ([`HttpSession::send_group`]):
//!
//! - over HTTP/2 there is a lane per request, and all of them send on the user's one
//!   connection to the origin, as concurrent streams (the lean client opens that
//!   connection first, so that the forks find it);
//! - over HTTP/1.1 a connection carries one request at a time, so there are at most
//!   [`H1_LANES`] lanes, each on a connection of its own, as browsers open up to six
//!   connections per host. The user keeps one connection per origin afterwards.
//!
//! With reqwest (`SWARM_HTTP_CLIENT=reqwest`) the lanes are clones of the user's
//! client, sharing its pool and cookie jar; it cannot be asked which version an
//! origin speaks before sending, so there is a lane per request only under `h2c` and
//! `"2"`, and at most [`H1_LANES`] under `auto`.
//!
//! Each request's timeout counts from the group's start, so one that waited for a
//! lane has that much less time. Cookies set by the group's responses are kept, the
//! last lane's where two set the same cookie.

use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

use http::Method;

use super::session::Buffers;
use super::{Client, HttpRequest, HttpSession, HttpShared, Response};
use crate::compile::graph::HttpCall;
use crate::engine::render::Scope;
use crate::metrics::failure::{FailureKind, TransportFailure};

/// The most HTTP/1.1 connections a user opens at once for a group.
pub const H1_LANES: usize = 6;

/// One request of a group, rendered.
pub struct Branch {
    bufs: Buffers,
    method: Method,
    timeout: Duration,
}

impl std::fmt::Debug for Branch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Branch")
            .field("method", &self.method)
            .field("url", &self.bufs.url)
            .finish_non_exhaustive()
    }
}

/// How one request of a group ended, and when.
pub type Sent = (Result<Response, FailureKind>, Instant);

impl HttpSession {
    /// Renders one request of a group from the user's variables, as
    /// [`HttpSession::prepare`] does; nothing is sent.
    pub fn render_branch(
        &mut self,
        call: &HttpCall,
        timeout: Duration,
        scope: &mut Scope,
    ) -> Result<Branch, FailureKind> {
        let mut bufs = Buffers::default();
        bufs.render(call, scope)?;
        Ok(Branch {
            bufs,
            method: call.method.clone(),
            timeout,
        })
    }

    /// Sends `branches` at once and reads every response; the result at index `i`
    /// is `branches[i]`'s, with the instant it ended. `start` is when the group began.
    pub async fn send_group(&mut self, branches: &[Branch], start: Instant) -> Vec<Sent> {
        if self.client.is_none() {
            self.client = self.shared.client().ok();
        }
        let shared = &self.shared;
        let mut forks: Vec<Client> = Vec::new();
        let mut lean_base = None;
        match self.client.as_mut() {
            None => {
                let kind = FailureKind::from(TransportFailure::Connect);
                return branches
                    .iter()
                    .map(|_| (Err(kind), Instant::now()))
                    .collect();
            }
            Some(Client::Lean(client)) => {
                let urls: Vec<&str> = branches.iter().map(|b| b.bufs.url.as_str()).collect();
                let shortest = branches.iter().map(|b| b.timeout).min().unwrap_or_default();
                client.preconnect(shared, &urls, start + shortest).await;
                let lanes = match urls.iter().all(|u| client.speaks_h2(u)) {
                    true => branches.len(),
                    false => branches.len().min(H1_LANES),
                };
                lean_base = Some(client.cookies());
                forks.extend((0..lanes).map(|i| Client::Lean(client.fork(i == 0))));
            }
            Some(Client::Reqwest(client)) => {
                // reqwest's pool shares the user's connections among clones; it opens
                // one HTTP/2 connection for many requests when it knows beforehand
                // that the origin speaks HTTP/2 (`h2c`, `"2"`).
                let h2 = matches!(
                    shared.version(),
                    super::HttpVersion::H2c | super::HttpVersion::Http2
                );
                let lanes = match h2 {
                    true => branches.len(),
                    false => branches.len().min(H1_LANES),
                };
                forks.extend((0..lanes).map(|_| Client::Reqwest(client.clone())));
            }
        }
        let next = Cell::new(0);
        let out: RefCell<Vec<Option<Sent>>> = RefCell::new(branches.iter().map(|_| None).collect());
        let lanes = forks
            .iter_mut()
            .map(|fork| lane(fork, shared, branches, start, &next, &out));
        futures_util::future::join_all(lanes).await;
        if let (Some(Client::Lean(client)), Some(base)) = (self.client.as_mut(), lean_base) {
            for fork in forks {
                if let Client::Lean(fork) = fork {
                    client.absorb(fork, &base);
                }
            }
        }
        let now = Instant::now();
        let sent = out.into_inner().into_iter();
        sent.map(|s| s.unwrap_or((Err(TransportFailure::Timeout.into()), now)))
            .collect()
    }
}

/// One lane: takes the group's next unsent request and sends it on `client`, until
/// none is left.
async fn lane(
    client: &mut Client,
    shared: &HttpShared,
    branches: &[Branch],
    start: Instant,
    next: &Cell<usize>,
    out: &RefCell<Vec<Option<Sent>>>,
) {
    loop {
        let i = next.get();
        let Some(b) = branches.get(i) else { return };
        next.set(i + 1);
        let left = b.timeout.saturating_sub(start.elapsed());
        let result = if left.is_zero() {
            Err(TransportFailure::Timeout.into())
        } else {
            let req = HttpRequest {
                method: &b.method,
                url: &b.bufs.url,
                headers: &b.bufs.headers,
                body: &b.bufs.body,
                timeout: left,
                head: None,
            };
            match client {
                Client::Lean(c) => c.send(shared, &req).await.map(Response::Lean),
                Client::Reqwest(c) => c.send(&req).await.map(Response::Owned),
            }
        };
        out.borrow_mut()[i] = Some((result, Instant::now()));
    }
}
