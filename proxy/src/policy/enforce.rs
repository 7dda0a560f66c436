//! Enforcement on the wire. A request the policies inspect is buffered whole,
//! decoded (request structure and batch headers; records only when a rule
//! needs them) and then forwarded unchanged, forwarded with `acks` or the
//! isolation level patched in place, or forwarded without the rejected parts,
//! whose errors are merged into the broker's response ([`Patch`]).

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    AlterConfigsRequest, ApiKey, CreateTopicsRequest, DeleteTopicsRequest, FetchRequest,
    IncrementalAlterConfigsRequest, ProduceRequest, RequestHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use strait_policies::decide::{self, AcksVerdict, NewTopic};
use strait_policies::{Policy, PolicySet, Violation};
use uuid::Uuid;

use crate::codec::batch::{self, Batch, BatchError};
use crate::codec::{scan_produce_topics, TopicRef};
use crate::pipeline::{self, Traced};

/// Kafka's UNKNOWN_TOPIC_ID (retriable: the client refreshes its metadata).
const UNKNOWN_TOPIC_ID: i16 = 100;
/// Resource type TOPIC in AlterConfigs.
const TOPIC_RESOURCE: i8 = 2;

/// Whether policies inspect this api key under the current set.
pub fn inspects(set: &PolicySet, api_key: i16) -> bool {
    match ApiKey::try_from(api_key) {
        Ok(ApiKey::Produce) => set.has_produce_rules(),
        Ok(ApiKey::Fetch) => set.has_fetch_rules(),
        Ok(
            ApiKey::CreateTopics
            | ApiKey::AlterConfigs
            | ApiKey::IncrementalAlterConfigs
            | ApiKey::DeleteTopics,
        ) => set.has_admin_rules(),
        _ => false,
    }
}

/// A rejected part of a request, answered inside the broker's response.
#[derive(Debug, Clone)]
pub struct Rejected {
    /// Topic or resource name as the client sent it (None: by id).
    pub name: Option<StrBytes>,
    pub topic_id: Uuid,
    pub partition: i32,
    pub resource_type: i8,
    pub error_code: i16,
    pub message: String,
    pub record_errors: Vec<(i32, String)>,
}

/// Errors to merge into the response of a request.
#[derive(Debug, Clone, Default)]
pub struct Patch {
    pub rejected: Vec<Rejected>,
    /// A fetch Strait forced to read_committed for a read_uncommitted client:
    /// drop aborted transactions' batches from the response, as the client would not.
    pub filter_aborted: bool,
    /// Trace ids given to produced records, indexed once the response names offsets.
    pub traces: Vec<PendingTraces>,
}

/// A partition's traced records, waiting for the broker's base offset.
#[derive(Debug, Clone)]
pub struct PendingTraces {
    pub topic: String,
    /// As the client named it (None: by id).
    pub name: Option<StrBytes>,
    pub topic_id: Uuid,
    pub partition: i32,
    pub client: Option<String>,
    pub traced: Vec<Traced>,
}

/// What to do with an inspected request.
#[derive(Debug)]
pub enum Outcome {
    /// Forward these bytes (the original frame, patched, or re-encoded).
    Forward { frame: Bytes, patch: Option<Patch> },
    /// Close the connection: acks=0 has no response to carry the error.
    Close(String),
}

/// Per-connection enforcement state.
#[derive(Debug, Default)]
pub struct ConnState {
    /// A fetch on this connection named a read_committed topic. Fetch sessions
    /// omit unchanged topics later, so the connection stays forced.
    pub read_committed: bool,
}

/// Resolves topic ids (Produce v13, Fetch v13+) to names.
pub trait TopicNames {
    fn name_of(&self, id: &Uuid) -> Option<String>;
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
}

/// One policy decision, for the log and the metrics.
pub struct Decision<'a> {
    pub topic: &'a str,
    pub policy: &'a Policy,
    pub violation: Option<&'a Violation>,
}

fn record(d: Decision<'_>) {
    let (rule, outcome) = match d.violation {
        None => ("all", "allowed"),
        Some(v) => (v.rule.name(), "rejected"),
    };
    metrics::counter!("strait_policy_decisions_total",
        "topic" => d.topic.to_string(), "policy" => d.policy.name.clone(), "rule" => rule, "outcome" => outcome)
    .increment(1);
}

/// Splits a request frame (after the length prefix) into header length and body.
fn split_header(api: ApiKey, version: i16, body: &Bytes) -> Result<usize, EnforceError> {
    decode_header(api, version, body).map(|(len, _)| len)
}

fn decode_header(
    api: ApiKey,
    version: i16,
    body: &Bytes,
) -> Result<(usize, RequestHeader), EnforceError> {
    let mut b = body.clone();
    let header =
        RequestHeader::decode(&mut b, api.request_header_version(version)).map_err(|e| {
            EnforceError::Decode {
                api,
                version,
                why: e.to_string(),
            }
        })?;
    Ok((body.len() - b.len(), header))
}

fn frame_with(
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

/// The request re-encoded after a filter removed something, else `None`.
fn reencode(
    changed: bool,
    header: &[u8],
    req: &impl Encodable,
    api: ApiKey,
    version: i16,
) -> Result<Option<Bytes>, EnforceError> {
    changed
        .then(|| frame_with(header, req, api, version))
        .transpose()
}

fn reject(name: Option<StrBytes>, topic_id: Uuid, partition: i32, v: &Violation) -> Rejected {
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

/// Applies produce rules, then the record pipeline of topics whose policy
/// has stages. `frame` is the whole frame, length prefix included; `cap`
/// bounds a batch's decompressed size.
pub fn produce(
    set: &PolicySet,
    names: &dyn TopicNames,
    version: i16,
    acks_at: usize,
    cap: usize,
    frame: Bytes,
) -> Result<Outcome, EnforceError> {
    let api = ApiKey::Produce;
    // Fast path: a request naming no policed topic is forwarded undecoded.
    let policed = |t: TopicRef<'_>| match t {
        TopicRef::Name(n) => std::str::from_utf8(n)
            .ok()
            .and_then(|n| set.resolve(n))
            .is_some_and(|p| p.inspects_produce()),
        TopicRef::Id(id) => names
            .name_of(&Uuid::from_bytes(id))
            .is_none_or(|n| set.resolve(&n).is_some_and(|p| p.inspects_produce())),
    };
    let any =
        scan_produce_topics(&frame[4..], version, policed).map_err(|e| EnforceError::Decode {
            api,
            version,
            why: e.to_string(),
        })?;
    if !any {
        return Ok(Outcome::Forward { frame, patch: None });
    }
    let body = frame.slice(4..);
    let (header_len, header) = decode_header(api, version, &body)?;
    let client_id = header.client_id.as_ref().map(|c| c.as_str());
    let mut b = body.slice(header_len..);
    let mut req = ProduceRequest::decode(&mut b, version).map_err(|e| EnforceError::Decode {
        api,
        version,
        why: e.to_string(),
    })?;
    let txn = req.transactional_id.is_some();
    let mut rejected: Vec<Rejected> = Vec::new();
    let mut traces: Vec<PendingTraces> = Vec::new();
    let mut rewritten = false;
    let mut upgrade = false;
    let received_at_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    for topic in &mut req.topic_data {
        let name = if topic.name.0.is_empty() {
            match names.name_of(&topic.topic_id) {
                Some(n) => n,
                None => {
                    for p in topic.partition_data.drain(..) {
                        rejected.push(Rejected {
                            name: None,
                            topic_id: topic.topic_id,
                            partition: p.index,
                            resource_type: TOPIC_RESOURCE,
                            error_code: UNKNOWN_TOPIC_ID,
                            message: "Strait has not seen this topic id in Metadata yet; refresh metadata and retry".into(),
                            record_errors: vec![],
                        });
                    }
                    continue;
                }
            }
        } else {
            topic.name.0.to_string()
        };
        let Some(policy) = set.resolve(&name) else {
            continue;
        };
        if !policy.inspects_produce() {
            continue;
        }
        let client_name = (!topic.name.0.is_empty()).then(|| topic.name.0.clone());
        let verdict = decide::decide_acks(policy, req.acks);
        if let AcksVerdict::Reject(v) = &verdict {
            if req.acks == 0 {
                record(Decision {
                    topic: &name,
                    policy,
                    violation: Some(v),
                });
                return Ok(Outcome::Close(format!(
                    "acks=0 produce to topic {name:?} violates {v}"
                )));
            }
            for p in topic.partition_data.drain(..) {
                rejected.push(reject(client_name.clone(), topic.topic_id, p.index, v));
            }
            record(Decision {
                topic: &name,
                policy,
                violation: Some(v),
            });
            continue;
        }
        upgrade |= verdict == AcksVerdict::UpgradeToAll;
        let stages = pipeline::stages(policy);
        let mut kept = Vec::with_capacity(topic.partition_data.len());
        for mut p in topic.partition_data.drain(..) {
            let mut check = check_partition(policy, txn, p.records.clone(), cap);
            if let (Ok(batches), false) = (&check, stages.is_empty()) {
                let mut traced = Vec::new();
                let mut cx = pipeline::Context {
                    topic: &name,
                    partition: p.index,
                    client_id,
                    api_version: version,
                    received_at_ms,
                    traced: &mut traced,
                    records_before: 0,
                };
                match pipeline::run(&stages, batches, cap, &mut cx) {
                    Err(e) => check = Err(pipeline_violation(policy, e)),
                    Ok(new) => {
                        rewritten |= new.is_some();
                        p.records = new.or(p.records.take());
                    }
                }
                if check.is_ok() && !traced.is_empty() {
                    traces.push(PendingTraces {
                        topic: name.clone(),
                        name: client_name.clone(),
                        topic_id: topic.topic_id,
                        partition: p.index,
                        client: client_id.map(str::to_string),
                        traced,
                    });
                }
            }
            record(Decision {
                topic: &name,
                policy,
                violation: check.as_ref().err(),
            });
            match check {
                Ok(_) => kept.push(p),
                Err(v) => {
                    if req.acks == 0 {
                        return Ok(Outcome::Close(format!(
                            "acks=0 produce to topic {name:?} violates {v}"
                        )));
                    }
                    rejected.push(reject(client_name.clone(), topic.topic_id, p.index, &v));
                }
            }
        }
        topic.partition_data = kept;
    }
    let traces_patch = |traces: Vec<PendingTraces>| {
        (!traces.is_empty()).then(|| Patch {
            traces,
            ..Patch::default()
        })
    };
    if rejected.is_empty() && !rewritten {
        let patch = traces_patch(traces);
        if !upgrade {
            return Ok(Outcome::Forward { frame, patch });
        }
        let mut out = BytesMut::from(&frame[..]);
        out[acks_at..acks_at + 2].copy_from_slice(&(-1i16).to_be_bytes());
        return Ok(Outcome::Forward {
            frame: out.freeze(),
            patch,
        });
    }
    if upgrade && req.acks == 1 {
        req.acks = -1;
    }
    req.topic_data.retain(|t| !t.partition_data.is_empty());
    let frame = frame_with(&body[..header_len], &req, api, version)?;
    let patch = if rejected.is_empty() {
        traces_patch(traces)
    } else {
        Some(Patch {
            rejected,
            traces,
            ..Patch::default()
        })
    };
    Ok(Outcome::Forward { frame, patch })
}

/// A batch Strait cannot read: CORRUPT_MESSAGE where the broker would say so
/// too (bad CRC, malformed records), else POLICY_VIOLATION; the message names
/// the policy.
fn unreadable(policy: &Policy, rule: strait_policies::Rule, e: &BatchError) -> Violation {
    let error_code = match e {
        BatchError::Crc { .. } | BatchError::Record(_) | BatchError::Truncated(_) => {
            decide::CORRUPT_MESSAGE
        }
        _ => decide::POLICY_VIOLATION,
    };
    Violation {
        rule,
        error_code,
        message: format!(
            "Strait policy {:?} ({}, topics {}) cannot {} this batch: {e}",
            policy.name,
            policy.source.file,
            policy.selector,
            if policy.rewrites_records() {
                "rewrite"
            } else {
                "inspect"
            }
        ),
        record_errors: vec![],
    }
}

fn pipeline_violation(policy: &Policy, e: pipeline::PipelineError) -> Violation {
    let mut v = unreadable(policy, e.rule, &e.error);
    v.message = format!("{} (stage {})", v.message, e.stage);
    v
}

/// Checks a partition's batches; returns them split for the pipeline (empty
/// when neither the rules nor a stage needs them).
fn check_partition(
    policy: &Policy,
    txn: bool,
    records: Option<Bytes>,
    cap: usize,
) -> Result<Vec<Batch>, Violation> {
    let Some(records) = records else {
        return Ok(Vec::new());
    };
    let rules = policy.produce.as_ref();
    let needs_records = rules.is_some_and(|r| r.needs_records());
    if !policy.rewrites_records() && !rules.is_some_and(|r| r.needs_batches()) {
        // acks rules alone: old message formats and anything else pass as bytes.
        return Ok(Vec::new());
    }
    let readable = |e: BatchError| unreadable(policy, strait_policies::Rule::Readable, &e);
    let batches = batch::batches(records).map_err(readable)?;
    for b in &batches {
        decide::decide_batch(policy, txn, &b.facts)?;
        if needs_records {
            let bytes = batch::record_bytes(b, cap).map_err(readable)?;
            let views = batch::records(&bytes, b.record_count).map_err(readable)?;
            decide::decide_records(policy, views)?;
        }
    }
    Ok(batches)
}

/// Byte offset of `isolation_level` in a Fetch request body (v4+): after
/// replica_id (until v14), max_wait_ms, min_bytes and max_bytes.
fn isolation_offset(version: i16) -> usize {
    if version >= 15 {
        12
    } else {
        16
    }
}

/// Forces read_committed when a fetched topic's policy asks for it.
pub fn fetch(
    set: &PolicySet,
    names: &dyn TopicNames,
    state: &mut ConnState,
    version: i16,
    frame: Bytes,
) -> Result<Outcome, EnforceError> {
    let api = ApiKey::Fetch;
    let body = frame.slice(4..);
    let header_len = split_header(api, version, &body)?;
    if !state.read_committed {
        let mut b = body.slice(header_len..);
        let req = FetchRequest::decode(&mut b, version).map_err(|e| EnforceError::Decode {
            api,
            version,
            why: e.to_string(),
        })?;
        state.read_committed = req.topics.iter().any(|t| {
            let name = if version >= 13 {
                names.name_of(&t.topic_id)
            } else {
                Some(t.topic.0.to_string())
            };
            match name {
                Some(n) => set
                    .resolve(&n)
                    .is_some_and(|p| decide::forces_read_committed(p)),
                // An id Strait cannot name yet: stay on the safe side.
                None => true,
            }
        });
    }
    let at = 4 + header_len + isolation_offset(version);
    if state.read_committed && frame.get(at) == Some(&0) {
        let mut out = BytesMut::from(&frame[..]);
        out[at] = 1;
        metrics::counter!("strait_policy_fetch_read_committed_total").increment(1);
        let patch = Patch {
            filter_aborted: true,
            ..Patch::default()
        };
        return Ok(Outcome::Forward {
            frame: out.freeze(),
            patch: Some(patch),
        });
    }
    Ok(Outcome::Forward { frame, patch: None })
}

/// CreateTopics, AlterConfigs, IncrementalAlterConfigs and DeleteTopics guardrails.
pub fn admin(
    set: &PolicySet,
    names: &dyn TopicNames,
    api_key: i16,
    version: i16,
    frame: Bytes,
) -> Result<Outcome, EnforceError> {
    let api = ApiKey::try_from(api_key).expect("inspected keys are known");
    let body = frame.slice(4..);
    let header_len = split_header(api, version, &body)?;
    let mut b = body.slice(header_len..);
    let dec = |e: anyhow::Error| EnforceError::Decode {
        api,
        version,
        why: e.to_string(),
    };
    let mut rejected = Vec::new();
    let mut check = |name: &str,
                     client: Option<StrBytes>,
                     id: Uuid,
                     f: &dyn Fn(&Policy) -> Result<(), Violation>|
     -> bool {
        let Some(policy) = set.resolve(name) else {
            return true;
        };
        let result = f(policy);
        record(Decision {
            topic: name,
            policy,
            violation: result.as_ref().err(),
        });
        match result {
            Ok(()) => true,
            Err(v) => {
                rejected.push(reject(client, id, -1, &v));
                false
            }
        }
    };
    let header = &body[..header_len];
    // AlterConfigs and IncrementalAlterConfigs share a shape but not a type.
    macro_rules! filter_alter_configs {
        ($request:ty) => {{
            let mut req = <$request>::decode(&mut b, version).map_err(dec)?;
            let before = req.resources.len();
            req.resources.retain(|r| {
                if r.resource_type != TOPIC_RESOURCE {
                    return true;
                }
                let keys: Vec<&str> = r.configs.iter().map(|c| c.name.as_str()).collect();
                check(
                    r.resource_name.as_str(),
                    Some(r.resource_name.clone()),
                    Uuid::nil(),
                    &|p| decide::decide_alter_configs(p, keys.iter().copied()),
                )
            });
            reencode(req.resources.len() != before, header, &req, api, version)?
        }};
    }
    let new_frame = match api {
        ApiKey::CreateTopics => {
            let mut req = CreateTopicsRequest::decode(&mut b, version).map_err(dec)?;
            let before = req.topics.len();
            req.topics.retain(|t| {
                let (partitions, rf) = if t.assignments.is_empty() {
                    (t.num_partitions, t.replication_factor)
                } else {
                    (
                        t.assignments.len() as i32,
                        t.assignments[0].broker_ids.len() as i16,
                    )
                };
                let configs: Vec<(&str, Option<&str>)> = t
                    .configs
                    .iter()
                    .map(|c| (c.name.as_str(), c.value.as_ref().map(|v| v.as_str())))
                    .collect();
                let nt = NewTopic {
                    name: t.name.0.as_str(),
                    partitions,
                    replication_factor: rf,
                    configs,
                };
                check(
                    t.name.0.as_str(),
                    Some(t.name.0.clone()),
                    Uuid::nil(),
                    &|p| decide::decide_create_topic(p, &nt),
                )
            });
            reencode(req.topics.len() != before, header, &req, api, version)?
        }
        ApiKey::AlterConfigs => filter_alter_configs!(AlterConfigsRequest),
        ApiKey::IncrementalAlterConfigs => filter_alter_configs!(IncrementalAlterConfigsRequest),
        ApiKey::DeleteTopics => {
            let mut req = DeleteTopicsRequest::decode(&mut b, version).map_err(dec)?;
            let before = req.topic_names.len() + req.topics.len();
            req.topic_names.retain(|n| {
                check(
                    n.0.as_str(),
                    Some(n.0.clone()),
                    Uuid::nil(),
                    &decide::decide_delete_topic,
                )
            });
            req.topics.retain(|t| {
                let name = match &t.name {
                    Some(n) => Some(n.0.to_string()),
                    None => names.name_of(&t.topic_id),
                };
                match name {
                    Some(n) => check(
                        &n,
                        t.name.as_ref().map(|n| n.0.clone()),
                        t.topic_id,
                        &decide::decide_delete_topic,
                    ),
                    None => true, // unknown id: the broker answers for it
                }
            });
            reencode(
                req.topic_names.len() + req.topics.len() != before,
                header,
                &req,
                api,
                version,
            )?
        }
        _ => None,
    };
    Ok(match new_frame {
        None => Outcome::Forward { frame, patch: None },
        Some(f) => Outcome::Forward {
            frame: f,
            patch: Some(Patch {
                rejected,
                ..Patch::default()
            }),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::TopicName;

    struct NoIds;
    impl TopicNames for NoIds {
        fn name_of(&self, _: &Uuid) -> Option<String> {
            None
        }
    }

    fn produce_frame(topic: &str, acks: i16) -> (Bytes, usize) {
        produce_frame_with(&[(topic, None)], acks)
    }

    /// A Produce v9 frame with one partition per (topic, records).
    fn produce_frame_with(topics: &[(&str, Option<Bytes>)], acks: i16) -> (Bytes, usize) {
        use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
        let mut b = BytesMut::new();
        b.extend_from_slice(&[0; 4]);
        RequestHeader::default()
            .with_request_api_key(0)
            .with_request_api_version(9)
            .with_client_id(Some(StrBytes::from_static_str("c")))
            .encode(&mut b, 2)
            .unwrap();
        ProduceRequest::default()
            .with_acks(acks)
            .with_topic_data(
                topics
                    .iter()
                    .map(|(topic, records)| {
                        TopicProduceData::default()
                            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                            .with_partition_data(vec![PartitionProduceData::default()
                                .with_index(0)
                                .with_records(records.clone())])
                    })
                    .collect(),
            )
            .encode(&mut b, 9)
            .unwrap();
        let len = (b.len() - 4) as i32;
        b[..4].copy_from_slice(&len.to_be_bytes());
        let at = crate::codec::peek_produce_acks(&b[4..], 9, b.len() - 4)
            .unwrap()
            .unwrap()
            .1
            + 4;
        (b.freeze(), at)
    }

    #[test]
    fn acks_one_is_upgraded_in_place_and_other_topics_pass_untouched() {
        let set = PolicySet::parse(&[(
            "p.toml".into(),
            "[[policy]]\nname = \"up\"\ntopics = { exact = \"t\" }\n[policy.produce]\nacks = \"upgrade\"\n".into(),
        )])
        .unwrap();
        let (frame, at) = produce_frame("t", 1);
        let Outcome::Forward { frame: out, patch } =
            produce(&set, &NoIds, 9, at, 1 << 20, frame.clone()).unwrap()
        else {
            panic!("forwarded")
        };
        assert!(patch.is_none());
        assert_eq!(
            i16::from_be_bytes([out[at], out[at + 1]]),
            -1,
            "acks=1 became acks=all"
        );
        let mut diff: Vec<usize> = (0..frame.len()).filter(|&i| frame[i] != out[i]).collect();
        diff.dedup();
        assert!(
            diff.iter().all(|&i| i == at || i == at + 1),
            "only the acks bytes change"
        );
        let (other, at) = produce_frame("unpoliced", 1);
        let Outcome::Forward { frame: same, .. } =
            produce(&set, &NoIds, 9, at, 1 << 20, other.clone()).unwrap()
        else {
            panic!("forwarded")
        };
        assert_eq!(same, other, "a topic without policy passes byte for byte");
    }

    #[test]
    fn pipeline_rewrites_only_its_topic_and_hands_trace_ids_to_the_response() {
        use crate::codec::records::{build_batch, Producer};
        let set = PolicySet::parse(&[(
            "p.toml".into(),
            "[[policy]]\nname = \"traced\"\ntopics = { exact = \"t\" }\n[policy.trace]\n".into(),
        )])
        .unwrap();
        let record: crate::codec::records::RecordSpec<'_> = (None, Some(&b"v"[..]), &[]);
        let batch = build_batch(Producer::NONE, 0, &[record; 3]);
        let (frame, at) = produce_frame_with(
            &[("t", Some(batch.clone())), ("other", Some(batch.clone()))],
            -1,
        );
        let Outcome::Forward { frame: out, patch } =
            produce(&set, &NoIds, 9, at, 1 << 20, frame).unwrap()
        else {
            panic!("forwarded")
        };
        let patch = patch.expect("trace ids wait for the response");
        assert_eq!(patch.traces.len(), 1);
        assert_eq!(patch.traces[0].topic, "t");
        assert_eq!(patch.traces[0].traced.len(), 3);
        assert!(patch.rejected.is_empty());
        let body = out.slice(4..);
        let header_len = split_header(ApiKey::Produce, 9, &body).unwrap();
        let req = ProduceRequest::decode(&mut body.slice(header_len..), 9).unwrap();
        let records = |i: usize| req.topic_data[i].partition_data[0].records.clone().unwrap();
        assert_eq!(
            records(1),
            batch,
            "the unpoliced topic's batch passes as bytes"
        );
        let mut edit = crate::codec::records::BatchEdit::new(records(0), 1 << 20).unwrap();
        let rs = edit.peek_records().unwrap();
        assert!(rs.iter().all(|r| r.header(b"traceparent").is_some()));
    }

    #[test]
    fn isolation_level_offset_matches_the_codec() {
        for v in 4..=18 {
            let req = |iso: i8| {
                let mut b = BytesMut::new();
                FetchRequest::default()
                    .with_isolation_level(iso)
                    .with_max_wait_ms(500)
                    .with_topics(vec![FetchTopic::default()
                        .with_topic(TopicName(StrBytes::from_static_str(if v < 13 {
                            "t"
                        } else {
                            ""
                        })))
                        .with_partitions(vec![FetchPartition::default()])])
                    .encode(&mut b, v)
                    .unwrap();
                b
            };
            let (a, b) = (req(0), req(1));
            let diff: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
            assert_eq!(diff, vec![isolation_offset(v)], "Fetch v{v}");
        }
    }
}
