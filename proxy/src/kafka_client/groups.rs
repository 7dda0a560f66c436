//! Consumer groups, for the lag view: list them on every broker, describe
//! them (classic groups and KIP-848 ones) and read their committed offsets,
//! each at the group's coordinator.

use std::collections::HashMap;

use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, DescribeGroupsRequest, FindCoordinatorRequest, GroupId,
    ListGroupsRequest, OffsetFetchRequest,
};
use kafka_protocol::protocol::StrBytes;

use super::{KafkaClient, KafkaError};

/// ListGroups v0..5 (v4 adds the state, v5 the group type).
const LIST_GROUPS: (i16, i16) = (0, 5);
/// DescribeGroups v0..5 (v6 is not in every Kafka 4 broker's range yet).
const DESCRIBE_GROUPS: (i16, i16) = (0, 5);
const CONSUMER_GROUP_DESCRIBE: (i16, i16) = (0, 1);
/// FindCoordinator v4..6 ask with a list of keys, v1..3 with one.
const FIND_COORDINATOR_KEYS: (i16, i16) = (4, 6);
const FIND_COORDINATOR: (i16, i16) = (1, 3);
/// OffsetFetch v2..7: one group, all its topics (null topics) by name.
const OFFSET_FETCH: (i16, i16) = (2, 7);

/// A group as ListGroups names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedGroup {
    pub group_id: String,
    /// `consumer` for consumer groups of both protocols.
    pub protocol_type: String,
    /// Empty when the broker's ListGroups predates v4.
    pub state: String,
    /// `classic` or `consumer` (KIP-848); empty before ListGroups v5.
    pub group_type: String,
}

/// A member of a group and the partitions it owns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupMember {
    pub member_id: String,
    pub client_id: String,
    pub client_host: String,
    /// (topic, partition) owned now; empty while none (or the classic
    /// assignment could not be read).
    pub assignment: Vec<(String, i32)>,
}

/// A group's state and members, from DescribeGroups or (KIP-848 groups)
/// ConsumerGroupDescribe.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupDescription {
    pub state: String,
    pub members: Vec<GroupMember>,
}

impl KafkaClient {
    /// Every broker in the cluster metadata: node id and address.
    pub async fn brokers(&self) -> Result<Vec<(i32, String)>, KafkaError> {
        self.retry("metadata", None, || async move {
            self.refresh(None).await?;
            Ok(self.meta.brokers())
        })
        .await
    }

    /// The consumer groups of every broker (each broker lists the groups it
    /// coordinates). A broker that does not answer fails the call: a
    /// partial list would read as groups that went away.
    pub async fn list_groups(&self) -> Result<Vec<ListedGroup>, KafkaError> {
        const OP: &str = "list groups";
        let brokers = self.brokers().await?;
        let mut out = Vec::new();
        for (node, addr) in brokers {
            let addr = &addr;
            let groups = self
                .retry(OP, None, || async move {
                    let request = ListGroupsRequest::default();
                    let (answer, broker) = self
                        .pool
                        .call(OP, node, Some(addr), LIST_GROUPS, &request)
                        .await?;
                    if answer.error_code != 0 {
                        return Err(group_error(OP, broker, "", answer.error_code, None));
                    }
                    Ok(answer
                        .groups
                        .into_iter()
                        .map(|g| ListedGroup {
                            group_id: g.group_id.0.to_string(),
                            protocol_type: g.protocol_type.to_string(),
                            state: g.group_state.to_string(),
                            group_type: g.group_type.to_string(),
                        })
                        .collect::<Vec<_>>())
                })
                .await?;
            out.extend(groups);
        }
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        out.dedup_by(|a, b| a.group_id == b.group_id);
        Ok(out)
    }

    /// The coordinator of `group`: node id and address.
    async fn coordinator(
        &self,
        op: &'static str,
        group: &str,
    ) -> Result<(i32, String), KafkaError> {
        let key = StrBytes::from_string(group.to_string());
        // v4+ asks with a list of keys, v1-3 with one: kafka-protocol refuses
        // a field the version does not carry, so each form goes on its own.
        let batched = FindCoordinatorRequest::default().with_coordinator_keys(vec![key.clone()]);
        let any = super::conns::ANY;
        let (answer, broker) = match self
            .pool
            .call(op, any, None, FIND_COORDINATOR_KEYS, &batched)
            .await
        {
            Err(KafkaError::Unsupported { .. }) => {
                let single = FindCoordinatorRequest::default().with_key(key);
                self.pool
                    .call(op, any, None, FIND_COORDINATOR, &single)
                    .await?
            }
            other => other?,
        };
        let (code, message, node, host, port) = match answer.coordinators.into_iter().next() {
            Some(c) => (c.error_code, c.error_message, c.node_id.0, c.host, c.port),
            None => (
                answer.error_code,
                answer.error_message,
                answer.node_id.0,
                answer.host,
                answer.port,
            ),
        };
        if code != 0 {
            let message = message.map(|m| m.to_string());
            return Err(group_error(op, broker, group, code, message));
        }
        Ok((node, super::metadata::address(&host, port)))
    }

    /// A group's state and members with their partitions. `kip848`: the
    /// group uses the consumer protocol (ListGroups' group type `consumer`).
    pub async fn describe_group(
        &self,
        group: &str,
        kip848: bool,
    ) -> Result<GroupDescription, KafkaError> {
        const OP: &str = "describe group";
        self.retry(OP, None, || async move {
            let (node, addr) = self.coordinator(OP, group).await?;
            let id = GroupId(StrBytes::from_string(group.to_string()));
            if kip848 {
                let request = ConsumerGroupDescribeRequest::default().with_group_ids(vec![id]);
                let (answer, broker) = self
                    .pool
                    .call(OP, node, Some(&addr), CONSUMER_GROUP_DESCRIBE, &request)
                    .await?;
                let g = answer
                    .groups
                    .into_iter()
                    .next()
                    .ok_or_else(|| protocol(OP, &broker, group))?;
                if g.error_code != 0 {
                    let message = g.error_message.map(|m| m.to_string());
                    return Err(group_error(OP, broker, group, g.error_code, message));
                }
                Ok(GroupDescription {
                    state: g.group_state.to_string(),
                    members: g
                        .members
                        .into_iter()
                        .map(|m| GroupMember {
                            member_id: m.member_id.to_string(),
                            client_id: m.client_id.to_string(),
                            client_host: m.client_host.to_string(),
                            assignment: m
                                .assignment
                                .topic_partitions
                                .into_iter()
                                .flat_map(|t| {
                                    let name = t.topic_name.0.to_string();
                                    t.partitions.into_iter().map(move |p| (name.clone(), p))
                                })
                                .collect(),
                        })
                        .collect(),
                })
            } else {
                let request = DescribeGroupsRequest::default().with_groups(vec![id]);
                let (answer, broker) = self
                    .pool
                    .call(OP, node, Some(&addr), DESCRIBE_GROUPS, &request)
                    .await?;
                let g = answer
                    .groups
                    .into_iter()
                    .next()
                    .ok_or_else(|| protocol(OP, &broker, group))?;
                if g.error_code != 0 {
                    let message = g.error_message.map(|m| m.to_string());
                    return Err(group_error(OP, broker, group, g.error_code, message));
                }
                let consumer = g.protocol_type.as_str() == "consumer";
                Ok(GroupDescription {
                    state: g.group_state.to_string(),
                    members: g
                        .members
                        .into_iter()
                        .map(|m| GroupMember {
                            member_id: m.member_id.to_string(),
                            client_id: m.client_id.to_string(),
                            client_host: m.client_host.to_string(),
                            assignment: if consumer {
                                super::assignment::consumer(&m.member_assignment)
                                    .unwrap_or_default()
                            } else {
                                Vec::new()
                            },
                        })
                        .collect(),
                })
            }
        })
        .await
    }

    /// The offsets `group` has committed: (topic, partition) → offset.
    /// Partitions without a commit are left out.
    pub async fn committed_offsets(
        &self,
        group: &str,
    ) -> Result<HashMap<(String, i32), i64>, KafkaError> {
        const OP: &str = "offset fetch";
        self.retry(OP, None, || async move {
            let (node, addr) = self.coordinator(OP, group).await?;
            let request = OffsetFetchRequest::default()
                .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
                .with_topics(None);
            let (answer, broker) = self
                .pool
                .call(OP, node, Some(&addr), OFFSET_FETCH, &request)
                .await?;
            if answer.error_code != 0 {
                return Err(group_error(OP, broker, group, answer.error_code, None));
            }
            let mut out = HashMap::new();
            for t in answer.topics {
                for p in t.partitions {
                    if p.error_code != 0 {
                        return Err(group_error(OP, broker, group, p.error_code, None));
                    }
                    if p.committed_offset >= 0 {
                        out.insert(
                            (t.name.0.to_string(), p.partition_index),
                            p.committed_offset,
                        );
                    }
                }
            }
            Ok(out)
        })
        .await
    }
}

fn protocol(op: &'static str, broker: &str, group: &str) -> KafkaError {
    KafkaError::Protocol {
        op,
        broker: broker.to_string(),
        what: format!("group {group}"),
    }
}

fn group_error(
    op: &'static str,
    broker: String,
    group: &str,
    code: i16,
    message: Option<String>,
) -> KafkaError {
    KafkaError::Broker {
        op,
        broker,
        topic: format!("group {group}"),
        partition: None,
        code,
        message,
    }
}
