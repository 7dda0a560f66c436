//! Large records: values over a policy's threshold leave the record on
//! produce and come back on fetch, so brokers only ever store small records
//! and clients change nothing but their own size settings.
//!
//! - [`reference`]: what a record carries instead (a claim-check reference or
//!   a chunk manifest, marked by the `strait.large-record` header).
//! - [`store`]: the object store of claim-checks, with its verified cache.
//! - [`chunks`]: chunks in a companion topic, through the internal Kafka client.
//! - [`restore`]: the fetch side: values put back, the response cut at the
//!   client's `max_bytes`.
//! - [`budget`]: the memory bound of all of it.
//!
//! The produce side is the pipeline stage `pipeline::large`. Both sides run
//! on the blocking pool (hashing, decompressing and re-sealing are CPU work)
//! and wait for their I/O there with [`LargeRecords::block_on`]: the store
//! or chunk write must finish before the record can be rewritten (a chunk
//! manifest names the offsets the chunk topic gave), and a produce waits for
//! it either way. Those jobs have their own pool (`large_records.workers`),
//! so a slow store never holds up other topics' batch work.

pub mod budget;
pub mod chunks;
pub mod gc;
pub mod reference;
pub mod restore;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sha2::{Digest, Sha256};
use strait_policies::LargeRecordRules;

use crate::config::LargeRecordsConfig;
use crate::kafka_client::KafkaClient;
use crate::offload::Offload;

pub use budget::{Budget, Held, OverBudget};
use chunks::{ChunkError, ChunkTopics};
use reference::{ObjectRef, Reference};
use store::{Store, StoreError};

/// Why a large record could not be offloaded or restored.
#[derive(Debug, thiserror::Error)]
pub enum LargeError {
    #[error("{0}")]
    Store(#[from] Arc<StoreError>),
    #[error("{0}")]
    Chunks(#[from] ChunkError),
    #[error("{0}")]
    Reference(#[from] reference::ReferenceError),
    #[error("{0}")]
    Memory(#[from] budget::OverBudget),
}

impl LargeError {
    /// Whether trying again later may succeed (a store or topic that is
    /// down, memory that frees up): the client gets a retriable error.
    pub fn retriable(&self) -> bool {
        match self {
            LargeError::Store(e) => !matches!(**e, StoreError::Mismatch { .. }),
            LargeError::Chunks(e) => e.retriable(),
            LargeError::Reference(_) => false,
            LargeError::Memory(e) => e.retriable(),
        }
    }
}

/// The runtime side of large-record handling, shared by every connection.
pub struct LargeRecords {
    pub store: Store,
    pub client: Arc<KafkaClient>,
    pub chunk_topics: ChunkTopics,
    pub budget: Budget,
    pub config: LargeRecordsConfig,
    /// The pool large-record jobs run on.
    pub pool: Offload,
    runtime: tokio::runtime::Handle,
}

impl LargeRecords {
    /// Opens the store; call within the runtime.
    pub fn new(
        config: &LargeRecordsConfig,
        client: Arc<KafkaClient>,
    ) -> anyhow::Result<LargeRecords> {
        Ok(LargeRecords {
            store: Store::open(config)?,
            client,
            chunk_topics: ChunkTopics::default(),
            budget: Budget::new(config.memory_bytes),
            config: config.clone(),
            pool: Offload::new(config.workers),
            runtime: tokio::runtime::Handle::current(),
        })
    }

    /// For command-line tools (`gc`): the configured store and an internal
    /// client of the configured cluster. Call within the runtime.
    pub fn for_tools(config: &crate::Config) -> anyhow::Result<LargeRecords> {
        let dialer = crate::upstream::Dialer::new(&config.upstream, config.limits.max_frame_bytes)?;
        let timeout = Duration::from_millis(config.large_records.store_timeout_ms);
        let client = Arc::new(KafkaClient::new(Arc::new(dialer), timeout));
        LargeRecords::new(&config.large_records, client)
    }

    /// Runs I/O to completion from a blocking-pool thread (never from the
    /// reactor: tokio refuses, and it would stall other connections).
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }

    pub fn memory_wait(&self) -> Duration {
        Duration::from_millis(self.config.memory_wait_ms)
    }

    /// Claim-check: stores `value` under its content address and returns
    /// the reference the record carries instead. Blocking.
    pub fn offload_object(
        &self,
        topic: &str,
        rules: &LargeRecordRules,
        value: &Bytes,
    ) -> Result<Reference, LargeError> {
        let sha256: [u8; 32] = Sha256::digest(value).into();
        let key = reference::object_key(&rules.prefix, topic, &sha256);
        self.block_on(self.store.put(&key, value.clone()))
            .map_err(Arc::new)?;
        Ok(Reference::Object(ObjectRef {
            key,
            size: value.len() as u64,
            sha256,
        }))
    }

    /// Chunking: writes `value` to the topic's chunk topic (same partition)
    /// and returns the manifest the record carries instead. Blocking.
    pub fn offload_chunks(
        &self,
        topic: &str,
        partition: i32,
        rules: &LargeRecordRules,
        value: &Bytes,
    ) -> Result<Reference, LargeError> {
        let sha256: [u8; 32] = Sha256::digest(value).into();
        let chunk_topic = rules.chunk_topic_for(topic);
        self.block_on(async {
            let work = async {
                self.chunk_topics
                    .ensure(&self.client, topic, &chunk_topic, rules)
                    .await?;
                chunks::write_chunks(
                    &self.client,
                    &chunk_topic,
                    partition,
                    value.clone(),
                    rules.chunk_bytes,
                    sha256,
                )
                .await
            };
            self.chunk_deadline(&chunk_topic, work).await
        })
        .map(Reference::Chunks)
        .map_err(LargeError::from)
    }

    /// `work` on a chunk topic, bounded by `store_timeout_ms`.
    async fn chunk_deadline<T>(
        &self,
        topic: &str,
        work: impl std::future::Future<Output = Result<T, ChunkError>>,
    ) -> Result<T, ChunkError> {
        let timeout = Duration::from_millis(self.config.store_timeout_ms);
        tokio::time::timeout(timeout, work)
            .await
            .unwrap_or_else(|_| {
                Err(ChunkError::Timeout {
                    topic: topic.to_string(),
                    timeout,
                })
            })
    }

    /// The original value of a reference, verified. Blocking.
    pub fn fetch_value(&self, r: &Reference) -> Result<Bytes, LargeError> {
        match r {
            Reference::Object(o) => Ok(self.block_on(self.store.get(o))?),
            Reference::Chunks(m) => {
                // The manifest's size is what a record claims: never more
                // than the memory bound is allocated on its word.
                let max = reference::MAX_VALUE_BYTES.min(self.budget.bound()) as usize;
                let read = chunks::read_chunks(&self.client, m, max);
                self.block_on(self.chunk_deadline(&m.topic, read))
                    .map_err(LargeError::from)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reference::Manifest;

    /// A forged manifest claiming more than the memory bound (but under the
    /// 2 GiB any reference may claim) is refused before anything is read or
    /// allocated; the restore turns that into the partition's retriable
    /// error.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_manifest_claiming_more_than_the_memory_bound_is_refused_unread() {
        let dir = std::env::temp_dir().join(format!("strait-forged-{}", std::process::id()));
        let client = Arc::new(KafkaClient::offline());
        let cfg = LargeRecordsConfig {
            store: dir.display().to_string(),
            memory_bytes: 4 << 20,
            connection_memory_bytes: 1 << 20,
            ..Default::default()
        };
        let large = Arc::new(LargeRecords::new(&cfg, client).unwrap());
        let forged = Reference::Chunks(Manifest {
            topic: "t.strait-chunks".into(),
            partition: 0,
            ranges: vec![(0, 2)],
            chunks: 2,
            size: (1 << 30) + 1,
            sha256: [0; 32],
        });
        let got = tokio::task::spawn_blocking(move || large.fetch_value(&forged))
            .await
            .unwrap();
        match got {
            Err(e @ LargeError::Chunks(ChunkError::TooLarge { size, max })) => {
                assert_eq!((size, max), ((1 << 30) + 1, 4 << 20));
                assert!(e.to_string().contains("over the 4194304-byte limit"), "{e}");
            }
            other => panic!("expected the memory bound to refuse it, got {other:?}"),
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
