//! What the tap has seen, kept bounded: each connection's fetch position
//! per partition, each group's last commit per partition, which group each
//! client id is in, and when each client's position last moved. Written by
//! the tap's thread only; read by the debug views.
//!
//! An incremental fetch (KIP-227) names only the partitions whose fetch
//! offset changed; a partition it leaves out has not moved. So a position
//! is only ever updated from a partition a fetch names, and an absent one
//! keeps its last position and time: "absent" is never read as "idle" or
//! as "caught up". A fetch session begun before this connection (or before
//! Strait started) needs no history either: a connection's first fetch of a
//! partition only sets where it stands; the next one that moves it is the
//! first delivery the tap reports.
//!
//! A fetch at offset `f` delivers records from `f` when the broker answers
//! it; the client's next fetch of the partition names where that answer
//! ended (`f'`). So records `[f, f')` were delivered at the answer's time
//! (the response pump tells the tap when each observed fetch's answer
//! began to arrive), and are reported once the fetch at `f'` is seen.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use moka::sync::Cache;

use super::decode::{decode, Request, Seen, TopicRef};
use super::keys::{KeyCounts, TopKeys};
use super::ConnTag;
use crate::metrics;
use crate::pipeline::route::{Hop, HopKind};
use crate::pipeline::TraceIndex;

/// Entries each map keeps at most (least recently used out). Each is a few
/// dozen bytes, so the tap's state stays within a few tens of MiB however
/// many connections, groups and partitions pass through.
pub const MAX_ENTRIES: u64 = 200_000;

type Topic = Arc<str>;
/// The partitions a fetch asked for, and from which offsets.
type Asked = Arc<Vec<(Topic, i32, i64)>>;

pub struct Observed {
    /// (connection, topic, partition) → fetch offset, and when the broker
    /// answered the fetch at that offset (None: not yet).
    positions: Cache<(u64, Topic, i32), (i64, Option<u64>)>,
    /// (connection, correlation id) → the positions a fetch not yet
    /// answered asked for.
    pending: Cache<(u64, i32), Asked>,
    /// (client id, topic, partition) → when its position last moved, and to.
    consumed: Cache<(Arc<str>, Topic, i32), (u64, i64)>,
    /// (group, topic, partition) → last committed offset, when, by whom.
    commits: Cache<(Arc<str>, Topic, i32), (i64, u64)>,
    /// client id → the group it last joined or heartbeated in.
    members: Cache<Arc<str>, Arc<str>>,
    /// Top keys per partition, from sampled produce requests.
    keys: KeyCounts,
    unreadable: AtomicU64,
}

impl Observed {
    /// `top_keys_bytes`: what the top-keys sketches may weigh in all.
    pub fn new(top_keys_bytes: u64) -> Observed {
        Observed {
            keys: KeyCounts::new(top_keys_bytes),
            positions: Cache::new(MAX_ENTRIES),
            pending: Cache::new(MAX_ENTRIES),
            consumed: Cache::new(MAX_ENTRIES),
            commits: Cache::new(MAX_ENTRIES),
            members: Cache::new(MAX_ENTRIES),
            unreadable: AtomicU64::new(0),
        }
    }

    /// Applies one observed request (a frame body).
    pub(super) fn apply(
        &self,
        conn: &ConnTag,
        at_ms: u64,
        body: &[u8],
        traces: &TraceIndex,
        topic_of: &dyn Fn(&uuid::Uuid) -> Option<Topic>,
    ) {
        let Ok(Request {
            client,
            correlation_id,
            seen: Some(seen),
        }) = decode(body)
        else {
            self.unreadable.fetch_add(1, Ordering::Relaxed);
            metrics::tap_dropped("unreadable");
            return;
        };
        let client: Arc<str> = client.unwrap_or_default().into();
        let name = |t: TopicRef| -> Option<Topic> {
            match t {
                TopicRef::Name(n) if !n.is_empty() => Some(n.into()),
                TopicRef::Name(_) => None,
                TopicRef::Id(id) => topic_of(&id),
            }
        };
        match seen {
            Seen::Fetch(positions) => {
                let group = self.members.get(&client);
                let mut asked = Vec::with_capacity(positions.len());
                for (t, p, offset) in positions {
                    let Some(topic) = name(t) else { continue };
                    let key = (conn.id, topic.clone(), p);
                    let prev = self.positions.get(&key);
                    self.positions.insert(key, (offset, None));
                    asked.push((topic.clone(), p, offset));
                    // Delivered: what the answered fetch before this one
                    // returned, up to where this one starts.
                    let Some((prev, Some(delivered_ms))) = prev.filter(|(f, _)| offset > *f) else {
                        continue;
                    };
                    self.consumed
                        .insert((client.clone(), topic.clone(), p), (delivered_ms, offset));
                    let hop = Hop {
                        kind: HopKind::Fetch,
                        at_ms: delivered_ms,
                        client: Some(client.clone()),
                        group: group.clone(),
                    };
                    traces.hops().passed(&topic, p, Some(prev), offset, &hop);
                }
                self.pending
                    .insert((conn.id, correlation_id), Arc::new(asked));
            }
            Seen::Commit { group, offsets } => {
                let group: Arc<str> = group.into();
                self.members.insert(client.clone(), group.clone());
                for (t, p, offset) in offsets {
                    let Some(topic) = name(t) else { continue };
                    let key = (group.clone(), topic.clone(), p);
                    let prev = self.commits.get(&key).map(|(o, _)| o);
                    self.commits.insert(key, (offset, at_ms));
                    let hop = Hop {
                        kind: HopKind::Commit,
                        at_ms,
                        client: Some(client.clone()),
                        group: Some(group.clone()),
                    };
                    traces.hops().passed(&topic, p, prev, offset, &hop);
                }
            }
            Seen::Member { group, left: false } => self.members.insert(client, group.into()),
            Seen::Member { left: true, .. } => self.members.invalidate(&client),
        }
    }

    /// Counts the keys of a sampled produce request.
    pub(super) fn sampled_produce(
        &self,
        body: &bytes::Bytes,
        topic_of: &dyn Fn(&uuid::Uuid) -> Option<Topic>,
    ) {
        let Ok(partitions) = super::produce::keys(body) else {
            self.unreadable.fetch_add(1, Ordering::Relaxed);
            metrics::tap_dropped("unreadable");
            return;
        };
        for p in partitions {
            let topic = match p.topic {
                TopicRef::Name(n) if !n.is_empty() => n.into(),
                TopicRef::Name(_) => continue,
                TopicRef::Id(id) => match topic_of(&id) {
                    Some(t) => t,
                    None => continue,
                },
            };
            let keys: Vec<&[u8]> = p.keys.iter().map(|k| &k[..]).collect();
            self.keys.add(&topic, p.partition, &keys);
        }
    }

    /// The top keys of a partition in the sample so far.
    pub fn top_keys(&self, topic: &str, partition: i32) -> Option<TopKeys> {
        self.keys.top(topic, partition)
    }

    /// The broker began answering the fetch `correlation_id` of `conn`.
    pub(super) fn answered(&self, conn: &ConnTag, correlation_id: i32, at_ms: u64) {
        let Some(asked) = self.pending.remove(&(conn.id, correlation_id)) else {
            return;
        };
        for (topic, p, offset) in asked.iter() {
            let key = (conn.id, topic.clone(), *p);
            // Only if no later fetch of the partition has been seen since.
            if self.positions.get(&key).is_some_and(|(o, _)| o == *offset) {
                self.positions.insert(key, (*offset, Some(at_ms)));
            }
        }
    }

    /// When `client`'s position on a partition last moved (ms since the
    /// epoch), and to which offset.
    pub fn last_consumed(&self, client: &str, topic: &str, partition: i32) -> Option<(u64, i64)> {
        self.consumed
            .get(&(Arc::from(client), Arc::from(topic), partition))
    }

    /// When `group` last committed on a partition, as seen through this
    /// Strait (ms since the epoch), and the offset.
    pub fn last_commit(&self, group: &str, topic: &str, partition: i32) -> Option<(i64, u64)> {
        self.commits
            .get(&(Arc::from(group), Arc::from(topic), partition))
    }

    /// Consumer positions that moved since `ms`: (client, topic, partition,
    /// when, to which offset).
    pub fn consumed_since(&self, ms: u64) -> Vec<(Arc<str>, Topic, i32, u64, i64)> {
        self.consumed
            .iter()
            .filter(|(_, (at, _))| *at > ms)
            .map(|(k, (at, o))| (k.0.clone(), k.1.clone(), k.2, at, o))
            .collect()
    }

    /// Commits seen since `ms`: (group, topic, partition, offset, when).
    pub fn commits_since(&self, ms: u64) -> Vec<(Arc<str>, Topic, i32, i64, u64)> {
        self.commits
            .iter()
            .filter(|(_, (_, at))| *at > ms)
            .map(|(k, (o, at))| (k.0.clone(), k.1.clone(), k.2, o, at))
            .collect()
    }

    /// Top keys of partitions fed since `ms`.
    pub fn top_keys_since(&self, ms: u64) -> Vec<(Topic, i32, TopKeys)> {
        self.keys.updated_since(ms)
    }

    /// Requests the tap could not read.
    pub fn unreadable(&self) -> u64 {
        self.unreadable.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::{ApiKey, FetchRequest, RequestHeader, TopicName};
    use kafka_protocol::protocol::{Encodable, StrBytes};

    use super::*;
    use crate::pipeline::Traced;

    /// A Fetch v12 frame body from `client` naming `(partition, offset)`s of "t".
    fn fetch(corr: i32, parts: &[(i32, i64)]) -> Vec<u8> {
        let mut b = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(1)
            .with_request_api_version(12)
            .with_correlation_id(corr)
            .with_client_id(Some(StrBytes::from_static_str("c1")))
            .encode(&mut b, ApiKey::Fetch.request_header_version(12))
            .unwrap();
        let partitions = parts
            .iter()
            .map(|(p, o)| {
                FetchPartition::default()
                    .with_partition(*p)
                    .with_fetch_offset(*o)
            })
            .collect();
        let topic = FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_static_str("t")))
            .with_partitions(partitions);
        FetchRequest::default()
            .with_topics(vec![topic])
            .encode(&mut b, 12)
            .unwrap();
        b.to_vec()
    }

    #[test]
    fn deliveries_are_timed_by_the_answer_and_absent_partitions_stay_put() {
        let o = Observed::new(1 << 20);
        let traces = TraceIndex::new(100);
        let traced = |rel| Traced {
            relative_offset: rel,
            trace_id: 42 + rel as u128,
            original_size: None,
        };
        traces.record("t", 0, 10, None, &[traced(0), traced(1)]);
        let conn = ConnTag { id: 1, peer: None };
        let none = |_: &uuid::Uuid| None;
        // A session that predates the connection: the first fetch only
        // says where the client stands.
        o.apply(&conn, 100, &fetch(1, &[(0, 10), (1, 5)]), &traces, &none);
        o.answered(&conn, 1, 150);
        assert!(o.last_consumed("c1", "t", 0).is_none());
        // An incremental fetch naming only partition 0: partition 1 is
        // absent, not idle or caught up, and keeps its position.
        o.apply(&conn, 200, &fetch(2, &[(0, 11)]), &traces, &none);
        assert_eq!(
            o.last_consumed("c1", "t", 0),
            Some((150, 11)),
            "delivered at the answer"
        );
        assert!(o.last_consumed("c1", "t", 1).is_none());
        let hops = traces.hops().of("t", 0, 10);
        assert_eq!(hops.len(), 1);
        assert_eq!((hops[0].kind, hops[0].at_ms), (HopKind::Fetch, 150));
        // Record 11 is not delivered until a fetch past it is seen, and
        // that fetch's answer (not yet here) does not time it.
        assert!(traces.hops().of("t", 0, 11).is_empty());
        o.apply(&conn, 300, &fetch(3, &[(1, 5)]), &traces, &none);
        assert!(
            traces.hops().of("t", 0, 11).is_empty(),
            "absent partition 0 did not move"
        );
        o.answered(&conn, 2, 250);
        o.apply(&conn, 400, &fetch(4, &[(0, 12)]), &traces, &none);
        assert_eq!(traces.hops().of("t", 0, 11)[0].at_ms, 250);
        // A garbage frame is counted, not applied.
        o.apply(&conn, 500, &[1, 2, 3], &traces, &none);
        assert_eq!(o.unreadable(), 1);
    }
}
