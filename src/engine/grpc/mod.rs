//! gRPC calls: one user's session (its HTTP/2 connection and the message it is about
//! to send), and the exchange itself through tonic with dynamic messages.
//!
//! # The contract
//!
//! - **One connection per user**, opened on the user's first gRPC call and kept
//!   (HTTP/2 with prior knowledge for `http://` targets, TLS with ALPN `h2` for
//!   `https://`); a connection the server closed is opened again on the next call.
//!   No pool, no background task but the connection's own.
//! - **Timeout**: the step's timeout bounds the whole exchange, from connecting to
//!   the trailers ([`TransportFailure::Timeout`]).
//! - **Size limit**: a response message longer than `defaults.max_response_body`
//!   fails as soon as its length prefix arrives ([`ProtocolFailure::BodyTooLarge`]);
//!   the response's metadata is bounded by `defaults.max_response_head`.
//! - **Server streaming**: the stream is read to its end, and judged as a JSON array
//!   of its messages; the limit counts all of them.
//! - **Statuses**: a status the server sent is a reply, judged by `expect.status`
//!   (default `OK`; another code without it is [`ProtocolFailure::GrpcStatus`]).
//!   Failures below gRPC (refused, reset, invalid HTTP/2) are transport failures,
//!   never statuses.
//! - **The reply** is judged as proto3 JSON (field names in lowerCamelCase, fields
//!   with default values included, 64-bit integers as strings), made only when a
//!   check or capture reads it; the bytes counted are the protobuf message's.
//!
//! [`TransportFailure::Timeout`]: crate::metrics::failure::TransportFailure::Timeout
//! [`ProtocolFailure::BodyTooLarge`]: crate::metrics::failure::ProtocolFailure::BodyTooLarge
//! [`ProtocolFailure::GrpcStatus`]: crate::metrics::failure::ProtocolFailure::GrpcStatus

pub mod codec;
pub mod conn;
pub mod reflection;

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use hyper::client::conn::http2::SendRequest;
use prost::Message as _;
use prost_reflect::{DynamicMessage, SerializeOptions};

use super::http::HttpShared;
use super::render::{self, Scope};
use crate::compile::graph::{GrpcCall, GrpcMessage};
use crate::metrics::failure::{CheckFailure, FailureKind, TransportFailure};
use codec::ClientCodec;
use conn::{H2, failed_in};

/// What every user's gRPC calls share: the limits and the TLS settings. Cheap to
/// clone.
#[derive(Debug, Clone)]
pub struct GrpcShared {
    inner: Arc<SharedInner>,
}

#[derive(Debug)]
struct SharedInner {
    tls: Arc<rustls::ClientConfig>,
    body_limit: usize,
    head_limit: usize,
}

impl GrpcShared {
    /// The HTTP settings of the run (TLS, `--insecure`, limits), with ALPN `h2`.
    pub fn new(http: &HttpShared) -> GrpcShared {
        let mut tls = http.user_tls_config();
        tls.alpn_protocols = vec![b"h2".to_vec()];
        GrpcShared {
            inner: Arc::new(SharedInner {
                tls: Arc::new(tls),
                body_limit: http.body_limit(),
                head_limit: http.head_limit(),
            }),
        }
    }
}

/// One user's gRPC state: nothing until its first gRPC call.
#[derive(Debug)]
pub struct GrpcSession {
    shared: GrpcShared,
    state: Option<Box<State>>,
}

#[derive(Debug, Default)]
struct State {
    /// The connection and the origin it goes to.
    conn: Option<(http::Uri, SendRequest<tonic::body::Body>)>,
    /// The next message, encoded.
    message: Bytes,
    metadata: HeaderMap,
    json: Vec<u8>,
    scratch: String,
}

/// A reply: the status the server sent, its metadata (headers and trailers), and
/// the response message as proto3 JSON when it was asked for.
#[derive(Debug)]
pub struct GrpcReply {
    pub code: u16,
    pub metadata: HeaderMap,
    pub json: Vec<u8>,
    /// The response message's encoded length.
    pub bytes: u64,
}

/// How replies are written as JSON for checks and captures.
const JSON: SerializeOptions = SerializeOptions::new().skip_default_fields(false);

impl GrpcSession {
    pub fn new(shared: &GrpcShared) -> GrpcSession {
        GrpcSession {
            shared: shared.clone(),
            state: None,
        }
    }

    /// Renders the call's metadata and message. Fails with [`CheckFailure::Unset`]
    /// when a template reads an unset variable, and with
    /// [`CheckFailure::InvalidRequest`] when a rendered value does not fit the
    /// message's type or a metadata value cannot be sent; nothing is sent then.
    pub fn prepare(&mut self, call: &GrpcCall, scope: &mut Scope) -> Result<(), FailureKind> {
        let st = self.state.get_or_insert_with(Box::default);
        st.metadata.clear();
        for (name, template) in &call.metadata {
            let value = match template.as_literal() {
                Some(lit) => HeaderValue::from_str(lit),
                None => {
                    st.scratch.clear();
                    render::render_str(template, scope, &mut st.scratch)
                        .map_err(CheckFailure::Unset)?;
                    HeaderValue::from_str(&st.scratch)
                }
            };
            let value = value.map_err(|_| CheckFailure::InvalidRequest)?;
            st.metadata.append(name.clone(), value);
        }
        st.message = match &call.message {
            GrpcMessage::Encoded(bytes) => bytes.clone(),
            GrpcMessage::Json(template) => {
                st.json.clear();
                render::render_json(template, scope, &mut st.json, &mut st.scratch)
                    .map_err(CheckFailure::Unset)?;
                let mut de = serde_json::Deserializer::from_slice(&st.json);
                let message = DynamicMessage::deserialize(call.method.input(), &mut de)
                    .map_err(|_| CheckFailure::InvalidRequest)?;
                message.encode_to_vec().into()
            }
        };
        Ok(())
    }

    /// Sends what [`GrpcSession::prepare`] rendered and waits for the reply, within
    /// `timeout`. `json` asks for the reply as JSON. Boxed: a user's task carries
    /// only a pointer for it while it waits.
    pub fn call<'s>(
        &'s mut self,
        call: &'s GrpcCall,
        timeout: Duration,
        json: bool,
    ) -> Pin<Box<dyn Future<Output = Result<GrpcReply, FailureKind>> + Send + 's>> {
        Box::pin(async move {
            let shared = &self.shared.inner;
            let Some(st) = self.state.as_deref_mut() else {
                return Err(CheckFailure::InvalidRequest.into());
            };
            match tokio::time::timeout(timeout, st.exchange(shared, call, json)).await {
                Ok(reply) => reply,
                Err(_) => Err(TransportFailure::Timeout.into()),
            }
        })
    }
}

impl State {
    async fn exchange(
        &mut self,
        shared: &SharedInner,
        call: &GrpcCall,
        json: bool,
    ) -> Result<GrpcReply, FailureKind> {
        let reuse = matches!(&self.conn, Some((origin, send)) if *origin == call.origin && !send.is_closed());
        if !reuse {
            self.conn = None;
            let send = conn::connect(&call.origin, Some(&shared.tls), shared.head_limit).await?;
            self.conn = Some((call.origin.clone(), send));
        }
        let Some((_, send)) = &self.conn else {
            return Err(TransportFailure::Connect.into());
        };
        let h2 = H2 {
            send: send.clone(),
            limit: shared.body_limit,
        };
        let mut client = tonic::client::Grpc::with_origin(h2, call.origin.clone())
            // Past the limit the body fails first (conn::Limited); this only keeps
            // tonic from refusing what the plan allows.
            .max_decoding_message_size(shared.body_limit.saturating_add(1));
        if let Err(e) = client.ready().await {
            self.conn = None;
            return Err(e.0);
        }
        let mut request = tonic::Request::new(self.message.clone());
        *request.metadata_mut() = tonic::metadata::MetadataMap::from_headers(self.metadata.clone());
        let codec = ClientCodec {
            output: call.method.output(),
        };
        let reply = if call.method.is_server_streaming() {
            streamed(&mut client, request, call, codec, json).await
        } else {
            unary(&mut client, request, call, codec, json).await
        };
        match reply {
            Ok(reply) => Ok(reply),
            Err(status) => {
                if let Some(kind) = failed_in(&status) {
                    if matches!(kind, FailureKind::Transport(_)) {
                        self.conn = None;
                    }
                    return Err(kind);
                }
                Ok(GrpcReply {
                    code: status.code() as u16,
                    metadata: status.metadata().clone().into_headers(),
                    json: Vec::new(),
                    bytes: 0,
                })
            }
        }
    }
}

type Client = tonic::client::Grpc<H2>;

/// One request, one reply.
async fn unary(
    client: &mut Client,
    request: tonic::Request<Bytes>,
    call: &GrpcCall,
    codec: ClientCodec,
    json: bool,
) -> Result<GrpcReply, tonic::Status> {
    let response = client.unary(request, call.path.clone(), codec).await?;
    let (metadata, message, _) = response.into_parts();
    let mut out = Vec::new();
    if json {
        write_json(&message, &mut out);
    }
    Ok(GrpcReply {
        code: 0,
        metadata: metadata.into_headers(),
        json: out,
        bytes: message.encoded_len() as u64,
    })
}

/// One request, a stream of replies, read to its end: judged as a JSON array of the
/// messages, with the trailers added to the metadata.
async fn streamed(
    client: &mut Client,
    request: tonic::Request<Bytes>,
    call: &GrpcCall,
    codec: ClientCodec,
    json: bool,
) -> Result<GrpcReply, tonic::Status> {
    let response = client
        .server_streaming(request, call.path.clone(), codec)
        .await?;
    let (metadata, mut stream, _) = response.into_parts();
    let mut headers = metadata.into_headers();
    let mut out = Vec::new();
    let mut bytes = 0u64;
    let mut count = 0usize;
    while let Some(message) = stream.message().await? {
        bytes += message.encoded_len() as u64;
        if json {
            out.push(if count == 0 { b'[' } else { b',' });
            write_json(&message, &mut out);
        }
        count += 1;
    }
    if json {
        if count == 0 {
            out.push(b'[');
        }
        out.push(b']');
    }
    if let Some(trailers) = stream.trailers().await? {
        headers.extend(trailers.into_headers());
    }
    Ok(GrpcReply {
        code: 0,
        metadata: headers,
        json: out,
        bytes,
    })
}

/// Appends `message` as proto3 JSON. A message that cannot be written leaves the text
/// short, so the checks that read it fail as "not JSON".
fn write_json(message: &DynamicMessage, out: &mut Vec<u8>) {
    let mut ser = serde_json::Serializer::new(out);
    let _ = message.serialize_with_options(&mut ser, &JSON);
}
