//! Judging a response: the status rule, `expect` checks and [`Matcher`] evaluation.
//!
//! Checks run in a fixed order (status, headers, JSON, body, latency) and the first
//! that fails names the request's failure. The body is parsed as JSON at most once
//! per response, and only when a JSON check or capture asks for it ([`LazyJson`]).

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::http::Headers;
use crate::compile::graph::{Expect, Matcher};
use crate::compile::jsonpath::{JsonPath, Leaf};
use crate::metrics::failure::{CheckFailure, FailureKind, ProtocolFailure};

/// The response body, parsed as JSON on first use.
///
/// When a step asks exactly one JSON query of the body ([`LazyJson::single`]) and
/// it is a simple one, the query is answered while parsing, without building the
/// document ([`JsonPath::select_with`]): a check's matcher then judges the selected
/// node where it lies in the text (`Holds`). Otherwise the body is parsed once and
/// every query runs on the parsed value.
pub struct LazyJson<'a> {
    body: &'a [u8],
    parsed: Option<Option<Value>>,
    single: bool,
}

impl<'a> LazyJson<'a> {
    pub fn new(body: &'a [u8]) -> Self {
        LazyJson {
            body,
            parsed: None,
            single: false,
        }
    }

    /// For a body that exactly one JSON query will be asked of.
    pub fn single(body: &'a [u8]) -> Self {
        LazyJson {
            single: true,
            ..LazyJson::new(body)
        }
    }

    /// The parsed body, or [`CheckFailure::NotJson`].
    pub fn get(&mut self) -> Result<&Value, FailureKind> {
        let body = self.body;
        self.parsed
            .get_or_insert_with(|| serde_json::from_slice(body).ok())
            .as_ref()
            .ok_or(FailureKind::Check(CheckFailure::NotJson))
    }

    /// Whether this is the one query of a body not parsed yet, which may then be
    /// answered straight from the text; true once.
    fn take_single(&mut self) -> bool {
        let single = self.single && self.parsed.is_none();
        self.single = false;
        single
    }

    /// Whether `m` holds for every node `path` selects (for an absent value when it
    /// selects none); [`CheckFailure::NotJson`] when the body is not JSON.
    pub fn holds(&mut self, path: &JsonPath, m: &Matcher) -> Result<bool, FailureKind> {
        if self.take_single()
            && let Some(found) = path.select_with(self.body, Holds(m))
        {
            return match found {
                Ok(found) => Ok(found.unwrap_or_else(|| eval(m, None))),
                Err(_) => Err(FailureKind::Check(CheckFailure::NotJson)),
            };
        }
        Ok(path.all(self.get()?, |v| eval(m, v)))
    }

    /// The first node `path` selects, or [`CheckFailure::NotJson`].
    pub fn first(&mut self, path: &JsonPath) -> Result<Option<Value>, FailureKind> {
        if self.take_single()
            && let Some(selected) = path.select_in(self.body)
        {
            return selected.map_err(|_| FailureKind::Check(CheckFailure::NotJson));
        }
        Ok(path.first(self.get()?).cloned())
    }
}

/// A matcher judging the node a one-pass selection reaches, as [`eval`] judges it
/// in a parsed document: a string is compared where it lies (borrowed from the body,
/// or from serde_json's scratch buffer when escapes had to be undone), a number,
/// boolean or null is judged as a `Value` that needs no allocation, and only an
/// array or object is built.
#[derive(Clone, Copy)]
struct Holds<'m>(&'m Matcher);

impl Leaf for Holds<'_> {
    type Out = bool;

    fn read<'de, D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Holds<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_str<E>(self, s: &str) -> Result<bool, E> {
        Ok(eval_str(self.0, s))
    }

    // The scalars become the `Value`s serde_json's own parse makes of them.
    fn visit_bool<E>(self, b: bool) -> Result<bool, E> {
        Ok(eval(self.0, Some(&Value::Bool(b))))
    }

    fn visit_i64<E>(self, n: i64) -> Result<bool, E> {
        Ok(eval(self.0, Some(&Value::from(n))))
    }

    fn visit_u64<E>(self, n: u64) -> Result<bool, E> {
        Ok(eval(self.0, Some(&Value::from(n))))
    }

    fn visit_f64<E>(self, n: f64) -> Result<bool, E> {
        Ok(eval(self.0, Some(&Value::from(n))))
    }

    fn visit_unit<E>(self) -> Result<bool, E> {
        Ok(eval(self.0, Some(&Value::Null)))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<bool, A::Error> {
        let v = Value::deserialize(MapAccessDeserializer::new(map))?;
        Ok(eval(self.0, Some(&v)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<bool, A::Error> {
        let v = Value::deserialize(SeqAccessDeserializer::new(seq))?;
        Ok(eval(self.0, Some(&v)))
    }
}

/// The body as text; invalid UTF-8 is replaced rather than failing.
pub fn body_text(body: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(body)
}

/// Checks `expect` against a response; the first failing check names the failure.
pub fn check(
    expect: &Expect,
    status: u16,
    headers: &impl Headers,
    json: &mut LazyJson<'_>,
    latency: Duration,
) -> Result<(), FailureKind> {
    match &expect.status {
        Some(s) => {
            if !s.allowed.iter().any(|p| p.matches(status)) {
                return Err(FailureKind::Check(CheckFailure::Expect(s.id)));
            }
        }
        None => {
            if status >= 400 {
                return Err(FailureKind::Protocol(ProtocolFailure::HttpStatus(status)));
            }
        }
    }
    for h in &expect.headers {
        let value = headers.first(&h.name).map(String::from_utf8_lossy);
        if !eval_text(&h.matcher, value.as_deref()) {
            return Err(FailureKind::Check(CheckFailure::Expect(h.id)));
        }
    }
    for j in &expect.json {
        // A query that selects several nodes holds when every node does.
        if !json.holds(&j.path, &j.matcher)? {
            return Err(FailureKind::Check(CheckFailure::Expect(j.id)));
        }
    }
    if let Some(b) = &expect.body
        && !eval_text(&b.matcher, Some(&body_text(json.body)))
    {
        return Err(FailureKind::Check(CheckFailure::Expect(b.id)));
    }
    if let Some(l) = &expect.latency
        && latency > l.max
    {
        return Err(FailureKind::Check(CheckFailure::Expect(l.id)));
    }
    Ok(())
}

/// Evaluates a matcher on a JSON value; `None` means the value is absent.
pub fn eval(m: &Matcher, v: Option<&Value>) -> bool {
    if let Matcher::Exists(want) = m {
        return v.is_some() == *want;
    }
    let Some(v) = v else {
        return false;
    };
    if let Value::String(s) = v {
        return eval_str(m, s);
    }
    match m {
        Matcher::Eq(want) => value_eq(v, want),
        Matcher::Ne(want) => !value_eq(v, want),
        Matcher::Gt(n) => as_number(v).is_some_and(|x| x > *n),
        Matcher::Gte(n) => as_number(v).is_some_and(|x| x >= *n),
        Matcher::Lt(n) => as_number(v).is_some_and(|x| x < *n),
        Matcher::Lte(n) => as_number(v).is_some_and(|x| x <= *n),
        Matcher::Contains(want) => contains(v, want),
        Matcher::Matches(re) => match v {
            Value::Number(n) => re.is_match(&n.to_string()),
            Value::Bool(b) => re.is_match(bool_str(*b)),
            _ => false,
        },
        Matcher::Exists(_) => true,
        Matcher::Len(inner) => {
            let len = match v {
                Value::Array(a) => a.len(),
                Value::Object(o) => o.len(),
                _ => return false,
            };
            eval(inner, Some(&Value::from(len)))
        }
        Matcher::All(all) => all.iter().all(|m| eval(m, Some(v))),
    }
}

/// Evaluates a matcher on a JSON string (present): [`eval`] of `Value::String(s)`,
/// without the `String`. A JSON string equals only a string (`"1"` is not `1`), and
/// is a number to the ordering matchers when it parses as one.
fn eval_str(m: &Matcher, s: &str) -> bool {
    eval_present(m, s, &|s, want| want.as_str() == Some(s))
}

/// Evaluates a matcher on a text value (a header or a body); `None` means absent.
/// A plan value written as a number or boolean equals its text, so
/// `content-length: 42` holds for the header `42`.
pub fn eval_text(m: &Matcher, v: Option<&str>) -> bool {
    match v {
        Some(s) => eval_present(m, s, &text_eq),
        None => matches!(m, Matcher::Exists(false)),
    }
}

/// A matcher on present text; `eq` says whether the text equals a plan value (the
/// one rule in which a JSON string and a header's text differ).
fn eval_present(m: &Matcher, s: &str, eq: &impl Fn(&str, &Value) -> bool) -> bool {
    match m {
        Matcher::Eq(want) => eq(s, want),
        Matcher::Ne(want) => !eq(s, want),
        Matcher::Gt(n) => parse_number(s).is_some_and(|x| x > *n),
        Matcher::Gte(n) => parse_number(s).is_some_and(|x| x >= *n),
        Matcher::Lt(n) => parse_number(s).is_some_and(|x| x < *n),
        Matcher::Lte(n) => parse_number(s).is_some_and(|x| x <= *n),
        Matcher::Contains(want) => str_contains(s, want),
        Matcher::Matches(re) => re.is_match(s),
        Matcher::Exists(want) => *want,
        Matcher::Len(inner) => eval(inner, Some(&Value::from(s.chars().count()))),
        Matcher::All(all) => all.iter().all(|m| eval_present(m, s, eq)),
    }
}

fn bool_str(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

fn parse_number(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|f| f.is_finite())
}

fn text_eq(s: &str, want: &Value) -> bool {
    match want {
        Value::String(w) => s == w,
        Value::Number(n) => parse_number(s).is_some_and(|x| Some(x) == n.as_f64()),
        Value::Bool(b) => s.trim() == bool_str(*b),
        _ => false,
    }
}

fn str_contains(s: &str, want: &Value) -> bool {
    match want {
        Value::String(w) => s.contains(w.as_str()),
        Value::Number(n) => s.contains(&n.to_string()),
        Value::Bool(b) => s.contains(bool_str(*b)),
        _ => false,
    }
}

/// A number (strings are judged by [`eval_str`]).
fn as_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

/// JSON equality where numbers compare numerically (`1 == 1.0`).
fn value_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => number_eq(x, y),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| value_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, a)| y.get(k).is_some_and(|b| value_eq(a, b)))
        }
        _ => a == b,
    }
}

fn number_eq(x: &serde_json::Number, y: &serde_json::Number) -> bool {
    if let (Some(a), Some(b)) = (x.as_i64(), y.as_i64()) {
        return a == b;
    }
    if let (Some(a), Some(b)) = (x.as_u64(), y.as_u64()) {
        return a == b;
    }
    x.as_f64() == y.as_f64()
}

/// Element of an array, key of an object (a string's substrings: [`eval_str`]).
fn contains(v: &Value, want: &Value) -> bool {
    match v {
        Value::Array(items) => items.iter().any(|item| value_eq(item, want)),
        Value::Object(map) => want.as_str().is_some_and(|k| map.contains_key(k)),
        _ => false,
    }
}

#[cfg(test)]
#[path = "expect_tests.rs"]
mod tests;
