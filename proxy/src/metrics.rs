//! Metrics: the one place that names every series and its labels. Every
//! label set is bounded: api keys (a fixed table), listener kinds, error
//! kinds, rule and outcome names are static; policy names come from the
//! operator's policy files. Topics are never a label (a cluster may have any
//! number of them); per-topic detail goes to the log. Per-api-key handles are
//! created once so the per-frame cost is an atomic add, not a label lookup.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use kafka_protocol::messages::ApiKey;
use metrics::{counter, gauge, histogram, Counter, Gauge, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

const KEYS: usize = 128;

/// Handles for one api key.
pub struct ApiMetrics {
    pub requests: Counter,
    pub request_bytes: Counter,
    pub response_bytes: Counter,
    pub latency: Histogram,
}

struct Registry {
    handle: PrometheusHandle,
    per_key: Vec<ApiMetrics>,
    unknown: ApiMetrics,
}

static REGISTRY: OnceLock<Registry> = OnceLock::new();

fn api_name(key: i16) -> String {
    match ApiKey::try_from(key) {
        Ok(k) => format!("{k:?}"),
        Err(()) => format!("unknown_{key}"),
    }
}

fn api_metrics(name: String) -> ApiMetrics {
    ApiMetrics {
        requests: counter!("strait_requests_total", "api" => name.clone()),
        request_bytes: counter!("strait_bytes_total", "api" => name.clone(), "direction" => "request"),
        response_bytes: counter!("strait_bytes_total", "api" => name.clone(), "direction" => "response"),
        latency: histogram!("strait_request_latency_seconds", "api" => name),
    }
}

/// Installs the Prometheus recorder (once per process) and returns its handle.
pub fn install() -> PrometheusHandle {
    REGISTRY
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("strait_request_latency_seconds".into()),
                    &[
                        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                        0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                    ],
                )
                .expect("static buckets are valid")
                .install_recorder()
                .expect("the metrics recorder is installed once");
            // Histogram samples queue up until upkeep folds them into buckets;
            // without it they grow between scrapes (invariant 8: bounded memory).
            let upkeep = handle.clone();
            std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || loop {
                    std::thread::sleep(std::time::Duration::from_secs(5));
                    upkeep.run_upkeep();
                })
                .expect("spawn the metrics upkeep thread");
            let per_key = (0..KEYS as i16)
                .map(|k| {
                    if ApiKey::try_from(k).is_ok() {
                        api_metrics(api_name(k))
                    } else {
                        api_metrics("unknown".into())
                    }
                })
                .collect();
            Registry {
                handle,
                per_key,
                unknown: api_metrics("unknown".into()),
            }
        })
        .handle
        .clone()
}

/// The handles for an api key (a shared "unknown" series for unknown keys).
pub fn api(key: i16) -> &'static ApiMetrics {
    let r = REGISTRY
        .get()
        .expect("metrics::install runs before serving");
    usize::try_from(key)
        .ok()
        .and_then(|k| r.per_key.get(k))
        .unwrap_or(&r.unknown)
}

pub fn connections(listener: &'static str) -> Gauge {
    gauge!("strait_client_connections", "listener" => listener)
}

pub fn connections_total(listener: &'static str) -> Counter {
    counter!("strait_client_connections_total", "listener" => listener)
}

/// Connection-level errors, by side (client, upstream, tls) and kind.
pub fn error(side: &'static str, kind: &'static str) {
    counter!("strait_errors_total", "side" => side, "kind" => kind).increment(1);
}

/// A refused SASL authentication: a client's (`side="client"`, seen in the
/// broker's SaslAuthenticate answer) or Strait's own (`side="strait"`).
pub fn sasl_failure(side: &'static str, mechanism: &'static str) {
    counter!("strait_sasl_authentication_failures_total", "side" => side, "mechanism" => mechanism)
        .increment(1);
}

pub fn upstream_connect_failed() {
    counter!("strait_upstream_connect_errors_total").increment(1);
}

/// One policy decision: the policy's name (bounded by the policy files),
/// the rule (`all` when allowed) and the outcome: `allowed`, `rejected`, or
/// `auto_create_off` (a Metadata request forwarded with auto-creation off).
pub fn policy_decision(policy: &str, rule: &'static str, outcome: &'static str) {
    counter!("strait_policy_decisions_total",
        "policy" => policy.to_string(), "rule" => rule, "outcome" => outcome)
    .increment(1);
}

/// A policy directory reload: `ok` or `rejected`.
pub fn policy_reload(outcome: &'static str) {
    counter!("strait_policy_reloads_total", "outcome" => outcome).increment(1);
}

/// A fetch Strait forced to read_committed.
pub fn fetch_read_committed() {
    counter!("strait_policy_fetch_read_committed_total").increment(1);
}

/// An incremental fetch of a session Strait never saw created, answered
/// FETCH_SESSION_ID_NOT_FOUND (after a restart, or through another instance).
pub fn fetch_session_unknown() {
    counter!("strait_fetch_sessions_unknown_total").increment(1);
}

/// A share fetch answered UNSUPPORTED_VERSION because a fetch policy applies.
pub fn share_fetch_refused() {
    counter!("strait_share_fetches_refused_total").increment(1);
}

/// A produced batch through the record pipeline: `rewritten`, `unchanged`
/// or `passed` (control batches, policies without stages).
pub fn pipeline_batch(outcome: &'static str) {
    counter!("strait_pipeline_batches_total", "outcome" => outcome).increment(1);
}

/// The compression stage replaced `before` bytes of records with `after`.
pub fn compressed(before: usize, after: usize) {
    counter!("strait_pipeline_compress_bytes_total", "direction" => "in").increment(before as u64);
    counter!("strait_pipeline_compress_bytes_total", "direction" => "out").increment(after as u64);
}

/// The compression stage left a batch as it was, and why.
pub fn compress_skipped(reason: &'static str) {
    counter!("strait_pipeline_compress_skipped_total", "reason" => reason).increment(1);
}

/// A job handed to the blocking pool (batch work off the reactor).
pub fn offload_job() {
    counter!("strait_offload_jobs_total").increment(1);
}

/// An object-store operation of the claim-check remedy: `written`,
/// `exists` (a retry or an equal value: nothing written), `read`,
/// `cache_hit`, `put_failed`, `get_failed`, `hash_mismatch`.
pub fn large_object(op: &'static str) {
    counter!("strait_large_objects_total", "op" => op).increment(1);
}

/// Value bytes taken out of records (`offloaded`) or put back (`restored`).
pub fn large_bytes(direction: &'static str, bytes: u64) {
    counter!("strait_large_record_bytes_total", "direction" => direction).increment(bytes);
}

/// One oversized record and what became of it: the remedy that took it
/// (`compress`, `claim-check`, `chunk`) or `none`, and `ok`, `failed`
/// (store or chunk topic unavailable: retriable) or `refused`.
pub fn large_remedy(policy: &str, remedy: &'static str, outcome: &'static str) {
    counter!("strait_large_record_remedies_total",
        "policy" => policy.to_string(), "remedy" => remedy, "outcome" => outcome)
    .increment(1);
}

/// A fetched partition through the restore step: `restored` (values put
/// back), `cut` (batches left for the next fetch: the client's max_bytes),
/// `failed` (a retriable error instead), `memory_wait` (over the memory bound).
pub fn large_restore(outcome: &'static str) {
    counter!("strait_large_restore_partitions_total", "outcome" => outcome).increment(1);
}

/// Bytes held for large records now (requests buffered, values restoring).
pub fn large_memory(bytes: u64) {
    gauge!("strait_large_record_memory_bytes").set(bytes as f64);
}

/// 1 while the proxy drains its connections before exiting.
pub fn draining(on: bool) {
    gauge!("strait_draining").set(if on { 1.0 } else { 0.0 });
}

/// How a drain ended: connections closed at a request boundary, and cut at the deadline.
pub fn drained(closed: usize, cut: usize) {
    counter!("strait_drain_connections_total", "outcome" => "closed").increment(closed as u64);
    counter!("strait_drain_connections_total", "outcome" => "cut").increment(cut as u64);
}

/// Wall-clock milliseconds since the epoch (0 before it), as observations
/// and the debug views report times.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// An observation the tap dropped: `full` (its queue), `too_large`,
/// `stopped` or `unreadable` (a request it could not read).
pub fn tap_dropped(why: &'static str) {
    counter!("strait_tap_dropped_total", "reason" => why).increment(1);
}

/// A record the mirror read, at one of its policy's sinks (`jsonl`,
/// `topic`): `written`, `dropped_full` (the sink's queue), `dropped_rate`
/// (the policy's byte rate), `dropped_error` (the write failed) or
/// `sampled_out`. A handle, so the mirror counts with an atomic add.
pub fn mirror_records(policy: &str, sink: &'static str, outcome: &'static str) -> Counter {
    counter!("strait_mirror_records_total",
        "policy" => policy.to_string(), "sink" => sink, "outcome" => outcome)
}
