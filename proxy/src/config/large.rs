//! `[large_records]`: where claim-checked values are stored, and the memory
//! and cache bounds of large-record handling. Which topics get which
//! remedy is per topic, in the policy files (`[policy.large_records]`).

use serde::Deserialize;

/// `[large_records]` in `strait.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LargeRecordsConfig {
    /// Where claim-checked values go: a local directory (`file:///path` or a
    /// plain path; the default `strait-objects` works with no setup), or
    /// `s3://bucket` (settings in `[large_records.s3]`, credentials from the
    /// environment: `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, web identity
    /// (IRSA), ECS / EKS Pod Identity, or the instance metadata service).
    #[serde(default = "default_store")]
    pub store: String,
    #[serde(default)]
    pub s3: S3Config,
    /// Bytes of restored objects kept in memory for replays and
    /// concurrent readers.
    #[serde(default = "default_cache_bytes")]
    pub cache_bytes: u64,
    /// Process-wide bound on bytes held for large records at once: produce
    /// requests buffered to offload a value, and values being restored on
    /// the fetch path. Over it, requests wait (and a fetch partition gets a
    /// retriable error after `memory_wait_ms`).
    #[serde(default = "default_memory_bytes")]
    pub memory_bytes: u64,
    /// The same bound per client connection.
    #[serde(default = "default_connection_memory_bytes")]
    pub connection_memory_bytes: u64,
    /// How long a restore waits for memory before the partition gets a
    /// retriable error.
    #[serde(default = "default_memory_wait_ms")]
    pub memory_wait_ms: u64,
    /// Deadline for one object-store or chunk-topic operation (a produce
    /// then gets a retriable error; the client retries).
    #[serde(default = "default_store_timeout_ms")]
    pub store_timeout_ms: u64,
    /// Large-record jobs (offloading on produce, restoring on fetch) that
    /// run at once; they wait on the store, so more than the CPUs.
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// Values at least this large go to the store as a multipart upload.
    #[serde(default = "default_multipart_bytes")]
    pub multipart_bytes: u64,
}

/// `[large_records.s3]`: an S3 or S3-compatible endpoint.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// e.g. `http://127.0.0.1:9000` for MinIO or s3s-fs; unset for AWS.
    pub endpoint: Option<String>,
    /// Default: `AWS_REGION` / `AWS_DEFAULT_REGION`, else `us-east-1`.
    pub region: Option<String>,
    /// Path-style requests (`endpoint/bucket/key`), as most S3-compatible
    /// servers want. Default: true when an endpoint is set.
    pub path_style: Option<bool>,
    /// Allow plain HTTP to the endpoint (test servers).
    #[serde(default)]
    pub allow_http: bool,
}

fn default_store() -> String {
    "strait-objects".into()
}
fn default_cache_bytes() -> u64 {
    256 << 20
}
fn default_memory_bytes() -> u64 {
    1 << 30
}
fn default_connection_memory_bytes() -> u64 {
    256 << 20
}
fn default_memory_wait_ms() -> u64 {
    10_000
}
fn default_store_timeout_ms() -> u64 {
    // Well under clients' own request timeouts (Java's 30 s), so they get
    // the retriable error rather than giving up on the connection.
    10_000
}
fn default_workers() -> usize {
    8
}
fn default_multipart_bytes() -> u64 {
    8 << 20
}

impl Default for LargeRecordsConfig {
    fn default() -> Self {
        Self {
            store: default_store(),
            s3: S3Config::default(),
            cache_bytes: default_cache_bytes(),
            memory_bytes: default_memory_bytes(),
            connection_memory_bytes: default_connection_memory_bytes(),
            memory_wait_ms: default_memory_wait_ms(),
            store_timeout_ms: default_store_timeout_ms(),
            workers: default_workers(),
            multipart_bytes: default_multipart_bytes(),
        }
    }
}

impl LargeRecordsConfig {
    /// Every problem with the section, for start-up validation.
    pub fn problems(&self, max_frame_bytes: usize) -> Vec<String> {
        let mut errors = Vec::new();
        if self.store.trim().is_empty() {
            errors.push("large_records.store must not be empty".into());
        }
        let scheme = self.store.split_once("://").map(|(s, _)| s);
        if let Some(s) = scheme {
            if !matches!(s, "file" | "s3" | "s3a" | "gs" | "az") {
                errors.push(format!(
                    "large_records.store: unsupported scheme {s:?} (file://, s3://, gs:// or az://)"
                ));
            }
        }
        if self.memory_bytes < max_frame_bytes as u64 {
            errors.push(format!(
                "large_records.memory_bytes ({}) must be at least limits.max_frame_bytes ({max_frame_bytes}): one large request must fit",
                self.memory_bytes
            ));
        }
        if self.connection_memory_bytes == 0 || self.connection_memory_bytes > self.memory_bytes {
            errors.push("large_records.connection_memory_bytes must be between 1 and large_records.memory_bytes".into());
        }
        if self.workers == 0 || self.workers > 1024 {
            errors.push(format!(
                "large_records.workers: {} is outside 1..=1024",
                self.workers
            ));
        }
        if self.store_timeout_ms == 0 {
            errors.push("large_records.store_timeout_ms must be > 0".into());
        }
        if !(5 << 20..=5 << 30).contains(&self.multipart_bytes) {
            errors.push(
                "large_records.multipart_bytes must be between 5 MiB and 5 GiB (S3's part sizes)"
                    .into(),
            );
        }
        errors
    }
}
