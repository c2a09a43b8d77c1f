//! The compiler: turns a plan file into a validated execution graph
//! ([`graph::CompiledPlan`]).
//!
//! Everything that can be resolved before load is resolved here, once: durations,
//! rates, templates and the names in them, JSONPath queries, regexes, matchers, SLO
//! lines, weights and the load shape. Problems are collected, not returned at the
//! first one, and come back as [`PlanErrors`] with a file, line and column each.

mod env;
mod expect;
mod feeders;
pub mod fingerprint;
mod flows;
pub mod graph;
mod grpc;
mod grpc_message;
pub mod jsonpath;
mod load;
mod parallel;
mod search;
mod slo;
mod socket_graph;
mod sockets;
mod template;
pub mod units;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::HeaderName;
use serde_json::Value;

use crate::plan::de::{Sp, closest};
use crate::plan::node::{Kind, Node};
use crate::plan::raw::RawPlan;
use crate::plan::{Diag, Format, PlanErrors};
use graph::{
    CallKind, CaptureInfo, CompiledPlan, ExpectInfo, Feeder, FeederId, RequestId, RequestInfo,
    SlotId, SlotInfo, Template,
};

pub use grpc::code_name as grpc_code_name;

/// Command-line overrides applied while compiling.
#[derive(Debug, Clone, Default)]
pub struct CompileOptions {
    /// `--var K=V`: overrides a plan variable (which must exist).
    pub vars: Vec<(String, String)>,
    /// `--target URL` / `SWARM_TARGET`: overrides the plan's `target`.
    pub target: Option<String>,
    /// `--users N`: the closed model with N fixed users.
    pub users: Option<u32>,
    /// `--duration D`: the run's duration.
    pub duration: Option<Duration>,
    /// Values of `${NAME}` that win over the process environment: a worker compiles
    /// with its coordinator's. The fingerprint covers the values they resolve to.
    pub env: Vec<(String, String)>,
    /// Values swarm provides to the plans that declare these variables, and that
    /// plans without them ignore: `--demo` provides `demo_tcp`, the address of the
    /// demo's TCP port. `--var` still wins.
    pub provided: Vec<(String, String)>,
}

impl CompileOptions {
    /// The value of environment variable `name` for `${NAME}`.
    fn env_var(&self, name: &str) -> Option<String> {
        match self.env.iter().find(|(k, _)| k == name) {
            Some((_, v)) => Some(v.clone()),
            None => std::env::var(name).ok(),
        }
    }
}

/// The environment variables a plan's text names as `${NAME}` (or `${NAME:-d}`), in
/// order of first use: what a coordinator passes on to its workers.
pub fn env_names(text: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for (i, _) in text.match_indices("${") {
        let rest = &text[i + 2..];
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let name = &rest[..end];
        if !name.is_empty() && !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
    }
    names
}

/// Reads and compiles a plan file.
pub fn compile_file(path: &Path, opts: &CompileOptions) -> Result<CompiledPlan, PlanErrors> {
    let text = crate::plan::read_source(path)?;
    compile_str(&text, path, opts)
}

/// Compiles plan text; `path` names it in messages, decides the format by extension,
/// and anchors relative data file paths.
pub fn compile_str(
    source: &str,
    path: &Path,
    opts: &CompileOptions,
) -> Result<CompiledPlan, PlanErrors> {
    let Some(format) = Format::of(path) else {
        return Err(PlanErrors::whole_file(
            path,
            "unknown plan format: the file name must end in .yaml, .yml or .toml",
        ));
    };
    let fail = |diags: Vec<Diag>| PlanErrors::from_diags(path, source, diags);
    let tree = crate::plan::parse_tree(source, format).map_err(|d| fail(vec![d]))?;
    let (raw, mut diags) = crate::plan::parse_raw(&tree);
    let Some(raw) = raw else {
        return Err(fail(diags));
    };
    let mut c = Compiler::new(source, path, opts);
    let plan = c.plan(&raw);
    diags.append(&mut c.diags);
    if diags.is_empty() {
        Ok(plan)
    } else {
        Err(fail(diags))
    }
}

/// The state of one compilation: the tables being filled and the problems found.
struct Compiler<'a> {
    source: &'a str,
    path: &'a Path,
    opts: &'a CompileOptions,
    diags: Vec<Diag>,
    vars: HashMap<String, Value>,
    feeders: Vec<Feeder>,
    /// SHA-256 of each feeder's data file, in `feeders` order (for the fingerprint).
    data_digests: Vec<[u8; 32]>,
    target: String,
    requests: Vec<RequestInfo>,
    request_ids: HashMap<String, RequestId>,
    expectations: Vec<ExpectInfo>,
    captures: Vec<CaptureInfo>,
    slots: Vec<SlotInfo>,
    slot_ids: HashMap<String, SlotId>,
    default_headers: Vec<(HeaderName, Template)>,
    default_header_feeders: Vec<FeederId>,
    default_timeout: Duration,
    /// The target was given but is unusable (already reported).
    target_failed: bool,
    limits: graph::ResponseLimits,
    http_version: graph::HttpVersion,
    /// The plan's gRPC schema, when it has one and it could be read.
    grpc: Option<grpc::GrpcSchema>,
    /// A gRPC step without a schema was already reported.
    grpc_failed: bool,
}

/// The timeout of a request when neither the step nor `defaults` sets one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

impl<'a> Compiler<'a> {
    fn new(source: &'a str, path: &'a Path, opts: &'a CompileOptions) -> Self {
        Compiler {
            source,
            path,
            opts,
            diags: Vec::new(),
            vars: HashMap::new(),
            feeders: Vec::new(),
            data_digests: Vec::new(),
            target: String::new(),
            requests: Vec::new(),
            request_ids: HashMap::new(),
            expectations: Vec::new(),
            captures: Vec::new(),
            slots: Vec::new(),
            slot_ids: HashMap::new(),
            default_headers: Vec::new(),
            default_header_feeders: Vec::new(),
            default_timeout: DEFAULT_TIMEOUT,
            target_failed: false,
            limits: graph::ResponseLimits::default(),
            http_version: graph::HttpVersion::default(),
            grpc: None,
            grpc_failed: false,
        }
    }

    fn plan(&mut self, raw: &RawPlan) -> CompiledPlan {
        self.vars(raw);
        self.target(raw);
        if let Some(data) = &raw.data {
            self.feeders(data);
        }
        if let Some(d) = &raw.defaults {
            self.defaults(d);
        }
        if let Some(version) = raw.http.as_ref().and_then(|h| h.version.as_ref()) {
            match graph::HttpVersion::from_name(&version.value.0) {
                Some(v) => self.http_version = v,
                None => self.error_help(
                    version.pos,
                    format!("unknown HTTP version `{}`", version.value.0),
                    "write `auto`, \"1.1\", \"2\" (HTTP/2 over TLS) or `h2c` (cleartext HTTP/2)",
                ),
            }
        }
        if let Some(g) = &raw.grpc {
            self.grpc_schema(g);
        }
        let load = self.load(&raw.load);
        let flows = self.flows(&raw.flows);
        let slos = self.slos(raw.slo.as_ref());
        let fingerprint = fingerprint::fingerprint(&fingerprint::Inputs {
            source: self.source,
            opts: self.opts,
            target: &self.target,
            vars: &self.vars,
            feeders: &self.feeders,
            data: &self.data_digests,
            grpc: self.grpc.as_ref().map(|g| &g.digest),
        });
        CompiledPlan {
            name: raw.name.value.clone(),
            source: self.path.to_owned(),
            target: self.target.clone(),
            load,
            flows,
            requests: std::mem::take(&mut self.requests),
            expectations: std::mem::take(&mut self.expectations),
            captures: std::mem::take(&mut self.captures),
            slots: std::mem::take(&mut self.slots),
            feeders: std::mem::take(&mut self.feeders),
            slos,
            limits: self.limits,
            http_version: self.http_version,
            fingerprint,
        }
    }

    fn error(&mut self, pos: usize, message: impl Into<String>) {
        self.diags.push(Diag::new(pos, message));
    }

    fn error_help(&mut self, pos: usize, message: impl Into<String>, help: impl Into<String>) {
        self.diags.push(Diag::new(pos, message).help(help));
    }

    /// Where byte `offset` of the string value `text`, written at `value_pos`, sits in
    /// the source. A string's text and its source differ by quotes, escapes and a
    /// block scalar's indentation, so the text from `offset` to the end of its line is
    /// looked for in the source just after `value_pos` (its n-th occurrence, for the
    /// n-th in the text); when it is not there, the value's start stands for it.
    fn inner_pos(&self, value_pos: usize, text: &str, offset: usize) -> usize {
        let (Some(before), Some(rest)) = (text.get(..offset), text.get(offset..)) else {
            return value_pos;
        };
        let line = rest.split('\n').next().unwrap_or_default();
        let end = line
            .char_indices()
            .map(|(i, c)| i + c.len_utf8())
            .take_while(|&e| e <= 24)
            .last()
            .unwrap_or(0);
        let needle = &line[..end];
        if needle.is_empty() {
            return value_pos;
        }
        let mut end = value_pos
            .saturating_add(2 * text.len() + 256)
            .min(self.source.len());
        while !self.source.is_char_boundary(end) {
            end -= 1;
        }
        let source = self.source.get(value_pos..end).unwrap_or_default();
        let nth = before.matches(needle).count();
        source
            .match_indices(needle)
            .nth(nth)
            .map_or(value_pos, |(i, _)| value_pos + i)
    }

    /// Parses a duration written at `sp`, reporting a problem there.
    fn duration(&mut self, sp: &Sp<crate::plan::de::Text>) -> Option<Duration> {
        match units::parse_duration(&sp.value.0) {
            Ok(d) => Some(d),
            Err(m) => {
                self.error_help(
                    sp.pos,
                    m,
                    "durations look like `250ms`, `10s`, `1m30s` or `2h`",
                );
                None
            }
        }
    }

    fn vars(&mut self, raw: &RawPlan) {
        let Some(vars) = &raw.vars else {
            if let Some((k, _)) = self.opts.vars.first() {
                self.error_help(
                    0,
                    format!("--var {k}: the plan has no `vars`"),
                    "--var overrides a variable declared in the plan's `vars`",
                );
            }
            return;
        };
        for (k, v) in &vars.0 {
            let name = &k.value;
            if !is_name(name) {
                self.error_help(
                    k.pos,
                    format!("`{name}` is not a valid variable name"),
                    NAME_HELP,
                );
                continue;
            }
            // A value that `--var` replaces is not expanded, so an unset `${ENV}` in it
            // is no error (as `--target` does for the target).
            let value = if self.opts.vars.iter().any(|(k, _)| k == name) {
                Value::Null
            } else {
                self.var_value(&v.value)
            };
            self.vars.insert(name.clone(), value);
        }
        for (k, v) in &self.opts.provided {
            if self.vars.contains_key(k) && !self.opts.vars.iter().any(|(o, _)| o == k) {
                self.vars.insert(k.clone(), Value::String(v.clone()));
            }
        }
        for (k, v) in &self.opts.vars {
            if self.vars.contains_key(k) {
                self.vars.insert(k.clone(), parse_cli_value(v));
            } else {
                let known: Vec<&str> = vars.0.iter().map(|(k, _)| k.value.as_str()).collect();
                let help = match closest(k, known.iter().copied()) {
                    Some(c) => format!("did you mean `--var {c}=...`?"),
                    None => format!("the plan's variables are: {}", known.join(", ")),
                };
                let pos = vars.0.first().map_or(0, |(k, _)| k.pos);
                self.error_help(
                    pos,
                    format!("--var {k}: the plan has no variable `{k}`"),
                    help,
                );
            }
        }
    }

    /// A var's value with `${ENV}` expanded in its strings.
    fn var_value(&mut self, node: &Node) -> Value {
        match &node.kind {
            Kind::Str(s) => match env::expand(s, |n| self.opts.env_var(n)) {
                Ok(text) => Value::String(text),
                Err((off, m, help)) => {
                    let pos = self.inner_pos(node.pos, s, off);
                    self.diags.push(Diag {
                        pos,
                        message: m,
                        help,
                    });
                    Value::Null
                }
            },
            Kind::Seq(items) => Value::Array(items.iter().map(|n| self.var_value(n)).collect()),
            Kind::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, n)| (k.name.clone(), self.var_value(n)))
                    .collect(),
            ),
            _ => node.to_json(),
        }
    }

    fn target(&mut self, raw: &RawPlan) {
        let (text, pos) = match (&self.opts.target, &raw.target) {
            (Some(t), _) => (t.clone(), None),
            (None, Some(t)) => match env::expand(&t.value, |n| self.opts.env_var(n)) {
                Ok(text) => (text, Some(t.pos)),
                Err((off, m, help)) => {
                    let pos = self.inner_pos(t.pos, &t.value, off);
                    self.diags.push(Diag {
                        pos,
                        message: m,
                        help,
                    });
                    self.target_failed = true;
                    return;
                }
            },
            (None, None) => return,
        };
        match url::Url::parse(&text) {
            Ok(u) if u.query().is_some() || u.fragment().is_some() => {
                let pos = pos.unwrap_or(0);
                self.target_failed = true;
                self.error_help(
                    pos,
                    format!("the target `{text}` has a query string or fragment"),
                    "the target is a base URL such as `http://host:8080/api`; put query parameters in the steps",
                );
            }
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => {
                self.target = text;
            }
            _ => {
                let message = match pos {
                    Some(_) => format!("the target `{text}` is not an http(s) URL"),
                    None => format!("--target `{text}` is not an http(s) URL"),
                };
                let pos = pos.or(raw.target.as_ref().map(|t| t.pos)).unwrap_or(0);
                self.target_failed = true;
                self.error_help(pos, message, "write e.g. `http://127.0.0.1:8080`");
            }
        }
    }

    fn defaults(&mut self, d: &crate::plan::raw::RawDefaults) {
        if let Some(t) = &d.timeout
            && let Some(t) = self.duration(t)
        {
            self.default_timeout = t;
        }
        for (size, limit) in [
            (&d.max_response_head, &mut self.limits.head),
            (&d.max_response_body, &mut self.limits.body),
        ] {
            if let Some(size) = size {
                match units::parse_size(&size.value.0) {
                    Ok(bytes) => *limit = Some(bytes),
                    Err(m) => self.diags.push(
                        Diag::new(size.pos, m)
                            .help("sizes look like `64KiB`, `10MiB` or `1048576` (bytes)"),
                    ),
                }
            }
        }
        if let Some(headers) = &d.headers {
            let no_captures = HashMap::new();
            let mut feeders = Vec::new();
            self.default_headers = self.headers(headers, &no_captures, &[], &mut feeders);
            self.default_header_feeders = feeders;
        }
    }

    /// The id of a request name, adding it on first use.
    fn request_id(&mut self, name: &str, kind: &CallKind) -> RequestId {
        if let Some(id) = self.request_ids.get(name) {
            return *id;
        }
        let id = RequestId(self.requests.len() as u32);
        self.requests.push(RequestInfo {
            name: name.to_owned(),
            call: kind.call_type(),
        });
        self.request_ids.insert(name.to_owned(), id);
        id
    }

    /// The slot a capture name writes to (one per name, shared by all flows).
    fn slot(&mut self, name: &str) -> SlotId {
        if let Some(s) = self.slot_ids.get(name) {
            return *s;
        }
        let id = SlotId(self.slots.len() as u32);
        self.slots.push(SlotInfo {
            name: name.to_owned(),
        });
        self.slot_ids.insert(name.to_owned(), id);
        id
    }
}

/// A `--var` value: a number or boolean when it is written the way that value prints
/// (`50`, `-3`, `1.5`, `true`), else text. So `007` and `1e3` stay as typed: read as
/// numbers they would render as `7` and `1000.0` in a URL or body.
fn parse_cli_value(v: &str) -> Value {
    match serde_json::from_str::<Value>(v) {
        // Compares the printed text: `Value == &str` would only match strings.
        Ok(n @ (Value::Number(_) | Value::Bool(_))) if printed(&n) == v => n,
        _ => Value::String(v.to_owned()),
    }
}

/// A value as a template renders it.
fn printed(v: &Value) -> String {
    v.to_string()
}

/// Whether `name` may name a variable, a capture or a feeder: letters, digits, `_`
/// and `-`, starting with a letter or `_`, so that `{{ name }}` and
/// `{{ feeder.column }}` can read it.
fn is_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_alphabetic() || c == '_')
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
}

/// The help line for a name [`is_name`] refuses.
const NAME_HELP: &str = "use letters, digits, `_` and `-`, starting with a letter";

/// The directory relative data paths are read from.
fn plan_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
mod tests;
