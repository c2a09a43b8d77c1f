//! Located values for the raw plan types: [`Sp`] (a value and its offset), [`SpMap`]
//! (a map in file order with located keys), [`Text`] (a scalar kept as text) and the
//! [`Node`] escape hatch for values the compiler checks itself. They read their
//! offsets from [`super::de`]'s deserializer through a private struct name.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::Deserialize;
use serde::de::{self, MapAccess, SeqAccess, Visitor};

use super::node::{Key, Kind, Node};

/// The struct name [`Sp`] asks for; the plan deserializer answers it with the offset.
pub(super) const SPANNED: &str = "$swarm::private::Spanned";
pub(super) const SPANNED_FIELDS: &[&str] = &["$pos", "$value"];

/// A value and the byte offset where it is written.
#[derive(Debug, Clone, PartialEq)]
pub struct Sp<T> {
    pub pos: usize,
    pub value: T,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Sp<T> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Sp<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a located value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Sp<T>, A::Error> {
                let _: Option<Cow<str>> = map.next_key()?;
                let pos: u64 = map.next_value()?;
                let _: Option<Cow<str>> = map.next_key()?;
                let value: T = map.next_value()?;
                Ok(Sp {
                    pos: usize::try_from(pos).unwrap_or(usize::MAX),
                    value,
                })
            }
        }
        d.deserialize_struct(SPANNED, SPANNED_FIELDS, V(PhantomData))
    }
}

impl<T: JsonSchema> JsonSchema for Sp<T> {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        generator.subschema_for::<T>()
    }
}

/// A map in file order with located keys and values (headers, vars, json checks...).
#[derive(Debug, Clone, PartialEq)]
pub struct SpMap<V>(pub Vec<(Sp<String>, Sp<V>)>);

impl<V> Default for SpMap<V> {
    fn default() -> Self {
        SpMap(Vec::new())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for SpMap<V> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Vis<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for Vis<V> {
            type Value = SpMap<V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SpMap<V>, A::Error> {
                let mut out = Vec::new();
                while let Some(k) = map.next_key::<Sp<String>>()? {
                    let v = map.next_value::<Sp<V>>()?;
                    out.push((k, v));
                }
                Ok(SpMap(out))
            }
        }
        d.deserialize_map(Vis(PhantomData))
    }
}

impl<V: JsonSchema> JsonSchema for SpMap<V> {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        format!("Map_of_{}", V::schema_name()).into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let v = generator.subschema_for::<V>();
        schemars::json_schema!({ "type": "object", "additionalProperties": v })
    }
}

/// A scalar written as text or as a number (`timeout: 10s`, `page: 2`), kept as text.
#[derive(Debug, Clone, PartialEq)]
pub struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or a number")
            }
            fn visit_str<E>(self, v: &str) -> Result<Text, E> {
                Ok(Text(v.to_owned()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for Text {
    fn schema_name() -> Cow<'static, str> {
        "Text".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!({ "type": ["string", "number", "boolean"] })
    }
}

/// Any value, kept as a located tree for the compiler to check ("a string or a map").
impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct AnyKind(Kind);
        impl<'de> Deserialize<'de> for AnyKind {
            fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = AnyKind;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str("any value")
                    }
                    fn visit_unit<E>(self) -> Result<AnyKind, E> {
                        Ok(AnyKind(Kind::Null))
                    }
                    fn visit_bool<E>(self, v: bool) -> Result<AnyKind, E> {
                        Ok(AnyKind(Kind::Bool(v)))
                    }
                    fn visit_i64<E>(self, v: i64) -> Result<AnyKind, E> {
                        Ok(AnyKind(Kind::Int(v)))
                    }
                    fn visit_u64<E>(self, v: u64) -> Result<AnyKind, E> {
                        Ok(AnyKind(
                            i64::try_from(v).map_or(Kind::Float(v as f64), Kind::Int),
                        ))
                    }
                    fn visit_f64<E>(self, v: f64) -> Result<AnyKind, E> {
                        Ok(AnyKind(Kind::Float(v)))
                    }
                    fn visit_str<E>(self, v: &str) -> Result<AnyKind, E> {
                        Ok(AnyKind(Kind::Str(v.to_owned())))
                    }
                    fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<AnyKind, A::Error> {
                        let mut items = Vec::new();
                        while let Some(n) = s.next_element::<Node>()? {
                            items.push(n);
                        }
                        Ok(AnyKind(Kind::Seq(items)))
                    }
                    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<AnyKind, A::Error> {
                        let mut entries = Vec::new();
                        while let Some(k) = m.next_key::<Sp<String>>()? {
                            let v = m.next_value::<Node>()?;
                            entries.push((
                                Key {
                                    pos: k.pos,
                                    name: k.value,
                                },
                                v,
                            ));
                        }
                        Ok(AnyKind(Kind::Map(entries)))
                    }
                }
                d.deserialize_any(V)
            }
        }
        let sp = Sp::<AnyKind>::deserialize(d)?;
        Ok(Node {
            pos: sp.pos,
            kind: sp.value.0,
        })
    }
}

impl JsonSchema for Node {
    fn schema_name() -> Cow<'static, str> {
        "Any".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!(true)
    }
}
