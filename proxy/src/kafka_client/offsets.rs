//! Partitions' ends for the lag view: log start, high watermark or last
//! stable offset of many partitions at once, one ListOffsets per leader.

use std::collections::HashMap;

use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{BrokerId, ListOffsetsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::{KafkaClient, KafkaError};

/// ListOffsets v2 is the first with an isolation level.
const LIST_OFFSETS: (i16, i16) = (2, 7);

/// Which end of a partition [`KafkaClient::offsets`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The log start offset.
    Earliest,
    /// The high watermark.
    Latest,
    /// The last stable offset (what a read_committed consumer can reach).
    LastStable,
    /// The first offset whose record is at or after this time (ms since
    /// the epoch); -1 when there is none.
    Timestamp(i64),
}

/// A topic partition.
type Part = (String, i32);

fn topic_name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_string()))
}

impl KafkaClient {
    /// One end of each partition in `parts`, asked of each partition's
    /// leader. A partition whose leader fails fails the call.
    pub async fn offsets(
        &self,
        parts: &[(String, i32)],
        spec: OffsetSpec,
    ) -> Result<HashMap<(String, i32), i64>, KafkaError> {
        const OP: &str = "list offsets";
        let (timestamp, isolation) = match spec {
            OffsetSpec::Earliest => (-2, 0),
            OffsetSpec::Latest => (-1, 0),
            OffsetSpec::LastStable => (-1, 1),
            OffsetSpec::Timestamp(ms) => (ms.max(0), 0),
        };
        let mut out = HashMap::with_capacity(parts.len());
        // One request per leader, retried as a whole.
        let mut by_leader: HashMap<i32, (String, Vec<&Part>)> = HashMap::new();
        for part in parts {
            let (node, addr) = self
                .retry(OP, Some(&part.0), || self.leader(OP, &part.0, part.1))
                .await?;
            by_leader
                .entry(node)
                .or_insert_with(|| (addr, Vec::new()))
                .1
                .push(part);
        }
        for (node, (addr, parts)) in by_leader {
            let mut topics: HashMap<&str, Vec<i32>> = HashMap::new();
            for (t, p) in &parts {
                topics.entry(t.as_str()).or_default().push(*p);
            }
            let request = ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_isolation_level(isolation)
                .with_topics(
                    topics
                        .iter()
                        .map(|(t, ps)| {
                            ListOffsetsTopic::default()
                                .with_name(topic_name(t))
                                .with_partitions(
                                    ps.iter()
                                        .map(|p| {
                                            ListOffsetsPartition::default()
                                                .with_partition_index(*p)
                                                .with_timestamp(timestamp)
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                );
            let (request, addr) = (&request, &addr);
            let answer = self
                .retry(OP, None, || async move {
                    let (answer, broker) = self
                        .pool
                        .call(OP, node, Some(addr), LIST_OFFSETS, request)
                        .await?;
                    for t in &answer.topics {
                        for p in &t.partitions {
                            if p.error_code != 0 {
                                return Err(KafkaError::Broker {
                                    op: OP,
                                    broker: broker.clone(),
                                    topic: t.name.0.to_string(),
                                    partition: Some(p.partition_index),
                                    code: p.error_code,
                                    message: None,
                                });
                            }
                        }
                    }
                    Ok(answer)
                })
                .await;
            let answer = match answer {
                Ok(a) => a,
                Err(e) => {
                    // The leaders may have moved: read them again next time.
                    for (t, _) in &parts {
                        self.meta.invalidate(Some(t));
                    }
                    return Err(e);
                }
            };
            for t in answer.topics {
                for p in t.partitions {
                    out.insert((t.name.0.to_string(), p.partition_index), p.offset);
                }
            }
        }
        Ok(out)
    }
}
