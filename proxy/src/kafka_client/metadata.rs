//! Cluster metadata: the brokers, the controller, and each topic's
//! partition leaders. Cached (bounded); a topic's entry is dropped when a
//! call fails in a way that says it is stale (see
//! [`KafkaError::stale_metadata`]) and read again on the next call. Metadata
//! requests never create topics.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::conns::ANY;
use super::{KafkaClient, KafkaError};

/// Metadata v4+ can ask not to auto-create topics; v12 is the last that
/// needs no topic ids.
const VERSIONS: (i16, i16) = (4, 12);
/// Topics cached at most; past it the cache starts over.
const MAX_TOPICS: usize = 1024;
/// How errors from cached metadata name the broker.
const CACHED: &str = "the cluster metadata";

#[derive(Default)]
pub(super) struct Cache {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    brokers: HashMap<i32, String>,
    /// `None`: not known.
    controller: Option<i32>,
    /// Leader node per partition (-1: none right now).
    topics: HashMap<String, Arc<[i32]>>,
}

impl Cache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("metadata lock")
    }

    fn leaders(&self, topic: &str) -> Option<Arc<[i32]>> {
        self.lock().topics.get(topic).cloned()
    }

    /// The brokers last read, by node id.
    pub(super) fn brokers(&self) -> Vec<(i32, String)> {
        let mut b: Vec<_> = self
            .lock()
            .brokers
            .iter()
            .map(|(n, a)| (*n, a.clone()))
            .collect();
        b.sort();
        b
    }

    fn addr(&self, node: i32) -> Option<String> {
        self.lock().brokers.get(&node).cloned()
    }

    /// Forgets what a failed call relied on: the topic's leaders and the
    /// controller.
    pub(super) fn invalidate(&self, topic: Option<&str>) {
        let mut inner = self.lock();
        if let Some(t) = topic {
            inner.topics.remove(t);
        }
        inner.controller = None;
    }
}

/// A topic as the cluster lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TopicInfo {
    pub name: String,
    pub partitions: usize,
    pub internal: bool,
}

fn topic_name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_string()))
}

pub(super) fn address(host: &str, port: i32) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

impl KafkaClient {
    /// Reads metadata for `topic` (or only brokers and controller) from any
    /// broker and updates the cache; returns the topic's leaders, `None`
    /// when the topic does not exist.
    pub(super) async fn refresh(
        &self,
        topic: Option<&str>,
    ) -> Result<Option<Arc<[i32]>>, KafkaError> {
        let topics = topic
            .map(|t| MetadataRequestTopic::default().with_name(Some(topic_name(t))))
            .into_iter()
            .collect();
        let request = MetadataRequest::default()
            .with_topics(Some(topics))
            .with_allow_auto_topic_creation(false);
        let (answer, broker) = self
            .pool
            .call("metadata", ANY, None, VERSIONS, &request)
            .await?;
        let brokers: HashMap<i32, String> = answer
            .brokers
            .iter()
            .map(|b| (b.node_id.0, address(&b.host, b.port)))
            .collect();
        let leaders: Option<Arc<[i32]>> = match topic {
            None => None,
            Some(topic) => {
                let found = answer
                    .topics
                    .iter()
                    .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == topic))
                    .ok_or_else(|| KafkaError::Protocol {
                        op: "metadata",
                        broker: broker.clone(),
                        what: format!("topic {topic}"),
                    })?;
                match found.error_code {
                    0 => {
                        let n = found
                            .partitions
                            .iter()
                            .map(|p| p.partition_index + 1)
                            .max()
                            .unwrap_or(0)
                            .max(0) as usize;
                        let mut leaders = vec![-1; n];
                        for p in &found.partitions {
                            if p.error_code == 0 && p.partition_index >= 0 {
                                leaders[p.partition_index as usize] = p.leader_id.0;
                            }
                        }
                        Some(Arc::from(leaders))
                    }
                    3 => None,
                    code => {
                        return Err(KafkaError::Broker {
                            op: "metadata",
                            broker,
                            topic: topic.to_string(),
                            partition: None,
                            code,
                            message: None,
                        })
                    }
                }
            }
        };
        let gone: Vec<i32> = {
            let mut inner = self.meta.lock();
            let gone = inner
                .brokers
                .keys()
                .filter(|n| !brokers.contains_key(n))
                .copied()
                .collect();
            inner.brokers = brokers;
            inner.controller = Some(answer.controller_id.0).filter(|c| *c >= 0);
            if let (Some(t), Some(l)) = (topic, &leaders) {
                if inner.topics.len() >= MAX_TOPICS {
                    inner.topics.clear();
                }
                inner.topics.insert(t.to_string(), l.clone());
            }
            gone
        };
        for node in gone {
            self.pool.forget(node);
        }
        Ok(leaders)
    }

    /// The cluster's Metadata naming no topic: every topic it lists.
    async fn all_topics(&self) -> Result<MetadataResponse, KafkaError> {
        self.retry("metadata", None, || async move {
            let request = MetadataRequest::default()
                .with_topics(None)
                .with_allow_auto_topic_creation(false);
            let (answer, _) = self
                .pool
                .call("metadata", ANY, None, VERSIONS, &request)
                .await?;
            Ok(answer)
        })
        .await
    }

    /// Every topic's id and name (Metadata v10+ carries ids; an older
    /// broker's answer names none).
    pub async fn topic_ids(&self) -> Result<Vec<(Uuid, String)>, KafkaError> {
        Ok(self
            .all_topics()
            .await?
            .topics
            .iter()
            .filter(|t| t.error_code == 0 && !t.topic_id.is_nil())
            .filter_map(|t| Some((t.topic_id, t.name.as_ref()?.0.to_string())))
            .collect())
    }

    /// Every topic the cluster lists (Metadata naming no topic): its name,
    /// partition count and whether it is internal, by name. Topics the
    /// answer marks with an error (being deleted, say) are left out.
    pub async fn topics(&self) -> Result<Vec<TopicInfo>, KafkaError> {
        let mut topics: Vec<TopicInfo> = self
            .all_topics()
            .await?
            .topics
            .iter()
            .filter(|t| t.error_code == 0)
            .filter_map(|t| {
                Some(TopicInfo {
                    name: t.name.as_ref()?.0.to_string(),
                    partitions: t.partitions.len(),
                    internal: t.is_internal,
                })
            })
            .collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(topics)
    }

    /// A topic's partition leaders, cached or read; `None`: no such topic.
    pub(super) async fn leaders(&self, topic: &str) -> Result<Option<Arc<[i32]>>, KafkaError> {
        match self.meta.leaders(topic) {
            Some(l) => Ok(Some(l)),
            None => self.refresh(Some(topic)).await,
        }
    }

    /// The leader of a partition: its node id and address. A topic or
    /// partition not (yet) in the metadata, or no leader right now, is a
    /// retriable error.
    pub(super) async fn leader(
        &self,
        op: &'static str,
        topic: &str,
        partition: i32,
    ) -> Result<(i32, String), KafkaError> {
        let unavailable = |code| KafkaError::Broker {
            op,
            broker: CACHED.into(),
            topic: topic.to_string(),
            partition: Some(partition),
            code,
            message: None,
        };
        let leaders = self.leaders(topic).await?.ok_or_else(|| unavailable(3))?;
        let node = *usize::try_from(partition)
            .ok()
            .and_then(|p| leaders.get(p))
            .ok_or_else(|| unavailable(3))?;
        if node < 0 {
            return Err(unavailable(5));
        }
        let addr = self.meta.addr(node).ok_or_else(|| KafkaError::Connection {
            op,
            broker: format!("broker {node}"),
            reason: "not in the cluster metadata".into(),
        })?;
        Ok((node, addr))
    }

    /// The controller (where topics are created), or any broker when the
    /// metadata names none.
    pub(super) async fn controller(&self) -> Result<(i32, Option<String>), KafkaError> {
        let known = {
            let inner = self.meta.lock();
            inner
                .controller
                .and_then(|c| Some((c, inner.brokers.get(&c)?.clone())))
        };
        let (node, addr) = match known {
            Some(k) => k,
            None => {
                self.refresh(None).await?;
                let inner = self.meta.lock();
                match inner
                    .controller
                    .and_then(|c| Some((c, inner.brokers.get(&c)?.clone())))
                {
                    Some(k) => k,
                    None => return Ok((ANY, None)),
                }
            }
        };
        Ok((node, Some(addr)))
    }
}
