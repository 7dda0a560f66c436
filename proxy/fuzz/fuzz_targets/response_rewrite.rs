//! Any bytes as a broker's response body (after the header) of the kinds
//! Strait decodes on every connection, at every version it serves: Metadata,
//! FindCoordinator, DescribeCluster (the address rewrite) and ApiVersions
//! (the version clamp). The first two bytes pick the kind and the version;
//! the rest goes through the functions the response path uses: the guard's
//! walk and the decode, collecting endpoints, learning topic ids, pointing
//! the endpoints at the proxy, clamping, and encoding.
//!
//! Nothing panics or aborts (an array length the body cannot hold would make
//! the decoder reserve gigabytes: libFuzzer's malloc limit reports that), a
//! rewrite fails only for a node with no listener, and what Strait encodes
//! decodes again, with the same endpoints, every one at the proxy.
#![no_main]

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::ResponseHeader;
use kafka_protocol::protocol::{Encodable, StrBytes};
use libfuzzer_sys::fuzz_target;
use strait_proxy::config::LeaderEndpoints;
use strait_proxy::response::{classify, proxy_range, AddressMap, Decoded, Kind, RewriteError};

const KINDS: [(i16, Kind); 4] = [
    (3, Kind::Metadata),
    (10, Kind::FindCoordinator),
    (60, Kind::DescribeCluster),
    (18, Kind::ApiVersions),
];

/// Nodes below 1000 have a listener at the proxy.
struct Proxy;

impl AddressMap for Proxy {
    fn advertised(&self, node_id: i32) -> Option<(StrBytes, i32)> {
        (node_id < 1000).then(|| (StrBytes::from_static_str("strait.proxy"), 30_000 + node_id))
    }
}

fn at_proxy(d: &mut Decoded) -> Vec<(i32, String, i32)> {
    d.endpoints()
        .into_iter()
        .map(|e| (e.node_id, e.host, e.port))
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let [k, v, body @ ..] = data else { return };
    let (key, kind) = KINDS[usize::from(*k) % KINDS.len()];
    let (min, max) = proxy_range(key, LeaderEndpoints::Clamp).expect("a served api");
    let version = min + i16::from(*v) % (max - min + 1);
    assert_eq!(classify(key, version).ok(), Some(Some(kind)));
    // The response header as the broker sends it (correlation id, and the
    // empty tagged fields of a flexible header), then the fuzzed body.
    let header_version = kafka_protocol::messages::ApiKey::try_from(key)
        .expect("known")
        .response_header_version(version);
    let mut frame = BytesMut::new();
    ResponseHeader::default()
        .with_correlation_id(7)
        .encode(&mut frame, header_version)
        .expect("header");
    frame.extend_from_slice(body);
    let Ok(mut d) = Decoded::decode(kind, key, version, frame.freeze()) else {
        return;
    };
    let _ = d.topic_ids();
    let endpoints = at_proxy(&mut d);
    match d.rewrite_addresses(&Proxy) {
        Ok(()) => {}
        Err(RewriteError::NoListener(id)) => {
            assert!(id >= 1000, "node {id} has a listener");
            return;
        }
        Err(e) => panic!("rewrite: {e}"),
    }
    d.clamp_versions(LeaderEndpoints::Clamp);
    let Ok(out) = d.encode() else { return };
    let out: Bytes = out.freeze();
    let len = i32::from_be_bytes(out[..4].try_into().expect("prefix"));
    assert_eq!(len as usize, out.len() - 4, "length prefix");
    let mut again = Decoded::decode(kind, key, version, out.slice(4..))
        .unwrap_or_else(|e| panic!("{kind:?} v{version}: what Strait encodes does not decode: {e}"));
    let rewritten = at_proxy(&mut again);
    assert_eq!(rewritten.len(), endpoints.len(), "the same endpoints");
    for ((id, _, _), (id2, host, port)) in endpoints.iter().zip(&rewritten) {
        assert_eq!(id, id2);
        assert_eq!((host.as_str(), *port), ("strait.proxy", 30_000 + id));
    }
});
