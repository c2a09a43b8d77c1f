//! A user's lean client split for the length of a `parallel:` group, and joined
//! again after it: each request of the group in flight needs a client of its own
//! (redirects, cookies and timeouts are per exchange), yet the user keeps one set of
//! connections and one cookie jar.
//!
//! Before the group, the user's connection to each origin the group names is made
//! ([`LeanClient::preconnect`]), so that over HTTP/2 every fork ([`LeanClient::fork`])
//! sends on that one connection, as streams of it. Over HTTP/1.1 a connection
//! carries one request at a time, so each fork but the first opens its own. After
//! the group, [`LeanClient::absorb`] brings each fork's cookies back, and keeps a
//! connection per origin.
//!
//! Nothing here runs for a flow without `parallel:`.

use std::sync::Arc;
use std::time::Instant;

use super::cookies::CookieJar;
use super::{HttpShared, LeanClient, MAX_ORIGINS, Origin, Picked};

impl LeanClient {
    /// Opens (or checks) this user's connection to the origin of each URL, giving up
    /// at `deadline`. A failure is left for the requests to meet and report.
    pub(crate) async fn preconnect(
        &mut self,
        shared: &HttpShared,
        urls: &[&str],
        deadline: Instant,
    ) {
        let connect = async {
            for url in urls {
                let now = Instant::now();
                let Some(i) = self.origin(url, now) else {
                    continue;
                };
                let target = self.origins[i].span.target(url);
                if let Ok(Picked::H1(conn, _)) = self.connection(shared, &target, i, now).await {
                    // Probed or new: the first fork takes it without probing again.
                    let origin = &mut self.origins[i];
                    origin.conn = Some(conn);
                    origin.idle_since = now;
                }
            }
        };
        let _ = tokio::time::timeout_at(deadline.into(), connect).await;
    }

    /// Whether requests to `url` go out on an open HTTP/2 connection.
    pub(crate) fn speaks_h2(&self, url: &str) -> bool {
        self.origins
            .iter()
            .any(|o| o.span.matches(&o.text, url) && o.h2.as_ref().is_some_and(|h| !h.is_closed()))
    }

    /// The cookies as they are now, for [`LeanClient::absorb`] to tell what a fork
    /// learnt.
    pub(crate) fn cookies(&self) -> CookieJar {
        self.jar.clone()
    }

    /// A client for one request of a group in flight: this user's cookies, TLS
    /// settings and HTTP/2 connections, and (for the `first` fork only) its idle
    /// HTTP/1.1 connections.
    pub(crate) fn fork(&mut self, first: bool) -> LeanClient {
        let origins = self.origins.iter_mut().map(|o| Origin {
            text: o.text.clone(),
            span: o.span.clone(),
            conn: if first { o.conn.take() } else { None },
            h2: o.h2.clone(),
            idle_since: o.idle_since,
        });
        LeanClient {
            origins: origins.collect(),
            jar: self.jar.clone(),
            tls: self.tls.as_ref().map(Arc::clone),
        }
    }

    /// Takes back what `fork` learnt since the group began (when the cookies were
    /// `base`): its cookies, and a connection to each origin this user has none to
    /// (the others close).
    pub(crate) fn absorb(&mut self, fork: LeanClient, base: &CookieJar) {
        self.jar.merge(base, fork.jar);
        if self.tls.is_none() {
            self.tls = fork.tls;
        }
        for o in fork.origins {
            let t = o.span.target(&o.text);
            let same = self.origins.iter().position(|m| {
                let known = m.span.target(&m.text);
                known.port == t.port
                    && known.tls == t.tls
                    && known.host.eq_ignore_ascii_case(t.host)
            });
            let Some(i) = same else {
                if self.origins.len() < MAX_ORIGINS {
                    self.origins.push(o);
                }
                continue;
            };
            let mine = &mut self.origins[i];
            if mine.conn.is_none() && o.conn.is_some() {
                mine.conn = o.conn;
                mine.idle_since = o.idle_since;
            }
            let open = |h: &Option<Box<super::h2::H2>>| h.as_ref().is_some_and(|h| !h.is_closed());
            if !open(&mine.h2) && open(&o.h2) {
                mine.h2 = o.h2;
            }
        }
    }
}
