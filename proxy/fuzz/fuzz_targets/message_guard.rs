//! Any bytes as the body (after the header) of any request or response
//! Strait decodes, at every version kafka-protocol decodes, and any bytes
//! as a request or response header: the first three bytes pick the
//! direction, the api and the version. The guard walks it; what it passes
//! goes to kafka-protocol's decoder, as in the proxy.
//!
//! Nothing panics or aborts: an array length the body cannot hold would
//! make the decoder reserve gigabytes (libFuzzer's malloc limit reports
//! that), so the walk must refuse every such body, at every depth, and
//! never refuse by panicking itself.
#![no_main]

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::Decodable;
use libfuzzer_sys::fuzz_target;
use strait_proxy::codec::guard;

/// Every api whose request or response Strait decodes.
const APIS: [ApiKey; 17] = [
    ApiKey::Produce,
    ApiKey::Fetch,
    ApiKey::ListOffsets,
    ApiKey::Metadata,
    ApiKey::FindCoordinator,
    ApiKey::SaslHandshake,
    ApiKey::ApiVersions,
    ApiKey::CreateTopics,
    ApiKey::DeleteTopics,
    ApiKey::DescribeConfigs,
    ApiKey::AlterConfigs,
    ApiKey::SaslAuthenticate,
    ApiKey::IncrementalAlterConfigs,
    ApiKey::DescribeCluster,
    ApiKey::ShareFetch,
    ApiKey::ShareAcknowledge,
    ApiKey::Heartbeat, // guarded by neither: refused as unguarded
];

/// kafka-protocol's decoder for an api's request (or response) type.
macro_rules! decoders {
    ($name:ident, $($api:ident => $ty:ty),* $(,)?) => {
        fn $name(api: ApiKey, b: &mut Bytes, version: i16) {
            match api {
                $(ApiKey::$api => drop(<$ty>::decode(b, version)),)*
                _ => {}
            }
        }
    };
}

decoders!(decode_request,
    Produce => ProduceRequest,
    Fetch => FetchRequest,
    Metadata => MetadataRequest,
    SaslHandshake => SaslHandshakeRequest,
    CreateTopics => CreateTopicsRequest,
    DeleteTopics => DeleteTopicsRequest,
    AlterConfigs => AlterConfigsRequest,
    IncrementalAlterConfigs => IncrementalAlterConfigsRequest,
);

decoders!(decode_response,
    Produce => ProduceResponse,
    Fetch => FetchResponse,
    ListOffsets => ListOffsetsResponse,
    Metadata => MetadataResponse,
    FindCoordinator => FindCoordinatorResponse,
    SaslHandshake => SaslHandshakeResponse,
    ApiVersions => ApiVersionsResponse,
    CreateTopics => CreateTopicsResponse,
    DeleteTopics => DeleteTopicsResponse,
    DescribeConfigs => DescribeConfigsResponse,
    AlterConfigs => AlterConfigsResponse,
    SaslAuthenticate => SaslAuthenticateResponse,
    IncrementalAlterConfigs => IncrementalAlterConfigsResponse,
    DescribeCluster => DescribeClusterResponse,
    ShareFetch => ShareFetchResponse,
    ShareAcknowledge => ShareAcknowledgeResponse,
);

fuzz_target!(|data: &[u8]| {
    let [d, k, v, body @ ..] = data else { return };
    let api = APIS[usize::from(*k) % APIS.len()];
    let range = api.valid_versions();
    let version = range.min + i16::from(*v) % (range.max - range.min + 1);
    let mut b = Bytes::copy_from_slice(body);
    match d % 4 {
        0 => {
            if guard::request(api, version, body).is_ok() {
                decode_request(api, &mut b, version);
            }
        }
        1 => {
            if guard::response(api, version, body).is_ok() {
                decode_response(api, &mut b, version);
            }
        }
        2 => {
            let hv = api.request_header_version(version);
            if let Ok(n) = guard::request_header(hv, body) {
                assert!(n <= body.len());
                let _ = RequestHeader::decode(&mut b, hv);
            }
        }
        _ => {
            let hv = api.response_header_version(version);
            if let Ok(n) = guard::response_header(hv, body) {
                assert!(n <= body.len());
                let _ = ResponseHeader::decode(&mut b, hv);
            }
        }
    }
});
