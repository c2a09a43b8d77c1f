//! A format-neutral document tree with source offsets.
//!
//! YAML and TOML are both read into a [`Node`] tree first; every node and every map
//! key remembers the byte offset it came from. The raw plan types are then
//! deserialized from this tree (see [`super::de`]), so both formats share one model and
//! one set of error messages, and every later check can point at the exact spot.

use std::collections::HashSet;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, MapAccess, SeqAccess, Visitor};

/// A value in the plan file and the byte offset where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub pos: usize,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

/// A map key and the byte offset where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub pos: usize,
    pub name: String,
}

impl Kind {
    /// How the kind is named in messages: "a string", "a map"...
    pub fn describe(&self) -> &'static str {
        match self {
            Kind::Null => "null",
            Kind::Bool(_) => "a boolean",
            Kind::Int(_) => "an integer",
            Kind::Float(_) => "a number",
            Kind::Str(_) => "a string",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a map",
        }
    }
}

impl Node {
    /// The node as a JSON value (used for JSON bodies, vars and schema validation).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.kind {
            Kind::Null => Value::Null,
            Kind::Bool(b) => Value::Bool(*b),
            Kind::Int(i) => Value::from(*i),
            Kind::Float(f) => serde_json::Number::from_f64(*f)
                .map(Value::Number)
                .unwrap_or(Value::Null),
            Kind::Str(s) => Value::String(s.clone()),
            Kind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            Kind::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.name.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

/// How a format's deserializer exposes the position of a value.
trait Spans {
    type S<T: for<'de> Deserialize<'de>>: for<'de> Deserialize<'de>;
    fn split<T: for<'de> Deserialize<'de>>(s: Self::S<T>) -> (usize, T);
}

struct Yaml;
impl Spans for Yaml {
    type S<T: for<'de> Deserialize<'de>> = serde_saphyr::Spanned<T>;
    fn split<T: for<'de> Deserialize<'de>>(s: Self::S<T>) -> (usize, T) {
        let pos = s
            .referenced
            .span()
            .byte_offset()
            .and_then(|o| usize::try_from(o).ok())
            .unwrap_or(0);
        (pos, s.value)
    }
}

struct Toml;
impl Spans for Toml {
    type S<T: for<'de> Deserialize<'de>> = toml::Spanned<T>;
    fn split<T: for<'de> Deserialize<'de>>(s: Self::S<T>) -> (usize, T) {
        let pos = s.span().start;
        (pos, s.into_inner())
    }
}

/// A parse failure of the file itself (before any plan check).
#[derive(Debug, Clone)]
pub struct SyntaxError {
    pub pos: Option<usize>,
    pub line_col: Option<(u32, u32)>,
    pub message: String,
}

/// Reads YAML text into a tree.
pub fn parse_yaml(source: &str) -> Result<Node, SyntaxError> {
    if source.trim().is_empty() || is_only_comments(source) {
        return Ok(Node {
            pos: 0,
            kind: Kind::Null,
        });
    }
    // YAML 1.2 core schema: only `true`/`false` are booleans, so keys like `n` or `on`
    // stay strings (YAML 1.1 would read them as booleans).
    let options = serde_saphyr::options! { strict_booleans: true };
    match serde_saphyr::from_str_with_options::<serde_saphyr::Spanned<Tree<Yaml>>>(source, options)
    {
        Ok(s) => {
            let (pos, t) = Yaml::split(s);
            Ok(Node { pos, kind: t.kind })
        }
        Err(e) => {
            let loc = e.location();
            let line_col = loc.and_then(|l| {
                let (line, col) = (l.line(), l.column());
                (line > 0).then(|| (line as u32, col.max(1) as u32))
            });
            let pos = loc.and_then(|l| l.span().byte_offset().map(|o| o as usize));
            // The error met inside an alias's expansion, without the wrapping that
            // repeats its locations in the text (the snippet shows where it is).
            let mut inner = &e;
            while let serde_saphyr::Error::AliasError { error, .. }
            | serde_saphyr::Error::WithSnippet { error, .. } = inner
            {
                inner = error;
            }
            let message = match inner {
                serde_saphyr::Error::Budget { breach, .. } => budget_sentence(breach),
                other => first_line(&other.to_string()),
            };
            Err(SyntaxError {
                pos,
                line_col,
                message,
            })
        }
    }
}

/// Reads TOML text into a tree.
pub fn parse_toml(source: &str) -> Result<Node, SyntaxError> {
    match toml::from_str::<toml::Spanned<Tree<Toml>>>(source) {
        Ok(s) => {
            let (pos, t) = Toml::split(s);
            Ok(Node { pos, kind: t.kind })
        }
        Err(e) => Err(SyntaxError {
            pos: e.span().map(|r| r.start),
            line_col: None,
            message: e.message().trim().to_owned(),
        }),
    }
}

fn is_only_comments(source: &str) -> bool {
    source
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
}

/// A YAML size limit the plan went past, as a sentence. The parser's limits (its
/// defaults: 250,000 values, 50,000 aliases, nesting 64 deep...) are what keep an alias
/// bomb ("billion laughs") from expanding into gigabytes; the user is told which one.
fn budget_sentence(breach: &serde_saphyr::budget::BudgetBreach) -> String {
    use serde_saphyr::budget::BudgetBreach as B;
    let limits = serde_saphyr::Budget::default();
    let alias_hint = "YAML aliases (`*name`) that repeat aliases multiply; is this an alias bomb?";
    match breach {
        B::Nodes { .. } => format!(
            "the plan holds more than {} values once its YAML aliases are expanded; {alias_hint}",
            limits.max_nodes
        ),
        B::Aliases { .. } => format!(
            "the plan uses more than {} YAML aliases (`*name`)",
            limits.max_aliases
        ),
        B::AliasAnchorRatio { aliases, anchors } => {
            format!("the plan uses {aliases} YAML aliases for {anchors} anchors; {alias_hint}")
        }
        B::Anchors { .. } => format!(
            "the plan defines more than {} YAML anchors (`&name`)",
            limits.max_anchors
        ),
        B::Depth { .. } => format!(
            "the plan nests values more than {} levels deep",
            limits.max_depth
        ),
        B::Events { .. } | B::RecordedAnchorEvents { .. } | B::RecordedAnchorBytes { .. } => {
            format!(
                "the plan is too large to read once its YAML aliases are expanded; {alias_hint}"
            )
        }
        B::Documents { .. } => "the plan holds too many YAML documents (`---`)".into(),
        B::ScalarBytes { .. } | B::InputBytes { .. } => {
            "the plan's text is too large to read; put bulk data in a data file (`data:`)".into()
        }
        B::MergeKeys { .. } => format!(
            "the plan uses more than {} YAML merge keys (`<<`)",
            limits.max_merge_keys
        ),
        _ => "the plan is too large or too deeply nested for the YAML reader".into(),
    }
}

/// The parser's message without the location (we print our own) or advice that is
/// about the library's options rather than the plan.
fn first_line(s: &str) -> String {
    let mut line = s.lines().next().unwrap_or("").trim();
    if let Some(i) = line.rfind(" at line ") {
        line = &line[..i];
    }
    if let Some(i) = line.find(", set DuplicateKeyPolicy") {
        line = &line[..i];
    }
    line.to_owned()
}

/// A node kind built by a format's deserializer, with `F` providing positions.
struct Tree<F> {
    kind: Kind,
    _f: std::marker::PhantomData<F>,
}

impl<F> Tree<F> {
    fn new(kind: Kind) -> Self {
        Tree {
            kind,
            _f: std::marker::PhantomData,
        }
    }
}

impl<'de, F: Spans> Deserialize<'de> for Tree<F> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TreeVisitor::<F>(std::marker::PhantomData))
    }
}

struct TreeVisitor<F>(std::marker::PhantomData<F>);

impl<'de, F: Spans> Visitor<'de> for TreeVisitor<F> {
    type Value = Tree<F>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Tree::new(Kind::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Tree::new(Kind::Int(v)))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Tree::new(match i64::try_from(v) {
            Ok(i) => Kind::Int(i),
            Err(_) => Kind::Float(v as f64),
        }))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Self::Value, E> {
        Ok(Tree::new(match i64::try_from(v) {
            Ok(i) => Kind::Int(i),
            Err(_) => Kind::Float(v as f64),
        }))
    }
    fn visit_u128<E>(self, v: u128) -> Result<Self::Value, E> {
        Ok(Tree::new(match i64::try_from(v) {
            Ok(i) => Kind::Int(i),
            Err(_) => Kind::Float(v as f64),
        }))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Tree::new(Kind::Float(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Tree::new(Kind::Str(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Tree::new(Kind::Str(v)))
    }
    fn visit_bytes<E>(self, v: &[u8]) -> Result<Self::Value, E> {
        Ok(Tree::new(Kind::Str(
            String::from_utf8_lossy(v).into_owned(),
        )))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Tree::new(Kind::Null))
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Tree::new(Kind::Null))
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        Tree::<F>::deserialize(d)
    }
    fn visit_newtype_struct<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        Tree::<F>::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(s) = seq.next_element::<F::S<Tree<F>>>()? {
            let (pos, t) = F::split(s);
            items.push(Node { pos, kind: t.kind });
        }
        Ok(Tree::new(Kind::Seq(items)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries: Vec<(Key, Node)> = Vec::new();
        // A set, not a scan of `entries`: a mapping of 100,000 keys would otherwise take
        // 5 billion comparisons to reject.
        let mut seen: HashSet<String> = HashSet::new();
        while let Some(k) = map.next_key::<F::S<KeyText>>()? {
            let (kpos, name) = F::split(k);
            let (vpos, t) = F::split(map.next_value::<F::S<Tree<F>>>()?);
            if !seen.insert(name.0.clone()) {
                return Err(de::Error::custom(format_args!(
                    "duplicate key `{}`",
                    name.0
                )));
            }
            entries.push((
                Key {
                    pos: kpos,
                    name: name.0,
                },
                Node {
                    pos: vpos,
                    kind: t.kind,
                },
            ));
        }
        // TOML datetimes arrive as a map with one private key; keep them as text.
        if let [(k, v)] = entries.as_slice()
            && k.name == "$__toml_private_datetime"
            && let Kind::Str(s) = &v.kind
        {
            return Ok(Tree::new(Kind::Str(s.clone())));
        }
        Ok(Tree::new(Kind::Map(entries)))
    }
}

/// A map key as text, whatever scalar it was written as.
struct KeyText(String);

impl<'de> Deserialize<'de> for KeyText {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = KeyText;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a plain key (text or a number)")
            }
            fn visit_str<E>(self, v: &str) -> Result<KeyText, E> {
                Ok(KeyText(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<KeyText, E> {
                Ok(KeyText(v))
            }
            fn visit_bool<E>(self, v: bool) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_unit<E>(self) -> Result<KeyText, E> {
                Ok(KeyText("null".into()))
            }
            fn visit_none<E>(self) -> Result<KeyText, E> {
                Ok(KeyText("null".into()))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(n: &Node) -> &[(Key, Node)] {
        match &n.kind {
            Kind::Map(m) => m,
            k => panic!("not a map: {k:?}"),
        }
    }

    #[test]
    fn yaml_keeps_offsets() {
        let src = "name: x\nload:\n  users: 5\n";
        let n = parse_yaml(src).unwrap();
        let m = map(&n);
        assert_eq!(m[0].0.name, "name");
        assert_eq!(m[0].0.pos, 0);
        assert_eq!(m[0].1.pos, 6);
        let load = map(&m[1].1);
        assert_eq!(&src[load[0].0.pos..load[0].0.pos + 5], "users");
        assert_eq!(load[0].1.kind, Kind::Int(5));
    }

    #[test]
    fn toml_keeps_offsets() {
        let src = "name = \"x\"\n[load]\nusers = 5\n";
        let n = parse_toml(src).unwrap();
        let m = map(&n);
        let name = m.iter().find(|(k, _)| k.name == "name").unwrap();
        assert_eq!(name.0.pos, 0);
        assert_eq!(&src[name.1.pos..name.1.pos + 3], "\"x\"");
        let load = m.iter().find(|(k, _)| k.name == "load").unwrap();
        let users = &map(&load.1)[0];
        assert_eq!(&src[users.0.pos..users.0.pos + 5], "users");
    }

    #[test]
    fn broken_yaml_has_a_location() {
        let e = parse_yaml("name: [unclosed\nflows: {\n").unwrap_err();
        assert!(e.pos.is_some() || e.line_col.is_some(), "{e:?}");
    }

    #[test]
    fn an_alias_bomb_is_refused_with_a_sentence() {
        let mut src = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for i in 1..10 {
            let refs = vec![format!("*a{}", i - 1); 9].join(", ");
            src.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
        }
        let e = parse_yaml(&src).unwrap_err();
        assert!(e.message.contains("alias bomb"), "{}", e.message);
        assert!(
            !e.message.contains('{') && !e.message.contains("Nodes"),
            "{}",
            e.message
        );
        assert!(e.pos.is_some() || e.line_col.is_some(), "{e:?}");
    }

    #[test]
    fn duplicate_keys_are_refused_in_both_formats() {
        let e = parse_yaml("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert!(e.message.contains("duplicate"), "{}", e.message);
        let e = parse_toml("a = 1\nb = 2\na = 3\n").unwrap_err();
        assert!(e.message.contains("duplicate"), "{}", e.message);
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let deep = format!("a: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse_yaml(&deep).is_err());
        let deep = format!("a = {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse_toml(&deep).is_err());
    }
}
