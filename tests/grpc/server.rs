//! The gRPC test server: `test.v1.Echo` from `tests/fixtures/grpc/test.proto`,
//! served by tonic over dynamic messages (no generated code, no protoc), with server
//! reflection, on a loopback port of its own.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use bytes::Bytes;
use futures_util::stream;
use prost_reflect::{DescriptorPool, DynamicMessage, MethodDescriptor, Value};
use swarm::demo::grpc::{DynamicService, Replies};
use tonic::{Code, Request, Response, Status};

pub const PROTO_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/grpc");

/// The test schema, compiled from its `.proto` file as a plan would be.
pub fn pool() -> DescriptorPool {
    let mut compiler = protox::Compiler::new([PROTO_DIR]).unwrap();
    compiler.include_imports(true);
    compiler.open_file("test.proto").unwrap();
    compiler.descriptor_pool()
}

/// Starts the server; returns its address.
pub fn start() -> SocketAddr {
    crate::common::serve(app())
}

/// The server's routes: the echo service, its hostile methods and reflection.
pub fn app() -> axum::Router {
    let pool = pool();
    let echo = DynamicService::new(pool.clone(), Arc::new(|m, r| Box::pin(answer(m, r))));
    let reflection = tonic_reflection::server::Builder::configure()
        .register_file_descriptor_set(prost_types::FileDescriptorSet {
            file: pool.file_descriptor_protos().cloned().collect(),
        })
        .build_v1()
        .unwrap();
    axum::Router::new()
        .route("/test.v1.Echo/Huge", axum::routing::post(huge))
        .route_service("/test.v1.Echo/{method}", echo)
        .route_service("/grpc.reflection.v1.ServerReflection/{method}", reflection)
}

async fn answer(method: MethodDescriptor, request: Request<DynamicMessage>) -> Replies {
    let user = request
        .metadata()
        .get("x-user")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let input = request.into_inner();
    let field = |name: &str| input.get_field_by_name(name).map(|v| v.into_owned());
    let mut out = DynamicMessage::new(method.output());
    match method.name() {
        "Echo" => {
            let n = field("n").and_then(|v| v.as_i32()).unwrap_or(0);
            for name in ["text", "words", "mood", "big"] {
                if let Some(v) = field(name) {
                    out.set_field_by_name(name, v);
                }
            }
            let flag = input
                .get_field_by_name("inner")
                .and_then(|i| {
                    i.as_message()
                        .and_then(|m| m.get_field_by_name("flag")?.as_bool())
                })
                .unwrap_or(false);
            out.set_field_by_name("n", Value::I32(n + 1));
            out.set_field_by_name("user", Value::String(user));
            out.set_field_by_name("flag", Value::Bool(flag));
            Ok(Response::new(vec![out]))
        }
        "Watch" => {
            let text = field("text")
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            let n = field("n").and_then(|v| v.as_i32()).unwrap_or(0);
            let replies = (0..n)
                .map(|i| {
                    let mut reply = DynamicMessage::new(method.output());
                    reply.set_field_by_name("text", Value::String(format!("{text} #{i}")));
                    reply.set_field_by_name("n", Value::I32(i));
                    reply
                })
                .collect();
            Ok(Response::new(replies))
        }
        "Fail" => {
            let code = field("code").and_then(|v| v.as_i32()).unwrap_or(2);
            Err(Status::new(Code::from(code), "failed on purpose"))
        }
        "Hang" => std::future::pending().await,
        other => Err(Status::unimplemented(other.to_owned())),
    }
}

/// One message of 100 MB, streamed in 64 KiB chunks of zeros, so the server holds one
/// chunk, never the message.
async fn huge() -> axum::response::Response {
    const CHUNK: usize = 64 * 1024;
    static ZEROS: [u8; CHUNK] = [0; CHUNK];
    let len: u32 = 100 * 1024 * 1024;
    let mut prefix = vec![0u8];
    prefix.extend_from_slice(&len.to_be_bytes());
    let chunks = (len as usize).div_ceil(CHUNK);
    let body = stream::iter(
        std::iter::once(Bytes::from(prefix))
            .chain((0..chunks).map(|_| Bytes::from_static(&ZEROS)))
            .map(Ok::<_, std::io::Error>),
    );
    axum::response::Response::builder()
        .header("content-type", "application/grpc")
        .body(Body::from_stream(body))
        .unwrap()
}
