//! Reads what the tap observes from a request frame, on the tap's own
//! thread: a fetch's positions, a commit's offsets, a group member's
//! heartbeat. Only the fields named here are read; record data is never
//! part of a request the tap reads.

use kafka_protocol::messages::ApiKey;
use uuid::Uuid;

use super::wire::{Short, Wire};

pub const FETCH: i16 = 1;
pub const OFFSET_COMMIT: i16 = 8;
pub const JOIN_GROUP: i16 = 11;
pub const HEARTBEAT: i16 = 12;
pub const LEAVE_GROUP: i16 = 13;
pub const SYNC_GROUP: i16 = 14;
pub const CONSUMER_GROUP_HEARTBEAT: i16 = 68;

/// The api keys the tap reads.
pub fn observed(api_key: i16) -> bool {
    matches!(
        api_key,
        FETCH
            | OFFSET_COMMIT
            | JOIN_GROUP
            | HEARTBEAT
            | LEAVE_GROUP
            | SYNC_GROUP
            | CONSUMER_GROUP_HEARTBEAT
    )
}

/// A topic as a request names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicRef {
    Name(String),
    Id(Uuid),
}

#[derive(Debug, PartialEq, Eq)]
pub enum Seen {
    /// The fetch offset of every partition a fetch names (an incremental
    /// fetch names only those whose position moved).
    Fetch(Vec<(TopicRef, i32, i64)>),
    /// A group's committed offsets.
    Commit {
        group: String,
        offsets: Vec<(TopicRef, i32, i64)>,
    },
    /// A group member spoke (join, sync, heartbeat), or left.
    Member { group: String, left: bool },
}

/// A request as the tap reads it.
#[derive(Debug, PartialEq, Eq)]
pub struct Request {
    pub client: Option<String>,
    pub correlation_id: i32,
    /// None for an api key the tap does not read.
    pub seen: Option<Seen>,
}

/// Reads a request from a frame body (after the length prefix).
pub fn decode(body: &[u8]) -> Result<Request, Short> {
    let mut h = Wire::new(body, false);
    let api_key = h.i16()?;
    let version = h.i16()?;
    let correlation_id = h.i32()?;
    let client = h.classic_string()?.map(str::to_string);
    let flexible = ApiKey::try_from(api_key)
        .map(|k| k.request_header_version(version) >= 2)
        .map_err(|_| Short)?;
    let mut w = Wire::new(h.rest(), flexible);
    w.tags()?;
    let seen = match api_key {
        FETCH => Some(Seen::Fetch(fetch(&mut w, version)?)),
        OFFSET_COMMIT => Some(commit(&mut w, version)?),
        JOIN_GROUP | HEARTBEAT | SYNC_GROUP => Some(Seen::Member {
            group: group(&mut w)?,
            left: false,
        }),
        LEAVE_GROUP => Some(Seen::Member {
            group: group(&mut w)?,
            left: true,
        }),
        CONSUMER_GROUP_HEARTBEAT => {
            let group = group(&mut w)?;
            w.string()?;
            // Epoch -1 leaves the group, -2 leaves it as a static member.
            let left = w.i32()? < 0;
            Some(Seen::Member { group, left })
        }
        _ => None,
    };
    Ok(Request {
        client,
        correlation_id,
        seen,
    })
}

fn group(w: &mut Wire) -> Result<String, Short> {
    Ok(w.string()?.unwrap_or_default().to_string())
}

fn topic(w: &mut Wire, by_id: bool) -> Result<TopicRef, Short> {
    Ok(if by_id {
        TopicRef::Id(Uuid::from_bytes(w.uuid()?))
    } else {
        TopicRef::Name(w.string()?.unwrap_or_default().to_string())
    })
}

/// FetchRequest v0..=18: each topic's partitions and fetch offsets.
fn fetch(w: &mut Wire, v: i16) -> Result<Vec<(TopicRef, i32, i64)>, Short> {
    if v <= 14 {
        w.i32()?; // replica_id
    }
    w.i32()?; // max_wait_ms
    w.i32()?; // min_bytes
    if v >= 3 {
        w.i32()?; // max_bytes
    }
    if v >= 4 {
        w.skip(1)?; // isolation_level
    }
    if v >= 7 {
        w.i32()?; // session_id
        w.i32()?; // session_epoch
    }
    let mut out = Vec::new();
    for _ in 0..w.array(2)? {
        let t = topic(w, v >= 13)?;
        for _ in 0..w.array(16)? {
            let partition = w.i32()?;
            if v >= 9 {
                w.i32()?; // current_leader_epoch
            }
            let offset = w.i64()?;
            if v >= 12 {
                w.i32()?; // last_fetched_epoch
            }
            if v >= 5 {
                w.i64()?; // log_start_offset
            }
            w.i32()?; // partition_max_bytes
            w.tags()?;
            out.push((t.clone(), partition, offset));
        }
        w.tags()?;
    }
    Ok(out)
}

/// OffsetCommitRequest v0..=10 (v10 names topics by id).
fn commit(w: &mut Wire, v: i16) -> Result<Seen, Short> {
    let group = group(w)?;
    if v >= 1 {
        w.i32()?; // generation_id_or_member_epoch
        w.string()?; // member_id
    }
    if v >= 7 {
        w.string()?; // group_instance_id
    }
    if (2..=4).contains(&v) {
        w.i64()?; // retention_time_ms
    }
    let mut offsets = Vec::new();
    for _ in 0..w.array(2)? {
        let t = topic(w, v >= 10)?;
        for _ in 0..w.array(13)? {
            let partition = w.i32()?;
            let offset = w.i64()?;
            if v >= 6 {
                w.i32()?; // committed_leader_epoch
            }
            if v == 1 {
                w.i64()?; // commit_timestamp
            }
            w.string()?; // committed_metadata
            w.tags()?;
            offsets.push((t.clone(), partition, offset));
        }
        w.tags()?;
    }
    Ok(Seen::Commit { group, offsets })
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use kafka_protocol::messages::{
        ConsumerGroupHeartbeatRequest, FetchRequest, GroupId, OffsetCommitRequest, RequestHeader,
        TopicName,
    };
    use kafka_protocol::protocol::{Encodable, StrBytes};

    use super::*;

    fn frame(api: ApiKey, v: i16, body: &impl Encodable) -> Vec<u8> {
        let mut b = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(v)
            .with_client_id(Some(StrBytes::from_static_str("app-1")))
            .encode(&mut b, api.request_header_version(v))
            .unwrap();
        body.encode(&mut b, v).unwrap();
        b.to_vec()
    }

    #[test]
    fn fetch_positions_at_every_version() {
        use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
        let id = Uuid::from_u128(7);
        for v in 4..=18 {
            let t = FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_static_str("orders")))
                .with_topic_id(id)
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(2)
                        .with_fetch_offset(40),
                    FetchPartition::default()
                        .with_partition(5)
                        .with_fetch_offset(9),
                ]);
            let f = frame(
                ApiKey::Fetch,
                v,
                &FetchRequest::default().with_topics(vec![t]),
            );
            let Request { client, seen, .. } = decode(&f).unwrap();
            assert_eq!(client.as_deref(), Some("app-1"));
            let topic = if v >= 13 {
                TopicRef::Id(id)
            } else {
                TopicRef::Name("orders".into())
            };
            assert_eq!(
                seen,
                Some(Seen::Fetch(vec![(topic.clone(), 2, 40), (topic, 5, 9)])),
                "v{v}"
            );
        }
    }

    #[test]
    fn commits_at_every_version() {
        use kafka_protocol::messages::offset_commit_request::{
            OffsetCommitRequestPartition, OffsetCommitRequestTopic,
        };
        for v in 2..=9 {
            let r = OffsetCommitRequest::default()
                .with_group_id(GroupId(StrBytes::from_static_str("billing")))
                .with_topics(vec![OffsetCommitRequestTopic::default()
                    .with_name(TopicName(StrBytes::from_static_str("orders")))
                    .with_partitions(vec![OffsetCommitRequestPartition::default()
                        .with_partition_index(1)
                        .with_committed_offset(77)
                        .with_committed_metadata(Some(StrBytes::from_static_str("m")))])]);
            let Request { seen, .. } = decode(&frame(ApiKey::OffsetCommit, v, &r)).unwrap();
            assert_eq!(
                seen,
                Some(Seen::Commit {
                    group: "billing".into(),
                    offsets: vec![(TopicRef::Name("orders".into()), 1, 77)]
                }),
                "v{v}"
            );
        }
    }

    #[test]
    fn heartbeats_and_leaving() {
        let hb = ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(StrBytes::from_static_str("g848")))
            .with_member_id(StrBytes::from_static_str("m-1"))
            .with_member_epoch(-1);
        let Request { seen, .. } = decode(&frame(ApiKey::ConsumerGroupHeartbeat, 0, &hb)).unwrap();
        assert_eq!(
            seen,
            Some(Seen::Member {
                group: "g848".into(),
                left: true
            })
        );
        let hb = hb.with_member_epoch(3);
        let Request { seen, .. } = decode(&frame(ApiKey::ConsumerGroupHeartbeat, 0, &hb)).unwrap();
        assert_eq!(
            seen,
            Some(Seen::Member {
                group: "g848".into(),
                left: false
            })
        );
    }

    #[test]
    fn truncated_and_hostile_frames_are_refused_not_read() {
        use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
        let t = FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_static_str("orders")))
            .with_partitions(vec![FetchPartition::default().with_fetch_offset(1)]);
        let f = frame(
            ApiKey::Fetch,
            12,
            &FetchRequest::default().with_topics(vec![t]),
        );
        // v12 ends with what the tap does not read: forgotten topics (empty),
        // rack id (empty) and tagged fields (none), a byte each.
        for cut in 0..f.len() - 3 {
            assert_eq!(decode(&f[..cut]), Err(Short), "cut at {cut}");
        }
        assert!(
            decode(&[0, 99, 0, 0, 0, 0, 0, 0, 0xff, 0xff]).is_err(),
            "unknown api key"
        );
    }
}
