//! Test fixtures for the report and SLO tests: a small compiled plan built by hand
//! and snapshots with known numbers, so renderings are deterministic.

use std::path::PathBuf;
use std::time::Duration;

use http::Method;

use crate::compile::graph::{
    CallType, CaptureInfo, ClosedLoad, CmpOp, CompiledPlan, ExpectId, ExpectInfo, Load, LoadModel,
    Metric, RequestId, RequestInfo, Slo,
};
use crate::metrics::failure::{CheckFailure, FailureKind, ProtocolFailure};
use crate::metrics::snapshot::{EndReason, SeriesPoint, Snapshot};

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

/// A plan with three request names (`list products`, `add to cart`, `POST /login`)
/// and the given SLOs.
pub fn plan(slos: Vec<Slo>) -> CompiledPlan {
    CompiledPlan {
        name: "shop".into(),
        source: PathBuf::from("plans/shop.yaml"),
        target: "http://127.0.0.1:8080".into(),
        load: Load {
            model: LoadModel::Closed(ClosedLoad::Fixed {
                users: 10,
                spawn_rate: None,
            }),
            duration: Some(Duration::from_secs(10)),
            iterations: None,
            search: None,
        },
        flows: Vec::new(),
        requests: vec![
            RequestInfo {
                name: "list products".into(),
                call: CallType::Http(Method::GET),
            },
            RequestInfo {
                name: "add to cart".into(),
                call: CallType::Http(Method::POST),
            },
            RequestInfo {
                name: "POST /login".into(),
                call: CallType::Http(Method::POST),
            },
        ],
        expectations: vec![ExpectInfo {
            request: CART,
            description: "status 201".into(),
        }],
        captures: vec![CaptureInfo {
            request: LIST,
            description: "capture product from $.items[0].id".into(),
        }],
        slots: Vec::new(),
        feeders: Vec::new(),
        slos,
        fingerprint: Default::default(),
    }
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
