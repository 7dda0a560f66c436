//! Fetch enforcement: a fetch that reads a topic whose policy asks for
//! read_committed is forced to it (the isolation level patched in place),
//! and the response plan drops aborted transactions' batches, which a
//! read_uncommitted client would not filter itself. A fetch that reads a
//! topic with large-record handling gets the restore step, with the limits
//! the request asked for.
//!
//! Each fetch is decided from every partition it reads, whatever the
//! connection saw before: the partitions it names, and those of the fetch
//! session (KIP-227) it continues, which Strait follows
//! ([`crate::response::session`]). An incremental fetch of a session Strait
//! never saw created gets FETCH_SESSION_ID_NOT_FOUND, and the client starts
//! anew. Topic ids Strait cannot name are looked up with the internal
//! client first; one still unknown counts as policed (read_committed forced,
//! the restore step planned, which fails such a partition closed).

use std::collections::HashSet;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, FetchRequest};
use uuid::Uuid;

use super::request::{decode_body, decode_header, ConnState, EnforceError, Outcome};
use super::Compiled;
use crate::cluster::TopicIds;
use crate::kafka_client::KafkaClient;
use crate::large::reference::Scope;
use crate::large::restore::{RestoreSpec, TopicKey};
use crate::metrics;
use crate::response::session::{Partition, SessionNote, Use};
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

/// Forces read_committed and plans the restore step for what the fetch
/// reads. `lookup` names topic ids Strait has not learned (the internal
/// client; `None` in tests without a cluster).
pub async fn fetch(
    policies: &Arc<Compiled>,
    names: &TopicIds,
    lookup: Option<&KafkaClient>,
    state: &mut ConnState,
    version: i16,
    frame: Bytes,
) -> Result<Outcome, EnforceError> {
    let api = ApiKey::Fetch;
    let body = frame.slice(4..);
    let (header_len, _) = decode_header(api, version, &body)?;
    let req: FetchRequest = decode_body(api, version, &body.slice(header_len..))?;
    let key = |name: &kafka_protocol::messages::TopicName, id: Uuid| {
        if version >= 13 {
            TopicKey::Id(id)
        } else {
            TopicKey::Name(name.0.to_string())
        }
    };
    let named: Vec<Partition> = req
        .topics
        .iter()
        .flat_map(|t| {
            let k = key(&t.topic, t.topic_id);
            t.partitions.iter().map(move |p| {
                (
                    k.clone(),
                    p.partition,
                    p.partition_max_bytes.max(0) as usize,
                )
            })
        })
        .collect();
    let sessions = &state.sessions;
    let (reads, note) = if version < 7 {
        (named, None)
    } else {
        let forgets: Vec<(TopicKey, i32)> = req
            .forgotten_topics_data
            .iter()
            .flat_map(|t| {
                let k = key(&t.topic, t.topic_id);
                t.partitions.iter().map(move |p| (k.clone(), *p))
            })
            .collect();
        match sessions.classify(req.session_id, req.session_epoch, &named, &forgets) {
            Use::Sessionless => (named, None),
            Use::Create => {
                let note = SessionNote::create(sessions.clone(), named.clone());
                (named, Some(note))
            }
            Use::Known { id, partitions } => (
                partitions,
                Some(SessionNote::continues(sessions.clone(), id)),
            ),
            Use::Unknown(id) => {
                metrics::fetch_session_unknown();
                tracing::debug!(session = id, "an incremental fetch continues a session Strait never saw created; answering FETCH_SESSION_ID_NOT_FOUND");
                return Ok(Outcome::Forward {
                    frame,
                    steps: vec![Step::SessionNotFound],
                });
            }
        }
    };
    if let Some(client) = lookup {
        let unknown: Vec<Uuid> = reads
            .iter()
            .filter_map(|(k, _, _)| match k {
                TopicKey::Id(id) if names.name_of(id).is_none() => Some(*id),
                _ => None,
            })
            .collect();
        if !unknown.is_empty() {
            names.look_up(&unknown, || client.topic_ids()).await;
        }
    }
    let (mut read_committed, mut restores) = (false, false);
    let topics: HashSet<&TopicKey> = reads.iter().map(|(k, _, _)| k).collect();
    for t in topics {
        let plan = match t {
            TopicKey::Name(n) => policies.plan(n),
            TopicKey::Id(id) => match names.name_of(id) {
                Some(n) => policies.plan(&n),
                None => {
                    // Still unknown after the look-up: the safe side.
                    read_committed = true;
                    restores |= policies.has_restores();
                    continue;
                }
            },
        };
        if let Some(p) = plan {
            read_committed |= p.read_committed;
            restores |= p.restores;
        }
    }
    let mut steps: Vec<Step> = note.into_iter().map(Step::NoteSession).collect();
    if restores {
        steps.push(Step::RestoreLarge(restore_spec(policies, &req, reads)));
    }
    let at = 4 + header_len + isolation_offset(version);
    if read_committed && frame.get(at) == Some(&0) {
        let mut out = BytesMut::from(&frame[..]);
        out[at] = 1;
        metrics::fetch_read_committed();
        steps.push(Step::DropAborted);
        return Ok(Outcome::Forward {
            frame: out.freeze(),
            steps,
        });
    }
    if restores && frame.get(at) == Some(&1) {
        // A read_committed client drops aborted batches itself, but only
        // after Strait would have restored their values: drop them first.
        steps.push(Step::DropAborted);
    }
    Ok(Outcome::Forward { frame, steps })
}

/// The limits a fetch asked for over the partitions it `reads`, and which
/// topics the restore step handles (under the policies this request was
/// decided with).
fn restore_spec(
    policies: &Arc<Compiled>,
    req: &FetchRequest,
    reads: Vec<Partition>,
) -> RestoreSpec {
    let policies = policies.clone();
    RestoreSpec {
        max_bytes: req.max_bytes.max(0) as usize,
        partition_max: reads,
        restores: Arc::new(move |topic| {
            let policy = &policies.plan(topic)?.policy;
            let rules = policy.large_records.as_ref().filter(|l| l.restores())?;
            Some(Scope::new(topic, rules))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    #[test]
    fn the_restore_spec_scopes_references_by_the_topics_policy() {
        let set = strait_policies::PolicySet::parse(&[(
            "p.toml".into(),
            "[[policy]]\nname = \"m\"\ntopics = { prefix = \"m.\" }\n\
             [policy.large_records]\nremedies = [\"chunk\"]\nprefix = \"objs\"\nchunk_topic = \"c.{topic}\"\n\
             [[policy]]\nname = \"z\"\ntopics = { prefix = \"z.\" }\n\
             [policy.large_records]\nremedies = [\"compress\"]\n"
                .into(),
        )])
        .unwrap();
        let rules = set.resolve("m.x").unwrap().large_records.clone().unwrap();
        let policies = Arc::new(Compiled::new(set, 10));
        let spec = restore_spec(&policies, &FetchRequest::default(), Vec::new());
        assert_eq!((spec.restores)("m.x"), Some(Scope::new("m.x", &rules)));
        assert_eq!((spec.restores)("z.x"), None, "compress restores nothing");
        assert_eq!((spec.restores)("other"), None);
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
