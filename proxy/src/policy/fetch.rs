//! Fetch enforcement: a fetch of a topic whose policy asks for
//! read_committed is forced to it (the isolation level patched in place),
//! and the response plan drops aborted transactions' batches, which a
//! read_uncommitted client would not filter itself. A fetch on a connection
//! that has named a topic with large-record handling gets the restore step,
//! with the limits the request asked for.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, FetchRequest};

use std::sync::Arc;

use super::request::{decode_body, decode_header, ConnState, EnforceError, Outcome};
use super::Compiled;
use crate::cluster::TopicIds;
use crate::large::restore::{RestoreSpec, TopicKey};
use crate::metrics;
use crate::response::Step;

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
    policies: &Arc<Compiled>,
    names: &TopicIds,
    state: &mut ConnState,
    version: i16,
    frame: Bytes,
) -> Result<Outcome, EnforceError> {
    let api = ApiKey::Fetch;
    let body = frame.slice(4..);
    let (header_len, _) = decode_header(api, version, &body)?;
    let may_restore = policies.has_restores();
    let mut steps = Vec::new();
    if !state.read_committed || may_restore {
        let req: FetchRequest = decode_body(api, version, &body.slice(header_len..))?;
        // Fetch sessions omit unchanged topics later: both stay set.
        for t in &req.topics {
            let plan = if version >= 13 {
                match names.name_of(&t.topic_id) {
                    Some(n) => policies.plan(&n),
                    None => {
                        // An id Strait cannot name yet: stay on the safe side.
                        state.read_committed = true;
                        state.restores |= may_restore;
                        continue;
                    }
                }
            } else {
                policies.plan(t.topic.0.as_str())
            };
            if let Some(p) = plan {
                state.read_committed |= p.read_committed;
                state.restores |= p.restores;
            }
        }
        if state.restores {
            steps.push(Step::RestoreLarge(restore_spec(policies, &req, version)));
        }
    }
    let at = 4 + header_len + isolation_offset(version);
    if state.read_committed && frame.get(at) == Some(&0) {
        let mut out = BytesMut::from(&frame[..]);
        out[at] = 1;
        metrics::fetch_read_committed();
        steps.push(Step::DropAborted);
        return Ok(Outcome::Forward {
            frame: out.freeze(),
            steps,
        });
    }
    if state.restores && frame.get(at) == Some(&1) {
        // A read_committed client drops aborted batches itself, but only
        // after Strait would have restored their values: drop them first.
        steps.push(Step::DropAborted);
    }
    Ok(Outcome::Forward { frame, steps })
}

/// The limits a fetch asked for, and which topics the restore step handles
/// (under the policies this request was decided with).
fn restore_spec(policies: &Arc<Compiled>, req: &FetchRequest, version: i16) -> RestoreSpec {
    let partition_max = req
        .topics
        .iter()
        .flat_map(|t| {
            let key = if version >= 13 {
                TopicKey::Id(t.topic_id)
            } else {
                TopicKey::Name(t.topic.0.to_string())
            };
            t.partitions.iter().map(move |p| {
                (
                    key.clone(),
                    p.partition,
                    p.partition_max_bytes.max(0) as usize,
                )
            })
        })
        .collect();
    let policies = policies.clone();
    RestoreSpec {
        max_bytes: req.max_bytes.max(0) as usize,
        partition_max,
        restores: Arc::new(move |topic| policies.plan(topic).is_some_and(|p| p.restores)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::protocol::{Encodable, StrBytes};

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
