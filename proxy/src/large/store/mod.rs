//! The claim-check object store (see `backend` for which stores, and
//! ARCHITECTURE.md for why `object_store` and not the AWS SDK), with a
//! byte-bounded cache of verified values in front of reads.
//!
//! Keys are content addresses, `<prefix>/<topic>/<sha256>`: a producer's
//! retry or an equal value maps to the same object, so a put first asks
//! whether the object is there (a retry writes nothing) and otherwise writes
//! it whole: a conditional create where the store supports it (local
//! directories, S3 and most S3-compatible stores), multipart from
//! `multipart_bytes`. An object is only ever
//! referenced by a record after its put succeeded. Reads verify size and
//! SHA-256 before a value is cached or returned (the integrity check users
//! of the SQS extended client asked for, amazon-sqs-java-extended-client-lib
//! #173); concurrent readers of one
//! key share one read (moka's `try_get_with`). Every call is bounded by
//! `store_timeout_ms`.

mod backend;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use moka::future::Cache;
use moka::policy::EvictionPolicy;

pub use backend::{Failure, Listed};

use super::reference::{check_value, ObjectRef};
use crate::config::LargeRecordsConfig;
use crate::metrics;
use backend::Backend;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("object store {store}: {op} {key}: {why}")]
    Io {
        store: String,
        op: &'static str,
        key: String,
        why: String,
    },
    #[error("object store {store}: {op} {key}: no answer within {timeout:?}")]
    Timeout {
        store: String,
        op: &'static str,
        key: String,
        timeout: Duration,
    },
    #[error("object store {store}: {key} does not exist")]
    NotFound { store: String, key: String },
    #[error("object {key} does not match its reference: {why}")]
    Mismatch { key: String, why: String },
}

pub struct Store {
    backend: Backend,
    /// For messages: `file:///…` or `s3://bucket`.
    name: String,
    cache: Cache<String, Bytes>,
    timeout: Duration,
    multipart_bytes: usize,
}

impl Store {
    /// The configured store (a local directory is created on first use).
    pub fn open(cfg: &LargeRecordsConfig) -> anyhow::Result<Store> {
        let (backend, name) = Backend::open(cfg)?;
        // LRU, not moka's default TinyLFU admission: consumers replay recent
        // objects, and TinyLFU keeps whatever filled the cache first (the
        // claim-check benchmark: a replay that fits had a 0.04 hit ratio once
        // the cache was full).
        let cache = Cache::builder()
            .eviction_policy(EvictionPolicy::lru())
            .weigher(|_k: &String, v: &Bytes| u32::try_from(v.len()).unwrap_or(u32::MAX))
            .max_capacity(cfg.cache_bytes)
            .build();
        Ok(Store {
            backend,
            name,
            cache,
            timeout: Duration::from_millis(cfg.store_timeout_ms),
            multipart_bytes: cfg.multipart_bytes as usize,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    async fn timed<T>(
        &self,
        op: &'static str,
        key: &str,
        f: impl std::future::Future<Output = Result<T, Failure>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.timeout, f).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(Failure::NotFound)) => Err(StoreError::NotFound {
                store: self.name.clone(),
                key: key.into(),
            }),
            Ok(Err(Failure::Other(why))) => Err(StoreError::Io {
                store: self.name.clone(),
                op,
                key: key.into(),
                why,
            }),
            Err(_) => Err(StoreError::Timeout {
                store: self.name.clone(),
                op,
                key: key.into(),
                timeout: self.timeout,
            }),
        }
    }

    /// Stores `value` under `key` unless an object of its size is there
    /// already. True when it wrote.
    pub async fn put(&self, key: &str, value: Bytes) -> Result<bool, StoreError> {
        let len = value.len();
        let written = async {
            match self.timed("head", key, self.backend.head(key)).await {
                Ok(size) if size == len as u64 => return Ok(false),
                Ok(_) | Err(StoreError::NotFound { .. }) => {} // absent, or torn: write it
                Err(e) => return Err(e),
            }
            let multipart = len >= self.multipart_bytes;
            self.timed("put", key, self.backend.put(key, value, multipart))
                .await
        }
        .await;
        match &written {
            Ok(true) => {
                metrics::large_object("written");
                metrics::large_bytes("offloaded", len as u64);
            }
            Ok(false) => metrics::large_object("exists"),
            Err(_) => metrics::large_object("put_failed"),
        }
        written
    }

    /// The value of a reference: from the cache, or read and verified once
    /// however many fetches ask at the same time.
    pub async fn get(&self, r: &ObjectRef) -> Result<Bytes, Arc<StoreError>> {
        let mut loaded = false;
        let value = self
            .cache
            .try_get_with(r.key.clone(), async {
                loaded = true;
                let bytes = self
                    .timed("get", &r.key, self.backend.get(&r.key))
                    .await
                    .inspect_err(|_| metrics::large_object("get_failed"))?;
                check_value(&bytes, r.size, &r.sha256).map_err(|why| {
                    metrics::large_object("hash_mismatch");
                    StoreError::Mismatch {
                        key: r.key.clone(),
                        why,
                    }
                })?;
                metrics::large_object("read");
                Ok(bytes)
            })
            .await?;
        if !loaded {
            metrics::large_object("cache_hit");
        }
        Ok(value)
    }

    /// Every object under `prefix` (for `gc`).
    pub async fn list(&self, prefix: &str) -> Result<Vec<Listed>, StoreError> {
        self.timed("list", prefix, self.backend.list(prefix)).await
    }

    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.timed("delete", key, self.backend.delete(key)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_reads_of_one_object_share_one_read_and_a_bad_hash_is_refused() {
        let dir = std::env::temp_dir().join(format!("strait-store-{}", std::process::id()));
        let cfg = LargeRecordsConfig {
            store: dir.display().to_string(),
            ..Default::default()
        };
        let store = Arc::new(Store::open(&cfg).unwrap());
        let value = Bytes::from(vec![7u8; 3 << 20]);
        let sha256: [u8; 32] = Sha256::digest(&value).into();
        let r = ObjectRef {
            key: format!("strait/t/{}", hex::encode(sha256)),
            size: value.len() as u64,
            sha256,
        };
        assert!(store.put(&r.key, value.clone()).await.unwrap(), "written");
        assert!(
            !store.put(&r.key, value.clone()).await.unwrap(),
            "a retry writes nothing"
        );
        let reads: Vec<_> = (0..8)
            .map(|_| {
                let (store, r) = (store.clone(), r.clone());
                tokio::spawn(async move { store.get(&r).await.unwrap() })
            })
            .collect();
        let mut got = Vec::new();
        for h in reads {
            got.push(h.await.unwrap());
        }
        assert!(got.iter().all(|g| g == &value), "whole and verified");
        // One read: every reader holds the same buffer.
        assert!(got.iter().all(|g| g.as_ptr() == got[0].as_ptr()));
        let forged = ObjectRef {
            key: format!("strait/t/{}", hex::encode([1u8; 32])),
            size: value.len() as u64,
            sha256: [1u8; 32],
        };
        store.put(&forged.key, value).await.unwrap();
        let err = store.get(&forged).await.unwrap_err();
        assert!(matches!(*err, StoreError::Mismatch { .. }), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
