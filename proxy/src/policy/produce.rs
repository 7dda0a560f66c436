//! Produce enforcement: acks rules, batch and record checks, then the
//! record pipeline of topics whose policy has stages. A request naming no
//! policed topic is found by a scan of its topic names (no decode) and
//! forwarded as it came.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::produce_request::PartitionProduceData;
use kafka_protocol::messages::{ApiKey, ProduceRequest};
use kafka_protocol::protocol::StrBytes;
use strait_policies::decide::{self, AcksVerdict};
use strait_policies::Violation;
use uuid::Uuid;

use super::order::Refusals;
use super::request::{
    decode_body, decode_header, frame_with, record, reject, EnforceError, Outcome,
};
use super::violations::{pipeline_violation, unknown_topic_id};
use super::{Compiled, TopicPlan};
use crate::cluster::TopicIds;
use crate::codec::{scan_produce_topics, TopicRef};
use crate::large::LargeRecords;
use crate::pipeline;
use crate::pipeline::large::KAFKA_STORAGE_ERROR;
use crate::response::{PendingTraces, Rejected, Step};

/// What a scan of a produce request's topics found, least work first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scan {
    /// No policed topic: forward the bytes as they came.
    Unpoliced,
    /// Policed, with checks on the request and batch headers only.
    Inline,
    /// Policed, and some topic's policy reads or rewrites records.
    RecordWork,
}

/// What record work may use: the cap on a batch's decompressed size, and
/// large-record I/O when it runs.
#[derive(Clone, Default)]
pub struct Work {
    pub cap: usize,
    pub large: Option<Arc<LargeRecords>>,
    /// The connection's refused idempotent batches (set per request).
    pub refusals: Option<Arc<Refusals>>,
}

impl Work {
    /// Record work with no large-record I/O (tests, benchmarks).
    pub fn capped(cap: usize) -> Work {
        Work {
            cap,
            large: None,
            refusals: None,
        }
    }
}

/// What a scan found, and each topic's plan in request order, so the
/// decode that follows resolves no topic again.
#[derive(Debug)]
pub struct Scanned {
    pub kind: Scan,
    /// A topic's policy handles large records: the work may wait on I/O,
    /// so it runs on the large-record pool.
    pub large: bool,
    /// Plan indices by topic position; empty when no topic is policed.
    plans: Vec<Option<usize>>,
}

impl Scanned {
    /// The plan the scan found for the topic at `position`.
    fn plan<'a>(&self, policies: &'a Compiled, position: usize) -> Option<&'a TopicPlan> {
        self.plans
            .get(position)
            .copied()
            .flatten()
            .map(|i| policies.plan_at(i))
    }
}

/// Walks the topic names of a produce `frame` (length prefix included)
/// without decoding it. Allocates only once a topic is policed.
pub fn scan(
    policies: &Compiled,
    names: &TopicIds,
    version: i16,
    frame: &Bytes,
) -> Result<Scanned, EnforceError> {
    let mut kind = Scan::Unpoliced;
    let mut large = false;
    let mut plans: Vec<Option<usize>> = Vec::new();
    let mut seen = 0;
    let mut see = |index: Option<usize>, unknown: bool| {
        let plan = index.map(|i| policies.plan_at(i));
        large |= plan.is_some_and(|p| p.policy.large_records.is_some()) || unknown;
        let scan = match plan {
            Some(p) if p.inspects_produce && p.record_work() => Scan::RecordWork,
            Some(p) if p.inspects_produce => Scan::Inline,
            // An id Strait cannot name yet: decode, and answer it; on the
            // pool, as the id may be learnt (with its stages) by then.
            None if unknown => Scan::RecordWork,
            _ => Scan::Unpoliced,
        };
        if scan != Scan::Unpoliced && kind == Scan::Unpoliced {
            plans.resize(seen, None); // the topics before the first policed one
        }
        kind = kind.max(scan);
        if kind != Scan::Unpoliced {
            plans.push(index);
        }
        seen += 1;
        false // every topic's plan is wanted
    };
    scan_produce_topics(&frame[4..], version, |t| match t {
        TopicRef::Name(n) => {
            let index = std::str::from_utf8(n)
                .ok()
                .and_then(|n| policies.plan_index(n));
            see(index, false)
        }
        TopicRef::Id(id) => match names.name_of(&Uuid::from_bytes(id)) {
            Some(n) => see(policies.plan_index(&n), false),
            None => see(None, true),
        },
    })
    .map_err(|e| EnforceError::Decode {
        api: ApiKey::Produce,
        version,
        why: e.to_string(),
    })?;
    Ok(Scanned { kind, large, plans })
}

/// [`scan`], then [`produce`] when a topic is policed, all on the calling
/// thread (tests and benchmarks; the pump runs record work on the pool).
pub fn scan_and_produce(
    policies: &Compiled,
    names: &TopicIds,
    version: i16,
    acks_at: usize,
    work: &Work,
    frame: Bytes,
) -> Result<Outcome, EnforceError> {
    let scanned = scan(policies, names, version, &frame)?;
    match scanned.kind {
        Scan::Unpoliced => Ok(Outcome::forward(frame)),
        _ => produce(policies, names, &scanned, version, acks_at, work, frame),
    }
}

/// What a request's partitions came to.
#[derive(Default)]
struct Verdicts {
    rejected: Vec<Rejected>,
    traces: Vec<PendingTraces>,
    rewritten: bool,
    upgrade: bool,
}

/// Applies produce rules, then the record pipeline, to a request the scan
/// found policed. `frame` is the whole frame, length prefix included. CPU-heavy
/// for record work (and waits on large-record I/O): the caller runs it on
/// the blocking pool then.
pub fn produce(
    policies: &Compiled,
    names: &TopicIds,
    scanned: &Scanned,
    version: i16,
    acks_at: usize,
    work: &Work,
    frame: Bytes,
) -> Result<Outcome, EnforceError> {
    let api = ApiKey::Produce;
    let body = frame.slice(4..);
    let (header_len, header) = decode_header(api, version, &body)?;
    let client_id = header.client_id.as_ref().map(|c| c.as_str());
    let mut req: ProduceRequest = decode_body(api, version, &body.slice(header_len..))?;
    let txn = req.transactional_id.is_some();
    let mut v = Verdicts::default();
    let received_at_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    for (position, topic) in req.topic_data.iter_mut().enumerate() {
        let (name, plan): (Arc<str>, _) = if topic.name.0.is_empty() {
            // By id (v13): resolved now, as the scan may not have known it.
            match names.name_of(&topic.topic_id) {
                Some(n) => {
                    let plan = policies.plan(&n);
                    (n, plan)
                }
                None => {
                    for p in topic.partition_data.drain(..) {
                        v.rejected.push(unknown_topic_id(topic.topic_id, p.index));
                    }
                    continue;
                }
            }
        } else {
            let Some(plan) = scanned.plan(policies, position) else {
                continue;
            };
            (Arc::from(topic.name.0.as_str()), Some(plan))
        };
        let Some(plan) = plan else {
            continue;
        };
        if !plan.inspects_produce {
            continue;
        }
        let policy = &plan.policy;
        let client_name = (!topic.name.0.is_empty()).then(|| topic.name.0.clone());
        let verdict = decide::decide_acks(policy, req.acks);
        if let AcksVerdict::Reject(violation) = &verdict {
            record(&name, policy, Some(violation));
            if req.acks == 0 {
                return Ok(Outcome::Close(format!(
                    "acks=0 produce to topic {name:?} violates {violation}"
                )));
            }
            for p in topic.partition_data.drain(..) {
                v.rejected.push(reject(
                    client_name.clone(),
                    topic.topic_id,
                    p.index,
                    violation,
                ));
            }
            continue;
        }
        v.upgrade |= verdict == AcksVerdict::UpgradeToAll;
        let partitions = std::mem::take(&mut topic.partition_data);
        let mut kept = Vec::with_capacity(partitions.len());
        for mut p in partitions {
            let target = Target {
                name: &name,
                client_name: &client_name,
                topic_id: topic.topic_id,
                client_id,
                version,
                received_at_ms,
                work,
                txn,
            };
            match partition(plan, &target, &mut p, &mut v) {
                Ok(()) => kept.push(p),
                Err(violation) => {
                    if req.acks == 0 {
                        return Ok(Outcome::Close(format!(
                            "acks=0 produce to topic {name:?} violates {violation}"
                        )));
                    }
                    v.rejected.push(reject(
                        client_name.clone(),
                        topic.topic_id,
                        p.index,
                        &violation,
                    ));
                }
            }
        }
        topic.partition_data = kept;
    }
    let mut steps = Vec::new();
    if !v.traces.is_empty() {
        steps.push(Step::IndexTraces(v.traces));
    }
    if v.rejected.is_empty() && !v.rewritten {
        if !v.upgrade {
            return Ok(Outcome::Forward { frame, steps });
        }
        let mut out = BytesMut::from(&frame[..]);
        out[acks_at..acks_at + 2].copy_from_slice(&(-1i16).to_be_bytes());
        return Ok(Outcome::Forward {
            frame: out.freeze(),
            steps,
        });
    }
    if v.upgrade && req.acks == 1 {
        req.acks = -1;
    }
    req.topic_data.retain(|t| !t.partition_data.is_empty());
    let frame = frame_with(&body[..header_len], &req, api, version)?;
    if !v.rejected.is_empty() {
        steps.push(Step::MergeRejections(v.rejected));
    }
    Ok(Outcome::Forward { frame, steps })
}

/// The partition's topic and request, as the checks and stages see them.
struct Target<'a> {
    name: &'a Arc<str>,
    client_name: &'a Option<StrBytes>,
    topic_id: Uuid,
    client_id: Option<&'a str>,
    version: i16,
    received_at_ms: i64,
    work: &'a Work,
    txn: bool,
}

/// Checks one partition and runs the pipeline over its batches; on success
/// `p.records` holds what to forward.
fn partition(
    plan: &TopicPlan,
    t: &Target<'_>,
    p: &mut PartitionProduceData,
    v: &mut Verdicts,
) -> Result<(), Violation> {
    let policy = &plan.policy;
    let cap = t.work.cap;
    let checked = super::checks::check_partition(plan, t.txn, p.records.clone(), cap);
    let refusals = t
        .work
        .refusals
        .as_deref()
        .filter(|_| policy.large_records.is_some());
    if let (Some(r), Err(_)) = (refusals, &checked) {
        // A refusal for good is a verdict too: if this is the retry the
        // producer's later batches wait behind (a reload may have added a
        // check it fails), they must not wait for it any longer.
        if let Some(Ok(batches)) = p.records.clone().map(crate::codec::batch::batches) {
            batches.iter().for_each(|b| r.settled(t.name, p.index, b));
        }
    }
    if let (Some(r), Ok(batches)) = (refusals, &checked) {
        if let Some(seq) = batches
            .iter()
            .find_map(|b| r.waits_behind(t.name, p.index, b))
        {
            let v = super::order::waiting(policy, seq);
            record(t.name, policy, Some(&v));
            return Err(v);
        }
    }
    let result = match checked {
        Ok(batches) if !plan.pipeline.is_empty() && !batches.is_empty() => {
            let mut traced = Vec::new();
            let mut cx = pipeline::Context {
                topic: t.name,
                partition: p.index,
                client_id: t.client_id,
                api_version: t.version,
                received_at_ms: t.received_at_ms,
                traced: &mut traced,
                records_before: 0,
                large: t.work.large.as_deref(),
            };
            match plan.pipeline.run(&batches, cap, &mut cx) {
                Err(e) => {
                    let v = pipeline_violation(policy, e);
                    if let Some(r) = refusals {
                        // Only a retriable refusal is sent again; after any
                        // other the producer's later batches wait no more.
                        if v.error_code == KAFKA_STORAGE_ERROR {
                            batches.iter().for_each(|b| r.refused(t.name, p.index, b));
                        } else {
                            batches.iter().for_each(|b| r.settled(t.name, p.index, b));
                        }
                    }
                    Err(v)
                }
                Ok(new) => {
                    if let Some(r) = refusals {
                        batches.iter().for_each(|b| r.settled(t.name, p.index, b));
                    }
                    v.rewritten |= new.is_some();
                    p.records = new.or(p.records.take());
                    if !traced.is_empty() {
                        v.traces.push(PendingTraces {
                            topic: t.name.to_string(),
                            name: t.client_name.clone(),
                            topic_id: t.topic_id,
                            partition: p.index,
                            client: t.client_id.map(str::to_string),
                            traced,
                        });
                    }
                    Ok(())
                }
            }
        }
        Ok(_) => Ok(()),
        Err(e) => Err(e),
    };
    record(t.name, policy, result.as_ref().err());
    result
}
