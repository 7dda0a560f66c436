//! Merging policy rejections into the broker's response, so the client sees
//! one response naming every part of its request: the parts Strait refused
//! carry the policy's error code and message, the rest the broker's answer.

use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::codec::{Body, Decoded};

/// Resource type TOPIC (AlterConfigs).
pub const TOPIC_RESOURCE: i8 = 2;

/// A rejected part of a request, answered inside the broker's response.
#[derive(Debug)]
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

impl Decoded {
    /// Merges policy rejections into the broker's answer, so the client sees
    /// one response naming every part of its request.
    pub fn merge_rejections(&mut self, rejected: &[Rejected]) {
        use kafka_protocol::messages::produce_response::{
            BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
        };
        let v = self.version;
        let msg = |r: &Rejected| Some(StrBytes::from_string(r.message.clone()));
        // The two AlterConfigs responses share a shape but not a type.
        macro_rules! push_alter_rejections {
            ($resp:expr, $entry:ty) => {
                for r in rejected {
                    $resp.responses.push(
                        <$entry>::default()
                            .with_error_code(r.error_code)
                            .with_error_message(msg(r))
                            .with_resource_type(r.resource_type)
                            .with_resource_name(r.name.clone().unwrap_or_default()),
                    );
                }
            };
        }
        match &mut self.body {
            Body::Produce(p) => {
                for r in rejected {
                    let mut part = PartitionProduceResponse::default()
                        .with_index(r.partition)
                        .with_error_code(r.error_code)
                        .with_base_offset(-1)
                        .with_log_append_time_ms(-1)
                        .with_log_start_offset(-1);
                    if v >= 8 {
                        part.error_message = msg(r);
                        part.record_errors = r
                            .record_errors
                            .iter()
                            .map(|(i, m)| {
                                BatchIndexAndErrorMessage::default()
                                    .with_batch_index(*i)
                                    .with_batch_index_error_message(Some(StrBytes::from_string(
                                        m.clone(),
                                    )))
                            })
                            .collect();
                    }
                    let same = |t: &TopicProduceResponse| match &r.name {
                        Some(n) => t.name.0 == *n,
                        None => t.topic_id == r.topic_id,
                    };
                    match p.responses.iter_mut().find(|t| same(t)) {
                        Some(t) => t.partition_responses.push(part),
                        None => {
                            let mut t = TopicProduceResponse::default()
                                .with_partition_responses(vec![part]);
                            match &r.name {
                                Some(n) => t.name = kafka_protocol::messages::TopicName(n.clone()),
                                None => t.topic_id = r.topic_id,
                            }
                            p.responses.push(t);
                        }
                    }
                }
            }
            Body::CreateTopics(c) => {
                use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
                for r in rejected {
                    let mut t = CreatableTopicResult::default()
                        .with_name(kafka_protocol::messages::TopicName(
                            r.name.clone().unwrap_or_default(),
                        ))
                        .with_error_code(r.error_code)
                        .with_num_partitions(-1)
                        .with_replication_factor(-1);
                    if v >= 1 {
                        t.error_message = msg(r);
                    }
                    c.topics.push(t);
                }
            }
            Body::AlterConfigs(a) => {
                use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
                push_alter_rejections!(a, AlterConfigsResourceResponse);
            }
            Body::IncrementalAlterConfigs(a) => {
                use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
                push_alter_rejections!(a, AlterConfigsResourceResponse);
            }
            Body::DeleteTopics(d) => {
                use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
                for r in rejected {
                    let mut t = DeletableTopicResult::default().with_error_code(r.error_code);
                    if v >= 6 {
                        t.topic_id = r.topic_id;
                    }
                    t.name = r.name.clone().map(kafka_protocol::messages::TopicName);
                    if v >= 5 {
                        t.error_message = msg(r);
                    }
                    d.responses.push(t);
                }
            }
            _ => {}
        }
    }
}
