use std::time::Duration;

use http::HeaderMap;
use serde_json::{Value, json};

use super::*;
use crate::compile::graph::{
    BodyExpect, Expect, ExpectId, HeaderExpect, JsonExpect, LatencyExpect, Matcher, StatusExpect,
    StatusPattern,
};
use crate::compile::jsonpath::JsonPath;

fn re(s: &str) -> Matcher {
    Matcher::Matches(regex::Regex::new(s).unwrap())
}

fn holds(m: &Matcher, v: Value) -> bool {
    eval(m, Some(&v))
}

#[test]
fn eq_and_ne_compare_numbers_numerically() {
    assert!(holds(&Matcher::Eq(json!(1)), json!(1.0)));
    assert!(holds(&Matcher::Eq(json!(1.0)), json!(1)));
    assert!(holds(&Matcher::Eq(json!(-3)), json!(-3)));
    assert!(holds(&Matcher::Eq(json!(u64::MAX)), json!(u64::MAX)));
    assert!(!holds(&Matcher::Eq(json!(1)), json!(2)));
    assert!(
        !holds(&Matcher::Eq(json!(1)), json!("1")),
        "JSON: a string is not a number"
    );
    assert!(holds(
        &Matcher::Eq(json!({"a": [1, 2]})),
        json!({"a": [1.0, 2]})
    ));
    assert!(!holds(&Matcher::Eq(json!([1, 2])), json!([2, 1])));
    assert!(holds(&Matcher::Eq(json!("x")), json!("x")));
    assert!(holds(&Matcher::Eq(Value::Null), Value::Null));
    assert!(holds(&Matcher::Ne(json!(1)), json!(2)));
    assert!(!holds(&Matcher::Ne(json!(1)), json!(1.0)));
    assert!(!eval(&Matcher::Eq(json!(1)), None), "absent is not equal");
    assert!(
        !eval(&Matcher::Ne(json!(1)), None),
        "absent fails every value check"
    );
}

#[test]
fn ordering_on_numbers_and_numeric_strings() {
    assert!(holds(&Matcher::Gt(0.0), json!(1)));
    assert!(!holds(&Matcher::Gt(1.0), json!(1)));
    assert!(holds(&Matcher::Gte(1.0), json!(1)));
    assert!(holds(&Matcher::Lt(2.0), json!(1.5)));
    assert!(!holds(&Matcher::Lt(1.5), json!(1.5)));
    assert!(holds(&Matcher::Lte(1.5), json!(1.5)));
    assert!(
        holds(&Matcher::Gt(9.0), json!("10")),
        "a numeric string is a number"
    );
    assert!(!holds(&Matcher::Gt(0.0), json!("ten")));
    assert!(!holds(&Matcher::Gt(0.0), json!(true)));
    assert!(!holds(&Matcher::Gt(0.0), json!([1])));
    assert!(!holds(&Matcher::Gt(0.0), json!("NaN")));
}

#[test]
fn contains_matches_exists_len_all() {
    assert!(holds(&Matcher::Contains(json!("ell")), json!("hello")));
    assert!(!holds(&Matcher::Contains(json!("xyz")), json!("hello")));
    assert!(holds(&Matcher::Contains(json!(2)), json!("a2b")));
    assert!(holds(&Matcher::Contains(json!(2)), json!([1, 2.0, 3])));
    assert!(!holds(&Matcher::Contains(json!(4)), json!([1, 2, 3])));
    assert!(holds(&Matcher::Contains(json!("k")), json!({"k": 1})));
    assert!(!holds(&Matcher::Contains(json!("z")), json!({"k": 1})));
    assert!(!holds(&Matcher::Contains(json!("1")), json!(1)));

    assert!(holds(&re("^ab+c$"), json!("abbc")));
    assert!(!holds(&re("^ab+c$"), json!("ac")));
    assert!(
        holds(&re(r"^\d{3}$"), json!(200)),
        "numbers match by their text"
    );
    assert!(!holds(&re("."), Value::Null));

    assert!(
        holds(&Matcher::Exists(true), Value::Null),
        "a null is present"
    );
    assert!(!eval(&Matcher::Exists(true), None));
    assert!(eval(&Matcher::Exists(false), None));
    assert!(!holds(&Matcher::Exists(false), json!(1)));

    let len3 = Matcher::Len(Box::new(Matcher::Eq(json!(3))));
    assert!(holds(&len3, json!("héé")), "string length counts chars");
    assert!(holds(&len3, json!([1, 2, 3])));
    assert!(holds(&len3, json!({"a": 1, "b": 2, "c": 3})));
    assert!(!holds(&len3, json!(123)));
    let len_gte = Matcher::Len(Box::new(Matcher::Gte(1.0)));
    assert!(!holds(&len_gte, json!([])));

    let all = Matcher::All(vec![Matcher::Gt(1.0), Matcher::Lt(3.0)]);
    assert!(holds(&all, json!(2)));
    assert!(!holds(&all, json!(3)));
}

#[test]
fn text_matchers() {
    assert!(eval_text(&Matcher::Eq(json!(42)), Some("42")));
    assert!(eval_text(&Matcher::Eq(json!("42")), Some("42")));
    assert!(!eval_text(&Matcher::Eq(json!(42)), Some("43")));
    assert!(eval_text(&Matcher::Eq(json!(true)), Some("true")));
    assert!(eval_text(&Matcher::Ne(json!("a")), Some("b")));
    assert!(eval_text(
        &Matcher::Contains(json!("json")),
        Some("application/json")
    ));
    assert!(eval_text(&Matcher::Gt(1.0), Some("2")));
    assert!(!eval_text(&Matcher::Gt(1.0), Some("two")));
    assert!(eval_text(&re("^app"), Some("application/json")));
    assert!(eval_text(
        &Matcher::Len(Box::new(Matcher::Eq(json!(2)))),
        Some("ab")
    ));
    assert!(eval_text(&Matcher::Exists(false), None));
    assert!(!eval_text(&Matcher::Exists(true), None));
    assert!(!eval_text(&Matcher::Contains(json!("x")), None));
}

fn status(id: u32, allowed: Vec<StatusPattern>) -> Option<StatusExpect> {
    Some(StatusExpect {
        id: ExpectId(id),
        allowed,
    })
}

fn run(expect: &Expect, code: u16, headers: &HeaderMap, body: &[u8]) -> Result<(), FailureKind> {
    check(
        expect,
        code,
        headers,
        &mut LazyJson::new(body),
        Duration::from_millis(10),
    )
}

#[test]
fn status_rules() {
    let h = HeaderMap::new();
    let none = Expect::default();
    assert_eq!(run(&none, 200, &h, b""), Ok(()));
    assert_eq!(run(&none, 399, &h, b""), Ok(()));
    assert_eq!(
        run(&none, 400, &h, b""),
        Err(FailureKind::Protocol(ProtocolFailure::HttpStatus(400)))
    );
    assert_eq!(
        run(&none, 503, &h, b""),
        Err(FailureKind::Protocol(ProtocolFailure::HttpStatus(503)))
    );

    let list = Expect {
        status: status(
            4,
            vec![StatusPattern::Exact(200), StatusPattern::Exact(404)],
        ),
        ..Expect::default()
    };
    assert_eq!(run(&list, 404, &h, b""), Ok(()), "an explicit 404 is fine");
    assert_eq!(
        run(&list, 201, &h, b""),
        Err(FailureKind::Check(CheckFailure::Expect(ExpectId(4))))
    );

    let class = Expect {
        status: status(5, vec![StatusPattern::Class(2)]),
        ..Expect::default()
    };
    assert_eq!(run(&class, 204, &h, b""), Ok(()));
    assert_eq!(
        run(&class, 302, &h, b""),
        Err(FailureKind::Check(CheckFailure::Expect(ExpectId(5))))
    );
}

#[test]
fn headers_json_body_latency_in_order() {
    let mut h = HeaderMap::new();
    h.insert("content-type", "application/json".parse().unwrap());
    let expect = Expect {
        status: None,
        headers: vec![
            HeaderExpect {
                id: ExpectId(1),
                name: "content-type".parse().unwrap(),
                matcher: Matcher::Contains(json!("json")),
            },
            HeaderExpect {
                id: ExpectId(2),
                name: "x-absent".parse().unwrap(),
                matcher: Matcher::Exists(false),
            },
        ],
        json: vec![
            JsonExpect {
                id: ExpectId(3),
                path: JsonPath::parse("$.items").unwrap(),
                matcher: Matcher::Len(Box::new(Matcher::Gte(1.0))),
            },
            JsonExpect {
                id: ExpectId(4),
                path: JsonPath::parse("$.items[*].price").unwrap(),
                matcher: Matcher::Gt(0.0),
            },
            JsonExpect {
                id: ExpectId(5),
                path: JsonPath::parse("$.missing").unwrap(),
                matcher: Matcher::Exists(false),
            },
        ],
        body: Some(BodyExpect {
            id: ExpectId(6),
            matcher: Matcher::Contains(json!("\"items\"")),
        }),
        latency: Some(LatencyExpect {
            id: ExpectId(7),
            max: Duration::from_millis(10),
        }),
    };
    let good = br#"{"items":[{"price":1},{"price":2.5}]}"#;
    assert_eq!(run(&expect, 200, &h, good), Ok(()));
    let zero_price = br#"{"items":[{"price":1},{"price":0}]}"#;
    assert_eq!(
        run(&expect, 200, &h, zero_price),
        Err(FailureKind::Check(CheckFailure::Expect(ExpectId(4)))),
        "every selected node must hold"
    );
    assert_eq!(
        run(&expect, 200, &h, b"not json"),
        Err(FailureKind::Check(CheckFailure::NotJson))
    );
    let slow = check(
        &expect,
        200,
        &h,
        &mut LazyJson::new(good),
        Duration::from_millis(11),
    );
    assert_eq!(
        slow,
        Err(FailureKind::Check(CheckFailure::Expect(ExpectId(7))))
    );
    // The status rule comes first, then headers.
    assert_eq!(
        run(&expect, 500, &h, good),
        Err(FailureKind::Protocol(ProtocolFailure::HttpStatus(500)))
    );
    assert_eq!(
        run(&expect, 200, &HeaderMap::new(), good),
        Err(FailureKind::Check(CheckFailure::Expect(ExpectId(1)))),
        "a missing header fails"
    );
    let mut extra = h.clone();
    extra.insert("x-absent", "here".parse().unwrap());
    assert_eq!(
        run(&expect, 200, &extra, good),
        Err(FailureKind::Check(CheckFailure::Expect(ExpectId(2))))
    );
}

#[test]
fn json_is_parsed_once_and_only_when_asked() {
    let mut lazy = LazyJson::new(b"{\"a\":1}");
    assert!(lazy.parsed.is_none());
    assert_eq!(lazy.get().unwrap(), &json!({"a": 1}));
    assert!(lazy.parsed.is_some());
    // A check without JSON expectations never parses.
    let mut lazy = LazyJson::new(b"not json");
    check(
        &Expect::default(),
        200,
        &HeaderMap::new(),
        &mut lazy,
        Duration::ZERO,
    )
    .unwrap();
    assert!(lazy.parsed.is_none());
}

#[test]
fn a_single_query_is_answered_in_one_pass_and_agrees_with_the_parsed_body() {
    let path = |p: &str| JsonPath::parse(p).unwrap();
    let body = br#"{"status": "ok", "items": [{"id": 7}, {"id": 8}]}"#;
    for p in [
        "$.status",
        "$.items[1].id",
        "$.items[-1].id",
        "$.items[*].id",
        "$.nope",
    ] {
        let mut one = LazyJson::single(body);
        let mut full = LazyJson::new(body);
        assert_eq!(one.first(&path(p)), full.first(&path(p)), "{p}");
        let exists = Matcher::Exists(true);
        let mut one = LazyJson::single(body);
        assert_eq!(
            one.holds(&path(p), &exists),
            full.holds(&path(p), &exists),
            "{p}"
        );
    }
    // A simple path is answered without parsing the whole body...
    let mut one = LazyJson::single(body);
    assert_eq!(one.first(&path("$.status")), Ok(Some(json!("ok"))));
    assert!(one.parsed.is_none());
    // ...but only once: a second query parses the body.
    assert_eq!(one.first(&path("$.items[0].id")), Ok(Some(json!(7))));
    assert!(one.parsed.is_some());
    // Not JSON is not JSON either way.
    for p in ["$.status", "$.items[-1]", "$..id"] {
        assert_eq!(
            LazyJson::single(b"{\"status\": ").first(&path(p)),
            Err(FailureKind::Check(CheckFailure::NotJson)),
            "{p}"
        );
    }
}

/// A check's matcher judged in one pass, on the selected node as it lies in the
/// text, agrees with the same matcher on the parsed body: strings with and without
/// escapes, numbers of every kind, and nodes that have to be built.
#[test]
fn a_single_check_judged_in_one_pass_agrees_with_the_parsed_body() {
    let bodies: [&[u8]; 9] = [
        br#"{"status": "ok", "items": [1, 2, 3]}"#,
        br#"{"status": "o\u006b", "items": [1.0, -2, 3e0]}"#,
        br#"{"status": "\"ok\"\n\u00e9\ud83d\ude00", "items": []}"#,
        br#"{"status": "10", "items": {"a": 1}}"#,
        br#"{"status": 10, "items": [18446744073709551615, -9223372036854775808, 1.5e300]}"#,
        br#"{"status": 1.0, "items": null}"#,
        br#"{"status": true, "items": [true, "ok", null, {"k": [1]}]}"#,
        br#"{"status": null, "status": "later", "items": "x"}"#,
        br#"{"other": "ok"}"#,
    ];
    let paths = [
        "$.status",
        "$.items",
        "$.items[0]",
        "$.items[1]",
        "$.items[3].k",
    ];
    let matchers = [
        Matcher::Eq(json!("ok")),
        Matcher::Eq(json!("\"ok\"\né😀")),
        Matcher::Eq(json!(10)),
        Matcher::Eq(json!(1)),
        Matcher::Eq(json!(u64::MAX)),
        Matcher::Eq(json!(-9223372036854775808i64)),
        Matcher::Eq(json!(true)),
        Matcher::Eq(Value::Null),
        Matcher::Eq(json!([1, 2, 3])),
        Matcher::Eq(json!({"a": 1.0})),
        Matcher::Ne(json!("ok")),
        Matcher::Gt(9.0),
        Matcher::Lte(1.0),
        Matcher::Lt(-1.0),
        Matcher::Contains(json!("k")),
        Matcher::Contains(json!(2)),
        Matcher::Contains(json!("é")),
        re("^o"),
        re("^1\\d*$"),
        re("^true$"),
        Matcher::Exists(true),
        Matcher::Exists(false),
        Matcher::Len(Box::new(Matcher::Eq(json!(2)))),
        Matcher::Len(Box::new(Matcher::Gte(3.0))),
        Matcher::All(vec![Matcher::Exists(true), Matcher::Contains(json!("o"))]),
    ];
    let mut held = 0;
    for body in bodies {
        for p in paths {
            let path = JsonPath::parse(p).unwrap();
            for m in &matchers {
                let mut one = LazyJson::single(body);
                let got = one.holds(&path, m);
                assert!(one.parsed.is_none(), "{p} is judged in one pass");
                let want = LazyJson::new(body).holds(&path, m);
                let text = String::from_utf8_lossy(body);
                assert_eq!(got, want, "{p} {m:?} on {text}");
                held += usize::from(got == Ok(true));
            }
        }
    }
    assert!(
        held > 50,
        "the table exercises matches, not only misses ({held})"
    );
    // Escapes are undone before comparing; numbers compare numerically in place.
    let holds_in_one_pass = |body: &[u8], p: &str, m: Matcher| {
        LazyJson::single(body).holds(&JsonPath::parse(p).unwrap(), &m)
    };
    assert_eq!(
        holds_in_one_pass(br#"{"s": "o\u006b"}"#, "$.s", Matcher::Eq(json!("ok"))),
        Ok(true)
    );
    assert_eq!(
        holds_in_one_pass(br#"{"s": "a\"b\\c"}"#, "$.s", Matcher::Eq(json!("a\"b\\c"))),
        Ok(true)
    );
    assert_eq!(
        holds_in_one_pass(br#"{"n": 2.0}"#, "$.n", Matcher::Eq(json!(2))),
        Ok(true)
    );
    assert_eq!(
        holds_in_one_pass(br#"{"n": 2}"#, "$.n", Matcher::Eq(json!("2"))),
        Ok(false),
        "a number is not a string"
    );
    assert_eq!(
        holds_in_one_pass(br#"{"s": "2"}"#, "$.s", Matcher::Eq(json!(2))),
        Ok(false),
        "a string is not a number"
    );
    assert_eq!(
        holds_in_one_pass(
            r#"{"s": "é😀"}"#.as_bytes(),
            "$.s",
            Matcher::Len(Box::new(Matcher::Eq(json!(2))))
        ),
        Ok(true),
        "a string's length counts characters"
    );
}

/// The one pass still reads the whole body: what follows the selected member must
/// be JSON too, exactly as for the full parse.
#[test]
fn a_body_that_is_not_json_after_the_selected_member_fails_as_not_json() {
    let path = JsonPath::parse("$.status").unwrap();
    let ok = Matcher::Eq(json!("ok"));
    for bad in [
        &br#"{"status": "ok", "rest": tru}"#[..],
        br#"{"status": "ok", "rest": [1, 2"#,
        br#"{"status": "ok"} trailing"#,
        br#"{"status": "ok"}{}"#,
        br#"{"status": "ok", "rest": 1e400}"#,
        br#"{"status": "ok", "rest": "\ud800"}"#,
        br#"{"status": "ok", "rest": "\q"}"#,
        b"{\"status\": \"ok\", \"rest\": \"\xff\"}",
        br#"{"status": "ok""#,
        b"<html>ok</html>",
        b"",
    ] {
        let text = String::from_utf8_lossy(bad);
        assert_eq!(
            LazyJson::single(bad).holds(&path, &ok),
            Err(FailureKind::Check(CheckFailure::NotJson)),
            "{text}"
        );
        assert_eq!(
            LazyJson::new(bad).holds(&path, &ok),
            Err(FailureKind::Check(CheckFailure::NotJson)),
            "{text}"
        );
    }
}
