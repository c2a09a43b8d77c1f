//! Captures: storing values from a response into the user's variable slots.
//!
//! A capture that finds nothing clears its slot, so later steps see the variable as
//! unset instead of a stale value, and fails the request with the capture's id.

use serde_json::Value;

use super::expect::{LazyJson, body_text};
use super::http::Headers;
use crate::compile::graph::{Capture, CaptureSource};
use crate::metrics::failure::{CheckFailure, FailureKind};

/// Runs every capture of a step in order. All of them run, so every slot is either
/// set or cleared; the first failure is returned.
pub fn apply(
    captures: &[Capture],
    headers: &impl Headers,
    json: &mut LazyJson<'_>,
    body: &[u8],
    slots: &mut [Option<Value>],
) -> Result<(), FailureKind> {
    let mut first_failure = None;
    for capture in captures {
        let found = extract(&capture.source, headers, json, body);
        let failed = match &found {
            Ok(Some(_)) => None,
            Ok(None) => Some(FailureKind::Check(CheckFailure::Capture(capture.id))),
            Err(kind) => Some(*kind),
        };
        if let Some(slot) = slots.get_mut(capture.slot.0 as usize) {
            *slot = found.ok().flatten();
        }
        if first_failure.is_none() {
            first_failure = failed;
        }
    }
    first_failure.map_or(Ok(()), Err)
}

/// Clears the slots of every capture (the request never produced a response).
pub fn clear(captures: &[Capture], slots: &mut [Option<Value>]) {
    for capture in captures {
        if let Some(slot) = slots.get_mut(capture.slot.0 as usize) {
            *slot = None;
        }
    }
}

/// The captured value, `None` when the source has nothing; `Err` only when the body
/// had to be JSON and was not.
fn extract(
    source: &CaptureSource,
    headers: &impl Headers,
    json: &mut LazyJson<'_>,
    body: &[u8],
) -> Result<Option<Value>, FailureKind> {
    Ok(match source {
        CaptureSource::Json(path) => json.first(path)?,
        CaptureSource::Header(name) => headers
            .first(name)
            .map(|v| Value::String(String::from_utf8_lossy(v).into_owned())),
        CaptureSource::Regex(re) => {
            let text = body_text(body);
            re.captures(&text).map(|caps| {
                let m = caps.get(1).or_else(|| caps.get(0));
                Value::String(m.map_or("", |m| m.as_str()).to_owned())
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use http::HeaderMap;

    use super::*;
    use crate::compile::graph::{CaptureId, SlotId};
    use crate::compile::jsonpath::JsonPath;

    fn cap(id: u32, slot: u32, source: CaptureSource) -> Capture {
        Capture {
            id: CaptureId(id),
            slot: SlotId(slot),
            source,
        }
    }

    #[test]
    fn json_header_and_regex() {
        let body = br#"{"token":"abc","n":3,"obj":{"a":1},"html":"name=\"csrf\" value=\"xyz\""}"#;
        let mut headers = HeaderMap::new();
        headers.insert("etag", "\"v1\"".parse().unwrap());
        let caps = vec![
            cap(
                0,
                0,
                CaptureSource::Json(JsonPath::parse("$.token").unwrap()),
            ),
            cap(1, 1, CaptureSource::Json(JsonPath::parse("$.n").unwrap())),
            cap(2, 2, CaptureSource::Json(JsonPath::parse("$.obj").unwrap())),
            cap(3, 3, CaptureSource::Header("etag".parse().unwrap())),
            cap(
                4,
                4,
                CaptureSource::Regex(regex::Regex::new(r#"value=\\"([^\\]+)"#).unwrap()),
            ),
            cap(
                5,
                5,
                CaptureSource::Regex(regex::Regex::new(r"\d+").unwrap()),
            ),
        ];
        let mut slots = vec![None; 6];
        let mut json = LazyJson::new(body);
        apply(&caps, &headers, &mut json, body, &mut slots).unwrap();
        assert_eq!(slots[0], Some(Value::from("abc")));
        assert_eq!(slots[1], Some(Value::from(3)));
        assert_eq!(slots[2], Some(serde_json::json!({"a": 1})));
        assert_eq!(slots[3], Some(Value::from("\"v1\"")));
        assert_eq!(slots[4], Some(Value::from("xyz")));
        assert_eq!(slots[5], Some(Value::from("3")));
    }

    #[test]
    fn nothing_found_clears_and_fails_with_first_capture() {
        let body = br#"{"a":1}"#;
        let caps = vec![
            cap(0, 0, CaptureSource::Json(JsonPath::parse("$.a").unwrap())),
            cap(
                7,
                1,
                CaptureSource::Json(JsonPath::parse("$.missing").unwrap()),
            ),
            cap(8, 2, CaptureSource::Header("x-none".parse().unwrap())),
        ];
        let mut slots = vec![Some(Value::from("old")); 3];
        let mut json = LazyJson::new(body);
        let err = apply(&caps, &HeaderMap::new(), &mut json, body, &mut slots);
        assert_eq!(
            err,
            Err(FailureKind::Check(CheckFailure::Capture(CaptureId(7))))
        );
        assert_eq!(slots, vec![Some(Value::from(1)), None, None]);
    }

    #[test]
    fn not_json_body() {
        let body = b"<html>";
        let caps = vec![cap(
            0,
            0,
            CaptureSource::Json(JsonPath::parse("$.a").unwrap()),
        )];
        let mut slots = vec![Some(Value::from("old"))];
        let mut json = LazyJson::new(body);
        let err = apply(&caps, &HeaderMap::new(), &mut json, body, &mut slots);
        assert_eq!(err, Err(FailureKind::Check(CheckFailure::NotJson)));
        assert_eq!(slots, vec![None]);
    }
}
