use std::sync::Arc;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use serde_json::{Value, json};

use super::*;
use crate::compile::graph::{FeederId, Func, JsonTemplate, Segment, SlotId, Template};

fn t(segments: Vec<Segment>) -> Template {
    Template { segments }
}

fn lit(s: &str) -> Segment {
    Segment::Literal(s.into())
}

struct Fixture {
    slots: Vec<Option<Value>>,
    rows: Vec<Option<Arc<[String]>>>,
    rng: SmallRng,
}

impl Fixture {
    fn new() -> Self {
        Fixture {
            slots: vec![
                Some(json!("tok")),
                Some(json!(42)),
                None,
                Some(json!({"a": [1]})),
            ],
            rows: vec![Some(Arc::from(vec![
                "alice".to_owned(),
                "s3cret".to_owned(),
            ]))],
            rng: SmallRng::seed_from_u64(7),
        }
    }
    fn scope(&mut self) -> Scope<'_> {
        Scope {
            user: 3,
            iteration: 9,
            slots: &self.slots,
            rows: &self.rows,
            rng: &mut self.rng,
        }
    }
}

fn render(f: &mut Fixture, tpl: &Template) -> Result<String, SlotId> {
    let mut out = String::new();
    render_str(tpl, &mut f.scope(), &mut out).map(|()| out)
}

#[test]
fn strings_from_every_segment_kind() {
    let mut f = Fixture::new();
    let tpl = t(vec![
        lit("/u/"),
        Segment::Func(Func::User),
        lit("/i/"),
        Segment::Func(Func::Iteration),
        lit("/"),
        Segment::Slot(SlotId(0)),
        lit("/"),
        Segment::Slot(SlotId(1)),
        lit("/"),
        Segment::Const(json!("eu")),
        lit("/"),
        Segment::Const(json!(20)),
        lit("/"),
        Segment::Feeder {
            feeder: FeederId(0),
            column: 1,
        },
        lit("/"),
        Segment::Slot(SlotId(3)),
    ]);
    assert_eq!(
        render(&mut f, &tpl).unwrap(),
        r#"/u/3/i/9/tok/42/eu/20/s3cret/{"a":[1]}"#
    );
}

#[test]
fn functions() {
    let mut f = Fixture::new();
    for _ in 0..200 {
        let n: i64 = render(&mut f, &t(vec![Segment::Func(Func::Rand { lo: 1, hi: 5 })]))
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=5).contains(&n));
    }
    let id = render(&mut f, &t(vec![Segment::Func(Func::Uuid)])).unwrap();
    let parsed = uuid::Uuid::parse_str(&id).unwrap();
    assert_eq!(parsed.get_version_num(), 4);
    let other = render(&mut f, &t(vec![Segment::Func(Func::Uuid)])).unwrap();
    assert_ne!(id, other);
    let now: u64 = render(&mut f, &t(vec![Segment::Func(Func::Now)]))
        .unwrap()
        .parse()
        .unwrap();
    assert!(now > 1_600_000_000_000);
}

#[test]
fn unset_slot_fails_with_its_id() {
    let mut f = Fixture::new();
    let tpl = t(vec![lit("Bearer "), Segment::Slot(SlotId(2))]);
    assert_eq!(render(&mut f, &tpl), Err(SlotId(2)));
    // Out of range is unset too, never a panic.
    assert_eq!(
        render(&mut f, &t(vec![Segment::Slot(SlotId(99))])),
        Err(SlotId(99))
    );
}

#[test]
fn missing_feeder_row_renders_empty() {
    let mut f = Fixture::new();
    let tpl = t(vec![
        lit("["),
        Segment::Feeder {
            feeder: FeederId(5),
            column: 0,
        },
        lit("]"),
    ]);
    assert_eq!(render(&mut f, &tpl).unwrap(), "[]");
}

fn json_of(f: &mut Fixture, tpl: &JsonTemplate) -> Result<Value, SlotId> {
    let mut out = Vec::new();
    let mut scratch = String::new();
    render_json(tpl, &mut f.scope(), &mut out, &mut scratch)?;
    Ok(serde_json::from_slice(&out).expect("rendered JSON parses"))
}

#[test]
fn json_keeps_the_type_of_a_single_expression() {
    let mut f = Fixture::new();
    let tpl = JsonTemplate::Object(vec![
        (
            "n".into(),
            JsonTemplate::String(t(vec![Segment::Func(Func::Rand { lo: 7, hi: 7 })])),
        ),
        (
            "id".into(),
            JsonTemplate::String(t(vec![Segment::Slot(SlotId(1))])),
        ),
        (
            "obj".into(),
            JsonTemplate::String(t(vec![Segment::Slot(SlotId(3))])),
        ),
        (
            "text".into(),
            JsonTemplate::String(t(vec![lit("id-"), Segment::Slot(SlotId(1))])),
        ),
        (
            "user".into(),
            JsonTemplate::String(t(vec![Segment::Feeder {
                feeder: FeederId(0),
                column: 0,
            }])),
        ),
        (
            "quote\"key".into(),
            JsonTemplate::String(t(vec![lit("a \"quoted\"\n line")])),
        ),
        (
            "list".into(),
            JsonTemplate::Array(vec![
                JsonTemplate::Value(json!(true)),
                JsonTemplate::Value(Value::Null),
                JsonTemplate::String(t(vec![Segment::Const(json!(2.5))])),
            ]),
        ),
        ("empty".into(), JsonTemplate::Object(vec![])),
    ]);
    assert_eq!(
        json_of(&mut f, &tpl).unwrap(),
        json!({
            "n": 7, "id": 42, "obj": {"a": [1]}, "text": "id-42", "user": "alice",
            "quote\"key": "a \"quoted\"\n line", "list": [true, null, 2.5], "empty": {}
        })
    );
    let unset = JsonTemplate::Array(vec![JsonTemplate::String(t(vec![Segment::Slot(SlotId(
        2,
    ))]))]);
    assert_eq!(json_of(&mut f, &unset), Err(SlotId(2)));
}

#[test]
fn form_and_query_are_url_encoded() {
    let mut f = Fixture::new();
    let pairs = vec![
        ("user name".to_owned(), t(vec![lit("a&b=c d")])),
        ("tok".to_owned(), t(vec![Segment::Slot(SlotId(0))])),
        ("ü".to_owned(), t(vec![lit("é/?")])),
    ];
    let mut body = Vec::new();
    let mut scratch = String::new();
    render_form(&pairs, &mut f.scope(), &mut body, &mut scratch).unwrap();
    assert_eq!(
        String::from_utf8(body).unwrap(),
        "user+name=a%26b%3Dc+d&tok=tok&%C3%BC=%C3%A9%2F%3F"
    );

    let q = &pairs[..2];
    for (base, want) in [
        ("http://h/p", "http://h/p?user+name=a%26b%3Dc+d&tok=tok"),
        (
            "http://h/p?x=1",
            "http://h/p?x=1&user+name=a%26b%3Dc+d&tok=tok",
        ),
        ("http://h/p?", "http://h/p?user+name=a%26b%3Dc+d&tok=tok"),
        (
            "http://h/p#frag",
            "http://h/p?user+name=a%26b%3Dc+d&tok=tok",
        ),
    ] {
        let mut url = base.to_owned();
        append_query(q, &mut f.scope(), &mut url, &mut scratch).unwrap();
        assert_eq!(url, want, "base {base}");
    }
    let mut url = "http://h/p".to_owned();
    append_query(&[], &mut f.scope(), &mut url, &mut scratch).unwrap();
    assert_eq!(url, "http://h/p");
}
