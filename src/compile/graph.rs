//! The execution graph: a compiled, validated plan that the engine runs.
//!
//! Everything here is resolved: templates are parsed into segments, names are slot
//! indices, JSONPath queries and regexes are compiled, durations are [`Duration`]s.
//! The engine never sees raw plan types and never looks anything up by name while it
//! runs. Human-readable names (request names, expectation and capture descriptions)
//! live in tables indexed by small ids, so reports can render reasons without the hot
//! path formatting strings.

use std::path::PathBuf;
use std::time::Duration;

use http::{HeaderName, Method};
use serde_json::Value;

use super::jsonpath::JsonPath;
pub use super::socket_graph::{Payload, TcpAwait, TcpCall, WsAwait, WsCall, split_addr};

/// A compiled plan: the whole execution graph.
#[derive(Debug)]
pub struct CompiledPlan {
    /// The plan's `name`: names the run, the JUnit suite and the reports.
    pub name: String,
    /// The plan file this was compiled from (for annotations and messages).
    pub source: PathBuf,
    /// The base URL relative request URLs were resolved against (after `--target`).
    pub target: String,
    pub load: Load,
    /// The flows, in plan order.
    pub flows: Vec<Flow>,
    /// Every distinct request name, indexed by [`RequestId`]. Stats are kept per entry.
    pub requests: Vec<RequestInfo>,
    /// Every expectation, indexed by [`ExpectId`], for failure reasons.
    pub expectations: Vec<ExpectInfo>,
    /// Every capture, indexed by [`CaptureId`], for failure reasons.
    pub captures: Vec<CaptureInfo>,
    /// Every per-user variable slot (captures), indexed by [`SlotId`].
    pub slots: Vec<SlotInfo>,
    /// The data feeders, indexed by [`FeederId`].
    pub feeders: Vec<Feeder>,
    /// The SLOs; a plan without `slo` gets the implied `failures == 0`.
    pub slos: Vec<Slo>,
    /// `defaults.max_response_head` / `max_response_body`, when the plan sets them.
    pub limits: ResponseLimits,
    /// `http.version`: which HTTP version requests speak.
    pub http_version: HttpVersion,
    /// A hash of the plan text, its data files and the options that change what runs.
    pub fingerprint: super::fingerprint::Fingerprint,
}

/// Which HTTP version requests speak (`http.version`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum HttpVersion {
    /// HTTP/2 where TLS negotiates it (ALPN offers `h2` and `http/1.1`), else
    /// HTTP/1.1; cleartext targets speak HTTP/1.1. The default.
    #[default]
    Auto,
    /// HTTP/1.1 only (`"1.1"`).
    Http1,
    /// HTTP/2 over TLS only (`"2"`): a server that does not negotiate `h2`, or a
    /// cleartext URL, fails the request.
    Http2,
    /// HTTP/2 with prior knowledge on cleartext targets (`h2c`); over TLS as `"2"`.
    H2c,
}

impl HttpVersion {
    /// The version named as in a plan: `auto`, `1.1`, `2` or `h2c`.
    pub fn from_name(name: &str) -> Option<HttpVersion> {
        match name {
            "auto" => Some(HttpVersion::Auto),
            "1.1" => Some(HttpVersion::Http1),
            "2" => Some(HttpVersion::Http2),
            "h2c" => Some(HttpVersion::H2c),
            _ => None,
        }
    }
}

/// The largest response the plan accepts; `None` keeps the engine's default
/// ([`crate::engine::config::DEFAULT_HEAD_LIMIT`], `DEFAULT_BODY_LIMIT`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResponseLimits {
    pub head: Option<usize>,
    pub body: Option<usize>,
}

/// Index into [`CompiledPlan::requests`].
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct RequestId(pub u32);
/// Index into [`CompiledPlan::expectations`].
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct ExpectId(pub u32);
/// Index into [`CompiledPlan::captures`].
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct CaptureId(pub u32);
/// Index into a user's variable slots ([`CompiledPlan::slots`]).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct SlotId(pub u32);
/// Index into [`CompiledPlan::feeders`].
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct FeederId(pub u32);

/// A request name as it appears in stats tables and SLOs.
#[derive(Debug, Clone)]
pub struct RequestInfo {
    /// The step's `name`, or `METHOD /path` (the path before templating).
    pub name: String,
    /// What the first step with this name calls.
    pub call: CallType,
}

/// The protocol of a request name, and for HTTP its method: what the reports' Type
/// column shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallType {
    Http(Method),
    Grpc,
    Ws,
    Tcp,
}

impl CallType {
    /// The short label tables and reports show, e.g. `GET`.
    pub fn label(&self) -> &str {
        match self {
            CallType::Http(method) => method.as_str(),
            CallType::Grpc => "GRPC",
            CallType::Ws => "WS",
            CallType::Tcp => "TCP",
        }
    }
}

impl CallKind {
    /// The short label tables show for this call, e.g. `GET`.
    pub fn label(&self) -> &str {
        match self {
            CallKind::Http(h) => h.method.as_str(),
            CallKind::Grpc(_) => "GRPC",
            CallKind::Ws(_) => "WS",
            CallKind::Tcp(_) => "TCP",
        }
    }

    /// The protocol of this call, and for HTTP its method.
    pub fn call_type(&self) -> CallType {
        match self {
            CallKind::Http(h) => CallType::Http(h.method.clone()),
            CallKind::Grpc(_) => CallType::Grpc,
            CallKind::Ws(_) => CallType::Ws,
            CallKind::Tcp(_) => CallType::Tcp,
        }
    }
}

/// A human description of one expectation, e.g. `status 200` or `json $.items len >= 1`.
#[derive(Debug, Clone)]
pub struct ExpectInfo {
    pub request: RequestId,
    pub description: String,
}

/// A human description of one capture, e.g. `capture token from $.token`.
#[derive(Debug, Clone)]
pub struct CaptureInfo {
    pub request: RequestId,
    pub description: String,
}

/// A per-user variable (a capture target).
#[derive(Debug, Clone)]
pub struct SlotInfo {
    pub name: String,
}

// ---------------------------------------------------------------------------------
// Load

/// The most users (or, in the open model, `max_users`) one swarm process runs: far
/// past what one machine's memory and sockets hold, and low enough that a typo or a
/// hostile control request cannot ask for billions.
pub const MAX_USERS: u32 = 1_000_000;

/// How load is applied, and when the run ends.
#[derive(Debug, Clone, PartialEq)]
pub struct Load {
    pub model: LoadModel,
    /// The run ends this long after the first user starts (or after the stages).
    pub duration: Option<Duration>,
    /// Exactly this many flow iterations run, shared among the users.
    pub iterations: Option<u64>,
    /// A capacity search: the model starts at the range's low end and the run
    /// session steers it step by step; `duration` and `iterations` are unset.
    pub search: Option<Search>,
}

/// `load.search`: find the most load the target takes while the SLOs hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Search {
    pub axis: SearchAxis,
    /// The first level tried (> 0).
    pub low: f64,
    /// The highest level tried (>= `low`).
    pub high: f64,
    /// The growth factor while steps pass (> 1).
    pub step: f64,
    /// How narrow the bracket must get, as a fraction of the pass (> 0).
    pub precision: f64,
    /// Each step warms up this long (not judged)...
    pub warmup: Duration,
    /// ...then is judged on this window, with fresh histograms.
    pub hold: Duration,
    /// How many times the best pass is re-run before it is believed.
    pub confirm: u32,
    /// Exit 1 when the capacity found is below this.
    pub require: Option<f64>,
}

impl Search {
    /// The most steps one search runs, whatever its settings: a bound on a search
    /// whose range and precision would otherwise ask for very many steps.
    pub const MAX_STEPS: usize = 64;
    /// The most steps the growth from `low` to `high` may take, so that bisection
    /// and confirmation still fit in [`Search::MAX_STEPS`] after it.
    pub const MAX_GROWTH_STEPS: usize = Self::MAX_STEPS / 2;

    /// How many steps growing from `low` to `high` by `step` takes at most: the
    /// levels `low`, `low·step`, ... up to `high`.
    pub fn growth_steps(low: f64, high: f64, step: f64) -> usize {
        if high <= low || step <= 1.0 {
            return 1;
        }
        // Each step grows by at least `step` (levels are rounded up to move), so
        // this counts the steps to reach the top, the top included.
        1 + ((high / low).ln() / step.ln()).ceil() as usize
    }
}

/// What a capacity search varies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchAxis {
    /// Concurrent users (the closed model); levels are whole numbers.
    Users,
    /// Arrivals per second (the open model).
    Rate,
}

impl Load {
    /// How long the run lasts at most, if time-bounded: `duration`, or the sum of stages.
    pub fn total_duration(&self) -> Option<Duration> {
        let stages = match &self.model {
            LoadModel::Closed(ClosedLoad::Stages(s)) => Some(s.iter().map(|s| s.duration).sum()),
            LoadModel::Open(OpenLoad {
                rate: RateShape::Stages(s),
                ..
            }) => Some(s.iter().map(|s| s.duration).sum()),
            _ => None,
        };
        match (self.duration, stages) {
            (Some(d), Some(s)) => Some(d.min(s)),
            (d, s) => d.or(s),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum LoadModel {
    /// A population of virtual users (Locust style).
    Closed(ClosedLoad),
    /// Iterations arrive at a rate, whatever the target's speed.
    Open(OpenLoad),
}

#[derive(Debug, Clone, PartialEq)]
pub enum ClosedLoad {
    /// `users` started at `spawn_rate` per second (all at once when `None`).
    Fixed { users: u32, spawn_rate: Option<f64> },
    /// Linear ramps between stage targets, starting from 0 users.
    Stages(Vec<UsersStage>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UsersStage {
    pub duration: Duration,
    pub users: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OpenLoad {
    pub rate: RateShape,
    /// Cap on concurrently running iterations; arrivals past it are counted as dropped.
    pub max_users: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RateShape {
    /// Arrivals per second.
    Fixed(f64),
    /// Linear ramps between stage rates (per second), starting from 0.
    Stages(Vec<RateStage>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateStage {
    pub duration: Duration,
    /// Arrivals per second at the end of the stage.
    pub rate: f64,
}

// ---------------------------------------------------------------------------------
// Flows and steps

/// What one kind of user does.
#[derive(Debug)]
pub struct Flow {
    pub name: String,
    /// At least 1.
    pub weight: u32,
    /// The pause between steps.
    pub think: Option<Think>,
    /// An iteration takes at least this long.
    pub pace: Option<Duration>,
    /// Run once per user before the first iteration.
    pub setup: Vec<Step>,
    /// One iteration.
    pub steps: Vec<Step>,
    /// Run once when the user stops.
    pub teardown: Vec<Step>,
}

/// A pause: constant when `min == max`, else uniform in `[min, max]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Think {
    pub min: Duration,
    pub max: Duration,
}

#[derive(Debug)]
pub enum Step {
    /// A measured call: one exchange with the target, timed and checked.
    Call(Box<Call>),
    /// An explicit pause.
    Think(Think),
    /// HTTP calls sent at once (`parallel:`), each measured on its own.
    Parallel(Box<Parallel>),
}

impl Step {
    /// The calls the step makes: one, a group's, or none for a pause.
    pub fn calls(&self) -> &[Call] {
        match self {
            Step::Call(call) => std::slice::from_ref(&**call),
            Step::Parallel(group) => &group.calls,
            Step::Think(_) => &[],
        }
    }
}

/// A `parallel:` group: HTTP calls rendered from the variables as they were before
/// the group, sent together, and judged once all have answered (so no call of the
/// group reads another's captures, and no two capture the same name).
#[derive(Debug)]
pub struct Parallel {
    /// Every one is a [`CallKind::Http`] call.
    pub calls: Vec<Call>,
    /// The feeders the calls' templates read, each once.
    pub feeders: Vec<FeederId>,
}

/// One measured call, whatever its protocol: the parts every protocol shares (the
/// stats key, the timeout, what the reply must satisfy, what to keep from it, the
/// feeders its templates read) once, and the protocol's own parts in [`CallKind`].
#[derive(Debug)]
pub struct Call {
    /// The stats key.
    pub request: RequestId,
    /// Bounds the whole exchange (a timeout is a failed call).
    pub timeout: Duration,
    pub expect: Expect,
    pub captures: Vec<Capture>,
    /// The feeders this step's templates read, so a row is taken before rendering.
    pub feeders: Vec<FeederId>,
    pub kind: CallKind,
}

impl Call {
    /// How many JSONPath queries (checks and captures) read the reply's body.
    pub fn json_queries(&self) -> usize {
        let captures = self.captures.iter();
        self.expect.json.len()
            + captures
                .filter(|c| matches!(c.source, CaptureSource::Json(_)))
                .count()
    }
}

/// The protocol a call speaks, with its own compiled parts. The engine dispatches on
/// it with a `match`, never through a trait object, so the hot path stays as direct
/// as a single protocol's; a new protocol is a new variant (and a session of its own
/// in the engine).
#[derive(Debug)]
pub enum CallKind {
    Http(HttpCall),
    Ws(WsCall),
    Tcp(TcpCall),
    Grpc(GrpcCall),
}

/// The gRPC parts of a call: the method resolved in the plan's schema, and the request
/// message (encoded once when it has no templates).
#[derive(Debug)]
pub struct GrpcCall {
    pub method: prost_reflect::MethodDescriptor,
    /// The target's scheme and authority (and path prefix, if any).
    pub origin: http::Uri,
    /// `/package.Service/Method`.
    pub path: http::uri::PathAndQuery,
    pub message: GrpcMessage,
    /// Metadata sent with the call (request headers).
    pub metadata: Vec<(HeaderName, Template)>,
}

#[derive(Debug)]
pub enum GrpcMessage {
    /// The message's protobuf encoding, made when the plan was compiled.
    Encoded(bytes::Bytes),
    /// The message's JSON form, rendered and encoded per call.
    Json(JsonTemplate),
}

/// The HTTP parts of a call.
#[derive(Debug)]
pub struct HttpCall {
    pub method: Method,
    /// The full URL template (relative URLs already joined with the target).
    pub url: Template,
    /// Plan defaults merged with the step's own headers (the step wins).
    pub headers: Vec<(HeaderName, Template)>,
    /// Query parameters appended to the URL, url-encoded.
    pub query: Vec<(String, Template)>,
    pub body: Option<Body>,
    /// The request rendered once, when URL, query, headers and body have no
    /// per-user templates: filled on the call's first use, so the fields above must
    /// not change after the call was first sent.
    pub fixed: crate::engine::http::FixedCall,
}

impl HttpCall {
    /// Whether URL, query, headers and body render the same for every user and
    /// every request (only literals and plan variables).
    pub fn is_fixed(&self) -> bool {
        self.url.is_fixed()
            && self.query.iter().all(|(_, t)| t.is_fixed())
            && self.headers.iter().all(|(_, t)| t.is_fixed())
            && match &self.body {
                None => true,
                Some(Body::Json(t)) => t.is_fixed(),
                Some(Body::Form(pairs)) => pairs.iter().all(|(_, t)| t.is_fixed()),
                Some(Body::Raw(t)) => t.is_fixed(),
            }
    }
}

#[derive(Debug)]
pub enum Body {
    /// Sent as `application/json`; strings inside are templates.
    Json(JsonTemplate),
    /// Sent as `application/x-www-form-urlencoded`.
    Form(Vec<(String, Template)>),
    /// Sent as is.
    Raw(Template),
}

/// A JSON value whose strings are templates. A string that is exactly one template
/// expression keeps the expression's type when rendered (a number stays a number).
#[derive(Debug)]
pub enum JsonTemplate {
    Value(Value),
    String(Template),
    Array(Vec<JsonTemplate>),
    Object(Vec<(String, JsonTemplate)>),
}

impl JsonTemplate {
    /// Whether every string inside is fixed ([`Template::is_fixed`]).
    pub fn is_fixed(&self) -> bool {
        match self {
            JsonTemplate::Value(_) => true,
            JsonTemplate::String(t) => t.is_fixed(),
            JsonTemplate::Array(items) => items.iter().all(JsonTemplate::is_fixed),
            JsonTemplate::Object(fields) => fields.iter().all(|(_, v)| v.is_fixed()),
        }
    }
}

// ---------------------------------------------------------------------------------
// Templates

/// A string with `{{ expr }}` holes, parsed once.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub segments: Vec<Segment>,
}

impl Template {
    /// A template with no holes.
    pub fn literal(s: impl Into<String>) -> Self {
        Template {
            segments: vec![Segment::Literal(s.into())],
        }
    }

    /// The text when there are no holes, so the engine can skip rendering.
    pub fn as_literal(&self) -> Option<&str> {
        match self.segments.as_slice() {
            [] => Some(""),
            [Segment::Literal(s)] => Some(s),
            _ => None,
        }
    }

    /// Whether it renders the same for every user and request: only literals and
    /// plan variables, no captures, feeder cells or functions.
    pub fn is_fixed(&self) -> bool {
        self.segments
            .iter()
            .all(|s| matches!(s, Segment::Literal(_) | Segment::Const(_)))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Segment {
    Literal(String),
    /// A plan variable, resolved at compile time; keeps its JSON type.
    Const(Value),
    /// A per-user variable set by a capture.
    Slot(SlotId),
    /// A column of the current row of a feeder.
    Feeder {
        feeder: FeederId,
        column: u32,
    },
    Func(Func),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    /// A random v4 UUID.
    Uuid,
    /// A random integer in `[lo, hi]`.
    Rand { lo: i64, hi: i64 },
    /// Unix time in milliseconds.
    Now,
    /// This user's index.
    User,
    /// This user's iteration number.
    Iteration,
}

// ---------------------------------------------------------------------------------
// Expectations and captures

/// What a response must satisfy.
#[derive(Debug, Default)]
pub struct Expect {
    /// `None`: a status of 400 or more fails (the default rule).
    pub status: Option<StatusExpect>,
    pub headers: Vec<HeaderExpect>,
    pub json: Vec<JsonExpect>,
    pub body: Option<BodyExpect>,
    pub latency: Option<LatencyExpect>,
}

#[derive(Debug)]
pub struct StatusExpect {
    pub id: ExpectId,
    /// The status must match at least one.
    pub allowed: Vec<StatusPattern>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusPattern {
    Exact(u16),
    /// `2xx` is `Class(2)`.
    Class(u8),
}

impl StatusPattern {
    pub fn matches(self, status: u16) -> bool {
        match self {
            StatusPattern::Exact(s) => s == status,
            StatusPattern::Class(c) => status / 100 == c as u16,
        }
    }
}

#[derive(Debug)]
pub struct HeaderExpect {
    pub id: ExpectId,
    pub name: HeaderName,
    pub matcher: Matcher,
}

#[derive(Debug)]
pub struct JsonExpect {
    pub id: ExpectId,
    pub path: JsonPath,
    pub matcher: Matcher,
}

#[derive(Debug)]
pub struct BodyExpect {
    pub id: ExpectId,
    pub matcher: Matcher,
}

#[derive(Debug)]
pub struct LatencyExpect {
    pub id: ExpectId,
    pub max: Duration,
}

/// A check on a value. A plain value in the plan means [`Matcher::Eq`]; a map of
/// several operators means [`Matcher::All`].
#[derive(Debug, Clone)]
pub enum Matcher {
    Eq(Value),
    Ne(Value),
    Gt(f64),
    Gte(f64),
    Lt(f64),
    Lte(f64),
    /// Substring of a string, element of an array, or key of an object.
    Contains(Value),
    Matches(regex::Regex),
    /// `exists: true` holds when the value is present; `false` when it is absent.
    Exists(bool),
    /// The length of a string, array or object.
    Len(Box<Matcher>),
    All(Vec<Matcher>),
}

/// Stores a value from a response into a per-user slot.
#[derive(Debug)]
pub struct Capture {
    pub id: CaptureId,
    pub slot: SlotId,
    pub source: CaptureSource,
}

#[derive(Debug)]
pub enum CaptureSource {
    /// The first match of a JSONPath query.
    Json(JsonPath),
    Header(HeaderName),
    /// The first group of the first match in the body (the whole match without groups).
    Regex(regex::Regex),
}

// ---------------------------------------------------------------------------------
// Feeders

/// A CSV data feeder. The header was read at compile time; the rows are loaded when
/// the run starts (a file that vanished by then is a run error).
#[derive(Debug, Clone)]
pub struct Feeder {
    pub name: String,
    /// Absolute path (resolved relative to the plan file).
    pub path: PathBuf,
    /// The path as the plan wrote it (relative to the plan file, or absolute): what
    /// a copy of the plan placed elsewhere resolves again.
    pub file: String,
    pub columns: Vec<String>,
    pub pick: Pick,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// Rows in order, wrapping around.
    Sequential,
    Random,
    /// Each row once; the run ends when they are exhausted.
    Unique,
}

// ---------------------------------------------------------------------------------
// SLOs

/// One SLO line, e.g. `p95 < 300ms` or `list products: p95 < 200ms`.
#[derive(Debug, Clone, PartialEq)]
pub struct Slo {
    /// The condition as written (without the request name), for messages.
    pub text: String,
    /// `None`: over all requests.
    pub request: Option<RequestId>,
    pub metric: Metric,
    pub op: CmpOp,
    /// In the metric's unit: milliseconds for latencies, a fraction for
    /// `error_rate` (1% is 0.01), per second for `rps`, a count otherwise.
    pub threshold: f64,
    /// Where the SLO is written in the plan (1-based), for annotations; `None` for the
    /// implied SLO.
    pub line: Option<u32>,
    pub column: Option<u32>,
    /// Judged on this trailing window rather than the whole run; the verdict is the
    /// worst window seen.
    pub window: Option<Duration>,
    /// The run stops as soon as this line fails (judged every second, never in the
    /// first [`ABORT_GRACE`]).
    pub abort: bool,
}

/// How long into a run an aborting SLO line is not yet judged: the first seconds'
/// few samples would make any line flap.
pub const ABORT_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Metric {
    Min,
    Mean,
    Max,
    /// A percentile in `(0, 100]`, e.g. 95.0 or 99.9.
    Percentile(f64),
    ErrorRate,
    Rps,
    Requests,
    Failures,
    Dropped,
}

impl Metric {
    /// Whether the metric is a latency in milliseconds.
    pub fn is_latency(self) -> bool {
        matches!(
            self,
            Metric::Min | Metric::Mean | Metric::Max | Metric::Percentile(_)
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
}

impl CmpOp {
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            CmpOp::Lt => value < threshold,
            CmpOp::Le => value <= threshold,
            CmpOp::Gt => value > threshold,
            CmpOp::Ge => value >= threshold,
            CmpOp::Eq => value == threshold,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Eq => "==",
        }
    }
}
