//! The messages the guard walks, each with kafka-protocol's type for it.

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, Message};

use super::super::{requests, responses, Layout};

/// What [`roundtrip`] gives back.
type Decoded = anyhow::Result<(usize, Option<Vec<u8>>)>;

pub(super) struct Case {
    pub name: &'static str,
    pub layout: &'static Layout,
    /// kafka-protocol's version range for the message.
    pub versions: (i16, i16),
    /// Decodes a body with kafka-protocol: the bytes it took, and its
    /// encoding of what it decoded (`None` when it would not encode it).
    pub roundtrip: fn(&[u8], i16) -> Decoded,
}

fn roundtrip<M: Decodable + Encodable>(body: &[u8], v: i16) -> Decoded {
    let mut b = Bytes::copy_from_slice(body);
    let m = M::decode(&mut b, v)?;
    let used = body.len() - b.remaining();
    let mut out = BytesMut::new();
    Ok((used, m.encode(&mut out, v).ok().map(|()| out.to_vec())))
}

macro_rules! cases {
    ($($m:ty => $layout:expr),* $(,)?) => {
        &[$(Case {
            name: stringify!($m),
            layout: &$layout,
            versions: (<$m as Message>::VERSIONS.min, <$m as Message>::VERSIONS.max),
            roundtrip: roundtrip::<$m>,
        }),*]
    };
}

pub(super) const CASES: &[Case] = cases! {
    RequestHeader => requests::request_header::LAYOUT,
    ProduceRequest => requests::produce::LAYOUT,
    FetchRequest => requests::fetch::LAYOUT,
    MetadataRequest => requests::metadata::LAYOUT,
    CreateTopicsRequest => requests::create_topics::LAYOUT,
    AlterConfigsRequest => requests::alter_configs::LAYOUT,
    IncrementalAlterConfigsRequest => requests::incremental_alter_configs::LAYOUT,
    DeleteTopicsRequest => requests::delete_topics::LAYOUT,
    SaslHandshakeRequest => requests::sasl_handshake::LAYOUT,
    ResponseHeader => responses::response_header::LAYOUT,
    ApiVersionsResponse => responses::api_versions::LAYOUT,
    MetadataResponse => responses::metadata::LAYOUT,
    FindCoordinatorResponse => responses::find_coordinator::LAYOUT,
    DescribeClusterResponse => responses::describe_cluster::LAYOUT,
    ProduceResponse => responses::produce::LAYOUT,
    FetchResponse => responses::fetch::LAYOUT,
    ShareFetchResponse => responses::share_fetch::LAYOUT,
    ShareAcknowledgeResponse => responses::share_acknowledge::LAYOUT,
    CreateTopicsResponse => responses::create_topics::LAYOUT,
    AlterConfigsResponse => responses::alter_configs::LAYOUT,
    IncrementalAlterConfigsResponse => responses::incremental_alter_configs::LAYOUT,
    DeleteTopicsResponse => responses::delete_topics::LAYOUT,
    ListOffsetsResponse => responses::list_offsets::LAYOUT,
    DescribeConfigsResponse => responses::describe_configs::LAYOUT,
    SaslHandshakeResponse => responses::sasl_handshake::LAYOUT,
    SaslAuthenticateResponse => responses::sasl_authenticate::LAYOUT,
    ListGroupsResponse => responses::list_groups::LAYOUT,
    DescribeGroupsResponse => responses::describe_groups::LAYOUT,
    ConsumerGroupDescribeResponse => responses::consumer_group_describe::LAYOUT,
    OffsetFetchResponse => responses::offset_fetch::LAYOUT,
};
