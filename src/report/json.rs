//! The JSON report: a versioned, self-describing record of one run (plan, timings,
//! per-request statistics, failures by reason, the time series, the SLO verdicts and
//! the generator's health). Its schema, `schemas/report.schema.json`, is generated
//! from these types ([`report_schema`]); a test fails when the two drift apart.
//! Other sinks (JUnit, summary, baseline gate, HTML) read this type, not the engine.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{RunResult, Sink, SinkError, write_report};
use crate::compile::graph::CompiledPlan;
use crate::metrics::capacity::CapacityReport;
use crate::metrics::failure::{CheckFailure, FailureKind, ProtocolFailure, TransportFailure};
use crate::metrics::slo::SloVerdict;
use crate::metrics::snapshot::{EndReason, GeneratorHealth, SeriesPoint, Snapshot};
use crate::metrics::stats::{HttpVersionUsed, RequestStats};

/// Writes the JSON report to a file.
pub struct JsonSink {
    pub path: std::path::PathBuf,
}

impl Sink for JsonSink {
    fn emit(&mut self, result: &RunResult) -> Result<(), SinkError> {
        let mut text = result.report.to_json();
        text.push('\n');
        write_report("json", &self.path, text.as_bytes())
    }
}

/// The report format version; bumped on any incompatible change.
pub const REPORT_VERSION: u32 = 1;

/// The name of the aggregated row.
pub const AGGREGATED: &str = "Aggregated";

/// A swarm run report (`swarm check --json FILE`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "swarm run report")]
pub struct JsonReport {
    /// The report format version (1).
    pub version: u32,
    pub plan: PlanInfo,
    /// When the first user started, RFC 3339 (UTC).
    pub started_at: String,
    /// How long the run lasted, in seconds.
    pub duration_s: f64,
    /// The planned length of the run in seconds, when it was time-bounded.
    pub planned_s: Option<f64>,
    pub end: EndInfo,
    /// Whether every SLO held.
    pub passed: bool,
    /// Flow iterations completed.
    pub iterations: u64,
    /// Open-model arrivals that found `max_users` busy.
    pub dropped: u64,
    /// All request names together.
    pub total: RequestReport,
    /// One entry per request name, in plan order.
    pub requests: Vec<RequestReport>,
    /// One point per second of the run (older points may cover several seconds).
    pub series: Vec<SeriesEntry>,
    /// The SLO verdicts, in plan order.
    pub slos: Vec<SloVerdict>,
    pub generator: GeneratorInfo,
    /// The comparison with `--baseline`, when one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<super::comparison::BaselineComparison>,
    /// A capacity search (`load.search`): every step and the answer. The run's
    /// statistics above are then those of the last step's hold, and `slos` the
    /// verdicts of the step that decided the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<CapacityReport>,
    /// The workers of a run on many machines (absent for a run on one machine).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workers: Vec<WorkerReport>,
}

impl JsonReport {
    /// One sentence per worker lost mid-run: the gap every report marks.
    pub fn worker_gaps(&self) -> Vec<String> {
        self.workers
            .iter()
            .filter_map(|w| {
                let at = w.lost_at_s?;
                let why = w.error.as_deref().unwrap_or("lost");
                Some(format!(
                    "worker `{}` was lost at {at:.1}s ({why}): its load is missing from then on",
                    w.name
                ))
            })
            .collect()
    }
}

/// One worker of a run on many machines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WorkerReport {
    /// The worker's name (`swarm worker --name`, by default host name and pid).
    pub name: String,
    /// The address it connected from.
    pub address: String,
    /// The run's threads it ran.
    pub threads: u32,
    /// `done`, or `lost` when it disappeared mid-run.
    pub state: String,
    /// Seconds into the run when it was lost: its load is missing from then on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost_at_s: Option<f64>,
    /// Why it was lost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Its own generator verdict, when it saturated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saturated: Option<String>,
}

/// Which plan ran, against what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PlanInfo {
    /// The plan's `name`.
    pub name: String,
    /// The plan file, as given on the command line.
    pub file: String,
    /// The base URL the requests went to (after `--target` / `--demo`).
    pub target: String,
    /// SHA-256 of the plan text, its data files and the options that change what
    /// runs, in hex: equal fingerprints mean the same plan ran.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub fingerprint: String,
}

/// Why the run ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EndInfo {
    pub reason: EndKind,
    /// The feeder that ran out of rows, for `feeder_exhausted`.
    pub feeder: Option<String>,
    /// The SLO line that stopped the run, for `aborted`, as written
    /// (`checkout: p99 < 1s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<String>,
    /// The reason, for people.
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EndKind {
    /// The snapshot was taken while the run was still going.
    Running,
    /// The planned duration or stages elapsed.
    Completed,
    /// All `iterations` ran.
    IterationsDone,
    /// A `unique` feeder ran out of rows.
    FeederExhausted,
    /// Stopped from the dashboard or the API.
    Stopped,
    /// Ctrl-C or SIGTERM.
    Interrupted,
    /// An SLO line with `abort: true` failed (see `line`).
    Aborted,
}

impl EndInfo {
    pub fn from_reason(end: &EndReason) -> Self {
        let (reason, feeder, message) = match end {
            EndReason::Running => (EndKind::Running, None, "still running".to_string()),
            EndReason::Completed => (EndKind::Completed, None, "completed".to_string()),
            EndReason::IterationsDone => (
                EndKind::IterationsDone,
                None,
                "all iterations ran".to_string(),
            ),
            EndReason::FeederExhausted { feeder } => (
                EndKind::FeederExhausted,
                Some(feeder.clone()),
                format!("the unique feeder `{feeder}` ran out of rows"),
            ),
            EndReason::Stopped => (EndKind::Stopped, None, "stopped".to_string()),
            EndReason::Interrupted => (
                EndKind::Interrupted,
                None,
                "interrupted (Ctrl-C or SIGTERM); the numbers cover the run until then".to_string(),
            ),
            EndReason::Aborted { line, at, .. } => (
                EndKind::Aborted,
                None,
                format!("aborted by the SLO line `{line}` at {at} s"),
            ),
        };
        let line = match end {
            EndReason::Aborted { line, .. } => Some(line.clone()),
            _ => None,
        };
        EndInfo {
            reason,
            feeder,
            line,
            message,
        }
    }
}

/// Statistics of one request name (or of all of them, in `total`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RequestReport {
    /// The request name (`Aggregated` for the total).
    pub name: String,
    /// The Type column: the HTTP method, or `GRPC`, `WS` or `TCP` (absent for the
    /// total).
    pub method: Option<String>,
    /// Requests completed, successful or failed.
    pub count: u64,
    pub failures: u64,
    /// failures / count, a fraction (0 when nothing was sent).
    pub error_rate: f64,
    /// Mean requests per second over the run.
    pub rps: f64,
    /// Response body bytes received.
    pub bytes: u64,
    /// Mean response body size, in bytes.
    pub mean_bytes: f64,
    pub latency_ms: LatencyReport,
    /// Failures by reason, most frequent first.
    pub failure_reasons: Vec<FailureReport>,
    /// Replies by HTTP version (`HTTP/1.1`, `HTTP/2`, `HTTP/1.0`); absent when no
    /// HTTP reply came.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub versions: BTreeMap<String, u64>,
}

/// Latency of every request (failed ones included), in milliseconds; all 0 when
/// nothing was sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LatencyReport {
    pub min: f64,
    pub mean: f64,
    pub max: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    #[serde(rename = "p99.9")]
    pub p99_9: f64,
}

/// How many requests failed for one reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FailureReport {
    /// The reason, for people, e.g. `HTTP 500` or `expected status 201`.
    pub reason: String,
    /// The kind of failure, for machines.
    pub kind: FailureKindName,
    pub count: u64,
}

/// The kind of a failure (see the reports documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FailureKindName {
    Refused,
    Reset,
    Timeout,
    Dns,
    Tls,
    TlsExpired,
    TlsUnknownIssuer,
    TlsHostname,
    Connect,
    Protocol,
    BodyTooLarge,
    TooManyRedirects,
    Status,
    NoHttp2,
    /// A gRPC status other than OK, without an `expect.status`.
    GrpcStatus,
    Expect,
    Capture,
    Unset,
    NotJson,
    InvalidRequest,
    ServerClosed,
    NotConnected,
}

impl From<&FailureKind> for FailureKindName {
    fn from(kind: &FailureKind) -> Self {
        match kind {
            FailureKind::Transport(TransportFailure::Refused) => FailureKindName::Refused,
            FailureKind::Transport(TransportFailure::Reset) => FailureKindName::Reset,
            FailureKind::Transport(TransportFailure::Timeout) => FailureKindName::Timeout,
            FailureKind::Transport(TransportFailure::Dns) => FailureKindName::Dns,
            FailureKind::Transport(TransportFailure::Tls) => FailureKindName::Tls,
            FailureKind::Transport(TransportFailure::TlsExpired) => FailureKindName::TlsExpired,
            FailureKind::Transport(TransportFailure::TlsUnknownIssuer) => {
                FailureKindName::TlsUnknownIssuer
            }
            FailureKind::Transport(TransportFailure::TlsHostname) => FailureKindName::TlsHostname,
            FailureKind::Transport(TransportFailure::Connect) => FailureKindName::Connect,
            FailureKind::Protocol(ProtocolFailure::InvalidHttp) => FailureKindName::Protocol,
            FailureKind::Protocol(ProtocolFailure::BodyTooLarge) => FailureKindName::BodyTooLarge,
            FailureKind::Protocol(ProtocolFailure::TooManyRedirects) => {
                FailureKindName::TooManyRedirects
            }
            FailureKind::Protocol(ProtocolFailure::HttpStatus(_)) => FailureKindName::Status,
            FailureKind::Protocol(ProtocolFailure::NoHttp2) => FailureKindName::NoHttp2,
            FailureKind::Protocol(ProtocolFailure::GrpcStatus(_)) => FailureKindName::GrpcStatus,
            FailureKind::Protocol(ProtocolFailure::ServerClosed) => FailureKindName::ServerClosed,
            FailureKind::Protocol(ProtocolFailure::NotConnected) => FailureKindName::NotConnected,
            FailureKind::Protocol(ProtocolFailure::InvalidWebSocket) => FailureKindName::Protocol,
            FailureKind::Check(CheckFailure::Expect(_)) => FailureKindName::Expect,
            FailureKind::Check(CheckFailure::Capture(_)) => FailureKindName::Capture,
            FailureKind::Check(CheckFailure::Unset(_)) => FailureKindName::Unset,
            FailureKind::Check(CheckFailure::NotJson) => FailureKindName::NotJson,
            FailureKind::Check(CheckFailure::InvalidRequest) => FailureKindName::InvalidRequest,
        }
    }
}

/// One point of the time series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SeriesEntry {
    /// Seconds since the start, at the end of this point's interval.
    pub t: f64,
    /// Length of the interval, in seconds.
    pub width: f64,
    pub requests: u64,
    pub failures: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    /// Active users (closed model) or running iterations (open model).
    pub users: u32,
    pub dropped: u64,
}

impl From<&SeriesPoint> for SeriesEntry {
    fn from(p: &SeriesPoint) -> Self {
        SeriesEntry {
            t: p.t,
            width: p.width,
            requests: p.requests,
            failures: p.failures,
            p50_ms: p.p50_ms,
            p95_ms: p.p95_ms,
            p99_ms: p.p99_ms,
            users: p.users,
            dropped: p.dropped,
        }
    }
}

/// How the load generator itself did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GeneratorInfo {
    /// CPU time used (user + system), in seconds.
    pub cpu_seconds: f64,
    /// CPU use over the last interval, in percent of one core.
    pub cpu_percent: f64,
    /// Scheduling lag p99, ms.
    pub lag_p99_ms: f64,
    /// Largest scheduling lag, ms.
    pub lag_max_ms: f64,
    /// Set when the generator could not keep up: latencies then include its own
    /// delays and cannot be trusted.
    pub saturated: Option<String>,
}

impl From<&GeneratorHealth> for GeneratorInfo {
    fn from(g: &GeneratorHealth) -> Self {
        GeneratorInfo {
            cpu_seconds: g.cpu_seconds,
            cpu_percent: g.cpu_percent,
            lag_p99_ms: g.lag_p99_ms,
            lag_max_ms: g.lag_max_ms,
            saturated: g.saturated.clone(),
        }
    }
}

impl JsonReport {
    /// The report of a run that started at `started` and whose final snapshot is
    /// `snap`, with its SLO `verdicts`. The baseline comparison is added by
    /// [`super::RunResult::new`].
    pub fn build(
        plan: &CompiledPlan,
        snap: &Snapshot,
        verdicts: &[SloVerdict],
        started: SystemTime,
    ) -> JsonReport {
        let requests = plan
            .requests
            .iter()
            .zip(&snap.requests)
            .map(|(info, stats)| {
                request_report(
                    plan,
                    snap,
                    &info.name,
                    Some(info.call.label().to_owned()),
                    stats,
                )
            })
            .collect();
        JsonReport {
            version: REPORT_VERSION,
            plan: PlanInfo {
                name: plan.name.clone(),
                file: plan.source.display().to_string(),
                target: plan.target.clone(),
                fingerprint: plan.fingerprint.to_string(),
            },
            started_at: rfc3339(started),
            duration_s: snap.elapsed.as_secs_f64(),
            planned_s: snap.planned.map(|d| d.as_secs_f64()),
            end: EndInfo::from_reason(&snap.end),
            passed: verdicts.iter().all(|v| v.passed),
            iterations: snap.iterations,
            dropped: snap.dropped,
            total: request_report(plan, snap, AGGREGATED, None, &snap.total()),
            requests,
            series: snap.series.iter().map(SeriesEntry::from).collect(),
            slos: verdicts.to_vec(),
            generator: GeneratorInfo::from(&snap.generator),
            baseline: None,
            search: None,
            workers: Vec::new(),
        }
    }

    /// The run's length.
    pub fn duration(&self) -> Duration {
        Duration::try_from_secs_f64(self.duration_s).unwrap_or_default()
    }

    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        // Only strings, numbers, options and vectors: serialization cannot fail, but
        // a non-finite float would be written as null rather than panic.
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}

fn request_report(
    plan: &CompiledPlan,
    snap: &Snapshot,
    name: &str,
    method: Option<String>,
    stats: &RequestStats,
) -> RequestReport {
    let mut failure_reasons: Vec<FailureReport> = stats
        .reasons
        .iter()
        .map(|(kind, count)| FailureReport {
            reason: kind.describe(plan),
            kind: FailureKindName::from(kind),
            count: *count,
        })
        .collect();
    // Most frequent first; ties keep the typed order, so the output is stable.
    failure_reasons.sort_by_key(|f| std::cmp::Reverse(f.count));
    RequestReport {
        name: name.to_string(),
        method,
        count: stats.count,
        failures: stats.failures,
        error_rate: stats.error_rate(),
        rps: snap.rps(stats),
        bytes: stats.bytes,
        mean_bytes: if stats.count == 0 {
            0.0
        } else {
            stats.bytes as f64 / stats.count as f64
        },
        latency_ms: LatencyReport {
            min: stats.min_ms(),
            mean: stats.mean_ms(),
            max: stats.max_ms(),
            p50: stats.percentile_ms(50.0),
            p90: stats.percentile_ms(90.0),
            p95: stats.percentile_ms(95.0),
            p99: stats.percentile_ms(99.0),
            p99_9: stats.percentile_ms(99.9),
        },
        failure_reasons,
        versions: HttpVersionUsed::ALL
            .into_iter()
            .zip(stats.versions)
            .filter(|(_, n)| *n > 0)
            .map(|(v, n)| (v.label().to_owned(), n))
            .collect(),
    }
}

/// `t` as RFC 3339 in UTC, to the millisecond.
pub fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The JSON Schema of [`JsonReport`], as checked in at `schemas/report.schema.json`.
pub fn report_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(JsonReport)).unwrap_or_default()
}

#[cfg(test)]
#[path = "json_tests.rs"]
mod tests;
