//! tonic codecs for messages known only at run time (prost-reflect descriptors).
//!
//! The client sends a message already encoded (when the plan was compiled, or when
//! its template was rendered), so its encoder copies bytes; replies are decoded as
//! [`DynamicMessage`]s of the method's output type. The server side (the demo and
//! the tests' servers) decodes and encodes [`DynamicMessage`]s both ways.

use bytes::{BufMut, Bytes};
use prost::Message as _;
use prost_reflect::{DynamicMessage, MessageDescriptor};
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

/// Sends encoded bytes; decodes replies of one message type.
#[derive(Debug, Clone)]
pub struct ClientCodec {
    pub output: MessageDescriptor,
}

impl Codec for ClientCodec {
    type Encode = Bytes;
    type Decode = DynamicMessage;
    type Encoder = BytesEncoder;
    type Decoder = DynamicDecoder;

    fn encoder(&mut self) -> BytesEncoder {
        BytesEncoder
    }

    fn decoder(&mut self) -> DynamicDecoder {
        DynamicDecoder(self.output.clone())
    }
}

/// Decodes requests of one message type and encodes any [`DynamicMessage`].
#[derive(Debug, Clone)]
pub struct ServerCodec {
    pub input: MessageDescriptor,
}

impl Codec for ServerCodec {
    type Encode = DynamicMessage;
    type Decode = DynamicMessage;
    type Encoder = DynamicEncoder;
    type Decoder = DynamicDecoder;

    fn encoder(&mut self) -> DynamicEncoder {
        DynamicEncoder
    }

    fn decoder(&mut self) -> DynamicDecoder {
        DynamicDecoder(self.input.clone())
    }
}

#[derive(Debug)]
pub struct BytesEncoder;

impl Encoder for BytesEncoder {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

#[derive(Debug)]
pub struct DynamicEncoder;

impl Encoder for DynamicEncoder {
    type Item = DynamicMessage;
    type Error = Status;

    fn encode(&mut self, item: DynamicMessage, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(dst)
            .map_err(|e| Status::internal(format!("cannot encode the message: {e}")))
    }
}

#[derive(Debug)]
pub struct DynamicDecoder(MessageDescriptor);

impl Decoder for DynamicDecoder {
    type Item = DynamicMessage;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<DynamicMessage>, Status> {
        DynamicMessage::decode(self.0.clone(), src)
            .map(Some)
            .map_err(|e| Status::internal(format!("invalid {} message: {e}", self.0.full_name())))
    }
}
