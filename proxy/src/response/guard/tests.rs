//! The walk against kafka-protocol's own encoding of every layout and
//! version, and the malformed lengths and tags it refuses.

use super::*;
use bytes::BytesMut;
use kafka_protocol::messages::api_versions_response::{
    ApiVersion, FinalizedFeatureKey, SupportedFeatureKey,
};
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{
    ApiVersionsResponse, BrokerId, DescribeClusterResponse, FindCoordinatorResponse,
    MetadataResponse, TopicName,
};
use kafka_protocol::protocol::{Encodable, StrBytes};

fn s(v: &'static str) -> StrBytes {
    StrBytes::from_static_str(v)
}

fn encoded<T: Encodable>(m: &T, v: i16) -> Vec<u8> {
    let mut b = BytesMut::new();
    m.encode(&mut b, v).unwrap();
    b.to_vec()
}

fn metadata_response() -> MetadataResponse {
    let broker = |id| {
        MetadataResponseBroker::default()
            .with_node_id(BrokerId(id))
            .with_host(s("kafka.internal"))
            .with_port(9092)
            .with_rack(Some(s("rack-a")))
    };
    let partition = |i| {
        MetadataResponsePartition::default()
            .with_partition_index(i)
            .with_replica_nodes(vec![BrokerId(1), BrokerId(2)])
            .with_isr_nodes(vec![BrokerId(1)])
            .with_offline_replicas(vec![BrokerId(2)])
    };
    MetadataResponse::default()
        .with_brokers(vec![broker(1), broker(2)])
        .with_cluster_id(Some(s("cluster")))
        .with_topics(vec![MetadataResponseTopic::default()
            .with_name(Some(TopicName(s("orders"))))
            .with_partitions(vec![partition(0), partition(1)])])
}

/// Every layout Strait decodes, populated, in every version: the walk
/// accepts it and ends exactly at its end (so it reads the fields the
/// decoder reads); and with its last byte cut it is refused.
#[test]
fn the_walk_matches_every_version_of_each_layout() {
    let mut cases: Vec<(Kind, i16, Vec<u8>)> = Vec::new();
    for v in 0..=13 {
        cases.push((Kind::Metadata, v, encoded(&metadata_response(), v)));
    }
    for v in 0..=4 {
        let mut r = ApiVersionsResponse::default().with_api_keys(vec![
            ApiVersion::default().with_api_key(3).with_max_version(13),
            ApiVersion::default().with_api_key(18).with_max_version(4),
        ]);
        if v >= 3 {
            r = r
                .with_supported_features(vec![SupportedFeatureKey::default()
                    .with_name(s("metadata.version"))
                    .with_max_version(27)])
                .with_finalized_features_epoch(5)
                .with_finalized_features(vec![FinalizedFeatureKey::default()
                    .with_name(s("metadata.version"))
                    .with_max_version_level(27)])
                .with_zk_migration_ready(true);
        }
        cases.push((Kind::ApiVersions, v, encoded(&r, v)));
    }
    for v in 0..=6 {
        let r = match v {
            0 => FindCoordinatorResponse::default().with_host(s("kafka.internal")),
            1..=3 => FindCoordinatorResponse::default()
                .with_error_message(Some(s("none")))
                .with_host(s("kafka.internal")),
            _ => FindCoordinatorResponse::default()
                .with_host(StrBytes::default())
                .with_coordinators(vec![Coordinator::default()
                    .with_key(s("group"))
                    .with_host(s("kafka.internal"))
                    .with_error_message(Some(s("none")))]),
        };
        cases.push((Kind::FindCoordinator, v, encoded(&r, v)));
    }
    for v in 0..=2 {
        let r = DescribeClusterResponse::default()
            .with_cluster_id(s("cluster"))
            .with_brokers(vec![DescribeClusterBroker::default()
                .with_host(s("kafka.internal"))
                .with_rack(Some(s("rack-a")))]);
        cases.push((Kind::DescribeCluster, v, encoded(&r, v)));
    }
    for (kind, v, body) in cases {
        let flexible = match kind {
            Kind::Metadata => v >= 9,
            Kind::DescribeCluster => true,
            _ => v >= 3,
        };
        let mut w = Walk::new(&body, flexible);
        let walked = match kind {
            Kind::ApiVersions => api_versions(&mut w, v),
            Kind::Metadata => metadata(&mut w, v),
            Kind::FindCoordinator => find_coordinator(&mut w, v),
            _ => describe_cluster(&mut w, v),
        };
        assert_eq!(walked, Ok(()), "{kind:?} v{v}");
        assert_eq!(w.at, body.len(), "{kind:?} v{v}: walked to the end");
        assert!(
            check(kind, v, &body[..body.len() - 1]).is_err(),
            "{kind:?} v{v}: one byte short"
        );
    }
}

#[test]
fn an_array_longer_than_the_body_is_refused_before_decoding() {
    // Metadata v1: no throttle time, then the brokers array.
    let mut body = i32::MAX.to_be_bytes().to_vec();
    body.extend_from_slice(&[0; 16]);
    assert_eq!(
        check(Kind::Metadata, 1, &body),
        Err(Malformed::Array {
            at: 0,
            count: i32::MAX as u64,
            left: 16
        })
    );
    // Metadata v12 (flexible): throttle time, then a compact array of
    // 2^28 brokers, in five bytes.
    let mut body = vec![0, 0, 0, 0, 0x81, 0x80, 0x80, 0x80, 0x01];
    body.extend_from_slice(&[0; 8]);
    assert!(matches!(
        check(Kind::Metadata, 12, &body),
        Err(Malformed::Array { at: 4, .. })
    ));
    assert_eq!(
        check(Kind::Metadata, 1, &(-2i32).to_be_bytes()),
        Err(Malformed::Negative { at: 0, count: -2 })
    );
}

/// Found by the response_rewrite fuzz target: FindCoordinator v6 with an
/// unknown tag past 2^31 - 1 decoded, but encoded back as a frame whose
/// tag count named one tag more than it held.
#[test]
fn tags_that_would_not_encode_back_are_refused() {
    // Throttle time, no coordinators, then tagged fields.
    let body = |tags: &[u8]| [&[0, 0, 0, 0, 1][..], tags].concat();
    let ok = body(&[2, 3, 0, 7, 0]);
    assert_eq!(check(Kind::FindCoordinator, 6, &ok), Ok(()));
    // Tag 2^31 (varint), empty.
    let big = body(&[1, 0x80, 0x80, 0x80, 0x80, 0x08, 0]);
    assert_eq!(
        check(Kind::FindCoordinator, 6, &big),
        Err(Malformed::Tag {
            at: 6,
            tag: 1 << 31
        })
    );
    // Tag 3 twice, and 7 before 3.
    for tags in [[2, 3, 0, 3, 0], [2, 7, 0, 3, 0]] {
        assert_eq!(
            check(Kind::FindCoordinator, 6, &body(&tags)),
            Err(Malformed::Tag { at: 8, tag: 3 })
        );
    }
}
