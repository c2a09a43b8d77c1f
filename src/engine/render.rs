//! Rendering compiled templates into request bytes: URL, query, headers and bodies,
//! from one user's captures, feeder rows, plan constants and the built-in functions.
//!
//! Everything appends into buffers the caller owns and reuses between requests. A
//! template that reads an unset capture slot fails with that slot's id, and nothing
//! is sent.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rand::RngExt;
use rand::rngs::SmallRng;
use serde_json::Value;

use crate::compile::graph::{Func, JsonTemplate, Segment, SlotId, Template};

/// What templates can read: one user's variables at one point of its run.
pub struct Scope<'a> {
    pub user: u32,
    pub iteration: u64,
    pub slots: &'a [Option<Value>],
    pub rows: &'a [Option<Arc<[String]>>],
    pub rng: &'a mut SmallRng,
}

impl Scope<'_> {
    fn slot(&self, slot: SlotId) -> Result<&Value, SlotId> {
        match self.slots.get(slot.0 as usize) {
            Some(Some(v)) => Ok(v),
            _ => Err(slot),
        }
    }

    /// A feeder cell. The engine sets every row a step needs before rendering; a
    /// missing row or column renders as the empty string rather than panicking.
    fn cell(&self, feeder: u32, column: u32) -> &str {
        self.rows
            .get(feeder as usize)
            .and_then(|r| r.as_ref())
            .and_then(|r| r.get(column as usize))
            .map_or("", String::as_str)
    }

    fn call(&mut self, func: Func) -> Value {
        match func {
            Func::Uuid => {
                let bytes: [u8; 16] = self.rng.random();
                let id = uuid::Builder::from_random_bytes(bytes).into_uuid();
                Value::String(id.hyphenated().to_string())
            }
            Func::Rand { lo, hi } => Value::from(self.rand(lo, hi)),
            Func::Now => Value::from(now_ms()),
            Func::User => Value::from(self.user),
            Func::Iteration => Value::from(self.iteration),
        }
    }

    fn rand(&mut self, lo: i64, hi: i64) -> i64 {
        if lo <= hi {
            self.rng.random_range(lo..=hi)
        } else {
            self.rng.random_range(hi..=lo)
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Appends a value as text: strings as they are, anything else as compact JSON.
pub fn write_value_text(value: &Value, out: &mut String) {
    match value {
        Value::String(s) => out.push_str(s),
        other => {
            // Writing into a String cannot fail.
            let _ = write!(out, "{other}");
        }
    }
}

/// Appends the rendered template to `out`.
pub fn render_str(t: &Template, scope: &mut Scope<'_>, out: &mut String) -> Result<(), SlotId> {
    for segment in &t.segments {
        match segment {
            Segment::Literal(s) => out.push_str(s),
            Segment::Const(v) => write_value_text(v, out),
            Segment::Slot(slot) => write_value_text(scope.slot(*slot)?, out),
            Segment::Feeder { feeder, column } => out.push_str(scope.cell(feeder.0, *column)),
            Segment::Func(Func::Uuid) => {
                let bytes: [u8; 16] = scope.rng.random();
                let id = uuid::Builder::from_random_bytes(bytes).into_uuid();
                let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
                out.push_str(id.hyphenated().encode_lower(&mut buf));
            }
            Segment::Func(f) => write_value_text(&scope.call(*f), out),
        }
    }
    Ok(())
}

/// Appends the JSON body to `out`. `scratch` is a reusable string buffer.
pub fn render_json(
    t: &JsonTemplate,
    scope: &mut Scope<'_>,
    out: &mut Vec<u8>,
    scratch: &mut String,
) -> Result<(), SlotId> {
    match t {
        JsonTemplate::Value(v) => write_json(v, out),
        JsonTemplate::String(t) => match t.segments.as_slice() {
            [Segment::Const(v)] => write_json(v, out),
            [Segment::Slot(slot)] => write_json(scope.slot(*slot)?, out),
            [Segment::Func(f)] => {
                let v = scope.call(*f);
                write_json(&v, out);
            }
            _ => {
                scratch.clear();
                render_str(t, scope, scratch)?;
                write_json_str(scratch, out);
            }
        },
        JsonTemplate::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                render_json(item, scope, out, scratch)?;
            }
            out.push(b']');
        }
        JsonTemplate::Object(fields) => {
            out.push(b'{');
            for (i, (key, value)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json_str(key, out);
                out.push(b':');
                render_json(value, scope, out, scratch)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn write_json(v: &Value, out: &mut Vec<u8>) {
    // Serializing a Value into a Vec cannot fail.
    let _ = serde_json::to_writer(out, v);
}

fn write_json_str(s: &str, out: &mut Vec<u8>) {
    let _ = serde_json::to_writer(out, s);
}

/// Appends `pairs` url-encoded (`a=1&b=x+y`) to `out`.
pub fn render_form(
    pairs: &[(String, Template)],
    scope: &mut Scope<'_>,
    out: &mut Vec<u8>,
    scratch: &mut String,
) -> Result<(), SlotId> {
    for (i, (key, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(b'&');
        }
        push_encoded(key, out);
        out.push(b'=');
        scratch.clear();
        render_str(value, scope, scratch)?;
        push_encoded(scratch, out);
    }
    Ok(())
}

fn push_encoded(s: &str, out: &mut Vec<u8>) {
    for piece in url::form_urlencoded::byte_serialize(s.as_bytes()) {
        out.extend_from_slice(piece.as_bytes());
    }
}

/// Appends `pairs` to the URL in `url` as its query: after an existing query with
/// `&`, else after `?`. A fragment is dropped (it is never sent).
pub fn append_query(
    pairs: &[(String, Template)],
    scope: &mut Scope<'_>,
    url: &mut String,
    scratch: &mut String,
) -> Result<(), SlotId> {
    if pairs.is_empty() {
        return Ok(());
    }
    if let Some(hash) = url.find('#') {
        url.truncate(hash);
    }
    let mut sep = if url.contains('?') {
        if url.ends_with('?') || url.ends_with('&') {
            None
        } else {
            Some('&')
        }
    } else {
        Some('?')
    };
    for (key, value) in pairs {
        scratch.clear();
        render_str(value, scope, scratch)?;
        if let Some(c) = sep {
            url.push(c);
        }
        sep = Some('&');
        url.extend(url::form_urlencoded::byte_serialize(key.as_bytes()));
        url.push('=');
        url.extend(url::form_urlencoded::byte_serialize(scratch.as_bytes()));
    }
    Ok(())
}

#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;
