//! Topic administration: a topic's configs (DescribeConfigs) and creating a
//! topic (CreateTopics, at the controller).

use std::collections::HashMap;

use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::{CreateTopicsRequest, DescribeConfigsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::conns::ANY;
use super::{KafkaClient, KafkaError};

/// DescribeConfigs v1-4 all answer the same fields Strait reads.
const DESCRIBE_CONFIGS: (i16, i16) = (1, 4);
/// CreateTopics v4+ takes replication factor -1 (the broker's default).
const CREATE_TOPICS: (i16, i16) = (4, 7);
/// ConfigResource type of a topic.
const TOPIC_RESOURCE: i8 = 2;
const TOPIC_ALREADY_EXISTS: i16 = 36;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;

impl KafkaClient {
    /// A topic's configuration: every entry the broker reports (defaults
    /// included), name → value; entries without a value are left out. A
    /// topic that does not exist is [`KafkaError::UnknownTopic`].
    pub async fn topic_configs(&self, topic: &str) -> Result<HashMap<String, String>, KafkaError> {
        const OP: &str = "describe configs";
        let request = DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(TOPIC_RESOURCE)
                .with_resource_name(StrBytes::from_string(topic.to_string()))
                .with_configuration_keys(None),
        ]);
        let request = &request;
        self.retry(OP, Some(topic), || async move {
            let (answer, broker) = self
                .pool
                .call(OP, ANY, None, DESCRIBE_CONFIGS, request)
                .await?;
            let result = answer
                .results
                .into_iter()
                .find(|r| r.resource_name.as_str() == topic)
                .ok_or_else(|| KafkaError::Protocol {
                    op: OP,
                    broker: broker.clone(),
                    what: format!("topic {topic}"),
                })?;
            if result.error_code == UNKNOWN_TOPIC_OR_PARTITION {
                let topic = topic.to_string();
                return Err(KafkaError::UnknownTopic {
                    op: OP,
                    broker,
                    topic,
                });
            }
            if result.error_code != 0 {
                return Err(KafkaError::Broker {
                    op: OP,
                    broker,
                    topic: topic.to_string(),
                    partition: None,
                    code: result.error_code,
                    message: result.error_message.map(|m| m.to_string()),
                });
            }
            Ok(result
                .configs
                .into_iter()
                .filter_map(|c| Some((c.name.to_string(), c.value?.to_string())))
                .collect())
        })
        .await
    }

    /// Creates `name` with `partitions` partitions, the broker's default
    /// replication factor and `configs`. A topic that already exists is
    /// success (its settings are not checked here). Returns once the topic
    /// is in the cluster metadata, so a produce right after finds it.
    pub async fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        configs: &[(&str, String)],
    ) -> Result<(), KafkaError> {
        const OP: &str = "create topic";
        let request = CreateTopicsRequest::default()
            .with_timeout_ms(self.timeout_ms())
            .with_topics(vec![CreatableTopic::default()
                .with_name(TopicName(StrBytes::from_string(name.to_string())))
                .with_num_partitions(partitions)
                .with_replication_factor(-1)
                .with_configs(
                    configs
                        .iter()
                        .map(|(k, v)| {
                            CreatableTopicConfig::default()
                                .with_name(StrBytes::from_string(k.to_string()))
                                .with_value(Some(StrBytes::from_string(v.clone())))
                        })
                        .collect(),
                )]);
        let request = &request;
        self.retry(OP, Some(name), || async move {
            let (node, addr) = self.controller().await?;
            let (answer, broker) = self
                .pool
                .call(OP, node, addr.as_deref(), CREATE_TOPICS, request)
                .await?;
            let result = answer
                .topics
                .into_iter()
                .find(|t| t.name.0.as_str() == name)
                .ok_or_else(|| KafkaError::Protocol {
                    op: OP,
                    broker: broker.clone(),
                    what: format!("topic {name}"),
                })?;
            match result.error_code {
                0 | TOPIC_ALREADY_EXISTS => Ok(()),
                code => Err(KafkaError::Broker {
                    op: OP,
                    broker,
                    topic: name.to_string(),
                    partition: None,
                    code,
                    message: result.error_message.map(|m| m.to_string()),
                }),
            }
        })
        .await?;
        // Metadata spreads to the brokers after the controller answers.
        self.retry("metadata", Some(name), || async move {
            match self.refresh(Some(name)).await? {
                Some(_) => Ok(()),
                None => Err(KafkaError::Broker {
                    op: "metadata",
                    broker: "the cluster metadata".into(),
                    topic: name.to_string(),
                    partition: None,
                    code: 3,
                    message: Some("created, not yet in the metadata".into()),
                }),
            }
        })
        .await
    }
}
