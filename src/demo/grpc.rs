//! The demo shop's gRPC service, `shop.v1.Catalog` (`plans/protos/shop.proto`, built
//! into the binary), with server reflection, on the demo's own port: the server
//! speaks HTTP/1.1 and HTTP/2 cleartext on one socket, and gRPC paths are routed
//! here.
//!
//! [`DynamicService`] serves any unary method of a schema known only at run time
//! (prost-reflect messages through tonic), so the tests' servers are built from
//! their `.proto` files the same way, without generated code.

use std::convert::Infallible;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use prost_reflect::{DescriptorPool, DynamicMessage, MethodDescriptor, Value};
use tonic::{Request, Response, Status};

use super::catalog;
use crate::engine::grpc::codec::ServerCodec;

/// The demo's `.proto` file, as shipped in `plans/protos/`.
pub const SHOP_PROTO: &str = include_str!("../../plans/protos/shop.proto");

/// What a [`DynamicService`] answers a call with: the reply messages (exactly one for
/// a unary method), or a status.
pub type Replies = Result<Response<Vec<DynamicMessage>>, Status>;

/// Answers the calls of a [`DynamicService`].
pub type Handler = Arc<
    dyn Fn(MethodDescriptor, Request<DynamicMessage>) -> BoxFuture<'static, Replies> + Send + Sync,
>;

/// Serves the unary and server-streaming methods of a schema, each call answered by
/// one handler.
#[derive(Clone)]
pub struct DynamicService {
    pool: DescriptorPool,
    handler: Handler,
}

impl std::fmt::Debug for DynamicService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamicService").finish_non_exhaustive()
    }
}

impl DynamicService {
    pub fn new(pool: DescriptorPool, handler: Handler) -> DynamicService {
        DynamicService { pool, handler }
    }

    /// The method a request path (`/package.Service/Method`) names.
    fn method(&self, path: &str) -> Option<MethodDescriptor> {
        let (service, method) = path.strip_prefix('/')?.split_once('/')?;
        let service = self.pool.get_service_by_name(service)?;
        service.methods().find(|m| m.name() == method)
    }
}

impl<B> tower_service::Service<http::Request<B>> for DynamicService
where
    B: http_body::Body + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let Some(method) = self.method(req.uri().path()) else {
            let status = Status::unimplemented(format!("no method {}", req.uri().path()));
            return Box::pin(async move { Ok(status.into_http()) });
        };
        let handler = self.handler.clone();
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(ServerCodec {
                input: method.input(),
            });
            let call = Call { method, handler };
            Ok(if call.method.is_server_streaming() {
                grpc.server_streaming(call, req).await
            } else {
                grpc.unary(call, req).await
            })
        })
    }
}

struct Call {
    method: MethodDescriptor,
    handler: Handler,
}

impl tonic::server::UnaryService<DynamicMessage> for Call {
    type Response = DynamicMessage;
    type Future = BoxFuture<'static, Result<Response<DynamicMessage>, Status>>;

    fn call(&mut self, request: Request<DynamicMessage>) -> Self::Future {
        let replies = (self.handler)(self.method.clone(), request);
        Box::pin(async move {
            let (metadata, mut messages, extensions) = replies.await?.into_parts();
            match (messages.pop(), messages.is_empty()) {
                (Some(message), true) => Ok(Response::from_parts(metadata, message, extensions)),
                _ => Err(Status::internal("a unary method answers one message")),
            }
        })
    }
}

type ReplyStream = futures_util::stream::Iter<std::vec::IntoIter<Result<DynamicMessage, Status>>>;

impl tonic::server::ServerStreamingService<DynamicMessage> for Call {
    type Response = DynamicMessage;
    type ResponseStream = ReplyStream;
    type Future = BoxFuture<'static, Result<Response<ReplyStream>, Status>>;

    fn call(&mut self, request: Request<DynamicMessage>) -> Self::Future {
        let replies = (self.handler)(self.method.clone(), request);
        Box::pin(async move {
            let (metadata, messages, extensions) = replies.await?.into_parts();
            let stream =
                futures_util::stream::iter(messages.into_iter().map(Ok).collect::<Vec<_>>());
            Ok(Response::from_parts(metadata, stream, extensions))
        })
    }
}

/// The demo's schema, compiled from [`SHOP_PROTO`] once.
pub fn shop_pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        let mut compiler = protox::Compiler::with_file_resolver(Embedded);
        compiler
            .open_file("shop.proto")
            .expect("the demo's shop.proto compiles (checked by a test)");
        compiler.descriptor_pool()
    })
}

/// Serves the embedded `shop.proto` to protox.
struct Embedded;

impl protox::file::FileResolver for Embedded {
    fn open_file(&self, name: &str) -> Result<protox::file::File, protox::Error> {
        match name {
            "shop.proto" => protox::file::File::from_source(name, SHOP_PROTO),
            _ => Err(protox::Error::file_not_found(name)),
        }
    }
}

/// The routes the demo serves gRPC on: the catalog, and server reflection.
pub(super) fn routes(router: axum::Router) -> axum::Router {
    let pool = shop_pool().clone();
    let catalog = DynamicService::new(pool.clone(), Arc::new(|m, r| Box::pin(answer(m, r))));
    let reflection = tonic_reflection::server::Builder::configure()
        .register_file_descriptor_set(prost_types::FileDescriptorSet {
            file: pool.file_descriptor_protos().cloned().collect(),
        })
        .build_v1()
        .expect("the demo's descriptors are valid (checked by a test)");
    router
        .route_service("/shop.v1.Catalog/{method}", catalog)
        .route_service("/grpc.reflection.v1.ServerReflection/{method}", reflection)
}

async fn answer(method: MethodDescriptor, request: Request<DynamicMessage>) -> Replies {
    let input = request.into_inner();
    let number = |name: &str| {
        input
            .get_field_by_name(name)
            .and_then(|v| v.as_u64())
            .unwrap_or(0)
    };
    let output = method.output();
    match method.name() {
        "GetProduct" => {
            let id = number("id");
            let product = catalog::product(id)
                .ok_or_else(|| Status::not_found(format!("no product {id}")))?;
            Ok(Response::new(vec![product_message(&output, &product)]))
        }
        "ListProducts" => {
            let page = number("page").max(1);
            let item = output
                .get_field_by_name("items")
                .and_then(|f| f.kind().as_message().cloned())
                .ok_or_else(|| Status::internal("no items field"))?;
            let items = catalog::page(page)
                .iter()
                .map(|p| Value::Message(product_message(&item, p)))
                .collect();
            let mut out = DynamicMessage::new(output);
            out.set_field_by_name("page", Value::U64(page));
            out.set_field_by_name("items", Value::List(items));
            Ok(Response::new(vec![out]))
        }
        other => Err(Status::unimplemented(format!("no method {other}"))),
    }
}

fn product_message(
    desc: &prost_reflect::MessageDescriptor,
    p: &catalog::Product,
) -> DynamicMessage {
    let mut out = DynamicMessage::new(desc.clone());
    out.set_field_by_name("id", Value::U64(p.id));
    out.set_field_by_name("name", Value::String(p.name.clone()));
    out.set_field_by_name("price", Value::F64(p.price));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shop_schema_compiles_and_names_the_catalog() {
        let catalog = shop_pool().get_service_by_name("shop.v1.Catalog").unwrap();
        let names: Vec<String> = catalog.methods().map(|m| m.name().to_owned()).collect();
        assert_eq!(names, ["GetProduct", "ListProducts"]);
    }
}
