//! Expectations (status, headers, JSONPath checks, body, latency), matchers and
//! captures, each registered with a human description for failure reasons.

use http::HeaderName;
use serde_json::Value;

use crate::plan::de::{Sp, SpMap, suggest};
use crate::plan::node::{Kind, Node};
use crate::plan::raw::RawExpect;

use super::Compiler;
use super::graph::{
    BodyExpect, Capture, CaptureId, CaptureInfo, CaptureSource, Expect, ExpectId, ExpectInfo,
    HeaderExpect, JsonExpect, LatencyExpect, Matcher, RequestId, StatusExpect, StatusPattern,
};
use super::jsonpath::JsonPath;
use super::units;

/// The matcher operators.
const OPS: &[&str] = &[
    "eq", "ne", "gt", "gte", "lt", "lte", "contains", "matches", "exists", "len",
];

impl Compiler<'_> {
    pub(super) fn expect_id(&mut self, request: RequestId, description: String) -> ExpectId {
        let id = ExpectId(self.expectations.len() as u32);
        self.expectations.push(ExpectInfo {
            request,
            description,
        });
        id
    }

    /// A call's expectations; `grpc` reads `status` as gRPC codes.
    pub(super) fn expect(&mut self, request: RequestId, raw: &Sp<RawExpect>, grpc: bool) -> Expect {
        let e = &raw.value;
        let mut out = Expect::default();
        if let Some(status) = e.status.as_ref().filter(|_| grpc) {
            out.status = self.grpc_status(request, status);
        } else if let Some(status) = &e.status
            && let Some(allowed) = self.status(status)
        {
            let text = allowed
                .iter()
                .map(|p| match p {
                    StatusPattern::Exact(c) => c.to_string(),
                    StatusPattern::Class(c) => format!("{c}xx"),
                })
                .collect::<Vec<_>>()
                .join(" or ");
            let id = self.expect_id(request, format!("status {text}"));
            out.status = Some(StatusExpect { id, allowed });
        }
        for (k, v) in e.headers.iter().flat_map(|h| &h.0) {
            let Ok(name) = HeaderName::from_bytes(k.value.trim().as_bytes()) else {
                self.error(k.pos, format!("`{}` is not a valid header name", k.value));
                continue;
            };
            if let Some((matcher, text)) = self.matcher(&v.value) {
                let id = self.expect_id(request, format!("header {name} {text}"));
                out.headers.push(HeaderExpect { id, name, matcher });
            }
        }
        for (k, v) in e.json.iter().flat_map(|j| &j.0) {
            let path = self.json_path(k);
            let matcher = self.matcher(&v.value);
            if let (Some(path), Some((matcher, text))) = (path, matcher) {
                let id = self.expect_id(request, format!("json {} {text}", path.as_str()));
                out.json.push(JsonExpect { id, path, matcher });
            }
        }
        if let Some(body) = &e.body
            && let Some((matcher, text)) = self.matcher(body)
        {
            let id = self.expect_id(request, format!("body {text}"));
            out.body = Some(BodyExpect { id, matcher });
        }
        if let Some(l) = &e.latency
            && let Some(max) = self.duration(l)
        {
            let id = self.expect_id(
                request,
                format!("latency < {}", units::format_duration(max)),
            );
            out.latency = Some(LatencyExpect { id, max });
        }
        out
    }

    /// A JSONPath written as a map key (`expect.json`, `await.match`).
    pub(super) fn json_path(&mut self, k: &Sp<String>) -> Option<JsonPath> {
        match JsonPath::parse(k.value.trim()) {
            Ok(p) => Some(p),
            Err(err) => {
                let help = if k.value.trim().starts_with('$') {
                    "JSONPath (RFC 9535) looks like `$.items[0].id` or `$.items[?@.price > 1]`"
                        .to_owned()
                } else {
                    format!(
                        "a JSONPath starts at the root `$`: did you mean `$.{}`?",
                        k.value.trim()
                    )
                };
                self.error_help(
                    k.pos,
                    format!("invalid JSONPath `{}`: {}", k.value, err.reason),
                    help,
                );
                None
            }
        }
    }

    fn status(&mut self, node: &Node) -> Option<Vec<StatusPattern>> {
        let items: Vec<&Node> = match &node.kind {
            Kind::Seq(items) if items.is_empty() => {
                self.error(node.pos, "`status` is an empty list");
                return None;
            }
            Kind::Seq(items) => items.iter().collect(),
            _ => vec![node],
        };
        let mut out = Vec::new();
        for n in items {
            let pattern = match &n.kind {
                Kind::Int(c) if (100..=599).contains(c) => Some(StatusPattern::Exact(*c as u16)),
                Kind::Str(s) => {
                    let s = s.trim();
                    let b = s.as_bytes();
                    if b.len() == 3
                        && (b'1'..=b'5').contains(&b[0])
                        && b[1..].eq_ignore_ascii_case(b"xx")
                    {
                        Some(StatusPattern::Class(b[0] - b'0'))
                    } else {
                        s.parse::<u16>()
                            .ok()
                            .filter(|c| (100..=599).contains(c))
                            .map(StatusPattern::Exact)
                    }
                }
                _ => None,
            };
            match pattern {
                Some(p) => out.push(p),
                None => self.error_help(
                    n.pos,
                    "`status` expects a status code from 100 to 599, a class like `2xx`, or a list of them",
                    "write `status: 200`, `status: [200, 201]` or `status: 2xx`",
                ),
            }
        }
        (!out.is_empty()).then_some(out)
    }

    /// A matcher and its description (e.g. `len >= 1`).
    pub(super) fn matcher(&mut self, node: &Node) -> Option<(Matcher, String)> {
        let Kind::Map(entries) = &node.kind else {
            let v = node.to_json();
            return Some((Matcher::Eq(v.clone()), format!("== {v}")));
        };
        if entries.is_empty() {
            self.error_help(
                node.pos,
                "an empty matcher",
                format!("use one of: {}", OPS.join(", ")),
            );
            return None;
        }
        let mut all = Vec::new();
        let mut texts = Vec::new();
        let mut ok = true;
        for (k, v) in entries {
            let m = match k.name.as_str() {
                "eq" => Some(Matcher::Eq(v.to_json())),
                "ne" => Some(Matcher::Ne(v.to_json())),
                "contains" => Some(Matcher::Contains(v.to_json())),
                "gt" | "gte" | "lt" | "lte" => {
                    let n = match v.kind {
                        Kind::Int(i) => Some(i as f64),
                        Kind::Float(f) => Some(f),
                        _ => None,
                    };
                    match n {
                        Some(n) => Some(match k.name.as_str() {
                            "gt" => Matcher::Gt(n),
                            "gte" => Matcher::Gte(n),
                            "lt" => Matcher::Lt(n),
                            _ => Matcher::Lte(n),
                        }),
                        None => {
                            self.error(
                                v.pos,
                                format!(
                                    "`{}` compares with a number, not {}",
                                    k.name,
                                    v.kind.describe()
                                ),
                            );
                            None
                        }
                    }
                }
                "matches" => match &v.kind {
                    Kind::Str(re) => match regex::Regex::new(re) {
                        Ok(r) => Some(Matcher::Matches(r)),
                        Err(e) => {
                            self.error(
                                v.pos,
                                format!("invalid regex: {}", first_line(&e.to_string())),
                            );
                            None
                        }
                    },
                    other => {
                        self.error(
                            v.pos,
                            format!("`matches` takes a regex string, not {}", other.describe()),
                        );
                        None
                    }
                },
                "exists" => match v.kind {
                    Kind::Bool(b) => Some(Matcher::Exists(b)),
                    _ => {
                        self.error(v.pos, "`exists` takes `true` or `false`");
                        None
                    }
                },
                "len" => {
                    match &v.kind {
                        Kind::Int(n) if *n >= 0 => {
                            Some(Matcher::Len(Box::new(Matcher::Eq(Value::from(*n)))))
                        }
                        Kind::Map(_) => self.matcher(v).map(|(m, _)| Matcher::Len(Box::new(m))),
                        _ => {
                            self.error(v.pos, "`len` takes a length (a whole number) or a matcher like `{ gte: 1 }`");
                            None
                        }
                    }
                }
                other => {
                    self.error_help(
                        k.pos,
                        format!("unknown matcher `{other}`"),
                        format!(
                            "{} (to compare with a map, write `eq: {{...}}`)",
                            suggest(other, OPS)
                        ),
                    );
                    None
                }
            };
            match m {
                Some(m) => {
                    texts.push(describe(&m));
                    all.push(m);
                }
                None => ok = false,
            }
        }
        if !ok {
            return None;
        }
        let text = texts.join(" and ");
        let m = if all.len() == 1 {
            all.pop()?
        } else {
            Matcher::All(all)
        };
        Some((m, text))
    }

    pub(super) fn captures(&mut self, request: RequestId, raw: &SpMap<Node>) -> Vec<Capture> {
        let mut out = Vec::new();
        for (k, v) in &raw.0 {
            let name = &k.value;
            if !super::is_name(name) {
                self.error_help(
                    k.pos,
                    format!("`{name}` is not a valid capture name"),
                    super::NAME_HELP,
                );
                continue;
            }
            let Some((source, from)) = self.capture_source(&v.value) else {
                continue;
            };
            let id = CaptureId(self.captures.len() as u32);
            self.captures.push(CaptureInfo {
                request,
                description: format!("capture {name} from {from}"),
            });
            let slot = self.slot(name);
            out.push(Capture { id, slot, source });
        }
        out
    }

    fn capture_source(&mut self, node: &Node) -> Option<(CaptureSource, String)> {
        const FORMS: &[&str] = &["json", "header", "regex"];
        let (kind, text, pos) = match &node.kind {
            Kind::Str(s) => ("json", s.clone(), node.pos),
            Kind::Map(entries) if entries.len() == 1 => {
                let (k, v) = &entries[0];
                if !FORMS.contains(&k.name.as_str()) {
                    self.error_help(
                        k.pos,
                        format!("unknown capture source `{}`", k.name),
                        suggest(&k.name, FORMS),
                    );
                    return None;
                }
                let Kind::Str(s) = &v.kind else {
                    self.error(v.pos, format!("`{}` takes a string", k.name));
                    return None;
                };
                (
                    if k.name == "json" {
                        "json"
                    } else if k.name == "header" {
                        "header"
                    } else {
                        "regex"
                    },
                    s.clone(),
                    v.pos,
                )
            }
            _ => {
                self.error_help(
                    node.pos,
                    "a capture is a JSONPath, or one of `{ json: ... }`, `{ header: ... }`, `{ regex: ... }`",
                    "write e.g. `token: $.token` or `etag: { header: etag }`",
                );
                return None;
            }
        };
        match kind {
            "json" => match JsonPath::parse(text.trim()) {
                Ok(p) => {
                    let d = p.as_str().to_owned();
                    Some((CaptureSource::Json(p), d))
                }
                Err(e) => {
                    self.error(pos, format!("invalid JSONPath `{text}`: {}", e.reason));
                    None
                }
            },
            "header" => match HeaderName::from_bytes(text.trim().as_bytes()) {
                Ok(h) => {
                    let d = format!("header {h}");
                    Some((CaptureSource::Header(h), d))
                }
                Err(_) => {
                    self.error(pos, format!("`{text}` is not a valid header name"));
                    None
                }
            },
            _ => match regex::Regex::new(&text) {
                Ok(r) => Some((CaptureSource::Regex(r), format!("regex {text}"))),
                Err(e) => {
                    self.error(
                        pos,
                        format!("invalid regex: {}", first_line(&e.to_string())),
                    );
                    None
                }
            },
        }
    }
}

fn first_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("")
        .trim_start_matches("error: ")
        .to_owned()
}

/// A matcher as people read it: `len >= 1`, `contains "json"`.
pub fn describe(m: &Matcher) -> String {
    match m {
        Matcher::Eq(v) => format!("== {v}"),
        Matcher::Ne(v) => format!("!= {v}"),
        Matcher::Gt(n) => format!("> {n}"),
        Matcher::Gte(n) => format!(">= {n}"),
        Matcher::Lt(n) => format!("< {n}"),
        Matcher::Lte(n) => format!("<= {n}"),
        Matcher::Contains(v) => format!("contains {v}"),
        Matcher::Matches(r) => format!("matches /{}/", r.as_str()),
        Matcher::Exists(true) => "exists".into(),
        Matcher::Exists(false) => "does not exist".into(),
        Matcher::Len(inner) => format!("len {}", describe(inner)),
        Matcher::All(ms) => ms.iter().map(describe).collect::<Vec<_>>().join(" and "),
    }
}
