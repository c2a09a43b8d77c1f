//! A gRPC step's `message`, checked against the method's input type field by field
//! where it is written: unknown fields (with "did you mean"), enum values, and values
//! whose JSON type the field cannot take. A string that is one template expression
//! keeps its type until it is rendered, so it is checked then.

use prost_reflect::{FieldDescriptor, Kind as ProtoKind, MessageDescriptor};

use crate::plan::de::closest;
use crate::plan::node::{Kind, Node};

use super::Compiler;
use super::grpc::field_list;

impl Compiler<'_> {
    /// Checks a message's fields against its type, each problem where it is written.
    pub(super) fn check_message(&mut self, node: &Node, desc: &MessageDescriptor) {
        let Kind::Map(entries) = &node.kind else {
            return;
        };
        for (k, v) in entries {
            let field = desc
                .get_field_by_json_name(&k.name)
                .or_else(|| desc.get_field_by_name(&k.name));
            match field {
                Some(f) => self.check_field(v, &f),
                None => {
                    let names: Vec<String> = desc.fields().map(|f| f.name().to_owned()).collect();
                    let help = match closest(&k.name, names.iter().map(String::as_str)) {
                        Some(c) => format!("did you mean `{c}`?"),
                        None => format!("`{}` has the fields: {}", desc.name(), field_list(desc)),
                    };
                    self.error_help(
                        k.pos,
                        format!("`{}` has no field `{}`", desc.full_name(), k.name),
                        help,
                    );
                }
            }
        }
    }

    fn check_field(&mut self, node: &Node, field: &FieldDescriptor) {
        if matches!(node.kind, Kind::Null) || is_one_template(node) {
            return;
        }
        if field.is_map() {
            let ProtoKind::Message(entry) = field.kind() else {
                return;
            };
            match &node.kind {
                Kind::Map(entries) => {
                    let value = entry.map_entry_value_field();
                    for (_, v) in entries {
                        self.check_value(v, &value.kind(), field);
                    }
                }
                other => self.wrong_type(node.pos, field, "a map", other),
            }
        } else if field.is_list() {
            match &node.kind {
                Kind::Seq(items) => {
                    for item in items {
                        self.check_value(item, &field.kind(), field);
                    }
                }
                other => self.wrong_type(node.pos, field, "a list", other),
            }
        } else {
            self.check_value(node, &field.kind(), field);
        }
    }

    fn check_value(&mut self, node: &Node, kind: &ProtoKind, field: &FieldDescriptor) {
        if matches!(node.kind, Kind::Null) || is_one_template(node) {
            return;
        }
        use ProtoKind as P;
        let fits = match (kind, &node.kind) {
            (P::Message(m), Kind::Map(_)) if !m.full_name().starts_with("google.protobuf.") => {
                self.check_message(node, m);
                true
            }
            // Well-known types have JSON forms of their own; the whole message is
            // checked by the protobuf JSON reader.
            (P::Message(m), _) => m.full_name().starts_with("google.protobuf."),
            (P::Enum(e), Kind::Str(s)) => {
                if e.get_value_by_name(s).is_none() && !s.contains("{{") {
                    let names: Vec<String> = e.values().map(|v| v.name().to_owned()).collect();
                    let help = match closest(s, names.iter().map(String::as_str)) {
                        Some(c) => format!("did you mean `{c}`?"),
                        None => format!("`{}` has the values: {}", e.name(), names.join(", ")),
                    };
                    self.error_help(
                        node.pos,
                        format!("`{s}` is not a value of the enum `{}`", e.full_name()),
                        help,
                    );
                }
                true
            }
            (P::Enum(_), Kind::Int(_)) => true,
            (P::Double | P::Float, Kind::Int(_) | Kind::Float(_) | Kind::Str(_)) => true,
            (
                P::Int32
                | P::Sint32
                | P::Sfixed32
                | P::Uint32
                | P::Fixed32
                | P::Int64
                | P::Sint64
                | P::Sfixed64
                | P::Uint64
                | P::Fixed64,
                Kind::Int(_) | Kind::Str(_),
            ) => true,
            (_, Kind::Float(f)) if kind_is_integer(kind) => f.fract() == 0.0,
            (P::Bool, Kind::Bool(_)) => true,
            (P::String | P::Bytes, Kind::Str(_)) => true,
            _ => false,
        };
        if !fits {
            self.wrong_type(node.pos, field, kind_name(kind), &node.kind);
        }
    }

    fn wrong_type(&mut self, pos: usize, field: &FieldDescriptor, want: &str, got: &Kind) {
        let help = match got {
            Kind::Int(_) | Kind::Float(_) | Kind::Bool(_) if want == "a string" => {
                "quote the value to make it a string".to_owned()
            }
            _ => format!("`{}` is {want} in the proto", field.name()),
        };
        self.error_help(
            pos,
            format!(
                "the field `{}` takes {want}, not {}",
                field.name(),
                got.describe()
            ),
            help,
        );
    }
}

/// A string that is exactly one template expression keeps the expression's type, so
/// its type is known only when it is rendered.
fn is_one_template(node: &Node) -> bool {
    matches!(&node.kind, Kind::Str(s) if s.contains("{{"))
}

fn kind_is_integer(kind: &ProtoKind) -> bool {
    use ProtoKind as P;
    matches!(
        kind,
        P::Int32
            | P::Sint32
            | P::Sfixed32
            | P::Uint32
            | P::Fixed32
            | P::Int64
            | P::Sint64
            | P::Sfixed64
            | P::Uint64
            | P::Fixed64
    )
}

fn kind_name(kind: &ProtoKind) -> &'static str {
    use ProtoKind as P;
    match kind {
        P::Double | P::Float => "a number",
        P::Bool => "a boolean",
        P::String => "a string",
        P::Bytes => "a base64 string",
        P::Message(_) => "a map (a message)",
        P::Enum(_) => "an enum value name",
        _ => "an integer",
    }
}
