//! A walk over a response body before kafka-protocol decodes it. Its array
//! decoder reserves an array's declared length up front, so a broker that
//! sends a malformed length (up to 2^31 elements, in a few bytes) would make
//! the allocator fail, and Rust aborts the whole process on that. Every
//! element of a Kafka array takes at least one byte, so the walk refuses a
//! length above the bytes left, and walks every element, so the decoder only
//! ever reserves room for elements that are really there.
//!
//! The walk mirrors the layouts (per version) of the responses that every
//! connection decodes: ApiVersions, Metadata, FindCoordinator and
//! DescribeCluster. Other kinds are decoded as before (see README, "Slow and
//! hostile peers").

use super::codec::Kind;

/// Where the walk found the body malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    #[error("the body ends at byte {at} inside a field")]
    Short { at: usize },
    #[error("an array at byte {at} declares {count} elements but only {left} bytes are left")]
    Array { at: usize, count: u64, left: usize },
    #[error("an array at byte {at} declares a negative length ({count})")]
    Negative { at: usize, count: i32 },
    #[error(
        "a tagged field at byte {at} has tag {tag}: tags must ascend and fit an int32 \
         (the decoder would drop or mangle it, and the response would not encode back)"
    )]
    Tag { at: usize, tag: u32 },
}

/// Walks a response body (after the response header) of `kind` at
/// `version`; `Ok` when kafka-protocol can decode it without reserving room
/// for elements that are not there.
pub fn check(kind: Kind, version: i16, body: &[u8]) -> Result<(), Malformed> {
    let v = version;
    match kind {
        Kind::ApiVersions => api_versions(&mut Walk::new(body, v >= 3), v),
        Kind::Metadata => metadata(&mut Walk::new(body, v >= 9), v),
        Kind::FindCoordinator => find_coordinator(&mut Walk::new(body, v >= 3), v),
        Kind::DescribeCluster => describe_cluster(&mut Walk::new(body, true), v),
        _ => Ok(()),
    }
}

struct Walk<'a> {
    buf: &'a [u8],
    at: usize,
    /// Flexible versions: compact lengths and tagged fields.
    flexible: bool,
}

impl<'a> Walk<'a> {
    fn new(buf: &'a [u8], flexible: bool) -> Walk<'a> {
        Walk {
            buf,
            at: 0,
            flexible,
        }
    }

    fn left(&self) -> usize {
        self.buf.len() - self.at
    }

    fn skip(&mut self, n: u64) -> Result<(), Malformed> {
        if n > self.left() as u64 {
            return Err(Malformed::Short { at: self.buf.len() });
        }
        self.at += n as usize;
        Ok(())
    }

    fn bytes<const N: usize>(&mut self) -> Result<[u8; N], Malformed> {
        let b = self
            .buf
            .get(self.at..self.at + N)
            .ok_or(Malformed::Short { at: self.buf.len() })?;
        self.at += N;
        Ok(b.try_into().expect("N bytes"))
    }

    /// An unsigned varint as kafka-protocol reads it: at most five bytes,
    /// bits past 32 dropped.
    fn varint(&mut self) -> Result<u32, Malformed> {
        let mut value = 0u32;
        for i in 0..5 {
            let [b] = self.bytes::<1>()?;
            value |= u32::from(b & 0x7f) << (i * 7);
            if b < 0x80 {
                break;
            }
        }
        Ok(value)
    }

    fn string(&mut self) -> Result<(), Malformed> {
        let len = if self.flexible {
            u64::from(self.varint()?).saturating_sub(1)
        } else {
            // Null (-1) and, for the decoder to refuse, other negatives.
            u64::try_from(i16::from_be_bytes(self.bytes()?)).unwrap_or(0)
        };
        self.skip(len)
    }

    /// An array; `element` walks one element.
    fn array(
        &mut self,
        mut element: impl FnMut(&mut Walk<'a>) -> Result<(), Malformed>,
    ) -> Result<(), Malformed> {
        let at = self.at;
        let count = if self.flexible {
            // 0 is null; n is n - 1 elements.
            u64::from(self.varint()?).saturating_sub(1)
        } else {
            match i32::from_be_bytes(self.bytes()?) {
                -1 => 0,
                n if n < 0 => return Err(Malformed::Negative { at, count: n }),
                n => n as u64,
            }
        };
        if count > self.left() as u64 {
            return Err(Malformed::Array {
                at,
                count,
                left: self.left(),
            });
        }
        for _ in 0..count {
            element(self)?;
        }
        Ok(())
    }

    fn int32s(&mut self) -> Result<(), Malformed> {
        self.array(|w| w.skip(4))
    }

    /// Tagged fields (flexible versions only); `known` walks the tags the
    /// decoder reads as fields (true when it did), the rest are skipped by
    /// size. Tags ascend, as Kafka writes them (its own reader refuses
    /// others): kafka-protocol keeps unknown tags in a map by signed tag, so
    /// a repeated tag or one past 2^31 - 1 would not encode back as it came.
    fn tags(
        &mut self,
        mut known: impl FnMut(&mut Walk<'a>, u32) -> Result<bool, Malformed>,
    ) -> Result<(), Malformed> {
        if !self.flexible {
            return Ok(());
        }
        let n = self.varint()?;
        let mut previous: Option<u32> = None;
        for _ in 0..n {
            let at = self.at;
            let tag = self.varint()?;
            if tag > i32::MAX as u32 || previous.is_some_and(|p| tag <= p) {
                return Err(Malformed::Tag { at, tag });
            }
            previous = Some(tag);
            let size = self.varint()?;
            if !known(self, tag)? {
                self.skip(u64::from(size))?;
            }
        }
        Ok(())
    }

    fn no_known_tags(&mut self) -> Result<(), Malformed> {
        self.tags(|_, _| Ok(false))
    }
}

fn api_versions(w: &mut Walk, v: i16) -> Result<(), Malformed> {
    w.skip(2)?; // error_code
    w.array(|w| {
        w.skip(6)?; // api_key, min_version, max_version
        w.no_known_tags()
    })?;
    if v >= 1 {
        w.skip(4)?; // throttle_time_ms
    }
    // supported_features (0), finalized_features_epoch (1),
    // finalized_features (2), zk_migration_ready (3).
    w.tags(|w, tag| {
        match tag {
            0 | 2 => w.array(|w| {
                w.string()?;
                w.skip(4)?;
                w.no_known_tags()
            })?,
            1 => w.skip(8)?,
            3 => w.skip(1)?,
            _ => return Ok(false),
        }
        Ok(true)
    })
}

fn metadata(w: &mut Walk, v: i16) -> Result<(), Malformed> {
    if v >= 3 {
        w.skip(4)?; // throttle_time_ms
    }
    w.array(|w| {
        w.skip(4)?; // node_id
        w.string()?; // host
        w.skip(4)?; // port
        if v >= 1 {
            w.string()?; // rack
        }
        w.no_known_tags()
    })?;
    if v >= 2 {
        w.string()?; // cluster_id
    }
    if v >= 1 {
        w.skip(4)?; // controller_id
    }
    w.array(|w| {
        w.skip(2)?; // error_code
        w.string()?; // name
        if v >= 10 {
            w.skip(16)?; // topic_id
        }
        if v >= 1 {
            w.skip(1)?; // is_internal
        }
        w.array(|w| {
            w.skip(10)?; // error_code, partition_index, leader_id
            if v >= 7 {
                w.skip(4)?; // leader_epoch
            }
            w.int32s()?; // replica_nodes
            w.int32s()?; // isr_nodes
            if v >= 5 {
                w.int32s()?; // offline_replicas
            }
            w.no_known_tags()
        })?;
        if v >= 8 {
            w.skip(4)?; // topic_authorized_operations
        }
        w.no_known_tags()
    })?;
    if (8..=10).contains(&v) {
        w.skip(4)?; // cluster_authorized_operations
    }
    if v >= 13 {
        w.skip(2)?; // error_code
    }
    w.no_known_tags()
}

fn find_coordinator(w: &mut Walk, v: i16) -> Result<(), Malformed> {
    if v >= 1 {
        w.skip(4)?; // throttle_time_ms
    }
    if v <= 3 {
        w.skip(2)?; // error_code
        if v >= 1 {
            w.string()?; // error_message
        }
        w.skip(4)?; // node_id
        w.string()?; // host
        w.skip(4)?; // port
    } else {
        w.array(|w| {
            w.string()?; // key
            w.skip(4)?; // node_id
            w.string()?; // host
            w.skip(6)?; // port, error_code
            w.string()?; // error_message
            w.no_known_tags()
        })?;
    }
    w.no_known_tags()
}

fn describe_cluster(w: &mut Walk, v: i16) -> Result<(), Malformed> {
    w.skip(6)?; // throttle_time_ms, error_code
    w.string()?; // error_message
    if v >= 1 {
        w.skip(1)?; // endpoint_type
    }
    w.string()?; // cluster_id
    w.skip(4)?; // controller_id
    w.array(|w| {
        w.skip(4)?; // broker_id
        w.string()?; // host
        w.skip(4)?; // port
        w.string()?; // rack
        if v >= 2 {
            w.skip(1)?; // is_fenced
        }
        w.no_known_tags()
    })?;
    w.skip(4)?; // cluster_authorized_operations
    w.no_known_tags()
}

#[cfg(test)]
mod tests {
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
}
