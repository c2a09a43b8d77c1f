//! Test fixtures for the report and SLO tests: a small plan compiled from YAML
//! and snapshots with known numbers, so renderings are deterministic.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::compile::graph::{CmpOp, CompiledPlan, ExpectId, Metric, RequestId, Slo};
use crate::metrics::failure::{CheckFailure, FailureKind, ProtocolFailure};
use crate::metrics::snapshot::{EndReason, SeriesPoint, Snapshot};
use crate::report::RunResult;
use crate::testing::TestPlan;

/// Request ids of the fixture plan.
pub const LIST: RequestId = RequestId(0);
pub const CART: RequestId = RequestId(1);
pub const LOGIN: RequestId = RequestId(2);

/// An SLO line as the compiler would produce it.
pub fn slo(request: Option<RequestId>, text: &str, metric: Metric, op: CmpOp, t: f64) -> Slo {
    Slo {
        text: text.to_string(),
        request,
        metric,
        op,
        threshold: t,
        line: Some(10),
        column: Some(5),
        window: None,
        abort: false,
    }
}

/// `p95 < 300ms` over the whole run.
pub fn p95_under_300ms() -> Slo {
    slo(
        None,
        "p95 < 300ms",
        Metric::Percentile(95.0),
        CmpOp::Lt,
        300.0,
    )
}

/// `error_rate < 1%` over the whole run.
pub fn error_rate_under_1pct() -> Slo {
    slo(None, "error_rate < 1%", Metric::ErrorRate, CmpOp::Lt, 0.01)
}

/// `failures == 0` on `add to cart` (it fails 3 times in [`snapshot`]).
pub fn cart_without_failures() -> Slo {
    slo(
        Some(CART),
        "failures == 0",
        Metric::Failures,
        CmpOp::Eq,
        0.0,
    )
}

/// `p99 < 1s` on `POST /login` (never sent in [`snapshot`]).
pub fn login_p99_under_1s() -> Slo {
    slo(
        Some(LOGIN),
        "p99 < 1s",
        Metric::Percentile(99.0),
        CmpOp::Lt,
        1000.0,
    )
}

/// A plan with three request names (`list products`, `add to cart`, `POST /login`)
/// and the given SLOs (set after compiling, so that tests choose their exact values).
pub fn plan(slos: Vec<Slo>) -> CompiledPlan {
    let mut plan = TestPlan::new()
        .name("shop")
        .source("plans/shop.yaml")
        .target("http://127.0.0.1:8080")
        .closed(10, Duration::from_secs(10))
        .flow(
            "- get: /products
  name: list products
  capture: { product: '$.items[0].id' }
- post: /cart
  name: add to cart
  expect: { status: 201 }
- post: /login",
        )
        .compile();
    plan.slos = slos;
    plan
}

/// A finished 10-second run: `list products` 100 requests at 10..=19 ms (none
/// failed), `add to cart` 20 requests at 100 ms of which 2 failed with HTTP 500 and 1
/// with `status 201` not met, `POST /login` never sent.
pub fn snapshot() -> Snapshot {
    let mut snap = Snapshot::empty(3, Some(Duration::from_secs(10)));
    snap.elapsed = Duration::from_secs(10);
    snap.end = EndReason::Completed;
    snap.active_users = 10;
    snap.target_users = 10;
    snap.iterations = 20;
    for i in 0..100u64 {
        snap.requests[0].record(Duration::from_millis(10 + i % 10), 1000, Ok(()));
    }
    for i in 0..20u64 {
        let outcome = match i {
            0 | 1 => Err(FailureKind::Protocol(ProtocolFailure::HttpStatus(500))),
            2 => Err(FailureKind::Check(CheckFailure::Expect(ExpectId(0)))),
            _ => Ok(()),
        };
        snap.requests[1].record(Duration::from_millis(100), 250, outcome);
    }
    // Most replies to the cart came over HTTP/2; the others were never told.
    snap.requests[1].versions = [0, 2, 18];
    snap.series = (1..=3)
        .map(|t| SeriesPoint {
            t: t as f64,
            width: 1.0,
            requests: 12,
            failures: 1,
            p50_ms: 14.0,
            p95_ms: 100.0,
            p99_ms: 100.0,
            users: 10,
            dropped: 0,
            ..SeriesPoint::default()
        })
        .collect();
    snap.generator.cpu_seconds = 1.5;
    snap.generator.cpu_percent = 15.0;
    snap.generator.lag_p99_ms = 0.4;
    snap.generator.lag_max_ms = 2.0;
    snap
}

/// The result of a run of [`plan`] with `slos` whose [`snapshot`] was changed by `edit`
/// first, as every sink receives it (started at the epoch, no baseline).
pub fn result(slos: Vec<Slo>, edit: impl FnOnce(&mut Snapshot)) -> RunResult {
    let mut snap = snapshot();
    edit(&mut snap);
    RunResult::new(
        Arc::new(plan(slos)),
        Arc::new(snap),
        SystemTime::UNIX_EPOCH,
        None,
    )
}
