//! Flows and their steps: request names, timeouts, and which names each step may use;
//! for HTTP calls, URLs joined with the target, headers merged with the defaults,
//! query and bodies.

use std::collections::HashMap;

use http::{HeaderName, HeaderValue, Method};

use crate::plan::de::{Sp, SpMap, Text};
use crate::plan::node::{Kind, Node};
use crate::plan::raw::{RawCall, RawFlow, RawStep};

use super::Compiler;
use super::graph::{
    Body, Call, CallKind, FeederId, Flow, HttpCall, JsonTemplate, Segment, SlotId, Step, Template,
};
use super::template::{Names, resolve};
use super::units;

/// The largest flow weight, so that weight tables and their sums stay small.
pub const MAX_WEIGHT: u32 = 1_000_000;

/// The capture names visible at a step, and those made later (for messages).
pub(super) struct Scope<'s> {
    pub captures: &'s HashMap<String, SlotId>,
    pub later: &'s [String],
}

impl Compiler<'_> {
    pub(super) fn flows(&mut self, raw: &Sp<Vec<Sp<RawFlow>>>) -> Vec<Flow> {
        if raw.value.is_empty() {
            self.error(raw.pos, "`flows` is empty: a plan needs at least one flow");
        }
        let mut seen: Vec<&str> = Vec::new();
        let mut flows = Vec::new();
        for f in &raw.value {
            let name = f.value.name.value.as_str();
            if seen.contains(&name) {
                self.error(f.value.name.pos, format!("two flows are named `{name}`"));
            }
            seen.push(name);
            flows.push(self.flow(f));
        }
        flows
    }

    fn flow(&mut self, raw: &Sp<RawFlow>) -> Flow {
        let f = &raw.value;
        let weight = match &f.weight {
            None => 1,
            Some(w) => match u32::try_from(w.value) {
                Ok(n) if (1..=MAX_WEIGHT).contains(&n) => n,
                _ if w.value > i64::from(MAX_WEIGHT) => {
                    self.error(w.pos, format!("`weight` can be at most {MAX_WEIGHT}"));
                    1
                }
                _ => {
                    self.error(w.pos, "`weight` must be a whole number of at least 1");
                    1
                }
            },
        };
        let think = f.think.as_ref().and_then(|t| self.think(t));
        let pace = f.pace.as_ref().and_then(|p| self.duration(p));
        if f.steps.value.is_empty() {
            self.error(
                f.steps.pos,
                "`steps` is empty: a flow needs at least one step",
            );
        }

        let no_steps = Vec::new();
        let setup_raw = f.setup.as_ref().unwrap_or(&no_steps);
        let teardown_raw = f.teardown.as_ref().unwrap_or(&no_steps);
        let all_captures: Vec<String> = setup_raw
            .iter()
            .chain(&f.steps.value)
            .chain(teardown_raw)
            .flat_map(|s| made_captures(&s.value))
            .map(|k| k.value.clone())
            .collect();

        let mut visible = HashMap::new();
        let mut seen = 0;
        let mut section = |c: &mut Self, steps: &[Sp<RawStep>]| -> Vec<Step> {
            let mut out = Vec::new();
            for s in steps {
                let made = made_captures(&s.value);
                // A group's requests do not see each other's captures either.
                let later = match s.value.parallel {
                    Some(_) => &all_captures[seen..],
                    None => &all_captures[seen + made.len()..],
                };
                let scope = Scope {
                    captures: &visible,
                    later,
                };
                let step = c.step(s, &scope);
                for k in &made {
                    let slot = c.slot(&k.value);
                    visible.insert(k.value.clone(), slot);
                }
                seen += made.len();
                out.extend(step);
            }
            out
        };
        self.connections_in_order(f);
        let setup = section(self, setup_raw);
        let steps = section(self, &f.steps.value);
        let teardown = section(self, teardown_raw);
        Flow {
            name: f.name.value.clone(),
            weight,
            think,
            pace,
            setup,
            steps,
            teardown,
        }
    }

    fn think(&mut self, t: &Sp<Text>) -> Option<super::graph::Think> {
        match units::parse_think(&t.value.0) {
            Ok(th) => Some(th),
            Err(m) => {
                self.error_help(t.pos, m, "a pause is `2s` (constant) or `1s..3s` (uniform)");
                None
            }
        }
    }

    /// A think step only pauses, and a `parallel` group only holds requests: each
    /// request key on one is reported where it is written, rather than silently
    /// dropped. `on` names the step (`a think step`), `help` says where the key goes.
    pub(super) fn stray_keys(&mut self, raw: &Sp<RawStep>, on: &str, help: &str) {
        let s = &raw.value;
        // A map's first entry stands for the map; an empty one for the step.
        let map_pos = |m: &SpMap<_>| m.0.first().map_or(raw.pos, |(k, _)| k.pos);
        let given = [
            ("name", s.name.as_ref().map(|n| n.pos)),
            ("headers", s.headers.as_ref().map(map_pos)),
            ("query", s.query.as_ref().map(map_pos)),
            ("json", s.json.as_ref().map(|n| n.pos)),
            ("form", s.form.as_ref().map(map_pos)),
            ("body", s.body.as_ref().map(|b| b.pos)),
            ("message", s.message.as_ref().map(|n| n.pos)),
            ("metadata", s.metadata.as_ref().map(map_pos)),
            ("timeout", s.timeout.as_ref().map(|t| t.pos)),
            ("expect", s.expect.as_ref().map(|e| e.pos)),
            ("subprotocols", s.subprotocols.as_ref().map(|e| e.pos)),
            ("tls", s.tls.as_ref().map(|e| e.pos)),
            ("await", s.await_.as_ref().map(|e| e.pos)),
            (
                "capture",
                s.capture
                    .as_ref()
                    .map(|c| c.0.first().map_or(raw.pos, |(k, _)| k.pos)),
            ),
        ];
        for (key, pos) in given {
            if let Some(pos) = pos {
                self.error_help(
                    pos,
                    format!("`{key}` does nothing on {on}"),
                    help.replace("{key}", key),
                );
            }
        }
    }

    pub(super) fn step(&mut self, raw: &Sp<RawStep>, scope: &Scope) -> Option<Step> {
        let s = &raw.value;
        if let Some(group) = &s.parallel {
            return self.parallel(raw, group, scope).map(Step::Parallel);
        }
        let calls = s.calls();
        if let Some(t) = &s.think {
            if !calls.is_empty() {
                self.error_help(
                    t.pos,
                    "`think` in a request step",
                    "a pause is a step of its own (`- think: 1s`), or the flow's `think`",
                );
            }
            let think = self.think(t);
            if !calls.is_empty() {
                return None;
            }
            self.stray_keys(
                raw,
                "a think step",
                "a think step only pauses; `{key}` belongs on a request step",
            );
            return think.map(Step::Think);
        }
        let Some(call) = calls.first().cloned() else {
            self.error_help(
                raw.pos,
                "a step needs a method or a pause",
                "write e.g. `- get: /path`, `- post: /path` or `- think: 1s`",
            );
            return None;
        };
        if let Some(second) = calls.get(1) {
            self.error(
                second.pos(),
                format!(
                    "a step has one method; this one already has `{}`",
                    call.key()
                ),
            );
        }
        self.call(s, call, scope).map(|c| Step::Call(Box::new(c)))
    }

    /// A measured call: the protocol's own parts, then the parts every call shares.
    fn call(&mut self, s: &RawStep, call: RawCall, scope: &Scope) -> Option<Call> {
        let mut feeders = Vec::new();
        self.socket_keys(s, &call);
        let mut wait_timeout = None;
        let (kind, default_name) = match call {
            RawCall::Http { method, url, .. } => {
                let name = default_name(&method, &url.value);
                (
                    CallKind::Http(self.http_call(s, method, url, scope, &mut feeders)),
                    name,
                )
            }
            RawCall::Grpc { method } => {
                let call = self.grpc_call(s, method, scope, &mut feeders)?;
                (CallKind::Grpc(call), method.value.trim().to_owned())
            }
            socket => self.socket_call(s, socket, scope, &mut feeders, &mut wait_timeout)?,
        };
        let name = match &s.name {
            Some(n) if n.value.trim().is_empty() => {
                self.error(n.pos, "a request `name` cannot be empty");
                n.value.clone()
            }
            Some(n) => n.value.clone(),
            None => default_name,
        };
        let request = self.request_id(&name, &kind);
        let timeout = match (&s.timeout, wait_timeout) {
            (_, Some(t)) => t,
            (Some(t), None) => self.duration(t).unwrap_or(self.default_timeout),
            (None, None) => self.default_timeout,
        };
        let expect = match &s.expect {
            Some(e) => self.expect(request, e, matches!(kind, CallKind::Grpc(_))),
            None => Default::default(),
        };
        let captures = match &s.capture {
            Some(c) => self.captures(request, c),
            None => Vec::new(),
        };
        Some(Call {
            request,
            timeout,
            expect,
            captures,
            feeders,
            kind,
        })
    }

    /// The HTTP parts of a call: URL, headers merged with the defaults, query, body.
    fn http_call(
        &mut self,
        s: &RawStep,
        method: Method,
        url: &Sp<String>,
        scope: &Scope,
        feeders: &mut Vec<FeederId>,
    ) -> HttpCall {
        for (key, pos) in [
            ("message", s.message.as_ref().map(|n| n.pos)),
            (
                "metadata",
                s.metadata
                    .as_ref()
                    .and_then(|m| m.0.first())
                    .map(|(k, _)| k.pos),
            ),
        ] {
            if let Some(pos) = pos {
                self.error_help(
                    pos,
                    format!("`{key}` is for gRPC steps"),
                    "an HTTP request sends `headers` and a body (`json`, `form` or `body`)",
                );
            }
        }
        let url = self.url(url, scope, feeders);
        let headers = self.merged_headers(s, scope, feeders);
        let query = match &s.query {
            Some(q) => self.pairs(q, scope, feeders),
            None => Vec::new(),
        };
        let body = self.body(s, scope, feeders);
        HttpCall {
            method,
            url,
            headers,
            query,
            body,
            fixed: Default::default(),
        }
    }

    /// The plan's default headers merged with the step's own (the step wins).
    pub(super) fn merged_headers(
        &mut self,
        s: &RawStep,
        scope: &Scope,
        feeders: &mut Vec<FeederId>,
    ) -> Vec<(HeaderName, Template)> {
        feeders.extend_from_slice(&self.default_header_feeders);
        let own = match &s.headers {
            Some(h) => self.headers(h, scope.captures, scope.later, feeders),
            None => Vec::new(),
        };
        let mut headers: Vec<(HeaderName, Template)> = self
            .default_headers
            .iter()
            .filter(|(n, _)| !own.iter().any(|(h, _)| h == n))
            .cloned()
            .collect();
        headers.extend(own);
        headers
    }

    /// Resolves a template written at `pos`; problems are reported at their spot.
    pub(super) fn template(
        &mut self,
        text: &str,
        pos: usize,
        captures: &HashMap<String, SlotId>,
        later: &[String],
        feeders: &mut Vec<FeederId>,
    ) -> Template {
        let names = Names {
            vars: &self.vars,
            feeders: &self.feeders,
            captures,
            later,
        };
        match resolve(text, &names) {
            Ok(r) => {
                for f in r.feeders {
                    if !feeders.contains(&f) {
                        feeders.push(f);
                    }
                }
                r.template
            }
            Err(errors) => {
                for (off, message, help) in errors {
                    let pos = self.inner_pos(pos, text, off);
                    self.diags.push(crate::plan::Diag { pos, message, help });
                }
                Template::literal(text)
            }
        }
    }

    pub(super) fn url(
        &mut self,
        url: &Sp<String>,
        scope: &Scope,
        feeders: &mut Vec<FeederId>,
    ) -> Template {
        let text = url.value.trim();
        let mut t = self.template(text, url.pos, scope.captures, scope.later, feeders);
        // A URL that starts with a variable holding `http://...` is absolute too.
        let lead = leading_text(&t);
        let absolute = lead.starts_with("http://") || lead.starts_with("https://");
        if !absolute && lead.contains("://") {
            self.error(
                url.pos,
                format!("`{text}`: only http and https URLs are supported"),
            );
            return t;
        }
        if !absolute {
            if self.target.is_empty() {
                if self.target_failed {
                    return t;
                }
                self.error_help(
                    url.pos,
                    format!("the relative URL `{text}` needs a target"),
                    "set `target: http://host:port` in the plan, or pass --target",
                );
                return t;
            }
            let mut prefix = self.target.trim_end_matches('/').to_owned();
            if !text.starts_with('/') {
                prefix.push('/');
            }
            match t.segments.first_mut() {
                Some(Segment::Literal(first)) => first.insert_str(0, &prefix),
                _ => t.segments.insert(0, Segment::Literal(prefix)),
            }
        }
        if let Some(full) = t.as_literal()
            && url::Url::parse(full).is_err()
        {
            self.error(url.pos, format!("`{full}` is not a valid URL"));
        }
        t
    }

    pub(super) fn headers(
        &mut self,
        raw: &SpMap<Text>,
        captures: &HashMap<String, SlotId>,
        later: &[String],
        feeders: &mut Vec<FeederId>,
    ) -> Vec<(HeaderName, Template)> {
        let mut out: Vec<(HeaderName, Template)> = Vec::new();
        for (k, v) in &raw.0 {
            let Ok(name) = HeaderName::from_bytes(k.value.trim().as_bytes()) else {
                self.error(k.pos, format!("`{}` is not a valid header name", k.value));
                continue;
            };
            let t = self.template(&v.value.0, v.pos, captures, later, feeders);
            if let Some(lit) = t.as_literal()
                && HeaderValue::from_str(lit).is_err()
            {
                self.error(
                    v.pos,
                    "a header value cannot hold control characters or newlines",
                );
            }
            out.retain(|(n, _)| n != name);
            out.push((name, t));
        }
        out
    }

    fn pairs(
        &mut self,
        raw: &SpMap<Text>,
        scope: &Scope,
        feeders: &mut Vec<FeederId>,
    ) -> Vec<(String, Template)> {
        raw.0
            .iter()
            .map(|(k, v)| {
                let t = self.template(&v.value.0, v.pos, scope.captures, scope.later, feeders);
                (k.value.clone(), t)
            })
            .collect()
    }

    fn body(&mut self, s: &RawStep, scope: &Scope, feeders: &mut Vec<FeederId>) -> Option<Body> {
        let given: Vec<(&str, usize)> = [
            ("json", s.json.as_ref().map(|n| n.pos)),
            (
                "form",
                s.form
                    .as_ref()
                    .map(|f| f.0.first().map_or(0, |(k, _)| k.pos)),
            ),
            ("body", s.body.as_ref().map(|b| b.pos)),
        ]
        .into_iter()
        .filter_map(|(k, p)| p.map(|p| (k, p)))
        .collect();
        if let [(first, _), (second, pos), ..] = given.as_slice() {
            self.error(
                *pos,
                format!("a request has one body: `{first}` and `{second}` are both given"),
            );
        }
        if let Some(json) = &s.json {
            return Some(Body::Json(self.json_template(json, scope, feeders)));
        }
        if let Some(form) = &s.form {
            return Some(Body::Form(self.pairs(form, scope, feeders)));
        }
        s.body.as_ref().map(|b| {
            Body::Raw(self.template(&b.value, b.pos, scope.captures, scope.later, feeders))
        })
    }

    pub(super) fn json_template(
        &mut self,
        node: &Node,
        scope: &Scope,
        feeders: &mut Vec<FeederId>,
    ) -> JsonTemplate {
        match &node.kind {
            Kind::Str(s) if s.contains("{{") => {
                let t = self.template(s, node.pos, scope.captures, scope.later, feeders);
                match t.as_literal() {
                    Some(lit) => JsonTemplate::Value(lit.into()),
                    None => JsonTemplate::String(t),
                }
            }
            Kind::Seq(items) if has_template(node) => JsonTemplate::Array(
                items
                    .iter()
                    .map(|n| self.json_template(n, scope, feeders))
                    .collect(),
            ),
            Kind::Map(entries) if has_template(node) => JsonTemplate::Object(
                entries
                    .iter()
                    .map(|(k, n)| (k.name.clone(), self.json_template(n, scope, feeders)))
                    .collect(),
            ),
            _ => JsonTemplate::Value(node.to_json()),
        }
    }
}

/// The capture names a step makes, each where it is written: a request's own, or
/// those of a `parallel` group's requests; none on a think step, which sends no
/// request.
fn made_captures(s: &RawStep) -> Vec<&Sp<String>> {
    fn own(s: &RawStep) -> impl Iterator<Item = &Sp<String>> {
        let request = s.think.is_none() && s.parallel.is_none();
        s.capture
            .iter()
            .filter(move |_| request)
            .flat_map(|c| c.0.iter().map(|(k, _)| k))
    }
    let group = s.parallel.iter().flat_map(|g| &g.value);
    own(s).chain(group.flat_map(|b| own(&b.value))).collect()
}

/// The text a template starts with, up to its first run-time value (literals and
/// constants from `vars`).
fn leading_text(t: &Template) -> String {
    let mut out = String::new();
    for seg in &t.segments {
        match seg {
            Segment::Literal(s) => out.push_str(s),
            Segment::Const(serde_json::Value::String(s)) => out.push_str(s),
            Segment::Const(v) => out.push_str(&v.to_string()),
            _ => break,
        }
    }
    out
}

pub(super) fn has_template(node: &Node) -> bool {
    match &node.kind {
        Kind::Str(s) => s.contains("{{"),
        Kind::Seq(items) => items.iter().any(has_template),
        Kind::Map(entries) => entries.iter().any(|(_, n)| has_template(n)),
        _ => false,
    }
}

/// `METHOD /path`: the path as written (before templating), without the query string.
pub fn default_name(method: &Method, url: &str) -> String {
    let url = url.trim();
    let path = match url.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => url,
    };
    let path = path.split('?').next().unwrap_or(path);
    let path = if path.is_empty() { "/" } else { path };
    format!("{} {path}", method.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_drop_the_query() {
        assert_eq!(
            default_name(&Method::GET, "/products?page={{ rand(1, 5) }}"),
            "GET /products"
        );
        assert_eq!(
            default_name(&Method::GET, "/products/{{ product }}"),
            "GET /products/{{ product }}"
        );
        assert_eq!(
            default_name(&Method::POST, "http://x:1/login?a=1"),
            "POST /login"
        );
        assert_eq!(default_name(&Method::GET, "http://x:1"), "GET /");
    }
}
