//! Configuration: the `strait.toml` schema and its defaults; start-up
//! validation, which reports every problem at once, is in [`validate`].

mod debug;
mod large;
mod sasl;
mod shutdown;
mod validate;

use std::path::PathBuf;

use serde::Deserialize;

pub use debug::DebugConfig;
pub use large::{LargeRecordsConfig, S3Config};
pub use sasl::{SaslCredentials, SaslMechanism, UpstreamSaslConfig};
pub use shutdown::ShutdownConfig;
pub use validate::{BrokerPorts, Validated};

/// Default cap on one Kafka frame (length prefix), as Kafka's own
/// `socket.request.max.bytes` default.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 100 * 1024 * 1024;

/// The whole proxy configuration, as read from `strait.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub listen: ListenConfig,
    pub upstream: UpstreamConfig,
    #[serde(default)]
    pub admin: AdminConfig,
    #[serde(default)]
    pub limits: LimitsConfig,
    #[serde(default)]
    pub tls: Option<ClientTlsConfig>,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub policies: PoliciesConfig,
    #[serde(default)]
    pub large_records: LargeRecordsConfig,
    #[serde(default)]
    pub shutdown: ShutdownConfig,
    #[serde(default)]
    pub debug: DebugConfig,
}

/// Per-topic policy files (see `policies/examples/`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoliciesConfig {
    /// Directory of `*.toml` policy files, reloaded on change and on SIGHUP.
    #[serde(default)]
    pub dir: Option<PathBuf>,
}

/// Where clients connect, and how broker addresses are advertised to them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenConfig {
    /// The bootstrap listener, e.g. `0.0.0.0:9092`. Port 0 picks a free port.
    pub bootstrap: String,
    /// The host clients are told to connect to (in Metadata, FindCoordinator, ...).
    /// Defaults to the bootstrap listener's IP (or 127.0.0.1 for a wildcard IP).
    #[serde(default)]
    pub advertised_host: Option<String>,
    /// Port-per-broker range `"START-END"`: broker node id N listens on START + N.
    /// `"0"` gives every broker an OS-assigned port (tests, quick starts).
    #[serde(default = "default_broker_ports")]
    pub broker_ports: String,
}

fn default_broker_ports() -> String {
    "0".to_string()
}

/// The real Kafka cluster.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// Bootstrap brokers, `host:port`.
    pub bootstrap: Vec<String>,
    /// Connect timeout to a broker, in milliseconds.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// TLS to the brokers.
    #[serde(default)]
    pub tls: Option<UpstreamTlsConfig>,
    /// SASL credentials for Strait's own connections to the brokers.
    #[serde(default)]
    pub sasl: Option<UpstreamSaslConfig>,
    /// How Strait keeps broker addresses in Produce v10+ / Fetch v16+ responses
    /// (KIP-951 node endpoints) from reaching clients: `clamp` caps those api
    /// versions in ApiVersions so the field never appears and every byte streams;
    /// `rewrite` allows them and decodes those responses to rewrite the endpoints.
    #[serde(default)]
    pub leader_endpoints: LeaderEndpoints,
}

fn default_connect_timeout_ms() -> u64 {
    10_000
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LeaderEndpoints {
    #[default]
    Clamp,
    Rewrite,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamTlsConfig {
    /// PEM file of the CA(s) that sign the brokers' certificates.
    pub ca_file: PathBuf,
    /// Name to verify in the broker certificate; defaults to the broker's host.
    #[serde(default)]
    pub server_name: Option<String>,
}

/// Client-facing TLS.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientTlsConfig {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// When set, clients must present a certificate signed by one of these CAs (mTLS).
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Admin HTTP listener (`/metrics`, `/healthz`, `/readyz`). Loopback by default.
    #[serde(default = "default_admin_listen")]
    pub listen: String,
}

fn default_admin_listen() -> String {
    "127.0.0.1:9644".to_string()
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            listen: default_admin_listen(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest frame accepted from a client or broker (length prefix), bytes.
    #[serde(default = "default_max_frame")]
    pub max_frame_bytes: usize,
    /// Read buffer per connection and direction, bytes.
    #[serde(default = "default_buffer")]
    pub buffer_bytes: usize,
    /// Requests a client may have in flight on one connection before Strait stops reading.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// Largest decompressed record batch Strait reads for a policy or a
    /// pipeline stage; bigger batches are refused with a policy error.
    #[serde(default = "default_max_decompressed")]
    pub max_decompressed_bytes: usize,
    /// Records the trace index remembers (the oldest go first); 0 turns it off.
    #[serde(default = "default_trace_index")]
    pub trace_index_entries: usize,
    /// Topic ids (Produce v13, Fetch v13+) remembered from Metadata responses.
    #[serde(default = "default_topic_ids")]
    pub topic_ids: usize,
    /// Topics resolved through pattern selectors remembered per policy load,
    /// so glob and regex selectors run once per topic (used when the policy
    /// files have enough of them to be worth a cache).
    #[serde(default = "default_policy_cache_topics")]
    pub policy_cache_topics: usize,
    /// Record-batch jobs (decompress, check, rewrite, compress) that run at
    /// once on the blocking pool; default: the number of CPUs.
    #[serde(default = "default_batch_workers")]
    pub batch_workers: usize,
    /// Once a request's first byte has arrived, the whole request must
    /// arrive within this, or the client is dropped (slow senders), ms.
    #[serde(default = "default_frame_read_timeout_ms")]
    pub frame_read_timeout_ms: u64,
    /// A client that takes no bytes of a response for this long is dropped
    /// (clients that do not read), ms.
    #[serde(default = "default_client_write_timeout_ms")]
    pub client_write_timeout_ms: u64,
}

fn default_max_frame() -> usize {
    DEFAULT_MAX_FRAME_BYTES
}
fn default_buffer() -> usize {
    256 * 1024
}
fn default_max_in_flight() -> usize {
    1024
}
fn default_max_decompressed() -> usize {
    64 * 1024 * 1024
}
fn default_trace_index() -> usize {
    100_000
}
fn default_topic_ids() -> usize {
    100_000
}
fn default_policy_cache_topics() -> usize {
    10_000
}
fn default_frame_read_timeout_ms() -> u64 {
    30_000
}
fn default_client_write_timeout_ms() -> u64 {
    30_000
}
fn default_batch_workers() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_frame_bytes: default_max_frame(),
            buffer_bytes: default_buffer(),
            max_in_flight: default_max_in_flight(),
            max_decompressed_bytes: default_max_decompressed(),
            trace_index_entries: default_trace_index(),
            topic_ids: default_topic_ids(),
            policy_cache_topics: default_policy_cache_topics(),
            batch_workers: default_batch_workers(),
            frame_read_timeout_ms: default_frame_read_timeout_ms(),
            client_write_timeout_ms: default_client_write_timeout_ms(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `text` (default) or `json`.
    #[serde(default)]
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}
