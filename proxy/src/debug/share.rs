//! Several Strait instances in front of one cluster: each publishes what
//! its tap observed (consumer deliveries, commits, top keys) to a compacted
//! topic (`debug.observations_topic`) and reads the others' from it, so any
//! instance's views show what went through all of them. The topic is the
//! only protocol: no instance talks to another.
//!
//! Every `debug.lag_interval_ms` an instance writes the observations that
//! changed since its last write, one record each, keyed by instance and
//! what it describes, so compaction keeps the latest of each. It reads the
//! topic from the start (a restarted instance learns the others' state)
//! and keeps the others' latest in a bounded cache; an instance whose
//! records stop is forgotten after [`FORGET_AFTER_MS`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use moka::sync::Cache;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::codec::build::{build_batch, Producer, RecordSpec};
use crate::kafka_client::{KafkaClient, KafkaError};
use crate::metrics::now_ms;
use crate::tap::keys::TopKeys;
use crate::tap::Tap;

/// Others' observations older than this are not shown.
pub const FORGET_AFTER_MS: u64 = 10 * 60 * 1000;
/// Observations kept from other instances at most.
const MAX_REMOTE: u64 = 200_000;
/// Records per produced batch.
const PER_BATCH: usize = 500;
/// Observations one instance writes per interval at most (the most
/// recently changed are not preferred: the rest follow next interval).
const MAX_PER_INTERVAL: usize = 20_000;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Observation {
    Consumed {
        client: String,
        topic: String,
        partition: i32,
        at_ms: u64,
        offset: i64,
    },
    Commit {
        group: String,
        topic: String,
        partition: i32,
        offset: i64,
        at_ms: u64,
    },
    Keys {
        topic: String,
        partition: i32,
        keys: TopKeys,
    },
}

impl Observation {
    /// What it describes: the compaction key after the instance.
    fn subject(&self) -> String {
        match self {
            Observation::Consumed {
                client,
                topic,
                partition,
                ..
            } => format!("consumed\u{0}{client}\u{0}{topic}\u{0}{partition}"),
            Observation::Commit {
                group,
                topic,
                partition,
                ..
            } => format!("commit\u{0}{group}\u{0}{topic}\u{0}{partition}"),
            Observation::Keys {
                topic, partition, ..
            } => format!("keys\u{0}{topic}\u{0}{partition}"),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    instance: String,
    published_ms: u64,
    observation: Observation,
}

pub struct Shared {
    pub instance: String,
    pub topic: String,
    /// (instance, subject) → the latest observation and when it was written.
    remote: Cache<(Arc<str>, String), (Arc<Observation>, u64)>,
    /// Other instances and when each last wrote.
    instances: Mutex<HashMap<String, u64>>,
}

impl Shared {
    pub fn new(instance: String, topic: String) -> Shared {
        Shared {
            instance,
            topic,
            remote: Cache::new(MAX_REMOTE),
            instances: Mutex::default(),
        }
    }

    /// Instances whose observations are merged now (this one first).
    pub fn instances(&self) -> Vec<String> {
        let now = now_ms();
        let mut others: Vec<String> = self
            .instances
            .lock()
            .expect("instances lock")
            .iter()
            .filter(|(_, at)| now.saturating_sub(**at) < FORGET_AFTER_MS)
            .map(|(i, _)| i.clone())
            .collect();
        others.sort();
        let mut all = vec![self.instance.clone()];
        all.extend(others);
        all
    }

    fn fresh(&self, subject: &str) -> Vec<Arc<Observation>> {
        let now = now_ms();
        let alive = self.instances();
        alive
            .iter()
            .skip(1)
            .filter_map(|i| {
                self.remote
                    .get(&(Arc::from(i.as_str()), subject.to_string()))
            })
            .filter(|(_, at)| now.saturating_sub(*at) < FORGET_AFTER_MS)
            .map(|(o, _)| o)
            .collect()
    }

    /// The latest delivery to `client` on a partition through another instance.
    pub fn last_consumed(&self, client: &str, topic: &str, partition: i32) -> Option<u64> {
        let subject = format!("consumed\u{0}{client}\u{0}{topic}\u{0}{partition}");
        self.fresh(&subject)
            .iter()
            .filter_map(|o| match &**o {
                Observation::Consumed { at_ms, .. } => Some(*at_ms),
                _ => None,
            })
            .max()
    }

    /// The latest commit of `group` on a partition through another instance.
    pub fn last_commit(&self, group: &str, topic: &str, partition: i32) -> Option<u64> {
        let subject = format!("commit\u{0}{group}\u{0}{topic}\u{0}{partition}");
        self.fresh(&subject)
            .iter()
            .filter_map(|o| match &**o {
                Observation::Commit { at_ms, .. } => Some(*at_ms),
                _ => None,
            })
            .max()
    }

    /// The other instances' top keys of a partition.
    pub fn top_keys(&self, topic: &str, partition: i32) -> Vec<TopKeys> {
        let subject = format!("keys\u{0}{topic}\u{0}{partition}");
        self.fresh(&subject)
            .iter()
            .filter_map(|o| match &**o {
                Observation::Keys { keys, .. } => Some(keys.clone()),
                _ => None,
            })
            .collect()
    }

    fn learn(&self, e: Envelope) {
        if e.instance == self.instance {
            return;
        }
        let mut instances = self.instances.lock().expect("instances lock");
        let seen = instances.entry(e.instance.clone()).or_insert(0);
        *seen = (*seen).max(e.published_ms);
        drop(instances);
        let key = (Arc::from(e.instance.as_str()), e.observation.subject());
        self.remote
            .insert(key, (Arc::new(e.observation), e.published_ms));
    }

    /// Publishes and merges every `interval` until `shutdown`. Errors (the
    /// topic cannot be created or read) are logged and retried next time;
    /// this instance's own views never depend on them.
    pub async fn run(
        self: Arc<Self>,
        client: Arc<KafkaClient>,
        tap: Arc<Tap>,
        interval: Duration,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut created = false;
        let mut since = 0u64;
        let mut next = 0i64;
        let mut warned = 0u64;
        loop {
            let result = async {
                if !created {
                    let compact = [("cleanup.policy", "compact".to_string())];
                    client.create_topic(&self.topic, 1, &compact).await?;
                    created = true;
                }
                let now = now_ms();
                self.publish(&client, &tap, since, now).await?;
                since = now;
                next = self.clone().read(&client, next).await?;
                Ok::<(), KafkaError>(())
            }
            .await;
            if let Err(e) = result {
                if now_ms().saturating_sub(warned) > 60_000 {
                    warned = now_ms();
                    tracing::warn!(topic = %self.topic, error = %e,
                        "sharing debug observations with other instances failed; retrying");
                }
            }
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(interval) => {}
            }
        }
    }

    async fn publish(
        &self,
        client: &KafkaClient,
        tap: &Tap,
        since: u64,
        now: u64,
    ) -> Result<(), KafkaError> {
        let o = &tap.observed;
        let mut all: Vec<Observation> = Vec::new();
        for (client, topic, partition, at_ms, offset) in o.consumed_since(since) {
            all.push(Observation::Consumed {
                client: client.to_string(),
                topic: topic.to_string(),
                partition,
                at_ms,
                offset,
            });
        }
        for (group, topic, partition, offset, at_ms) in o.commits_since(since) {
            all.push(Observation::Commit {
                group: group.to_string(),
                topic: topic.to_string(),
                partition,
                offset,
                at_ms,
            });
        }
        for (topic, partition, keys) in o.top_keys_since(since) {
            all.push(Observation::Keys {
                topic: topic.to_string(),
                partition,
                keys,
            });
        }
        all.truncate(MAX_PER_INTERVAL);
        for chunk in all.chunks(PER_BATCH) {
            let encoded: Vec<(String, Vec<u8>)> = chunk
                .iter()
                .map(|observation| {
                    let key = format!("{}\u{0}{}", self.instance, observation.subject());
                    let e = Envelope {
                        instance: self.instance.clone(),
                        published_ms: now,
                        observation: observation.clone(),
                    };
                    (key, serde_json::to_vec(&e).expect("serialisable"))
                })
                .collect();
            let specs: Vec<RecordSpec<'_>> = encoded
                .iter()
                .map(|(k, v)| (Some(k.as_bytes()), Some(&v[..]), &[][..]))
                .collect();
            let batch = build_batch(Producer::NONE, now as i64, &specs);
            client.produce(&self.topic, 0, batch).await?;
        }
        Ok(())
    }

    /// Reads the topic from `from` to its end; returns where to go on.
    async fn read(self: Arc<Self>, client: &KafkaClient, mut from: i64) -> Result<i64, KafkaError> {
        loop {
            let fetched = match client.fetch(&self.topic, 0, from, 1 << 20).await {
                Err(KafkaError::OffsetOutOfRange { .. }) => {
                    // Compacted or deleted below us: start again from the log start.
                    from = client.earliest_offset(&self.topic, 0).await?;
                    continue;
                }
                other => other?,
            };
            let end = fetched.high_watermark;
            // Decoding and parsing up to a MiB of records: off the reactor.
            let me = self.clone();
            let next = tokio::task::spawn_blocking(move || {
                let (records, next, _) =
                    super::tail::records(0, fetched.records, &[], from, usize::MAX);
                for r in records {
                    let parsed = r.value.as_deref().map(serde_json::from_slice::<Envelope>);
                    if let Some(Ok(e)) = parsed {
                        me.learn(e);
                    }
                }
                next
            })
            .await
            .unwrap_or(from);
            if next <= from || next >= end {
                return Ok(next.max(from));
            }
            from = next;
        }
    }
}
