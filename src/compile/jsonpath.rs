//! Compiled JSONPath (RFC 9535) queries: parsed once at compile time, run per response.

use std::fmt;

use jsonpath_rust::parser::model::{JpQuery, Segment, Selector};
use serde::Deserialize;
use serde::de::value::{BorrowedStrDeserializer, MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

mod plain;

/// A parsed JSONPath query and its source text.
///
/// Queries made only of child names and indices (`$.a.b`, `$['a'][0]`, `$.a[-1]`),
/// the common case in plans, are also compiled to a list of `Step`s and walked
/// directly over the value, without allocating; `jsonpath_rust` builds a path string
/// for every node it visits. Every other query runs through `jsonpath_rust`.
#[derive(Clone)]
pub struct JsonPath {
    source: String,
    query: JpQuery,
    simple: Option<Box<[Step]>>,
}

/// One segment of a simple query: a single name or a single index selector.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Name(Box<str>),
    Index(i64),
}

/// The steps of `query` when every segment selects one name or one index.
fn simple_steps(query: &JpQuery) -> Option<Box<[Step]>> {
    let step = |selector: &Selector| match selector {
        Selector::Name(name) => Some(Step::Name(name.as_str().into())),
        Selector::Index(i) => Some(Step::Index(*i)),
        _ => None,
    };
    query
        .segments
        .iter()
        .map(|segment| match segment {
            Segment::Selector(s) => step(s),
            Segment::Selectors(list) if list.len() == 1 => step(&list[0]),
            _ => None,
        })
        .collect()
}

/// Walks simple steps as RFC 9535 (and `jsonpath_rust`) select them: a name selects
/// an object's member, an index an array's element (negative from the end); anything
/// else selects nothing.
fn walk<'a>(steps: &[Step], mut value: &'a Value) -> Option<&'a Value> {
    for step in steps {
        value = match step {
            Step::Name(name) => value.as_object()?.get(&**name)?,
            Step::Index(i) => {
                let array = value.as_array()?;
                let i = if *i >= 0 {
                    usize::try_from(*i).ok()?
                } else {
                    let back = usize::try_from(i.unsigned_abs()).ok()?;
                    array.len().checked_sub(back)?
                };
                array.get(i)?
            }
        };
    }
    Some(value)
}

/// What a one-pass selection ([`JsonPath::select_with`]) does with the node it
/// reaches, while that node is still text: build it ([`Build`]), or judge it where it
/// lies (a check's matcher, without building a string it only compares).
pub trait Leaf: Copy {
    type Out;

    /// Reads the selected node from `d`, which holds exactly that node.
    fn read<'de, D: Deserializer<'de>>(self, d: D) -> Result<Self::Out, D::Error>;
}

/// The selected node, built into a [`Value`].
#[derive(Debug, Clone, Copy)]
pub struct Build;

impl Leaf for Build {
    type Out = Value;

    fn read<'de, D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
}

/// Selects what simple steps select straight from JSON text, in one pass: only the
/// selected node is read by the [`Leaf`]; every other member and element is read as
/// the full parse reads it and dropped ([`Skip`]). Negative indices need the array's
/// length, so they are not walked this way (see [`JsonPath::select_with`]).
struct Select<'s, L>(&'s [Step], L);

impl<'de, L: Leaf> DeserializeSeed<'de> for Select<'_, L> {
    type Value = Option<L::Out>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<L::Out>, D::Error> {
        if self.0.is_empty() {
            return self.1.read(d).map(Some);
        }
        d.deserialize_any(self)
    }
}

impl<'de, L: Leaf> Visitor<'de> for Select<'_, L> {
    type Value = Option<L::Out>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<L::Out>, A::Error> {
        let Select(steps, leaf) = self;
        let Some((step, rest)) = steps.split_first() else {
            return leaf.read(MapAccessDeserializer::new(map)).map(Some);
        };
        let mut found = None;
        while let Some(hit) = map.next_key_seed(KeyIs(step))? {
            if hit {
                // A repeated member replaces the earlier one, as in a parsed `Value`.
                found = map.next_value_seed(Select(rest, leaf))?;
            } else {
                map.next_value_seed(Skip)?;
            }
        }
        Ok(found)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<L::Out>, A::Error> {
        let Select(steps, leaf) = self;
        let Some((step, rest)) = steps.split_first() else {
            return leaf.read(SeqAccessDeserializer::new(seq)).map(Some);
        };
        let want = match step {
            Step::Index(i) => usize::try_from(*i).ok(),
            Step::Name(_) => None,
        };
        let mut found = None;
        let mut at = 0usize;
        loop {
            if Some(at) == want {
                match seq.next_element_seed(Select(rest, leaf))? {
                    Some(v) => found = v,
                    None => return Ok(found),
                }
            } else if seq.next_element_seed(Skip)?.is_none() {
                return Ok(found);
            }
            at += 1;
        }
    }

    fn visit_bool<E>(self, _: bool) -> Result<Option<L::Out>, E> {
        Ok(None)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Option<L::Out>, E> {
        Ok(None)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Option<L::Out>, E> {
        Ok(None)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Option<L::Out>, E> {
        Ok(None)
    }

    fn visit_str<E>(self, _: &str) -> Result<Option<L::Out>, E> {
        Ok(None)
    }

    fn visit_unit<E>(self) -> Result<Option<L::Out>, E> {
        Ok(None)
    }
}

/// Reads a value exactly as parsing it into a [`Value`] would (strings checked as
/// UTF-8, numbers in range, nesting limited), without building anything, so a body
/// is JSON to a one-pass selection exactly when it is to the full parse. (serde's
/// `IgnoredAny` is cheaper but lets through what the full parse rejects, such as
/// `1e400` or nesting 200 deep.)
struct Skip;

impl<'de> DeserializeSeed<'de> for Skip {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Skip {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key_seed(Skip)?.is_some() {
            map.next_value_seed(Skip)?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Skip)?.is_some() {}
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

/// Whether an object key is the name a step selects; compares without allocating
/// (keys without escapes are borrowed from the input).
struct KeyIs<'s>(&'s Step);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E>(self, key: &str) -> Result<bool, E> {
        Ok(matches!(self.0, Step::Name(name) if **name == *key))
    }
}

/// Why a JSONPath expression did not parse.
#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid JSONPath `{source_text}`: {reason}")]
pub struct JsonPathError {
    pub source_text: String,
    pub reason: String,
}

impl JsonPath {
    pub fn parse(source: &str) -> Result<Self, JsonPathError> {
        match jsonpath_rust::parser::parse_json_path(source) {
            Ok(query) => Ok(JsonPath {
                source: source.to_owned(),
                simple: simple_steps(&query),
                query,
            }),
            Err(e) => Err(JsonPathError {
                source_text: source.to_owned(),
                reason: short_reason(&e.to_string()),
            }),
        }
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The nodes the query selects, in document order.
    pub fn query<'a>(&self, value: &'a Value) -> Vec<&'a Value> {
        if let Some(steps) = &self.simple {
            return walk(steps, value).into_iter().collect();
        }
        jsonpath_rust::query::js_path_process(&self.query, value)
            .map(|refs| refs.into_iter().map(|r| r.val()).collect())
            .unwrap_or_default()
    }

    /// Whether `test` holds for every node the query selects; when it selects none,
    /// whether `test(None)` holds. Allocates nothing for simple queries.
    pub fn all(&self, value: &Value, mut test: impl FnMut(Option<&Value>) -> bool) -> bool {
        if let Some(steps) = &self.simple {
            return test(walk(steps, value));
        }
        let nodes = self.query(value);
        if nodes.is_empty() {
            test(None)
        } else {
            nodes.into_iter().all(|v| test(Some(v)))
        }
    }

    /// What the query selects from the JSON text `body`, in one pass that builds only
    /// the selected node: cheaper than parsing the whole document when it is the only
    /// query on it. `None` when the query cannot be answered that way (it is not a
    /// simple one, or it counts from an array's end); `Some(Err)` when `body` is not
    /// JSON. Agrees with [`JsonPath::first`] on the parsed document.
    pub fn select_in(&self, body: &[u8]) -> Option<Result<Option<Value>, serde_json::Error>> {
        self.select_with(body, Build)
    }

    /// As [`JsonPath::select_in`], with `leaf` reading the selected node (`Ok(None)`
    /// when the query selects nothing). The whole of `body` is still checked as the
    /// full parse checks it, so a body is JSON here exactly when it is to
    /// `serde_json::from_slice`: plainly written text by a scan of its own
    /// (`plain`), anything else by `serde_json` (`Select`).
    pub fn select_with<L: Leaf>(
        &self,
        body: &[u8],
        leaf: L,
    ) -> Option<Result<Option<L::Out>, serde_json::Error>> {
        let steps = self.simple.as_deref()?;
        if steps.iter().any(|s| matches!(s, Step::Index(i) if *i < 0)) {
            return None;
        }
        // A body written plainly is walked without serde's machinery; only the node
        // it selects is read through a deserializer.
        match plain::select(body, steps) {
            Ok(None) => return Some(Ok(None)),
            Ok(Some(plain::Node::Str(text))) => {
                return Some(leaf.read(BorrowedStrDeserializer::new(text)).map(Some));
            }
            Ok(Some(plain::Node::Other(node))) => {
                let mut de = serde_json::Deserializer::from_slice(&body[node]);
                return Some(leaf.read(&mut de).map(Some));
            }
            Err(plain::Unsure) => {}
        }
        let mut de = serde_json::Deserializer::from_slice(body);
        Some(Select(steps, leaf).deserialize(&mut de).and_then(|v| {
            de.end()?;
            Ok(v)
        }))
    }

    /// The first node the query selects.
    pub fn first<'a>(&self, value: &'a Value) -> Option<&'a Value> {
        match &self.simple {
            Some(steps) => walk(steps, value),
            None => self.query(value).into_iter().next(),
        }
    }
}

/// The parser's multi-line report, reduced to its last line ("expected ...").
fn short_reason(full: &str) -> String {
    let last = full
        .lines()
        .map(|l| l.trim().trim_start_matches('=').trim())
        .rfind(|l| !l.is_empty() && !l.starts_with('|') && !l.starts_with("-->"));
    let column = full
        .lines()
        .find_map(|l| l.find("-->").map(|i| &l[i + 3..]))
        .and_then(|l| l.trim().split(':').nth(1))
        .map(|c| format!(" (at character {})", c.trim()));
    match last {
        Some(l) => format!("{l}{}", column.unwrap_or_default()),
        None => full.trim().to_owned(),
    }
}

impl fmt::Debug for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JsonPath({})", self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_once_and_queries() {
        let p = JsonPath::parse("$.items[0].price").unwrap();
        let v: Value = serde_json::json!({"items": [{"price": 3}]});
        assert_eq!(p.first(&v), Some(&serde_json::json!(3)));
        assert!(JsonPath::parse("$.items[?(").is_err());
    }

    /// What `jsonpath_rust` alone selects, the reference for the simple walk.
    fn reference<'a>(p: &JsonPath, v: &'a Value) -> Vec<&'a Value> {
        jsonpath_rust::query::js_path_process(&p.query, v)
            .map(|refs| refs.into_iter().map(|r| r.val()).collect())
            .unwrap_or_default()
    }

    fn docs() -> Vec<Value> {
        vec![
            serde_json::json!({"status": "ok", "a": {"b": [1, {"c": null}, [true]]}, "": 5,
                "it's": {"x y": [10, 20, 30]}, "0": "zero"}),
            serde_json::json!([{"a": 1}, [2, 3], "s", null, -1.5]),
            serde_json::json!("text"),
            serde_json::json!(null),
            serde_json::json!({}),
            serde_json::json!([]),
        ]
    }

    #[test]
    fn simple_paths_are_compiled_and_agree_with_jsonpath_rust() {
        let simple = [
            "$",
            "$.status",
            "$.a.b",
            "$.a.b[0]",
            "$.a.b[1].c",
            "$.a.b[2][0]",
            "$.a.b[-1]",
            "$.a.b[-3]",
            "$.a.b[-4]",
            "$.a.b[3]",
            "$['a']['b'][1]",
            "$[\"it's\"]['x y'][-1]",
            "$['it\\'s']",
            "$['']",
            "$['0']",
            "$[0]",
            "$[0].a",
            "$[-1]",
            "$[1][-2]",
            "$[4]",
            "$.missing",
            "$.status.deeper",
            "$.a[0]",
            "$[9007199254740991]",
            "$[-9007199254740991]",
        ];
        for path in simple {
            let p = JsonPath::parse(path).unwrap();
            assert!(p.simple.is_some(), "{path} compiles to steps");
            for doc in docs() {
                let want = reference(&p, &doc);
                assert_eq!(p.query(&doc), want, "{path} on {doc}");
                assert_eq!(p.first(&doc), want.first().copied(), "{path} on {doc}");
                assert!(want.len() <= 1);
                let text = serde_json::to_vec(&doc).unwrap();
                match p.select_in(&text) {
                    Some(selected) => assert_eq!(
                        selected.unwrap().as_ref(),
                        want.first().copied(),
                        "{path} on {doc} in one pass"
                    ),
                    None => assert!(path.contains("[-"), "{path} is walked in one pass"),
                }
            }
        }
    }

    #[test]
    fn one_pass_selection_reads_json_as_the_parser_does() {
        let select = |path: &str, text: &str| {
            JsonPath::parse(path)
                .unwrap()
                .select_in(text.as_bytes())
                .expect("a simple path")
        };
        // A repeated member: the last one counts, as in a parsed value.
        let text = r#"{"a": {"b": 1}, "a": {"c": 2}}"#;
        assert_eq!(select("$.a.b", text).unwrap(), None);
        assert_eq!(select("$.a.c", text).unwrap(), Some(Value::from(2)));
        // Escaped keys are unescaped before they are compared.
        let text = r#"{"x\"y": 1, "\u00e9": [0, {"k": "v"}]}"#;
        assert_eq!(select("$['x\"y']", text).unwrap(), Some(Value::from(1)));
        assert_eq!(select("$['é'][1].k", text).unwrap(), Some(Value::from("v")));
        assert_eq!(
            select("$['é'][1]", text).unwrap(),
            Some(serde_json::json!({"k": "v"}))
        );
        assert_eq!(select("$['é'][2]", text).unwrap(), None);
        // Whatever is skipped must be JSON as the full parse reads it, and nothing may
        // follow the value.
        let deep = format!(
            r#"{{"status": "ok", "d": {}{}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        for bad in [
            r#"{"status": "ok", "rest": [1, 2"#,
            r#"{"status": "ok", "rest": tru}"#,
            r#"{"status": "ok"} trailing"#,
            r#"{"rest": "\q", "status": "ok"}"#,
            r#"{"rest": 1e400, "status": "ok"}"#,
            r#"{"rest": "\ud800", "status": "ok"}"#,
            &deep,
            "",
            "<html>",
        ] {
            assert!(select("$.status", bad).is_err(), "{bad:?} is not JSON");
            assert!(serde_json::from_str::<Value>(bad).is_err());
        }
        let bad_utf8 = b"{\"rest\": \"\xff\", \"status\": \"ok\"}";
        assert!(serde_json::from_slice::<Value>(bad_utf8).is_err());
        let path = JsonPath::parse("$.status").unwrap();
        assert!(path.select_in(bad_utf8).unwrap().is_err());
        // Counting from the end needs the whole array: not done in one pass.
        assert!(
            JsonPath::parse("$.a[-1]")
                .unwrap()
                .select_in(b"{}")
                .is_none()
        );
        assert!(JsonPath::parse("$..a").unwrap().select_in(b"{}").is_none());
    }

    #[test]
    fn other_paths_fall_back_to_jsonpath_rust() {
        for path in [
            "$.*",
            "$..b",
            "$.a.b[0:2]",
            "$.a.b[?@ == 1]",
            "$['a','status']",
            "$[0,1]",
            "$.a.b[*]",
        ] {
            let p = JsonPath::parse(path).unwrap();
            assert!(p.simple.is_none(), "{path} is not simple");
            for doc in docs() {
                assert_eq!(p.query(&doc), reference(&p, &doc), "{path} on {doc}");
            }
        }
        let doc = serde_json::json!({"a": [1, 2], "b": [3]});
        let p = JsonPath::parse("$..*[0]").unwrap();
        assert_eq!(p.query(&doc).len(), 2);
    }

    #[test]
    fn all_holds_for_every_node_or_for_none() {
        let doc = serde_json::json!({"xs": [1, 2, 3], "s": "ok"});
        let gt = |n: u64| move |v: Option<&Value>| v.and_then(Value::as_u64).is_some_and(|x| x > n);
        assert!(JsonPath::parse("$.xs[*]").unwrap().all(&doc, gt(0)));
        assert!(!JsonPath::parse("$.xs[*]").unwrap().all(&doc, gt(1)));
        assert!(JsonPath::parse("$.xs[-1]").unwrap().all(&doc, gt(2)));
        assert!(
            JsonPath::parse("$.nope")
                .unwrap()
                .all(&doc, |v| v.is_none())
        );
        assert!(
            JsonPath::parse("$.nope[*]")
                .unwrap()
                .all(&doc, |v| v.is_none())
        );
        assert!(!JsonPath::parse("$.s").unwrap().all(&doc, |v| v.is_none()));
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        const KEYS: [&str; 4] = ["a", "b", "x y", "it's"];

        fn value() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                (-5i64..5).prop_map(Value::from),
                "[a-z]{0,3}".prop_map(Value::String),
            ];
            leaf.prop_recursive(4, 32, 4, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                    prop::collection::vec((0..KEYS.len(), inner), 0..4).prop_map(|kv| {
                        Value::Object(
                            kv.into_iter()
                                .map(|(k, v)| (KEYS[k].to_owned(), v))
                                .collect(),
                        )
                    }),
                ]
            })
        }

        fn path() -> impl Strategy<Value = String> {
            let segment = prop_oneof![
                (0..2usize).prop_map(|k| format!(".{}", KEYS[k])),
                (0..KEYS.len()).prop_map(|k| format!("['{}']", KEYS[k].replace('\'', "\\'"))),
                (-5i64..5).prop_map(|i| format!("[{i}]")),
            ];
            prop::collection::vec(segment, 0..5).prop_map(|s| format!("${}", s.concat()))
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]
            #[test]
            fn simple_walk_matches_jsonpath_rust(doc in value(), path in path()) {
                let p = JsonPath::parse(&path).unwrap();
                prop_assert!(p.simple.is_some(), "{} compiles to steps", path);
                let want = reference(&p, &doc);
                prop_assert_eq!(p.query(&doc), want.clone());
                prop_assert_eq!(p.first(&doc), want.first().copied());
                let text = serde_json::to_vec_pretty(&doc).unwrap();
                if let Some(selected) = p.select_in(&text) {
                    let selected = selected.unwrap();
                    prop_assert_eq!(selected.as_ref(), want.first().copied());
                }
            }
        }
    }
}
