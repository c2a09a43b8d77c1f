//! gRPC in the plan: the schema, read once when the plan is compiled, and each gRPC
//! step resolved against it.
//!
//! The schema comes from the `.proto` files the plan lists (`grpc.proto`), compiled
//! here in pure Rust with protox (no `protoc`), or from the target's server
//! reflection (`grpc.reflection: true`), asked when the plan is compiled so an
//! unknown method is a plan error before any load is sent. A step's method must be
//! in the schema, and its `message` is checked field by field against the method's
//! input type: unknown fields and values of the wrong JSON type are located errors,
//! and a message without templates is encoded here, once.

use std::path::{Path, PathBuf};

use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, MethodDescriptor};
use sha2::{Digest, Sha256};

use crate::plan::de::{Sp, closest};
use crate::plan::node::{Kind, Node};
use crate::plan::raw::{RawGrpc, RawStep};

use super::flows::{Scope, has_template};
use super::graph::{FeederId, GrpcCall, GrpcMessage, RequestId, StatusExpect, StatusPattern};
use super::{Compiler, plan_dir};

/// The gRPC status codes by number, as `expect.status` and failure reasons name them.
pub const CODES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// The name of gRPC status `code`, e.g. `NOT_FOUND` for 5.
pub fn code_name(code: u16) -> Option<&'static str> {
    CODES.get(usize::from(code)).copied()
}

/// The plan's gRPC schema, once read.
pub(super) struct GrpcSchema {
    pool: DescriptorPool,
    /// SHA-256 of the schema's sources (the `.proto` files and the descriptors built
    /// from them, or the descriptors reflection returned), for the fingerprint.
    pub digest: [u8; 32],
}

impl Compiler<'_> {
    /// Reads the plan's `grpc` schema: compiles its `.proto` files, or asks the
    /// target's reflection service. Problems are reported on the plan's lines.
    pub(super) fn grpc_schema(&mut self, raw: &Sp<RawGrpc>) {
        let g = &raw.value;
        let reflection = g.reflection.as_ref().filter(|r| r.value);
        match (&g.proto, reflection) {
            (Some(files), Some(r)) if !files.is_empty() => self.error_help(
                r.pos,
                "`grpc` has both `proto` and `reflection: true`",
                "the schema comes from the .proto files or from the server, not both",
            ),
            (Some(files), None) if !files.is_empty() => {
                self.grpc = self.proto_schema(files, g.import_paths.as_deref());
            }
            (_, Some(r)) => {
                if let Some(p) = g.import_paths.as_ref().and_then(|p| p.first()) {
                    self.error(p.pos, "`import_paths` needs `proto` files");
                }
                self.grpc = self.reflection_schema(r.pos);
            }
            (_, None) => self.error_help(
                raw.pos,
                "`grpc` needs its schema",
                "list the .proto files (`proto: [shop.proto]`) or write `reflection: true`",
            ),
        }
        // The schema's own problems are reported; its steps need not say it again.
        self.grpc_failed = self.grpc.is_none();
    }

    fn proto_schema(
        &mut self,
        files: &[Sp<String>],
        import_paths: Option<&[Sp<String>]>,
    ) -> Option<GrpcSchema> {
        let dir = plan_dir(self.path);
        let mut digest = Sha256::new();
        let mut paths = Vec::new();
        for f in files {
            let path = dir.join(f.value.trim());
            match std::fs::read(&path) {
                Ok(bytes) => {
                    digest.update((bytes.len() as u64).to_le_bytes());
                    digest.update(&bytes);
                    paths.push((f, path));
                }
                Err(e) => self.error_help(
                    f.pos,
                    format!(
                        "cannot read the proto file `{}`: {}",
                        f.value,
                        io_reason(&e)
                    ),
                    format!(
                        "proto paths are relative to the plan file (this one is {})",
                        path.display()
                    ),
                ),
            }
        }
        let mut includes: Vec<PathBuf> = Vec::new();
        match import_paths {
            Some(dirs) => {
                for d in dirs {
                    let path = dir.join(d.value.trim());
                    if path.is_dir() {
                        includes.push(path);
                    } else {
                        self.error_help(
                            d.pos,
                            format!("the import path `{}` is not a directory", d.value),
                            "import paths are relative to the plan file",
                        );
                    }
                }
            }
            None => {
                for (_, p) in &paths {
                    let parent = p.parent().map_or_else(|| dir.clone(), Path::to_owned);
                    if !includes.contains(&parent) {
                        includes.push(parent);
                    }
                }
            }
        }
        if paths.len() != files.len() {
            return None;
        }
        let mut compiler = match protox::Compiler::new(&includes) {
            Ok(c) => c,
            Err(e) => {
                self.error(files[0].pos, format!("cannot compile the proto files: {e}"));
                return None;
            }
        };
        compiler.include_imports(true);
        let mut ok = true;
        for (f, path) in &paths {
            if let Err(e) = compiler.open_file(path) {
                ok = false;
                let help = if e.is_file_not_found() || e.to_string().contains("include path") {
                    "the file must sit under one of `import_paths` (relative to the plan file)"
                } else {
                    "fix the .proto file; it is compiled with the plan"
                };
                self.error_help(
                    f.pos,
                    format!("cannot compile `{}`: {}", f.value, proto_error(&e)),
                    help,
                );
            }
        }
        if !ok {
            return None;
        }
        digest.update(compiler.encode_file_descriptor_set());
        Some(GrpcSchema {
            pool: compiler.descriptor_pool(),
            digest: digest.finalize().into(),
        })
    }

    fn reflection_schema(&mut self, pos: usize) -> Option<GrpcSchema> {
        if self.target.is_empty() {
            if !self.target_failed {
                self.error_help(
                    pos,
                    "`reflection: true` needs a target to ask",
                    "set `target: http://host:port` in the plan, or pass --target",
                );
            }
            return None;
        }
        match crate::engine::grpc::reflection::fetch_blocking(&self.target, self.default_timeout) {
            Ok(set) => {
                let digest = Sha256::digest(set.encode_to_vec()).into();
                match DescriptorPool::from_file_descriptor_set(set) {
                    Ok(pool) => Some(GrpcSchema { pool, digest }),
                    Err(e) => {
                        self.error(
                            pos,
                            format!("the server's reflection schema is invalid: {e}"),
                        );
                        None
                    }
                }
            }
            Err(e) => {
                self.error_help(
                    pos,
                    format!("cannot read the schema from {}: {e}", self.target),
                    "the server must offer gRPC reflection (grpc.reflection.v1); or list the .proto files in `grpc.proto`",
                );
                None
            }
        }
    }

    /// The gRPC parts of a call: the method, the message and the metadata.
    pub(super) fn grpc_call(
        &mut self,
        s: &RawStep,
        method: &Sp<String>,
        scope: &Scope,
        feeders: &mut Vec<FeederId>,
    ) -> Option<GrpcCall> {
        for (key, pos) in [
            (
                "headers",
                s.headers
                    .as_ref()
                    .and_then(|h| h.0.first())
                    .map(|(k, _)| k.pos),
            ),
            (
                "query",
                s.query
                    .as_ref()
                    .and_then(|h| h.0.first())
                    .map(|(k, _)| k.pos),
            ),
            ("json", s.json.as_ref().map(|n| n.pos)),
            (
                "form",
                s.form
                    .as_ref()
                    .and_then(|h| h.0.first())
                    .map(|(k, _)| k.pos),
            ),
            ("body", s.body.as_ref().map(|b| b.pos)),
        ] {
            if let Some(pos) = pos {
                self.error_help(
                    pos,
                    format!("`{key}` is for HTTP steps"),
                    "a gRPC step sends `message` (its JSON form) and `metadata`",
                );
            }
        }
        let metadata = match &s.metadata {
            Some(m) => self.headers(m, scope.captures, scope.later, feeders),
            None => Vec::new(),
        };
        let method = self.grpc_method(method)?;
        let origin = self.grpc_origin(s)?;
        let path = format!("/{}/{}", method.parent_service().full_name(), method.name());
        let path = http::uri::PathAndQuery::try_from(path).ok()?;
        let input = method.input();
        let message = match &s.message {
            None => GrpcMessage::Encoded(DynamicMessage::new(input).encode_to_vec().into()),
            Some(node) => {
                if !matches!(node.kind, Kind::Map(_) | Kind::Null) {
                    self.error_help(
                        node.pos,
                        format!(
                            "a gRPC message is a map of its fields, not {}",
                            node.kind.describe()
                        ),
                        format!("`{}` has the fields: {}", input.name(), field_list(&input)),
                    );
                    return None;
                }
                let before = self.diags.len();
                self.check_message(node, &input);
                if self.diags.len() > before {
                    return None;
                }
                if has_template(node) {
                    GrpcMessage::Json(self.json_template(node, scope, feeders))
                } else {
                    let json = node.to_json();
                    match DynamicMessage::deserialize(input.clone(), json) {
                        Ok(m) => GrpcMessage::Encoded(m.encode_to_vec().into()),
                        Err(e) => {
                            self.error(
                                node.pos,
                                format!("not a valid `{}` message: {e}", input.full_name()),
                            );
                            return None;
                        }
                    }
                }
            }
        };
        if method.is_client_streaming() {
            self.error_help(
                s.grpc.as_ref().map_or(0, |g| g.pos),
                format!("`{}` streams its requests", method.full_name()),
                "gRPC steps call unary and server-streaming methods (one request message)",
            );
            return None;
        }
        Some(GrpcCall {
            method,
            origin,
            path,
            message,
            metadata,
        })
    }

    /// Resolves `package.Service/Method` in the schema.
    fn grpc_method(&mut self, raw: &Sp<String>) -> Option<MethodDescriptor> {
        let text = raw.value.trim();
        let Some((service, method)) = text.trim_start_matches('/').split_once('/') else {
            self.error_help(
                raw.pos,
                format!("`{text}` is not a gRPC method"),
                "a gRPC method is `package.Service/Method`, e.g. `shop.v1.Catalog/GetProduct`",
            );
            return None;
        };
        let Some(schema) = &self.grpc else {
            if !self.grpc_failed {
                self.grpc_failed = true;
                self.error_help(
                    raw.pos,
                    "a gRPC step needs the plan's `grpc` schema",
                    "add `grpc: { proto: [service.proto] }` (or `reflection: true`) at the top of the plan",
                );
            }
            return None;
        };
        let Some(svc) = schema.pool.get_service_by_name(service) else {
            let names: Vec<String> = schema
                .pool
                .services()
                .map(|s| s.full_name().to_owned())
                .collect();
            let help = match closest(service, names.iter().map(String::as_str)) {
                Some(c) => format!("did you mean `{c}`?"),
                None if names.is_empty() => "the schema defines no service".to_owned(),
                None => format!("the schema's services are: {}", names.join(", ")),
            };
            self.error_help(raw.pos, format!("unknown gRPC service `{service}`"), help);
            return None;
        };
        let found = svc.methods().find(|m| m.name() == method);
        if found.is_none() {
            let names: Vec<String> = svc.methods().map(|m| m.name().to_owned()).collect();
            let help = match closest(method, names.iter().map(String::as_str)) {
                Some(c) => format!("did you mean `{service}/{c}`?"),
                None => format!("`{service}` has the methods: {}", names.join(", ")),
            };
            self.error_help(
                raw.pos,
                format!("`{service}` has no method `{method}`"),
                help,
            );
        }
        found
    }

    /// The target as a gRPC origin: its scheme and authority.
    fn grpc_origin(&mut self, s: &RawStep) -> Option<http::Uri> {
        if self.target.is_empty() {
            if !self.target_failed {
                let pos = s.grpc.as_ref().map_or(0, |g| g.pos);
                self.error_help(
                    pos,
                    "a gRPC step needs a target",
                    "set `target: http://host:port` in the plan, or pass --target",
                );
            }
            return None;
        }
        http::Uri::try_from(self.target.trim_end_matches('/')).ok()
    }

    /// `expect.status` of a gRPC step: code names (`NOT_FOUND`) or numbers (5).
    pub(super) fn grpc_status(&mut self, request: RequestId, node: &Node) -> Option<StatusExpect> {
        let items: Vec<&Node> = match &node.kind {
            Kind::Seq(items) => items.iter().collect(),
            _ => vec![node],
        };
        let mut allowed = Vec::new();
        for n in &items {
            let code = match &n.kind {
                Kind::Int(c) => u16::try_from(*c).ok().filter(|c| code_name(*c).is_some()),
                Kind::Str(s) => {
                    let s = s.trim().to_ascii_uppercase();
                    CODES.iter().position(|c| *c == s).map(|c| c as u16)
                }
                _ => None,
            };
            match code {
                Some(c) => allowed.push(StatusPattern::Exact(c)),
                None => {
                    let help = match &n.kind {
                        Kind::Str(s) => match closest(s, CODES.iter().copied()) {
                            Some(c) => format!("did you mean `{c}`?"),
                            None => format!("the codes are: {}", CODES.join(", ")),
                        },
                        _ => format!("the codes are: {}", CODES.join(", ")),
                    };
                    self.error_help(
                        n.pos,
                        "a gRPC `status` is a code name such as `NOT_FOUND`, a number from 0 to 16, or a list of them",
                        help,
                    );
                }
            }
        }
        if allowed.is_empty() {
            if items.is_empty() {
                self.error(node.pos, "`status` is an empty list");
            }
            return None;
        }
        let text = allowed
            .iter()
            .filter_map(|p| match p {
                StatusPattern::Exact(c) => code_name(*c),
                StatusPattern::Class(_) => None,
            })
            .collect::<Vec<_>>()
            .join(" or ");
        let id = self.expect_id(request, format!("grpc status {text}"));
        Some(StatusExpect { id, allowed })
    }
}

pub(super) fn field_list(desc: &MessageDescriptor) -> String {
    let names: Vec<String> = desc.fields().map(|f| f.name().to_owned()).collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_owned(),
        _ => e.to_string(),
    }
}

/// A protox error with the place in the `.proto` file it points at, e.g.
/// `shop.proto:12:5: expected ';'`.
fn proto_error(e: &protox::Error) -> String {
    use miette::Diagnostic as _;
    let place = e.source_code().and_then(|src| {
        let label = e.labels()?.next()?;
        let span = src.read_span(label.inner(), 0, 0).ok()?;
        let name = span
            .name()
            .map(str::to_owned)
            .or(e.file().map(str::to_owned))?;
        Some(format!("{name}:{}:{}", span.line() + 1, span.column() + 1))
    });
    match place {
        Some(p) => format!("{p}: {e}"),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use crate::compile::{CompileOptions, compile_str};

    const PLAN: &str = "\
name: fp
target: http://127.0.0.1:9
grpc: { proto: [svc.proto] }
load: { users: 1, duration: 1s }
flows:
  - name: f
    steps:
      - { grpc: t.S/Get, message: { id: 7 } }
";

    fn proto(field: &str) -> String {
        format!(
            "syntax = \"proto3\";\npackage t;\nservice S {{ rpc Get(R) returns (R); }}\nmessage R {{ int32 {field} = 1; }}\n"
        )
    }

    /// The `.proto` files are the plan's data: a change to one changes the
    /// fingerprint, as a changed data file does.
    #[test]
    fn a_changed_proto_file_changes_the_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.yaml");
        let fp = || {
            compile_str(PLAN, &path, &CompileOptions::default())
                .unwrap()
                .fingerprint
        };
        std::fs::write(dir.path().join("svc.proto"), proto("id")).unwrap();
        let first = fp();
        assert_eq!(first, fp());
        // Only a comment: the bytes changed, so the fingerprint does.
        std::fs::write(dir.path().join("svc.proto"), proto("id") + "// note\n").unwrap();
        assert_ne!(first, fp());
    }

    #[test]
    fn codes_are_named_as_grpc_names_them() {
        assert_eq!(super::code_name(0), Some("OK"));
        assert_eq!(super::code_name(5), Some("NOT_FOUND"));
        assert_eq!(super::code_name(16), Some("UNAUTHENTICATED"));
        assert_eq!(super::code_name(17), None);
    }
}
