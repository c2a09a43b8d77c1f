//! Reading a server's schema through gRPC server reflection (`grpc.reflection.v1`),
//! for plans that say `grpc: { reflection: true }`.
//!
//! It runs when the plan is compiled, before any load: the compiler asks for the
//! list of services, then for the files that define each one, then for any file they
//! import that has not come yet, and builds the schema from those files. It is the
//! one place where compiling a plan touches the network, and it is bounded: one
//! connection, the plan's default timeout for the whole exchange, and at most
//! [`MAX_FILES`] files.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use prost::Message as _;
use prost_types::{FileDescriptorProto, FileDescriptorSet};
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::{ServerReflectionRequest, ServerReflectionResponse};

use super::conn::{self, H2};
use crate::engine::config::DEFAULT_BODY_LIMIT;
use crate::metrics::failure::FailureKind;

/// The most files one schema may hold.
pub const MAX_FILES: usize = 10_000;

/// Why reflection gave no schema.
#[derive(Debug, thiserror::Error)]
pub enum ReflectionError {
    #[error("{}", describe(.0))]
    Connect(FailureKind),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("the reflection service answered {code:?}: {message}")]
    Status { code: tonic::Code, message: String },
    #[error("the reflection service answered with an error: {0}")]
    Refused(String),
    #[error("the reflection service sent an invalid file descriptor: {0}")]
    Invalid(#[from] prost::DecodeError),
    #[error("the schema has more than {MAX_FILES} files")]
    TooLarge,
    #[error("cannot start the reflection client: {0}")]
    Runtime(#[from] std::io::Error),
}

fn describe(kind: &FailureKind) -> String {
    match kind {
        FailureKind::Transport(t) => t.describe().to_owned(),
        FailureKind::Protocol(p) => p.describe(),
        FailureKind::Check(_) => "invalid request".to_owned(),
    }
}

impl From<tonic::Status> for ReflectionError {
    fn from(status: tonic::Status) -> Self {
        match conn::failed_in(&status) {
            Some(kind) => ReflectionError::Connect(kind),
            None => ReflectionError::Status {
                code: status.code(),
                message: status.message().to_owned(),
            },
        }
    }
}

/// Reads the schema of the server at `target`, blocking the calling thread (on a
/// runtime of its own, so it works inside or outside one).
pub fn fetch_blocking(
    target: &str,
    timeout: Duration,
) -> Result<FileDescriptorSet, ReflectionError> {
    let target = target.trim_end_matches('/').to_owned();
    let worker = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async {
            match tokio::time::timeout(timeout, fetch(&target)).await {
                Ok(result) => result,
                Err(_) => Err(ReflectionError::Timeout(timeout)),
            }
        })
    });
    worker.join().unwrap_or_else(|_| {
        Err(ReflectionError::Refused(
            "the reflection client stopped".into(),
        ))
    })
}

/// Reads the schema of the server at `target`.
pub async fn fetch(target: &str) -> Result<FileDescriptorSet, ReflectionError> {
    let origin = http::Uri::try_from(target)
        .map_err(|_| ReflectionError::Refused(format!("`{target}` is not a URL")))?;
    let tls = {
        let http = crate::engine::http::HttpShared::new(&Default::default())
            .map_err(|e| ReflectionError::Refused(e.to_string()))?;
        super::GrpcShared::new(&http).inner.tls.clone()
    };
    let send = conn::connect(&origin, Some(&tls), 64 * 1024)
        .await
        .map_err(ReflectionError::Connect)?;
    let h2 = H2 {
        send,
        limit: DEFAULT_BODY_LIMIT,
    };
    let mut client = ServerReflectionClient::with_origin(h2, origin)
        .max_decoding_message_size(DEFAULT_BODY_LIMIT + 1);

    let services = ask(
        &mut client,
        vec![MessageRequest::ListServices(String::new())],
    )
    .await?;
    let mut symbols = Vec::new();
    for response in services {
        if let MessageResponse::ListServicesResponse(list) = response {
            symbols.extend(
                list.service
                    .into_iter()
                    .map(|s| s.name)
                    .filter(|n| !n.starts_with("grpc.reflection.")),
            );
        }
    }
    let mut files: HashMap<String, FileDescriptorProto> = HashMap::new();
    let mut asked: HashSet<String> = HashSet::new();
    let mut requests: Vec<MessageRequest> = symbols
        .into_iter()
        .map(MessageRequest::FileContainingSymbol)
        .collect();
    while !requests.is_empty() {
        for response in ask(&mut client, std::mem::take(&mut requests)).await? {
            let MessageResponse::FileDescriptorResponse(r) = response else {
                continue;
            };
            for bytes in r.file_descriptor_proto {
                let file = FileDescriptorProto::decode(bytes.as_slice())?;
                files.entry(file.name().to_owned()).or_insert(file);
                if files.len() > MAX_FILES {
                    return Err(ReflectionError::TooLarge);
                }
            }
        }
        for file in files.values() {
            for dep in &file.dependency {
                if !files.contains_key(dep) && asked.insert(dep.clone()) {
                    requests.push(MessageRequest::FileByFilename(dep.clone()));
                }
            }
        }
    }
    Ok(FileDescriptorSet {
        file: files.into_values().collect(),
    })
}

/// Sends `requests` on one reflection stream and collects the answers.
async fn ask(
    client: &mut ServerReflectionClient<H2>,
    requests: Vec<MessageRequest>,
) -> Result<Vec<MessageResponse>, ReflectionError> {
    let requests: Vec<ServerReflectionRequest> = requests
        .into_iter()
        .map(|r| ServerReflectionRequest {
            host: String::new(),
            message_request: Some(r),
        })
        .collect();
    let mut stream = client
        .server_reflection_info(futures_util::stream::iter(requests))
        .await?
        .into_inner();
    let mut out = Vec::new();
    while let Some(ServerReflectionResponse {
        message_response, ..
    }) = stream.message().await?
    {
        match message_response {
            // An import the server does not have is left for the schema check to
            // name; anything else is the server's refusal.
            Some(MessageResponse::ErrorResponse(e))
                if e.error_code != tonic::Code::NotFound as i32 =>
            {
                return Err(ReflectionError::Refused(e.error_message));
            }
            Some(MessageResponse::ErrorResponse(_)) => {}
            Some(r) => out.push(r),
            None => {}
        }
    }
    Ok(out)
}
