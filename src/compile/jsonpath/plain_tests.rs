use proptest::prelude::*;
use serde_json::Value;

use super::super::JsonPath;
use super::*;

fn steps(path: &str) -> Box<[Step]> {
    JsonPath::parse(path)
        .unwrap()
        .simple
        .expect("a simple path")
}

fn scan<'a>(path: &str, body: &'a str) -> Result<Option<Node<'a>>, Unsure> {
    select(body.as_bytes(), &steps(path))
}

#[test]
fn plain_bodies_are_walked_here() {
    let body = r#"{"status":"ok","items":[1,2,3]}"#;
    assert_eq!(scan("$.status", body), Ok(Some(Node::Str("ok"))));
    assert_eq!(scan("$.items", body), Ok(Some(Node::Other(23..30))));
    assert_eq!(scan("$.items[1]", body), Ok(Some(Node::Other(26..27))));
    assert_eq!(scan("$.items[3]", body), Ok(None));
    assert_eq!(scan("$.missing", body), Ok(None));
    assert_eq!(scan("$.status.deeper", body), Ok(None));
    assert_eq!(scan("$[0]", body), Ok(None));
    assert_eq!(scan("$", body), Ok(Some(Node::Other(0..body.len()))));
    let spaced = " {\n\t\"a\" : [ -0.5 , {\"b\": null}, true, false ] }\r\n";
    assert_eq!(
        scan("$.a[0]", spaced),
        Ok(Some(Node::Other(12..16))),
        "{:?}",
        &spaced[12..16]
    );
    assert_eq!(scan("$.a[1].b", spaced), Ok(Some(Node::Other(25..29))));
    assert_eq!(scan("$.a[3]", spaced), Ok(Some(Node::Other(38..43))));
    // A repeated member replaces the earlier one, even when the later one holds
    // nothing the path selects.
    assert_eq!(scan("$.a.b", r#"{"a": {"b": 1}, "a": {"c": 2}}"#), Ok(None));
    assert_eq!(
        scan("$.a", r#"{"a": 1, "a": "two"}"#),
        Ok(Some(Node::Str("two")))
    );
    let deep = format!("{}{}", "[".repeat(63), "]".repeat(63));
    assert_eq!(scan("$", &deep), Ok(Some(Node::Other(0..126))));
    let deep = format!("{{\"a\": {}{}}}", "[".repeat(62), "]".repeat(62));
    assert_eq!(scan("$.b", &deep), Ok(None));
}

#[test]
fn anything_else_is_left_to_serde_json() {
    let deep = format!("{}{}", "[".repeat(64), "]".repeat(64));
    let deep_inside = format!("{{\"a\": {}{}}}", "[".repeat(63), "]".repeat(63));
    for body in [
        &deep_inside,
        // Valid JSON, but not written plainly.
        r#"{"a": "\n"}"#,
        r#"{"\u0061": 1}"#,
        "{\"a\": \"\u{e9}\"}",
        r#"{"a": 1e5}"#,
        r#"{"a": 1E5}"#,
        r#"{"a": 1234567890123456789}"#,
        r#"{"a": 0.1234567890123456789}"#,
        &deep,
        // Not JSON.
        "",
        "  ",
        r#"{"a": 01}"#,
        r#"{"b": 01}"#,
        r#"{"b": [-01]}"#,
        r#"{"b": [0.]}"#,
        r#"{"b": -}"#,
        r#"{"b": [1}}"#,
        r#"{"b": {"c": 1]}"#,
        r#"{"b": [[]}]}"#,
        r#"{"b": {"c": {}]}}"#,
        "{\"b\": [\u{1}1]}",
        "{\"a\":\u{0}1}",
        "{\"b\": \"x\u{1f}\"}",
        r#"{"a": -}"#,
        r#"{"a": 1.}"#,
        r#"{"a": .5}"#,
        r#"{"a": +1}"#,
        r#"{"a": tru}"#,
        r#"{"b": [fals], "a": 1}"#,
        r#"{"b": [flase], "a": 1}"#,
        r#"{"b": [nulL], "a": 1}"#,
        r#"{"b": [trUe], "a": 1}"#,
        r#"{"b": tru"#,
        r#"{"b": [-a]}"#,
        r#"{"a": nul}"#,
        r#"{"a" 1}"#,
        r#"{"a": 1,}"#,
        r#"[1,]"#,
        r#"[1 2]"#,
        r#"{,}"#,
        r#"{"a": 1} x"#,
        r#"{"a": 1}}"#,
        r#"{"a": [1, 2"#,
        r#"{"a": "open"#,
        "{\"a\": \"\t\"}",
        r#"{a: 1}"#,
        "<html>",
    ] {
        assert_eq!(scan("$.a", body), Err(Unsure), "{body:?}");
    }
}

/// Object keys: a repeated key is likely. `\u0061` is `a` escaped.
const KEYS: [&str; 5] = ["a", "b", "x y", "é", "\\u0061"];

/// JSON text, mostly written plainly, with the near-misses of plain text (and of
/// JSON) among its leaves, then a few bytes changed, inserted or removed.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let space = prop_oneof![Just(""), Just(""), Just(" "), Just("\n  "), Just("\t\r\n")];
    let plain = prop_oneof![
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("false".to_owned()),
        (-1000i64..1000).prop_map(|n| n.to_string()),
        (-99_999i64..99_999).prop_map(|n| format!("{}", n as f64 / 100.0)),
        Just("-0".to_owned()),
        Just("999999999999999999".to_owned()),
        Just("-999999999999999999.999999999999999999".to_owned()),
        "[a-z /]{0,4}".prop_map(|s| format!("\"{s}\"")),
    ];
    let tricky = prop_oneof![
        // JSON, not plain.
        Just("1e3"),
        Just("-2.5E-2"),
        Just("1234567890123456789"),
        Just("0.1234567890123456789"),
        Just("\"\\n\""),
        Just("\"\\\"\""),
        Just("\"é\""),
        Just("\"\\ud800\""),
        Just("1e400"),
        // Not JSON.
        Just("01"),
        Just("-01"),
        Just("00"),
        Just("-"),
        Just("1."),
        Just(".5"),
        Just("+1"),
        Just("tru"),
        Just("nulll"),
        Just("True"),
        Just("\"\t\""),
        Just("\"\u{1}\""),
        Just("'a'"),
        Just("[1,]"),
        Just("{,}"),
        Just("{\"a\"}"),
    ]
    .prop_map(String::from);
    let leaf = prop_oneof![12 => plain, 1 => tricky];
    let doc = leaf.prop_recursive(5, 40, 4, move |inner| {
        prop_oneof![
            prop::collection::vec((inner.clone(), space.clone()), 0..4).prop_map(|items| {
                let items: Vec<_> = items.iter().map(|(v, w)| format!("{w}{v}{w}")).collect();
                format!("[{}]", items.join(","))
            }),
            prop::collection::vec((0..KEYS.len(), inner, space.clone()), 0..4).prop_map(|kv| {
                let members: Vec<_> = kv
                    .iter()
                    .map(|(k, v, w)| format!("{w}\"{}\"{w}:{w}{v}{w}", KEYS[*k]))
                    .collect();
                format!("{{{}}}", members.join(","))
            }),
        ]
    });
    const BYTES: &[u8] = b" \n{}[],:\"\\-.0123456789eEtrulns\x00\x1f\x7f\x80\xff";
    let edit = (any::<prop::sample::Index>(), 0..3u8, 0..BYTES.len());
    let edits = prop_oneof![2 => Just(Vec::new()), 1 => prop::collection::vec(edit, 1..3)];
    (doc, edits).prop_map(|(doc, edits)| {
        let mut text = doc.into_bytes();
        for (at, kind, b) in edits {
            let at = at.index(text.len() + 1);
            match kind {
                0 if at < text.len() => text[at] = BYTES[b],
                1 if at < text.len() => {
                    text.remove(at);
                }
                _ => text.insert(at, BYTES[b]),
            }
        }
        text
    })
}

fn path() -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        Just(".a".to_owned()),
        Just(".b".to_owned()),
        Just("['x y']".to_owned()),
        Just("['é']".to_owned()),
        (0i64..4).prop_map(|i| format!("[{i}]")),
    ];
    prop::collection::vec(segment, 0..4).prop_map(|s| format!("${}", s.concat()))
}

/// One case of the property: `Ok(true)` when the scan took the body.
fn agrees(body: &[u8], path: &str) -> Result<bool, TestCaseError> {
    let p = JsonPath::parse(path).unwrap();
    let parsed = serde_json::from_slice::<Value>(body);
    let want = parsed.as_ref().ok().and_then(|v| p.first(v));
    let text = String::from_utf8_lossy(body);
    let scanned = select(body, &steps(path));
    if let Ok(node) = &scanned {
        prop_assert!(parsed.is_ok(), "plain but not JSON: {:?}", text);
        let got = match node {
            None => None,
            Some(Node::Str(s)) => Some(Value::from(*s)),
            Some(Node::Other(r)) => Some(serde_json::from_slice(&body[r.clone()]).unwrap()),
        };
        prop_assert_eq!(got.as_ref(), want, "{} in {:?}", path, text);
    }
    match p.select_in(body).expect("a simple path") {
        Ok(got) => prop_assert_eq!(got.as_ref(), want, "{} in {:?}", path, text),
        Err(_) => prop_assert!(parsed.is_err(), "JSON but refused: {:?}", text),
    }
    Ok(scanned.is_ok())
}

/// The scan is never looser than `serde_json`, and selects what the walk over the
/// parsed document selects; the selection as a whole (scan, else `serde_json`)
/// agrees with the full parse on every body. Run by hand to count the bodies the
/// scan took: the property is only worth as much as that share.
#[test]
fn the_scan_agrees_with_the_full_parse() {
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(4096));
    let (taken, cases) = (std::cell::Cell::new(0), std::cell::Cell::new(0));
    let outcome = runner.run(&(body(), path()), |(body, path)| {
        cases.set(cases.get() + 1);
        if agrees(&body, &path)? {
            taken.set(taken.get() + 1);
        }
        Ok(())
    });
    if let Err(e) = outcome {
        panic!("{e}");
    }
    let (taken, cases) = (taken.get(), cases.get());
    assert!(
        taken * 3 >= cases && taken * 4 <= cases * 3,
        "the scan took {taken} of {cases} bodies: too few or too many to test both paths"
    );
}

#[test]
fn documents_written_plainly_take_the_fast_path() {
    // The property above is only worth as much as the share of bodies it sends
    // through the scan: plain documents must all be taken.
    let docs = [
        serde_json::json!({"status": "ok", "items": [1, 2, 3], "n": -12.5, "z": null}),
        serde_json::json!([[], {}, [true, false], {"a": {"b": [0, 1.25]}}]),
        serde_json::json!("text"),
        serde_json::json!(123456789012345678u64),
    ];
    for doc in docs {
        for text in [
            serde_json::to_vec(&doc).unwrap(),
            serde_json::to_vec_pretty(&doc).unwrap(),
        ] {
            assert!(select(&text, &steps("$.a")).is_ok(), "{doc}");
        }
    }
}

#[test]
fn keys_are_compared_at_every_length() {
    // Names up to 8 bytes are compared as two words that may overlap, longer ones
    // as slices: every byte must count, at every length.
    for n in 0..=12 {
        let name: String = ('a'..='z').take(n).collect();
        let path = [Step::Name(name.clone().into())];
        let body = format!(r#"{{"{name}": 1}}"#);
        let whole = body.len();
        assert_eq!(
            select(body.as_bytes(), &path),
            Ok(Some(Node::Other(whole - 2..whole - 1))),
            "{body}"
        );
        for i in 0..n {
            let mut other = name.clone().into_bytes();
            other[i] = b'A';
            let other = String::from_utf8(other).unwrap();
            let body = format!(r#"{{"{other}": 1}}"#);
            assert_eq!(select(body.as_bytes(), &path), Ok(None), "{body}");
        }
        let shorter = name.get(1..).filter(|_| n > 0);
        for other in [Some(format!("{name}z")), shorter.map(str::to_owned)]
            .into_iter()
            .flatten()
        {
            let body = format!(r#"{{"{other}": 1}}"#);
            assert_eq!(select(body.as_bytes(), &path), Ok(None), "{body}");
        }
    }
}

#[test]
fn every_byte_is_tried_where_a_value_is_due() {
    // What each byte starts, as the skip's class table has it, against serde_json.
    for b in 0..=255u8 {
        let value = match b {
            b'"' => "\"s\"".to_owned(),
            b'{' => "{}".to_owned(),
            b'[' => "[]".to_owned(),
            b't' => "true".to_owned(),
            b'f' => "false".to_owned(),
            b'n' => "null".to_owned(),
            b'-' => "-1".to_owned(),
            _ => String::from_utf8_lossy(&[b]).into_owned(),
        };
        let body = format!(r#"{{"b": [{value}], "a": 0}}"#);
        let parsed = serde_json::from_str::<Value>(&body).is_ok();
        let taken = select(body.as_bytes(), &steps("$.a")).is_ok();
        assert_eq!(taken, parsed && b.is_ascii(), "{body:?}");
    }
}
