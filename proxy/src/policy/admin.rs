//! Admin guardrails: CreateTopics, AlterConfigs, IncrementalAlterConfigs
//! and DeleteTopics entries a topic's policy refuses are removed from the
//! request; the response plan answers them with POLICY_VIOLATION. A
//! Metadata request that would auto-create a topic the create rules refuse
//! (the broker's defaults, as a CreateTopics without counts) asks the broker
//! not to auto-create.

use bytes::Bytes;
use kafka_protocol::messages::{
    AlterConfigsRequest, ApiKey, CreateTopicsRequest, DeleteTopicsRequest,
    IncrementalAlterConfigsRequest, MetadataRequest,
};
use kafka_protocol::protocol::{Encodable, StrBytes};
use strait_policies::decide::{self, NewTopic};
use strait_policies::{Policy, Violation};
use uuid::Uuid;

use super::request::{
    decode_body, decode_header, frame_with, record, record_auto_create_off, reject, EnforceError,
    Outcome,
};
use super::Compiled;
use crate::cluster::TopicIds;
use crate::response::{Step, TOPIC_RESOURCE};

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

/// CreateTopics, AlterConfigs, IncrementalAlterConfigs and DeleteTopics guardrails.
pub fn admin(
    policies: &Compiled,
    names: &TopicIds,
    api_key: i16,
    version: i16,
    frame: Bytes,
) -> Result<Outcome, EnforceError> {
    let api = ApiKey::try_from(api_key).expect("inspected keys are known");
    let body = frame.slice(4..);
    let (header_len, _) = decode_header(api, version, &body)?;
    let b = body.slice(header_len..);
    if api == ApiKey::Metadata {
        let mut req = decode_body::<MetadataRequest>(api, version, &b)?;
        return Ok(if refuses_auto_create(policies, &req) {
            req.allow_auto_topic_creation = false;
            Outcome::forward(frame_with(&body[..header_len], &req, api, version)?)
        } else {
            Outcome::forward(frame)
        });
    }
    let mut rejected = Vec::new();
    let mut check = |name: &str,
                     client: Option<StrBytes>,
                     id: Uuid,
                     f: &dyn Fn(&Policy) -> Result<(), Violation>|
     -> bool {
        let Some(plan) = policies.plan(name) else {
            return true;
        };
        let result = f(&plan.policy);
        record(name, &plan.policy, result.as_ref().err());
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
            let mut req = decode_body::<$request>(api, version, &b)?;
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
            let mut req = decode_body::<CreateTopicsRequest>(api, version, &b)?;
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
            let mut req = decode_body::<DeleteTopicsRequest>(api, version, &b)?;
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
                    Some(n) => Some(std::sync::Arc::from(n.0.as_str())),
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
        None => Outcome::forward(frame),
        Some(f) => Outcome::Forward {
            frame: f,
            steps: vec![Step::MergeRejections(rejected)],
        },
    })
}

/// Whether `req` asks the broker to auto-create a topic whose policy would
/// refuse creating it with the broker's defaults (partition count and
/// replication factor not given, no configs): auto-creation is a
/// CreateTopics the guardrails would otherwise never see.
fn refuses_auto_create(policies: &Compiled, req: &MetadataRequest) -> bool {
    if !req.allow_auto_topic_creation {
        return false;
    }
    let names = req.topics.iter().flatten().filter_map(|t| t.name.as_ref());
    let mut refused = false;
    for name in names {
        let Some(plan) = policies.plan(name.as_str()) else {
            continue;
        };
        let defaults = NewTopic {
            name: name.as_str(),
            partitions: -1,
            replication_factor: -1,
            configs: Vec::new(),
        };
        if let Err(v) = decide::decide_create_topic(&plan.policy, &defaults) {
            record_auto_create_off(name.as_str(), &plan.policy, &v);
            refused = true;
        }
    }
    refused
}
