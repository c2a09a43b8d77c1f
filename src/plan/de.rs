//! Deserializes the raw plan types from a [`Node`] tree.
//!
//! The deserializer knows where every value came from, so a type error points at the
//! value, and [`Sp`] (see [`super::spanned`]) gives the raw types the offset of any
//! value they keep. Unknown keys do not stop it: each is recorded (with a "did you
//! mean" against the keys the struct accepts) and skipped, so all of them are reported
//! at once.

use std::cell::RefCell;
use std::fmt;

use serde::de::value::{BorrowedStrDeserializer, U64Deserializer};
use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, forward_to_deserialize_any};

use super::diag::Diag;
use super::node::{Key, Kind, Node};

use super::spanned::{SPANNED, SPANNED_FIELDS};
pub use super::spanned::{Sp, SpMap, Text};

/// A deserialization failure, located once it bubbles up through the tree.
#[derive(Debug, Clone)]
pub struct DeError {
    pub pos: Option<usize>,
    pub message: String,
    pub help: Option<String>,
}

impl DeError {
    fn at(mut self, pos: usize) -> Self {
        self.pos.get_or_insert(pos);
        self
    }

    pub fn into_diag(self, default_pos: usize) -> Diag {
        Diag {
            pos: self.pos.unwrap_or(default_pos),
            message: self.message,
            help: self.help,
        }
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            pos: None,
            message: msg.to_string(),
            help: None,
        }
    }

    fn invalid_type(unexp: de::Unexpected, exp: &dyn de::Expected) -> Self {
        let exp = match exp.to_string().as_str() {
            "i8" | "i16" | "i32" | "i64" | "u8" | "u16" | "u32" | "u64" => "a whole number".into(),
            "f32" | "f64" => "a number".into(),
            "a sequence" => "a list".into(),
            other => other.to_owned(),
        };
        let found = match unexp {
            de::Unexpected::Seq => "a list".to_owned(),
            de::Unexpected::Map => "a map".to_owned(),
            de::Unexpected::Unit => "nothing (null)".to_owned(),
            other => other.to_string(),
        };
        Self::custom(format_args!("expected {exp}, found {found}"))
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        DeError {
            pos: None,
            message: format!("unknown value `{variant}`"),
            help: Some(suggest(variant, expected)),
        }
    }
}

/// "did you mean `x`?" when a candidate is close, else the list of candidates.
pub fn suggest(got: &str, candidates: &[&str]) -> String {
    if candidates.contains(&"get")
        && matches!(
            got.to_ascii_lowercase().as_str(),
            "url" | "uri" | "path" | "method" | "request"
        )
    {
        return "the method is the key: write `- get: /path` (or post, put, patch, delete, head, options)"
            .into();
    }
    match closest(got, candidates.iter().copied()) {
        Some(best) => format!("did you mean `{best}`?"),
        None => format!(
            "expected one of: {}",
            candidates
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The candidate closest to `got`, if it is close enough to be a likely typo.
pub fn closest<'a>(got: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let got = got.to_lowercase();
    candidates
        .map(|c| (strsim::jaro_winkler(&got, &c.to_lowercase()), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// Collects the unknown keys met while deserializing.
#[derive(Default)]
pub struct Ctx {
    pub unknown: RefCell<Vec<Diag>>,
}

/// Deserializes `T` from `node`; unknown keys are added to `ctx`.
pub fn from_node<'a, T: Deserialize<'a>>(node: &'a Node, ctx: &'a Ctx) -> Result<T, DeError> {
    T::deserialize(NodeDe { node, ctx })
}

// ---------------------------------------------------------------------------------
// The deserializer

#[derive(Clone, Copy)]
struct NodeDe<'a> {
    node: &'a Node,
    ctx: &'a Ctx,
}

impl<'de> de::Deserializer<'de> for NodeDe<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let pos = self.node.pos;
        match &self.node.kind {
            Kind::Null => v.visit_unit(),
            Kind::Bool(b) => v.visit_bool(*b),
            Kind::Int(i) => v.visit_i64(*i),
            Kind::Float(f) => v.visit_f64(*f),
            Kind::Str(s) => v.visit_borrowed_str(s),
            Kind::Seq(items) => v.visit_seq(SeqDe {
                items: items.iter(),
                ctx: self.ctx,
            }),
            Kind::Map(entries) => v.visit_map(MapDe {
                entries: entries.iter(),
                fields: None,
                value: None,
                ctx: self.ctx,
            }),
        }
        .map_err(|e| e.at(pos))
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match self.node.kind {
            Kind::Null => v.visit_none(),
            _ => v.visit_some(self),
        }
        .map_err(|e| e.at(self.node.pos))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, DeError> {
        v.visit_newtype_struct(self)
            .map_err(|e| e.at(self.node.pos))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        let pos = self.node.pos;
        if name == SPANNED {
            return v.visit_map(SpAccess {
                pos,
                value: Some(SpValue::Node(self)),
                state: 0,
            });
        }
        match &self.node.kind {
            Kind::Map(entries) => v.visit_map(MapDe {
                entries: entries.iter(),
                fields: Some(fields),
                value: None,
                ctx: self.ctx,
            }),
            _ => self.deserialize_any(v),
        }
        .map_err(|e| e.at(pos))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        match &self.node.kind {
            Kind::Str(s) => {
                v.visit_enum(IntoDeserializer::<DeError>::into_deserializer(s.as_str()))
            }
            other => Err(DeError {
                pos: None,
                message: format!("expected a name, found {}", other.describe()),
                help: Some(suggest("", variants)),
            }),
        }
        .map_err(|e| e.at(self.node.pos))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_unit()
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map identifier
    }
}

struct SeqDe<'a> {
    items: std::slice::Iter<'a, Node>,
    ctx: &'a Ctx,
}

impl<'de> SeqAccess<'de> for SeqDe<'de> {
    type Error = DeError;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        match self.items.next() {
            Some(node) => seed
                .deserialize(NodeDe {
                    node,
                    ctx: self.ctx,
                })
                .map(Some)
                .map_err(|e| e.at(node.pos)),
            None => Ok(None),
        }
    }
}

struct MapDe<'a> {
    entries: std::slice::Iter<'a, (Key, Node)>,
    /// The keys the target struct accepts; others are recorded and skipped.
    fields: Option<&'static [&'static str]>,
    value: Option<&'a Node>,
    ctx: &'a Ctx,
}

impl<'de> MapAccess<'de> for MapDe<'de> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        for (key, value) in self.entries.by_ref() {
            if let Some(fields) = self.fields
                && !fields.contains(&key.name.as_str())
            {
                self.ctx.unknown.borrow_mut().push(
                    Diag::new(key.pos, format!("unknown key `{}`", key.name))
                        .help(suggest(&key.name, fields)),
                );
                continue;
            }
            self.value = Some(value);
            return seed.deserialize(KeyDe { key }).map(Some);
        }
        Ok(None)
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, DeError> {
        let node = self
            .value
            .take()
            .ok_or_else(|| <DeError as de::Error>::custom("a value without a key"))?;
        seed.deserialize(NodeDe {
            node,
            ctx: self.ctx,
        })
        .map_err(|e| e.at(node.pos))
    }
}

#[derive(Clone, Copy)]
struct KeyDe<'a> {
    key: &'a Key,
}

impl<'de> de::Deserializer<'de> for KeyDe<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_borrowed_str(&self.key.name)
            .map_err(|e: DeError| e.at(self.key.pos))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        _fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        if name == SPANNED {
            return v.visit_map(SpAccess {
                pos: self.key.pos,
                value: Some(SpValue::Key(self)),
                state: 0,
            });
        }
        self.deserialize_any(v)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        v.visit_enum(IntoDeserializer::<DeError>::into_deserializer(
            self.key.name.as_str(),
        ))
        .map_err(|e: DeError| e.at(self.key.pos))
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct
        map identifier ignored_any
    }
}

enum SpValue<'a> {
    Node(NodeDe<'a>),
    Key(KeyDe<'a>),
}

/// Feeds [`Sp`]'s visitor: first the offset, then the value.
struct SpAccess<'a> {
    pos: usize,
    value: Option<SpValue<'a>>,
    state: u8,
}

impl<'de> MapAccess<'de> for SpAccess<'de> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let key = match self.state {
            0 => SPANNED_FIELDS[0],
            1 => SPANNED_FIELDS[1],
            _ => return Ok(None),
        };
        seed.deserialize(BorrowedStrDeserializer::new(key))
            .map(Some)
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, DeError> {
        self.state += 1;
        if self.state == 1 {
            return seed.deserialize(U64Deserializer::new(self.pos as u64));
        }
        match self.value.take() {
            Some(SpValue::Node(d)) => seed.deserialize(d),
            Some(SpValue::Key(d)) => seed.deserialize(d),
            None => Err(<DeError as de::Error>::custom("a located value read twice")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::node::parse_yaml;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        users: Sp<u32>,
        name: Option<Sp<String>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        load: Inner,
        headers: Option<SpMap<Text>>,
        any: Option<Node>,
    }

    #[test]
    fn locates_values_and_collects_unknown_keys() {
        let src = "load:\n  users: 5\n  userz: 3\n  nmae: x\nheaders: { a: b, c: 3 }\nany: [1, {x: y}]\nextra: 1\n";
        let node = parse_yaml(src).unwrap();
        let ctx = Ctx::default();
        let o: Outer = from_node(&node, &ctx).unwrap();
        assert_eq!(o.load.users.value, 5);
        assert!(o.load.name.is_none());
        assert_eq!(&src[o.load.users.pos..o.load.users.pos + 1], "5");
        let h = o.headers.unwrap();
        assert_eq!(h.0[1].0.value, "c");
        assert_eq!(h.0[1].1.value, Text("3".into()));
        assert!(matches!(o.any.unwrap().kind, Kind::Seq(_)));
        let unknown = ctx.unknown.into_inner();
        assert_eq!(unknown.len(), 3, "{unknown:?}");
        assert_eq!(unknown[0].message, "unknown key `userz`");
        assert_eq!(unknown[0].help.as_deref(), Some("did you mean `users`?"));
        assert_eq!(unknown[1].help.as_deref(), Some("did you mean `name`?"));
        assert_eq!(&src[unknown[2].pos..unknown[2].pos + 5], "extra");
    }

    #[test]
    fn type_errors_point_at_the_value() {
        let src = "load:\n  users: many\n";
        let node = parse_yaml(src).unwrap();
        let ctx = Ctx::default();
        let e = from_node::<Outer>(&node, &ctx).unwrap_err();
        assert_eq!(&src[e.pos.unwrap()..e.pos.unwrap() + 4], "many");
        assert!(
            e.message.contains("expected a whole number"),
            "{}",
            e.message
        );
    }
}
