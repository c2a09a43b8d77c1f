//! Loopback targets for the capacity tests, each bound to port 0 and kept listening
//! for the test's life:
//! - [`Target::capacity`]: K requests served at a time, each taking S ms, the rest
//!   queued (first come, first served): it takes K / S requests a second, no more;
//! - [`Target::smooth`]: a latency that grows smoothly with the requests in flight;
//! - [`Target::failing_after`]: 200 until some time after its first request, 500 after.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use tokio::sync::{OnceCell, Semaphore};

#[derive(Debug)]
struct Shared {
    slots: Semaphore,
    service: Duration,
    inflight: AtomicU32,
    /// `/smooth`: the latency added per request in flight.
    per_inflight: Duration,
    first: OnceCell<Instant>,
    fail_after: Duration,
}

/// A target's base URL.
pub struct Target {
    pub base: String,
}

impl Target {
    /// `GET /capacity`: `slots` requests served at a time, each taking `service`.
    pub fn capacity(slots: usize, service: Duration) -> Target {
        Target::start(Shared {
            slots: Semaphore::new(slots),
            service,
            ..Shared::default()
        })
    }

    /// `GET /smooth`: 5 ms plus `per_inflight` for each request in flight, itself
    /// included: the more load, the slower, smoothly.
    pub fn smooth(per_inflight: Duration) -> Target {
        Target::start(Shared {
            per_inflight,
            ..Shared::default()
        })
    }

    /// `GET /fail`: 200 until `after` past its first request, then 500.
    pub fn failing_after(after: Duration) -> Target {
        Target::start(Shared {
            fail_after: after,
            ..Shared::default()
        })
    }

    fn start(shared: Shared) -> Target {
        let app = Router::new()
            .route("/capacity", get(capacity))
            .route("/smooth", get(smooth))
            .route("/fail", get(fail))
            .with_state(Arc::new(shared));
        let addr = crate::common::serve(app);
        Target {
            base: format!("http://{addr}"),
        }
    }
}

impl Default for Shared {
    fn default() -> Self {
        Shared {
            slots: Semaphore::new(1),
            service: Duration::ZERO,
            inflight: AtomicU32::new(0),
            per_inflight: Duration::ZERO,
            first: OnceCell::new(),
            fail_after: Duration::MAX,
        }
    }
}

async fn capacity(State(s): State<Arc<Shared>>) -> &'static str {
    // The semaphore is fair: waiting requests are served in the order they came.
    if let Ok(_slot) = s.slots.acquire().await {
        tokio::time::sleep(s.service).await;
    }
    "ok"
}

async fn smooth(State(s): State<Arc<Shared>>) -> &'static str {
    let n = s.inflight.fetch_add(1, Ordering::SeqCst) + 1;
    tokio::time::sleep(Duration::from_millis(5) + s.per_inflight * n).await;
    s.inflight.fetch_sub(1, Ordering::SeqCst);
    "ok"
}

async fn fail(State(s): State<Arc<Shared>>) -> StatusCode {
    let first = *s.first.get_or_init(|| async { Instant::now() }).await;
    if first.elapsed() >= s.fail_after {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    }
}
