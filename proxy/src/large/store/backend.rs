//! The object store behind claim-checks, through `object_store`: a local
//! directory (opened on first use, so a Strait that never offloads leaves no
//! directory behind), S3 and S3-compatible endpoints, and, in builds with the
//! `gcp` / `azure` cargo features, Google Cloud Storage and Azure Blob. Builds without the
//! `object-store` feature (the fuzz targets, which need none of its HTTP and
//! TLS stack) get a backend that refuses every call with a clear error.

use bytes::Bytes;

use crate::config::LargeRecordsConfig;

/// An object's size and age, for `gc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub key: String,
    pub size: u64,
    pub modified: std::time::SystemTime,
}

/// What went wrong, as the store said it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    NotFound,
    Other(String),
}

#[cfg(not(feature = "object-store"))]
pub use none::Backend;
#[cfg(feature = "object-store")]
pub use real::Backend;

#[cfg(feature = "object-store")]
mod real {
    use std::path::PathBuf;
    use std::sync::{Arc, OnceLock};
    use std::time::Duration;

    use object_store::aws::AmazonS3Builder;
    use object_store::local::LocalFileSystem;
    use object_store::path::Path;
    use object_store::{BackoffConfig, RetryConfig};
    use object_store::{
        ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, WriteMultipart,
    };

    use super::*;

    /// S3's multipart part size used for uploads (S3's minimum is 5 MiB).
    const PART_BYTES: usize = 5 << 20;

    pub enum Backend {
        Ready(Arc<dyn ObjectStore>),
        Local(PathBuf, OnceLock<Arc<dyn ObjectStore>>),
    }

    fn failure(e: object_store::Error) -> Failure {
        match e {
            object_store::Error::NotFound { .. } => Failure::NotFound,
            e => Failure::Other(e.to_string()),
        }
    }

    fn retry(timeout: Duration) -> RetryConfig {
        RetryConfig {
            backoff: BackoffConfig::default(),
            max_retries: 2,
            retry_timeout: timeout,
        }
    }

    /// `gs://bucket` (feature `gcp`) and `az://container` (feature `azure`;
    /// the account from `AZURE_STORAGE_ACCOUNT_NAME`), with credentials from
    /// the environment as their SDKs read them.
    #[allow(unused_variables)]
    fn other_cloud(store: &str, timeout: Duration) -> anyhow::Result<Option<(Backend, String)>> {
        if let Some(bucket) = store.strip_prefix("gs://") {
            #[cfg(feature = "gcp")]
            {
                let bucket = bucket.trim_end_matches('/');
                let gcs = object_store::gcp::GoogleCloudStorageBuilder::from_env()
                    .with_bucket_name(bucket)
                    .with_retry(retry(timeout))
                    .build()?;
                return Ok(Some((
                    Backend::Ready(Arc::new(gcs)),
                    format!("gs://{bucket}"),
                )));
            }
            #[cfg(not(feature = "gcp"))]
            anyhow::bail!("large_records.store {store:?}: this build has no Google Cloud Storage support (cargo feature gcp)");
        }
        if let Some(container) = store.strip_prefix("az://") {
            #[cfg(feature = "azure")]
            {
                let container = container.trim_end_matches('/');
                let az = object_store::azure::MicrosoftAzureBuilder::from_env()
                    .with_container_name(container)
                    .with_retry(retry(timeout))
                    .build()?;
                return Ok(Some((
                    Backend::Ready(Arc::new(az)),
                    format!("az://{container}"),
                )));
            }
            #[cfg(not(feature = "azure"))]
            anyhow::bail!("large_records.store {store:?}: this build has no Azure Blob support (cargo feature azure)");
        }
        Ok(None)
    }

    impl Backend {
        /// The configured store and its name for messages.
        pub fn open(cfg: &LargeRecordsConfig) -> anyhow::Result<(Backend, String)> {
            let timeout = Duration::from_millis(cfg.store_timeout_ms);
            if let Some(cloud) = other_cloud(&cfg.store, timeout)? {
                return Ok(cloud);
            }
            let s3 = cfg
                .store
                .strip_prefix("s3://")
                .or(cfg.store.strip_prefix("s3a://"));
            let Some(bucket) = s3 else {
                let dir = PathBuf::from(cfg.store.strip_prefix("file://").unwrap_or(&cfg.store));
                let name = format!("file://{}", dir.display());
                return Ok((Backend::Local(dir, OnceLock::new()), name));
            };
            let bucket = bucket.trim_end_matches('/');
            // object_store sends no default request checksums, so MinIO, R2
            // and others work as they are (bakdata #119, aws-sdk-rust#1240).
            // It retries 10 times within 3 minutes by default; a produce
            // must not wait that long (the client retries instead).
            let mut b = AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .with_retry(retry(timeout));
            if let Some(e) = &cfg.s3.endpoint {
                b = b.with_endpoint(e);
            }
            let region = cfg
                .s3
                .region
                .clone()
                .or_else(|| std::env::var("AWS_REGION").ok())
                .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
                .unwrap_or_else(|| "us-east-1".into());
            let path_style = cfg.s3.path_style.unwrap_or(cfg.s3.endpoint.is_some());
            let b = b
                .with_region(region)
                .with_virtual_hosted_style_request(!path_style)
                .with_allow_http(cfg.s3.allow_http);
            Ok((
                Backend::Ready(Arc::new(b.build()?)),
                format!("s3://{bucket}"),
            ))
        }

        fn store(&self) -> Result<&Arc<dyn ObjectStore>, Failure> {
            match self {
                Backend::Ready(s) => Ok(s),
                Backend::Local(dir, cell) => {
                    if let Some(s) = cell.get() {
                        return Ok(s);
                    }
                    std::fs::create_dir_all(dir).map_err(|e| {
                        Failure::Other(format!("cannot create {}: {e}", dir.display()))
                    })?;
                    let fs = LocalFileSystem::new_with_prefix(dir)
                        .map_err(failure)?
                        .with_automatic_cleanup(true);
                    Ok(cell.get_or_init(|| Arc::new(fs)))
                }
            }
        }

        /// The size of the object at `key`.
        pub async fn head(&self, key: &str) -> Result<u64, Failure> {
            let meta = self
                .store()?
                .head(&Path::from(key))
                .await
                .map_err(failure)?;
            Ok(meta.size)
        }

        /// Writes `value` whole: multipart when `multipart`, else as a
        /// conditional put (create only) where the store supports it, so two
        /// writers of one content address never both write. False when the
        /// object was there already.
        pub async fn put(&self, key: &str, value: Bytes, multipart: bool) -> Result<bool, Failure> {
            let store = self.store()?;
            let path = Path::from(key);
            if multipart {
                let upload = store.put_multipart(&path).await.map_err(failure)?;
                let mut w = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
                w.put(value);
                w.finish().await.map_err(failure)?;
                return Ok(true);
            }
            let create = PutOptions {
                mode: PutMode::Create,
                ..Default::default()
            };
            let payload = PutPayload::from(value);
            match store.put_opts(&path, payload.clone(), create).await {
                Ok(_) => Ok(true),
                Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
                Err(object_store::Error::NotImplemented { .. }) => {
                    store.put(&path, payload).await.map_err(failure)?;
                    Ok(true)
                }
                Err(e) => Err(failure(e)),
            }
        }

        pub async fn get(&self, key: &str) -> Result<Bytes, Failure> {
            let got = self.store()?.get(&Path::from(key)).await.map_err(failure)?;
            got.bytes().await.map_err(failure)
        }

        /// Every object under `prefix`.
        pub async fn list(&self, prefix: &str) -> Result<Vec<Listed>, Failure> {
            use futures::TryStreamExt;
            let metas: Vec<_> = self
                .store()?
                .list(Some(&Path::from(prefix)))
                .try_collect()
                .await
                .map_err(failure)?;
            Ok(metas
                .into_iter()
                .map(|m| Listed {
                    key: m.location.to_string(),
                    size: m.size,
                    modified: m.last_modified.into(),
                })
                .collect())
        }

        pub async fn delete(&self, key: &str) -> Result<(), Failure> {
            self.store()?
                .delete(&Path::from(key))
                .await
                .map_err(failure)
        }
    }
}

#[cfg(not(feature = "object-store"))]
mod none {
    use super::*;

    const WHY: &str = "this build of Strait has no object-store support (feature object-store)";

    pub struct Backend;

    impl Backend {
        pub fn open(cfg: &LargeRecordsConfig) -> anyhow::Result<(Backend, String)> {
            Ok((Backend, cfg.store.clone()))
        }
        pub async fn head(&self, _key: &str) -> Result<u64, Failure> {
            Err(Failure::Other(WHY.into()))
        }
        pub async fn put(
            &self,
            _key: &str,
            _value: Bytes,
            _multipart: bool,
        ) -> Result<bool, Failure> {
            Err(Failure::Other(WHY.into()))
        }
        pub async fn get(&self, _key: &str) -> Result<Bytes, Failure> {
            Err(Failure::Other(WHY.into()))
        }
        pub async fn list(&self, _prefix: &str) -> Result<Vec<Listed>, Failure> {
            Err(Failure::Other(WHY.into()))
        }
        pub async fn delete(&self, _key: &str) -> Result<(), Failure> {
            Err(Failure::Other(WHY.into()))
        }
    }
}
