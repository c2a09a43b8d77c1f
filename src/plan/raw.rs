//! The raw plan: serde types that mirror the file, key for key.
//!
//! These types accept what the file says and keep where it says it ([`Sp`]); the
//! compiler checks the meaning. Values that may take several shapes (`status: 200 |
//! [200, 201] | 2xx`, matchers, captures, SLO lines) are kept as [`Node`]s and checked
//! by the compiler with a precise, located message, instead of `#[serde(untagged)]`.
//! The JSON Schema (`swarm schema`) is generated from these same types.

use schemars::JsonSchema;
use serde::Deserialize;

use super::de::{Sp, SpMap, Text};
use super::node::Node;

/// A swarm load-test plan.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a plan (a map with `name`, `load` and `flows`)"
)]
#[schemars(title = "swarm plan")]
pub struct RawPlan {
    /// Names the run, the JUnit suite and the reports.
    pub name: Sp<String>,
    /// Base URL for relative request URLs; `--target URL` or `SWARM_TARGET` override it.
    /// `${ENV}` and `${ENV:-default}` are expanded.
    pub target: Option<Sp<String>>,
    /// Applied to every request; a step's own value wins.
    pub defaults: Option<RawDefaults>,
    /// How HTTP requests are made, plan-wide.
    pub http: Option<RawHttp>,
    /// Plan-wide constants, usable as `{{ name }}`. `${ENV}` and `${ENV:-default}` are
    /// expanded in string values; `--var K=V` overrides them.
    #[schemars(with = "Option<std::collections::BTreeMap<String, serde_json::Value>>")]
    pub vars: Option<SpMap<Node>>,
    /// Data feeders: CSV files whose columns are usable as `{{ feeder.column }}`.
    pub data: Option<SpMap<RawFeeder>>,
    /// How load is applied, and when the run ends.
    pub load: Sp<RawLoad>,
    /// What the users do; at least one flow.
    pub flows: Sp<Vec<Sp<RawFlow>>>,
    /// Service level objectives; they decide the exit code. Without `slo`, the run
    /// must have no failed request (`failures == 0`).
    #[schemars(with = "Option<Vec<SloEntrySchema>>")]
    pub slo: Option<Sp<Vec<Node>>>,
    /// Where gRPC steps get their schema: `.proto` files, or the target's server
    /// reflection.
    pub grpc: Option<Sp<RawGrpc>>,
}

/// The schema of the plan's gRPC steps, read when the plan is compiled.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a map with `proto` (and `import_paths`) or `reflection: true`"
)]
pub struct RawGrpc {
    /// `.proto` files, relative to the plan file, compiled with the plan.
    pub proto: Option<Vec<Sp<String>>>,
    /// Directories imports are looked up in, relative to the plan file (default: the
    /// directories of the `proto` files).
    pub import_paths: Option<Vec<Sp<String>>>,
    /// Ask the target's gRPC server reflection service for the schema when the plan
    /// is compiled (before any load is sent).
    pub reflection: Option<Sp<bool>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a map with `headers`, `timeout`, `max_response_head` or `max_response_body`"
)]
pub struct RawDefaults {
    /// Headers sent with every request.
    pub headers: Option<SpMap<Text>>,
    /// Per-request timeout, e.g. `10s` (default 30s). A timeout is a failed request.
    pub timeout: Option<Sp<Text>>,
    /// The largest response head (status line and headers) read, e.g. `64KiB` (the
    /// default). A larger one fails the request as "response too large".
    pub max_response_head: Option<Sp<Text>>,
    /// The largest response body read, e.g. `10MiB` (the default). A larger one fails
    /// the request as "response too large" as soon as it passes the limit.
    pub max_response_body: Option<Sp<Text>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a map with `version`")]
pub struct RawHttp {
    /// `auto` (the default): HTTP/2 where TLS negotiates it, else HTTP/1.1; `"1.1"`:
    /// HTTP/1.1 only; `"2"`: HTTP/2 over TLS only; `h2c`: HTTP/2 on cleartext
    /// targets with prior knowledge.
    #[schemars(with = "Option<HttpVersionSchema>")]
    pub version: Option<Sp<Text>>,
}

/// `auto`, `"1.1"`, `"2"` or `h2c` (unquoted `1.1` and `2` are read as these too).
#[derive(JsonSchema)]
#[schemars(untagged)]
pub enum HttpVersionSchema {
    Name(HttpVersionName),
    Number(HttpVersionNumber),
}

#[derive(JsonSchema)]
pub enum HttpVersionName {
    #[serde(rename = "auto")]
    Auto,
    #[serde(rename = "1.1")]
    Http1,
    #[serde(rename = "2")]
    Http2,
    #[serde(rename = "h2c")]
    H2c,
}

/// `1.1` or `2`, written unquoted.
#[derive(JsonSchema)]
#[schemars(extend("enum" = [1.1, 2]))]
#[expect(dead_code, reason = "describes the schema only")]
pub struct HttpVersionNumber(f64);

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a feeder (a map with `csv` and `pick`)"
)]
pub struct RawFeeder {
    /// The CSV file, relative to the plan file; its first line names the columns.
    pub csv: Sp<String>,
    /// How rows are taken (default `sequential`).
    pub pick: Option<Sp<RawPick>>,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RawPick {
    /// Rows in order, wrapping around.
    Sequential,
    /// A random row each time.
    Random,
    /// Each row once; the run ends when they are exhausted.
    Unique,
}

/// Closed model: `users` (+ `spawn_rate`) or `stages` of users. Open model:
/// `arrival_rate` (+ `max_users`) or `stages` of arrival rates.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a load shape (a map)")]
pub struct RawLoad {
    /// Closed model: concurrent virtual users.
    pub users: Option<Sp<i64>>,
    /// Closed model: users started per second (default: all at once).
    pub spawn_rate: Option<Sp<Text>>,
    /// Open model: new iterations per second (`200`, `200/s`, `600/m`).
    pub arrival_rate: Option<Sp<Text>>,
    /// Open model: cap on concurrently running iterations (default 1000); arrivals
    /// past it are counted as dropped.
    pub max_users: Option<Sp<i64>>,
    /// How long the run lasts, e.g. `2m`.
    pub duration: Option<Sp<Text>>,
    /// Exactly this many flow iterations run, shared among the users.
    pub iterations: Option<Sp<i64>>,
    /// Linear ramps between targets: `{ duration, users }` or `{ duration, arrival_rate }`.
    pub stages: Option<Sp<Vec<Sp<RawStage>>>>,
    /// A capacity search instead of a fixed load: the most load the SLOs hold at.
    pub search: Option<Sp<RawSearch>>,
    /// With `search`: exit 1 when the capacity found is below this (`800/s`, or a
    /// user count).
    pub require: Option<Sp<Text>>,
}

/// `load.search`: a range of users or arrival rates, and how to search it.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a capacity search (a map with `users` or `arrival_rate`)"
)]
pub struct RawSearch {
    /// Closed model: the range of users, e.g. `10..5000`.
    pub users: Option<Sp<Text>>,
    /// Open model: the range of arrival rates, e.g. `20/s..5000/s`.
    pub arrival_rate: Option<Sp<Text>>,
    /// Growth while every step passes, e.g. `2x` (default `2x`).
    pub step: Option<Sp<Text>>,
    /// Stop bisecting when the bracket [pass, fail] is this narrow (default `5%`).
    pub precision: Option<Sp<Text>>,
    /// Each step first ramps and warms up for this long, not judged (default `10s`).
    pub warmup: Option<Sp<Text>>,
    /// Then judges every SLO line on this window only (default `30s`).
    pub hold: Option<Sp<Text>>,
    /// Re-run the best passing step this many times (default 1).
    pub confirm: Option<Sp<i64>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a stage (a map with `duration` and `users` or `arrival_rate`)"
)]
pub struct RawStage {
    /// How long the ramp to this stage's target takes.
    pub duration: Sp<Text>,
    /// Closed model: users at the end of the stage.
    pub users: Option<Sp<i64>>,
    /// Open model: arrival rate at the end of the stage.
    pub arrival_rate: Option<Sp<Text>>,
}

/// What one kind of user does.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a flow (a map with `name` and `steps`)"
)]
pub struct RawFlow {
    pub name: Sp<String>,
    /// Share of the users (default 1).
    pub weight: Option<Sp<i64>>,
    /// Pause between steps: `2s` constant, `1s..3s` uniform.
    pub think: Option<Sp<Text>>,
    /// An iteration takes at least this long.
    pub pace: Option<Sp<Text>>,
    /// Run once per user before the first iteration.
    pub setup: Option<Vec<Sp<RawStep>>>,
    /// One iteration, run again and again.
    pub steps: Sp<Vec<Sp<RawStep>>>,
    /// Run once when the user stops.
    pub teardown: Option<Vec<Sp<RawStep>>>,
}

/// A request (exactly one of `get post put patch delete head options grpc`), a
/// WebSocket or TCP step (`ws ws_send ws_recv ws_close tcp tcp_send`), a pause
/// (`think`) or a group of HTTP requests sent at once (`parallel`).
// (Not a doc comment, which would change the schema: the fields mirror the file's
// keys, and `RawStep::calls` reads the protocol keys as one `RawCall`.)
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a step (a map such as `get: /path`)")]
pub struct RawStep {
    pub get: Option<Sp<String>>,
    pub post: Option<Sp<String>>,
    pub put: Option<Sp<String>>,
    pub patch: Option<Sp<String>>,
    pub delete: Option<Sp<String>>,
    pub head: Option<Sp<String>>,
    pub options: Option<Sp<String>>,
    /// A gRPC call: `package.Service/Method` (needs the plan's `grpc` schema).
    pub grpc: Option<Sp<String>>,
    /// The gRPC request message in its JSON form; strings inside are templates.
    #[schemars(with = "Option<serde_json::Value>")]
    pub message: Option<Node>,
    /// gRPC metadata (request headers) sent with the call; values are templates.
    pub metadata: Option<SpMap<Text>>,
    /// The stats key (default: `METHOD /path`, the path before templating).
    pub name: Option<Sp<String>>,
    pub headers: Option<SpMap<Text>>,
    /// Query parameters, url-encoded and appended to the URL.
    pub query: Option<SpMap<Text>>,
    /// A JSON body: any value; strings inside are templates.
    #[schemars(with = "Option<serde_json::Value>")]
    pub json: Option<Node>,
    /// A form body (url-encoded).
    pub form: Option<SpMap<Text>>,
    /// A raw body.
    pub body: Option<Sp<String>>,
    /// Per-request timeout (default: `defaults.timeout`, else 30s).
    pub timeout: Option<Sp<Text>>,
    pub expect: Option<Sp<RawExpect>>,
    /// Values to keep from the response: `name: $.json.path`, `name: { header: h }`,
    /// `name: { regex: '...' }` or `name: { json: $.path }`.
    #[schemars(with = "Option<std::collections::BTreeMap<String, CaptureSchema>>")]
    pub capture: Option<SpMap<Node>>,
    /// An explicit pause (a step of its own): `5s` or `1s..3s`.
    pub think: Option<Sp<Text>>,
    /// WebSocket: connects to this URL (`/path` joins the target; http becomes ws,
    /// https wss). `headers` are sent with the handshake.
    pub ws: Option<Sp<String>>,
    /// WebSocket: the subprotocols offered in the handshake.
    pub subprotocols: Option<Sp<Vec<Sp<String>>>>,
    /// WebSocket: sends a message: a string (text), or one of `{ text }`, `{ json }`,
    /// `{ binary }` (base64).
    #[schemars(with = "Option<PayloadSchema>")]
    pub ws_send: Option<Node>,
    /// WebSocket: waits for a message without sending: `{ match, timeout }`.
    pub ws_recv: Option<Sp<RawAwait>>,
    /// WebSocket: closes the connection with this close code, e.g. `1000`.
    pub ws_close: Option<Sp<i64>>,
    /// TCP: connects to `host:port`.
    pub tcp: Option<Sp<String>>,
    /// TCP: connect with TLS (default false).
    pub tls: Option<Sp<bool>>,
    /// TCP: sends bytes: a string (text), or one of `{ text }`, `{ json }`,
    /// `{ binary }` (base64).
    #[schemars(with = "Option<PayloadSchema>")]
    pub tcp_send: Option<Node>,
    /// On `ws_send` and `tcp_send`: the reply to wait for, measured from the send.
    #[serde(rename = "await")]
    pub await_: Option<Sp<RawAwait>>,
    /// HTTP requests sent at once (a step of its own): over HTTP/2 as streams of the
    /// user's one connection, over HTTP/1.1 on up to 6 connections. Each is measured,
    /// checked and named on its own; their captures apply once all have answered.
    pub parallel: Option<Sp<Vec<Sp<RawStep>>>>,
}

/// What a WebSocket or TCP step waits for. WebSocket: the first message whose JSON
/// satisfies every `match` (any message without `match`). TCP: the bytes up to and
/// including `until`, or exactly `bytes` bytes.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a map with `match`, `until`, `bytes` or `timeout`"
)]
pub struct RawAwait {
    /// WebSocket: JSONPath (RFC 9535) -> matcher, as in `expect.json`.
    #[serde(rename = "match")]
    #[schemars(with = "Option<std::collections::BTreeMap<String, MatcherSchema>>")]
    pub match_: Option<SpMap<Node>>,
    /// TCP: read up to and including this delimiter, e.g. `"\r\n"`.
    pub until: Option<Sp<String>>,
    /// TCP: read exactly this many bytes.
    pub bytes: Option<Sp<i64>>,
    /// How long to wait (default: the step's timeout).
    pub timeout: Option<Sp<Text>>,
}

/// The call a step's protocol keys name. The file keeps one key per call (`get:`,
/// `post:`, ...) beside the keys every call shares (`name`, `timeout`, `expect`,
/// `capture`), so [`RawStep`] mirrors it field for field (and its errors name the
/// keys as written); this is where those keys become one value per protocol, which
/// the compiler turns into a `CallKind`. A new protocol adds its keys to [`RawStep`]
/// and a variant here.
#[derive(Debug, Clone)]
pub enum RawCall<'a> {
    /// `get: /path`, `post: /path`, ...: an HTTP request to that URL.
    Http {
        /// The key as written: the method in lower case.
        key: &'static str,
        method: http::Method,
        url: &'a Sp<String>,
    },
    /// `grpc: package.Service/Method`: a gRPC call.
    Grpc { method: &'a Sp<String> },
    /// `ws: /path`: opens the user's WebSocket connection.
    Ws(&'a Sp<String>),
    /// `ws_send: ...`: sends a message, and may await a reply.
    WsSend(&'a Node),
    /// `ws_recv: { ... }`: awaits a message.
    WsRecv(&'a Sp<RawAwait>),
    /// `ws_close: 1000`: closes the connection.
    WsClose(&'a Sp<i64>),
    /// `tcp: host:port`: opens the user's TCP connection.
    Tcp(&'a Sp<String>),
    /// `tcp_send: ...`: sends bytes, and may await a reply.
    TcpSend(&'a Node),
}

impl RawCall<'_> {
    /// The key the call is written with, e.g. `get`.
    pub fn key(&self) -> &'static str {
        match self {
            RawCall::Http { key, .. } => key,
            RawCall::Grpc { .. } => "grpc",
            RawCall::Ws(_) => "ws",
            RawCall::WsSend(_) => "ws_send",
            RawCall::WsRecv(_) => "ws_recv",
            RawCall::WsClose(_) => "ws_close",
            RawCall::Tcp(_) => "tcp",
            RawCall::TcpSend(_) => "tcp_send",
        }
    }

    /// Where the call's value is written.
    pub fn pos(&self) -> usize {
        match self {
            RawCall::Http { url, .. } => url.pos,
            RawCall::Grpc { method } => method.pos,
            RawCall::Ws(v) | RawCall::Tcp(v) => v.pos,
            RawCall::WsSend(n) | RawCall::TcpSend(n) => n.pos,
            RawCall::WsRecv(a) => a.pos,
            RawCall::WsClose(c) => c.pos,
        }
    }
}

impl RawStep {
    /// The calls the step's keys name, in the order the keys are declared above (a
    /// valid step names exactly one; a pause names none).
    pub fn calls(&self) -> Vec<RawCall<'_>> {
        use http::Method;
        [
            ("get", Method::GET, &self.get),
            ("post", Method::POST, &self.post),
            ("put", Method::PUT, &self.put),
            ("patch", Method::PATCH, &self.patch),
            ("delete", Method::DELETE, &self.delete),
            ("head", Method::HEAD, &self.head),
            ("options", Method::OPTIONS, &self.options),
        ]
        .into_iter()
        .filter_map(|(key, method, url)| url.as_ref().map(|url| RawCall::Http { key, method, url }))
        .chain(self.grpc.as_ref().map(|method| RawCall::Grpc { method }))
        .chain(self.ws.as_ref().map(RawCall::Ws))
        .chain(self.ws_send.as_ref().map(RawCall::WsSend))
        .chain(self.ws_recv.as_ref().map(RawCall::WsRecv))
        .chain(self.ws_close.as_ref().map(RawCall::WsClose))
        .chain(self.tcp.as_ref().map(RawCall::Tcp))
        .chain(self.tcp_send.as_ref().map(RawCall::TcpSend))
        .collect()
    }
}

/// What a response must satisfy.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a map of expectations")]
pub struct RawExpect {
    /// `200`, `[200, 201]` or `2xx`.
    #[schemars(with = "Option<StatusSchema>")]
    pub status: Option<Node>,
    /// Header name -> matcher.
    #[schemars(with = "Option<std::collections::BTreeMap<String, MatcherSchema>>")]
    pub headers: Option<SpMap<Node>>,
    /// JSONPath (RFC 9535) -> matcher.
    #[schemars(with = "Option<std::collections::BTreeMap<String, MatcherSchema>>")]
    pub json: Option<SpMap<Node>>,
    /// A matcher on the body text.
    #[schemars(with = "Option<MatcherSchema>")]
    pub body: Option<Node>,
    /// Slower than this is a failure, e.g. `500ms`.
    pub latency: Option<Sp<Text>>,
}

// ---------------------------------------------------------------------------------
// Schema-only shapes for values the compiler checks itself.

/// A status (`200`), a class (`2xx`), or a list of them.
#[derive(JsonSchema)]
#[schemars(untagged)]
pub enum StatusSchema {
    Code(u16),
    Class(String),
    Any(Vec<StatusOneSchema>),
}

#[derive(JsonSchema)]
#[schemars(untagged)]
pub enum StatusOneSchema {
    Code(u16),
    Class(String),
}

/// A message or bytes to send: a string is text.
#[derive(JsonSchema)]
#[schemars(untagged)]
pub enum PayloadSchema {
    Text(String),
    Of(PayloadOf),
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[expect(dead_code, reason = "describes the schema only")]
pub struct PayloadOf {
    /// Text; a template.
    text: Option<String>,
    /// A JSON value, sent as text; strings inside are templates.
    json: Option<serde_json::Value>,
    /// Bytes, written in base64.
    binary: Option<String>,
}

/// A plain value (equal), or a map of operators.
#[derive(JsonSchema)]
#[schemars(untagged)]
pub enum MatcherSchema {
    Ops(Box<MatcherOps>),
    Value(serde_json::Value),
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[expect(dead_code, reason = "describes the schema only")]
pub struct MatcherOps {
    eq: Option<serde_json::Value>,
    ne: Option<serde_json::Value>,
    gt: Option<f64>,
    gte: Option<f64>,
    lt: Option<f64>,
    lte: Option<f64>,
    contains: Option<serde_json::Value>,
    /// A regular expression.
    matches: Option<String>,
    exists: Option<bool>,
    /// A length, or a matcher on the length.
    len: Option<MatcherSchema>,
}

/// A JSONPath (short form), or one of `{ json }`, `{ header }`, `{ regex }`.
#[derive(JsonSchema)]
#[schemars(untagged)]
pub enum CaptureSchema {
    Path(String),
    From(CaptureFrom),
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[expect(dead_code, reason = "describes the schema only")]
pub struct CaptureFrom {
    json: Option<String>,
    header: Option<String>,
    /// The first group of the first match (the whole match without groups).
    regex: Option<String>,
}

/// `METRIC OP VALUE`, `{ line: ..., window: 30s, abort: true }`, or
/// `{ REQUEST NAME: "METRIC OP VALUE" | [ ... ] }`.
#[derive(JsonSchema)]
#[schemars(untagged)]
pub enum SloEntrySchema {
    Line(String),
    WithOptions(SloOptions),
    PerRequest(std::collections::BTreeMap<String, SloConditions>),
}

/// An SLO line with options. A map with a `line` key is read this way; a request
/// named `line` is written in the string form, `"line: p95 < 1s"`.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[expect(
    dead_code,
    reason = "only describes the JSON Schema; the compiler reads the node"
)]
pub struct SloOptions {
    /// The line: `METRIC OP VALUE` or `REQUEST NAME: METRIC OP VALUE`.
    line: String,
    /// Judge the line on this trailing window (whole seconds, e.g. `30s`) instead of
    /// the whole run; the verdict is the worst window seen.
    window: Option<String>,
    /// Stop the run as soon as the line fails (exit 1, reports written). Judged every
    /// second, never in the first 10 s.
    abort: Option<bool>,
}

#[derive(JsonSchema)]
#[schemars(untagged)]
pub enum SloConditions {
    One(String),
    Many(Vec<String>),
}
