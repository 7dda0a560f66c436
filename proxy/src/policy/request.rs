//! The entry point of enforcement for the request pump, and what the
//! per-api enforcers share: decoding a request header, re-encoding a
//! filtered request, turning a violation into a rejection, recording a
//! decision. An inspected request is buffered whole, decoded (request
//! structure and batch headers; records only when a rule needs them) and
//! then forwarded unchanged, patched in place, or forwarded without the
//! rejected parts, whose errors the response plan merges into the broker's
//! answer.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use strait_policies::{Policy, Violation};
use uuid::Uuid;

use super::{admin, fetch, produce, Compiled, PolicyStore};
use crate::cluster::ClusterView;
use crate::codec::{guard, RequestPeek};
use crate::metrics;
use crate::offload::Offload;
use crate::response::session::FetchSessions;
use crate::response::{Rejected, Step, TOPIC_RESOURCE};

/// What to do with an inspected request.
#[derive(Debug)]
pub enum Outcome {
    /// Forward these bytes (the original frame, patched, or re-encoded);
    /// `steps` are what the response plan must do for this request.
    Forward { frame: Bytes, steps: Vec<Step> },
    /// Close the connection: acks=0 has no response to carry the error.
    Close(String),
}

impl Outcome {
    /// Forward as is, nothing to do on the response.
    pub fn forward(frame: Bytes) -> Outcome {
        Outcome::Forward {
            frame,
            steps: Vec::new(),
        }
    }
}

/// Per-connection enforcement state.
#[derive(Debug, Default)]
pub struct ConnState {
    /// The fetch sessions this connection created, followed so each fetch
    /// is decided from every partition it reads.
    pub sessions: Arc<FetchSessions>,
    /// Idempotent batches Strait refused, which later ones wait behind.
    pub refusals: Arc<super::order::Refusals>,
}

#[derive(Debug, thiserror::Error)]
pub enum EnforceError {
    #[error("cannot decode {api:?} v{version} request: {why}")]
    Decode {
        api: ApiKey,
        version: i16,
        why: String,
    },
    #[error("cannot encode {api:?} v{version} request: {why}")]
    Encode {
        api: ApiKey,
        version: i16,
        why: String,
    },
    #[error("{0}")]
    Offload(#[from] crate::offload::Panicked),
}

/// What enforcement needs from the rest of the proxy.
#[derive(Clone)]
pub struct Enforcer {
    pub store: Arc<PolicyStore>,
    pub cluster: Arc<ClusterView>,
    pub offload: Offload,
    /// The decompression cap and large-record I/O for record work.
    pub work: produce::Work,
}

/// Whether policies inspect this api key under the current set.
pub fn inspects(set: &Compiled, api_key: i16) -> bool {
    match ApiKey::try_from(api_key) {
        Ok(ApiKey::Produce) => set.has_produce_rules(),
        Ok(ApiKey::Fetch) => set.has_fetch_rules(),
        Ok(
            ApiKey::CreateTopics
            | ApiKey::AlterConfigs
            | ApiKey::IncrementalAlterConfigs
            | ApiKey::DeleteTopics
            | ApiKey::Metadata,
        ) => set.has_admin_rules(),
        _ => false,
    }
}

/// What the response of a request no policy inspects must still do under
/// `set`: while a fetch policy applies, share groups are hidden from
/// ApiVersions and share fetches refused (they bypass the fetch steps).
pub fn passthrough_steps(set: &Compiled, api_key: i16) -> Vec<Step> {
    if !set.has_fetch_rules() {
        return Vec::new();
    }
    match ApiKey::try_from(api_key) {
        Ok(ApiKey::ApiVersions) => vec![Step::HideShareGroups],
        Ok(ApiKey::ShareFetch) => vec![Step::RefuseShareFetch],
        _ => Vec::new(),
    }
}

/// Applies `policies` (the snapshot the pump decided to inspect with) to
/// one whole request frame (length prefix included). Produce requests whose policies read or rewrite records run
/// on the blocking pool; everything else is cheap and runs inline. The
/// caller awaits the outcome before reading the next request, so request
/// order is kept.
pub async fn enforce(
    e: &Enforcer,
    policies: Arc<Compiled>,
    state: &mut ConnState,
    peek: RequestPeek,
    acks_at: usize,
    frame: Bytes,
) -> Result<Outcome, EnforceError> {
    let names = &e.cluster.topic_ids;
    let version = peek.api_version;
    match peek.api_key {
        0 => {
            let scanned = produce::scan(&policies, names, version, &frame)?;
            match scanned.kind {
                produce::Scan::Unpoliced => Ok(Outcome::forward(frame)),
                produce::Scan::Inline => {
                    produce::produce(&policies, names, &scanned, version, acks_at, &e.work, frame)
                }
                produce::Scan::RecordWork => {
                    let work = produce::Work {
                        refusals: Some(state.refusals.clone()),
                        ..e.work.clone()
                    };
                    let cluster = e.cluster.clone();
                    // Large-record work waits on I/O: its own pool.
                    let pool = match &e.work.large {
                        Some(l) if scanned.large => &l.pool,
                        _ => &e.offload,
                    };
                    pool.run(move || {
                        let names = &cluster.topic_ids;
                        produce::produce(&policies, names, &scanned, version, acks_at, &work, frame)
                    })
                    .await?
                }
            }
        }
        1 => {
            let lookup = e.work.large.as_ref().map(|l| &*l.client);
            fetch::fetch(&policies, names, lookup, state, version, frame).await
        }
        key => admin::admin(&policies, names, key, version, frame),
    }
}

/// One policy decision, for the metrics and, on rejection, the log.
pub(super) fn record(topic: &str, policy: &Policy, violation: Option<&Violation>) {
    let (rule, outcome) = match violation {
        None => ("all", "allowed"),
        Some(v) => (v.rule.name(), "rejected"),
    };
    metrics::policy_decision(&policy.name, rule, outcome);
    if let Some(v) = violation {
        tracing::debug!(topic, policy = %policy.name, rule, error = %v, "policy rejected a request");
    }
}

/// A policy turned auto-creation off in a Metadata request (its create
/// rules would refuse the broker's defaults). The request still goes on, so
/// it has its own outcome: an app that asks for auto-creation in every
/// Metadata request (Kafka Streams) is not refused anything.
pub(super) fn record_auto_create_off(topic: &str, policy: &Policy, why: &Violation) {
    let rule = why.rule.name();
    metrics::policy_decision(&policy.name, rule, "auto_create_off");
    tracing::debug!(topic, policy = %policy.name, rule, why = %why, "policy turned auto-creation off in a Metadata request");
}

pub(super) fn decode_error(api: ApiKey, version: i16) -> impl Fn(anyhow::Error) -> EnforceError {
    move |e| EnforceError::Decode {
        api,
        version,
        why: e.to_string(),
    }
}

/// A body the guard refused ([`crate::codec::guard`]): it never reaches
/// kafka-protocol, nor the broker.
fn malformed(
    api: ApiKey,
    version: i16,
    what: &'static str,
) -> impl Fn(guard::Malformed) -> EnforceError {
    move |e| EnforceError::Decode {
        api,
        version,
        why: format!("malformed {what}: {e}"),
    }
}

/// Decodes the request header of a frame body (after the length prefix);
/// returns its length too. The header is walked first.
pub(super) fn decode_header(
    api: ApiKey,
    version: i16,
    body: &Bytes,
) -> Result<(usize, RequestHeader), EnforceError> {
    let header_version = api.request_header_version(version);
    guard::request_header(header_version, body).map_err(malformed(api, version, "header"))?;
    let mut b = body.clone();
    let header =
        RequestHeader::decode(&mut b, header_version).map_err(decode_error(api, version))?;
    Ok((body.len() - b.len(), header))
}

/// Decodes a request body (after the header), walked first so a hostile
/// array length is refused before kafka-protocol reserves room for it.
pub(super) fn decode_body<M: Decodable>(
    api: ApiKey,
    version: i16,
    body: &Bytes,
) -> Result<M, EnforceError> {
    guard::request(api, version, body).map_err(malformed(api, version, "body"))?;
    let mut b = body.clone();
    M::decode(&mut b, version).map_err(decode_error(api, version))
}

/// A frame of `header` (as received) and a re-encoded body.
pub(super) fn frame_with(
    header: &[u8],
    body: &impl Encodable,
    api: ApiKey,
    version: i16,
) -> Result<Bytes, EnforceError> {
    let mut out = BytesMut::with_capacity(header.len() + 256);
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(header);
    body.encode(&mut out, version)
        .map_err(|e| EnforceError::Encode {
            api,
            version,
            why: e.to_string(),
        })?;
    let len = (out.len() - 4) as i32;
    out[..4].copy_from_slice(&len.to_be_bytes());
    Ok(out.freeze())
}

pub(super) fn reject(
    name: Option<StrBytes>,
    topic_id: Uuid,
    partition: i32,
    v: &Violation,
) -> Rejected {
    Rejected {
        name,
        topic_id,
        partition,
        resource_type: TOPIC_RESOURCE,
        error_code: v.error_code,
        message: v.message.clone(),
        record_errors: v.record_errors.clone(),
    }
}
