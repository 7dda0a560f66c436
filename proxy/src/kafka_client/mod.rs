//! Strait's internal Kafka client: the one way Strait talks to the cluster
//! on its own behalf (chunk writes and reads for large records, the
//! stuck-message read, the mirror sink, `strait bench`).
//!
//! # Why a small module on kafka-protocol
//!
//! It is built on [`crate::upstream::Dialer`] and
//! [`crate::upstream::BrokerConn`]: the same
//! bootstrap list, connect timeout and TLS settings as every upstream
//! connection (and, when it comes, the same SASL), messages typed by the
//! `kafka-protocol` crate Strait already uses, record batches by Strait's own
//! codec. The alternatives were weighed and not taken:
//!
//! - `rskafka` (pure Rust) brings its own protocol codec and connection
//!   handling, a second implementation of what `upstream` and `codec` do,
//!   and its own TLS configuration that would have to be kept in step with
//!   ours.
//! - `rdkafka` links librdkafka: C code built with cmake in every build,
//!   its own threads, buffers and queues outside tokio and outside Strait's
//!   memory bounds, and a second configuration surface.
//!
//! What Strait needs is small: metadata, describe and create a topic,
//! produce one batch, fetch one partition. That is this module.
//!
//! # Behaviour
//!
//! - Metadata (brokers, controller, partition leaders) is cached and read
//!   again when a call fails because of it (NOT_LEADER_OR_FOLLOWER,
//!   UNKNOWN_TOPIC_OR_PARTITION, LEADER_NOT_AVAILABLE, NOT_CONTROLLER,
//!   connection errors, ...).
//! - One connection per broker, reused, one request at a time
//!   ([`crate::upstream::BrokerConn`]); versions are negotiated with ApiVersions once per
//!   connection.
//! - Every call retries retriable errors with backoff, at most
//!   [`Options::max_attempts`] times and within [`Options::timeout`] in
//!   total; the error then says what failed last.
//! - Produce is acks=all and not idempotent: a retry after a lost answer
//!   may write a batch twice. Callers that record offsets (chunk manifests)
//!   use the offset of the acknowledged write, so a duplicate is only
//!   unreferenced data.

mod admin;
mod assignment;
mod conns;
mod data;
mod error;
mod groups;
mod metadata;
mod offsets;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

pub use error::{error_name, KafkaError};
pub use groups::{GroupDescription, GroupMember, ListedGroup};
pub use metadata::TopicInfo;
pub use offsets::OffsetSpec;

use crate::upstream::Dialer;

/// How a [`KafkaClient`] behaves.
#[derive(Debug, Clone)]
pub struct Options {
    /// Sent as the client id of every request.
    pub client_id: &'static str,
    /// Deadline of one call, retries included; also bounds each request.
    pub timeout: Duration,
    /// Attempts per call at most (the first included); `timeout` is what
    /// usually ends retrying (a leader election takes seconds).
    pub max_attempts: u32,
    /// The largest answer accepted from a broker (`limits.max_frame_bytes`).
    pub max_frame_bytes: usize,
}

impl Options {
    /// Client id `strait`, 50 attempts, answers up to Strait's default
    /// `limits.max_frame_bytes`, `timeout` per call.
    pub fn new(timeout: Duration) -> Options {
        Options {
            client_id: "strait",
            timeout,
            max_attempts: 50,
            max_frame_bytes: crate::config::DEFAULT_MAX_FRAME_BYTES,
        }
    }
}

/// One partition's answer to a fetch.
#[derive(Debug, Clone)]
pub struct FetchedPartition {
    /// Record batches from (or from before) the fetch offset; the last may
    /// be partial.
    pub records: Bytes,
    pub high_watermark: i64,
    /// -1 when the broker does not say (before Fetch v4).
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    /// (producer id, first offset) of the aborted transactions in
    /// `records` (read_committed fetches only).
    pub aborted: Vec<(i64, i64)>,
}

/// Strait's client for its own requests to the cluster. Cheap to share in
/// an `Arc`; calls from many tasks share one connection per broker.
pub struct KafkaClient {
    pool: conns::Pool,
    meta: metadata::Cache,
    opts: Options,
}

const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

impl KafkaClient {
    /// A client whose connections go through `dialer` (the one built from
    /// `[upstream]`, or one built from the same config), each call within
    /// `timeout`; the other [`Options`] at their defaults.
    pub fn new(dialer: Arc<Dialer>, timeout: Duration) -> KafkaClient {
        KafkaClient::with_options(dialer, Options::new(timeout))
    }

    pub fn with_options(dialer: Arc<Dialer>, opts: Options) -> KafkaClient {
        KafkaClient {
            pool: conns::Pool::new(dialer, opts.client_id, opts.timeout, opts.max_frame_bytes),
            meta: metadata::Cache::default(),
            opts,
        }
    }

    /// A client of a cluster nobody serves (127.0.0.1:1), for tests whose
    /// large-record handling must never reach a broker.
    #[cfg(test)]
    pub(crate) fn offline() -> KafkaClient {
        let upstream = crate::config::UpstreamConfig {
            bootstrap: vec!["127.0.0.1:1".into()],
            connect_timeout_ms: 100,
            tls: None,
            sasl: None,
            leader_endpoints: crate::config::LeaderEndpoints::Clamp,
        };
        let dialer = Arc::new(Dialer::new(&upstream, 1 << 20).expect("a dialer"));
        KafkaClient::new(dialer, Duration::from_secs(1))
    }

    pub fn options(&self) -> &Options {
        &self.opts
    }

    /// How many partitions `topic` has; `None` when it does not exist.
    /// Always asks the cluster (and refreshes the cached leaders).
    pub async fn partitions(&self, topic: &str) -> Result<Option<i32>, KafkaError> {
        self.retry("metadata", Some(topic), || async move {
            let leaders = self.refresh(Some(topic)).await?;
            Ok(leaders.map(|l| l.len() as i32))
        })
        .await
    }

    /// Runs `attempt` until it succeeds, fails for good, runs out of
    /// attempts or the deadline passes. Retriable failures that point at
    /// stale metadata drop the cached entry for `topic` first.
    async fn retry<T, F, Fut>(
        &self,
        op: &'static str,
        topic: Option<&str>,
        mut attempt: F,
    ) -> Result<T, KafkaError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, KafkaError>>,
    {
        let start = Instant::now();
        let deadline = start + self.opts.timeout;
        let mut backoff = FIRST_BACKOFF;
        let mut last: Option<KafkaError> = None;
        for n in 1.. {
            let error = match tokio::time::timeout_at(deadline, attempt()).await {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(e)) => e,
                Err(_) => {
                    return Err(KafkaError::Timeout {
                        op,
                        after: start.elapsed(),
                        attempts: n,
                        last: match last {
                            Some(e) => e.to_string(),
                            None => "the first attempt had not finished".into(),
                        },
                    })
                }
            };
            if !error.retriable() {
                return Err(error);
            }
            if error.stale_metadata() {
                self.meta.invalidate(topic);
            }
            if n >= self.opts.max_attempts || Instant::now() + backoff >= deadline {
                return Err(error);
            }
            tracing::debug!(op, attempt = n, error = %error, "retrying");
            last = Some(error);
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
        unreachable!("the attempts loop returns")
    }

    /// The per-request timeout in milliseconds, as the protocol wants it.
    fn timeout_ms(&self) -> i32 {
        self.opts.timeout.as_millis().min(i32::MAX as u128) as i32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{LeaderEndpoints, UpstreamConfig};

    fn client(bootstrap: &str, timeout: Duration, attempts: u32) -> KafkaClient {
        let cfg = UpstreamConfig {
            bootstrap: vec![bootstrap.into()],
            connect_timeout_ms: 200,
            tls: None,
            sasl: None,
            leader_endpoints: LeaderEndpoints::Clamp,
        };
        let dialer = Arc::new(Dialer::new(&cfg, 1 << 20).unwrap());
        let mut opts = Options::new(timeout);
        opts.max_attempts = attempts;
        KafkaClient::with_options(dialer, opts)
    }

    #[test]
    fn the_client_and_its_calls_can_cross_threads() {
        fn send_sync<T: Send + Sync>(_: &T) {}
        fn send<T: Send>(_: &T) {}
        let c = client("127.0.0.1:1", Duration::from_secs(1), 1);
        send_sync(&c);
        send(&c.partitions("t"));
        send(&c.topic_configs("t"));
        send(&c.create_topic("t", 1, &[]));
        send(&c.produce("t", 0, Bytes::new()));
        send(&c.fetch("t", 0, 0, 1));
    }

    #[tokio::test]
    async fn an_unreachable_cluster_is_a_retriable_error_after_bounded_attempts() {
        // A port nothing listens on: bind one, then close it.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let c = client(&addr.to_string(), Duration::from_secs(20), 3);
        let started = std::time::Instant::now();
        let e = c.partitions("t").await.unwrap_err();
        assert!(matches!(e, KafkaError::Connection { .. }), "{e}");
        assert!(e.retriable());
        assert!(e.to_string().contains("metadata: bootstrap"), "{e}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "bounded attempts"
        );
    }

    #[tokio::test]
    async fn a_silent_broker_is_a_timeout_naming_the_operation() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Accepts and never answers.
        let held = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                open.push(s);
            }
        });
        let c = client(&addr.to_string(), Duration::from_millis(300), 10);
        let e = c.topic_configs("t").await.unwrap_err();
        assert!(
            matches!(
                e,
                KafkaError::Timeout { .. } | KafkaError::Connection { .. }
            ),
            "{e}"
        );
        assert!(e.to_string().starts_with("describe configs"), "{e}");
        held.abort();
    }
}
