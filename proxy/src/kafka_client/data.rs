//! Records: produce one batch to a partition's leader, fetch one partition
//! from its leader.

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    BrokerId, FetchRequest, ListOffsetsRequest, ProduceRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::{FetchedPartition, KafkaClient, KafkaError};

/// Produce v3 is the first with magic-2 batches; v9 the last whose answer
/// carries no leader endpoints Strait would ignore anyway.
const PRODUCE: (i16, i16) = (3, 9);
/// Fetch v4 is the oldest a Kafka 4 broker serves; v12 the last that names
/// topics rather than topic ids.
const FETCH: (i16, i16) = (4, 12);
const OFFSET_OUT_OF_RANGE: i16 = 1;
/// ListOffsets v1 is the first with one offset per partition; v7 the last
/// before KIP-1005's fields, which nothing here needs.
const LIST_OFFSETS: (i16, i16) = (1, 7);

fn topic_name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_string()))
}

impl KafkaClient {
    /// Writes one record batch (magic 2, as the codec builds it) to
    /// `topic`/`partition` with acks=all; returns the offset the broker
    /// gave its first record.
    pub async fn produce(
        &self,
        topic: &str,
        partition: i32,
        batch: Bytes,
    ) -> Result<i64, KafkaError> {
        const OP: &str = "produce";
        let request = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(self.timeout_ms())
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(topic_name(topic))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(partition)
                    .with_records(Some(batch))])]);
        let request = &request;
        self.retry(OP, Some(topic), || async move {
            let (node, addr) = self.leader(OP, topic, partition).await?;
            let (answer, broker) = self
                .pool
                .call(OP, node, Some(&addr), PRODUCE, request)
                .await?;
            let found = answer
                .responses
                .into_iter()
                .filter(|t| t.name.0.as_str() == topic)
                .flat_map(|t| t.partition_responses)
                .find(|p| p.index == partition);
            let Some(p) = found else {
                return Err(KafkaError::Protocol {
                    op: OP,
                    broker,
                    what: format!("partition {topic}/{partition}"),
                });
            };
            if p.error_code != 0 {
                let mut message = p.error_message.map(|m| m.to_string());
                if let Some(r) = p.record_errors.first() {
                    let why = r.batch_index_error_message.as_deref().unwrap_or("");
                    message = Some(format!(
                        "{}record {}: {why}",
                        message.map(|m| m + "; ").unwrap_or_default(),
                        r.batch_index
                    ));
                }
                return Err(KafkaError::Broker {
                    op: OP,
                    broker,
                    topic: topic.to_string(),
                    partition: Some(partition),
                    code: p.error_code,
                    message,
                });
            }
            Ok(p.base_offset)
        })
        .await
    }

    /// Reads `topic`/`partition` from `offset` (read_uncommitted, from the
    /// leader, at most about `max_bytes`, capped to fit
    /// [`super::Options::max_frame_bytes`]; a first batch larger than that
    /// comes whole). Answers at once with what is there, possibly nothing.
    /// An offset below the log start or past the end is
    /// [`KafkaError::OffsetOutOfRange`].
    pub async fn fetch(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_bytes: i32,
    ) -> Result<FetchedPartition, KafkaError> {
        self.fetch_isolated(topic, partition, offset, max_bytes, false)
            .await
    }

    /// [`KafkaClient::fetch`] read_committed: batches up to the last stable
    /// offset, with the aborted transactions among them.
    pub async fn fetch_committed(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_bytes: i32,
    ) -> Result<FetchedPartition, KafkaError> {
        self.fetch_isolated(topic, partition, offset, max_bytes, true)
            .await
    }

    async fn fetch_isolated(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_bytes: i32,
        read_committed: bool,
    ) -> Result<FetchedPartition, KafkaError> {
        const OP: &str = "fetch";
        // The answer must fit a frame, with room for the response around it.
        let room = self
            .opts
            .max_frame_bytes
            .saturating_sub(64 << 10)
            .max(1 << 10);
        let max_bytes = max_bytes.clamp(1, i32::try_from(room).unwrap_or(i32::MAX));
        let request = FetchRequest::default()
            .with_max_wait_ms(0)
            .with_min_bytes(0)
            .with_max_bytes(max_bytes)
            .with_isolation_level(i8::from(read_committed))
            .with_topics(vec![FetchTopic::default()
                .with_topic(topic_name(topic))
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(partition)
                    .with_fetch_offset(offset)
                    .with_partition_max_bytes(max_bytes)])]);
        let request = &request;
        self.retry(OP, Some(topic), || async move {
            let (node, addr) = self.leader(OP, topic, partition).await?;
            let (answer, broker) = self
                .pool
                .call(OP, node, Some(&addr), FETCH, request)
                .await?;
            let error = |code| KafkaError::Broker {
                op: OP,
                broker: broker.clone(),
                topic: topic.to_string(),
                partition: Some(partition),
                code,
                message: None,
            };
            if answer.error_code != 0 {
                return Err(error(answer.error_code));
            }
            let found = answer
                .responses
                .into_iter()
                .filter(|t| t.topic.0.as_str() == topic)
                .flat_map(|t| t.partitions)
                .find(|p| p.partition_index == partition);
            let Some(p) = found else {
                return Err(KafkaError::Protocol {
                    op: OP,
                    broker,
                    what: format!("partition {topic}/{partition}"),
                });
            };
            match p.error_code {
                0 => Ok(FetchedPartition {
                    records: p.records.unwrap_or_default(),
                    high_watermark: p.high_watermark,
                    last_stable_offset: p.last_stable_offset,
                    log_start_offset: p.log_start_offset,
                    aborted: p
                        .aborted_transactions
                        .unwrap_or_default()
                        .iter()
                        .map(|a| (a.producer_id.0, a.first_offset))
                        .collect(),
                }),
                OFFSET_OUT_OF_RANGE => Err(KafkaError::OffsetOutOfRange {
                    broker,
                    topic: topic.to_string(),
                    partition,
                    offset,
                }),
                code => Err(error(code)),
            }
        })
        .await
    }

    /// The first offset still in `topic`/`partition` (its log start).
    pub async fn earliest_offset(&self, topic: &str, partition: i32) -> Result<i64, KafkaError> {
        const OP: &str = "list offsets";
        const EARLIEST: i64 = -2;
        let request = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(partition)
                    .with_timestamp(EARLIEST)])]);
        let request = &request;
        self.retry(OP, Some(topic), || async move {
            let (node, addr) = self.leader(OP, topic, partition).await?;
            let (answer, broker) = self
                .pool
                .call(OP, node, Some(&addr), LIST_OFFSETS, request)
                .await?;
            let found = answer
                .topics
                .into_iter()
                .filter(|t| t.name.0.as_str() == topic)
                .flat_map(|t| t.partitions)
                .find(|p| p.partition_index == partition);
            match found {
                Some(p) if p.error_code == 0 => Ok(p.offset),
                Some(p) => Err(KafkaError::Broker {
                    op: OP,
                    broker,
                    topic: topic.to_string(),
                    partition: Some(partition),
                    code: p.error_code,
                    message: None,
                }),
                None => Err(KafkaError::Protocol {
                    op: OP,
                    broker,
                    what: format!("partition {topic}/{partition}"),
                }),
            }
        })
        .await
    }
}
