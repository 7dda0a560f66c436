//! What the load needs of a cluster (direct, or Strait's face of it): a
//! fresh topic, its partitions' leaders' addresses, a producer id.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, DeleteTopicsRequest, InitProducerIdRequest, ListOffsetsRequest,
    MetadataRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use strait_proxy::kafka_client::error_name;

use super::pipe::Pipe;

const TOPIC_ALREADY_EXISTS: i16 = 36;

/// The first of the comma-separated bootstrap addresses that answers.
async fn any_broker(bootstrap: &str, api: ApiKey) -> anyhow::Result<Pipe> {
    let mut last = anyhow!("no bootstrap address in {bootstrap:?}");
    for addr in bootstrap
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
    {
        match Pipe::connect(addr, api).await {
            Ok(p) => return Ok(p),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Creates `topic` with `partitions` partitions (the broker's default
/// replication factor) and waits until every partition has a leader.
pub async fn create_topic(bootstrap: &str, topic: &str, partitions: i32) -> anyhow::Result<()> {
    let mut pipe = any_broker(bootstrap, ApiKey::CreateTopics).await?;
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(30_000)
        .with_topics(vec![CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_num_partitions(partitions)
            .with_replication_factor(-1)]);
    let answer = pipe.call(5, &request).await?;
    for t in &answer.topics {
        if t.error_code != 0 && t.error_code != TOPIC_ALREADY_EXISTS {
            bail!(
                "creating topic {topic}: {} {}",
                error_name(t.error_code),
                t.error_message.as_deref().unwrap_or("")
            );
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let leaders = leaders(bootstrap, topic).await?;
        if leaders.len() == partitions as usize {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "topic {topic}: {} of {partitions} partitions have a leader after 30 s",
                leaders.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Partition → its leader's address, as `bootstrap` describes the cluster
/// (Strait's listeners through Strait); partitions with no leader left out.
pub async fn leaders(bootstrap: &str, topic: &str) -> anyhow::Result<BTreeMap<i32, String>> {
    let mut pipe = any_broker(bootstrap, ApiKey::Metadata).await?;
    let request =
        MetadataRequest::default().with_topics(Some(vec![MetadataRequestTopic::default()
            .with_name(Some(TopicName(StrBytes::from_string(topic.to_string()))))]));
    let answer = pipe.call(9, &request).await?;
    let brokers: BTreeMap<i32, String> = answer
        .brokers
        .iter()
        .map(|b| (b.node_id.0, format!("{}:{}", b.host.as_str(), b.port)))
        .collect();
    let mut out = BTreeMap::new();
    for t in &answer.topics {
        for p in &t.partitions {
            if p.error_code == 0 {
                if let Some(addr) = brokers.get(&p.leader_id.0) {
                    out.insert(p.partition_index, addr.clone());
                }
            }
        }
    }
    Ok(out)
}

/// A producer id and epoch for an idempotent producer.
pub async fn producer_id(bootstrap: &str) -> anyhow::Result<(i64, i16)> {
    let mut pipe = any_broker(bootstrap, ApiKey::InitProducerId).await?;
    let request = InitProducerIdRequest::default()
        .with_transaction_timeout_ms(60_000)
        .with_producer_id((-1).into())
        .with_producer_epoch(-1);
    let answer = pipe.call(4, &request).await?;
    if answer.error_code != 0 {
        bail!("InitProducerId: {}", error_name(answer.error_code));
    }
    Ok((answer.producer_id.0, answer.producer_epoch))
}

/// Waits until every leader in `leaders` answers for its partitions of
/// `topic` (a leader named in metadata may not have taken over yet:
/// NOT_LEADER_OR_FOLLOWER), within 30 s.
pub async fn wait_leading(leaders: &BTreeMap<i32, String>, topic: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    for (partition, addr) in leaders {
        let mut pipe = Pipe::connect(addr, ApiKey::ListOffsets).await?;
        let request = ListOffsetsRequest::default()
            .with_replica_id((-1).into())
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(*partition)
                    .with_timestamp(-1)])]);
        loop {
            let answer = pipe.call(7, &request).await?;
            let code = answer
                .topics
                .iter()
                .flat_map(|t| &t.partitions)
                .map(|p| p.error_code)
                .find(|c| *c != 0)
                .unwrap_or(0);
            if code == 0 {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "{topic}/{partition} at {addr}: {} after 30 s",
                    error_name(code)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// Deletes the bench's topics (each error named; a topic already gone is
/// no error).
pub async fn delete_topics(bootstrap: &str, topics: &[String]) -> anyhow::Result<()> {
    const UNKNOWN_TOPIC: i16 = 3;
    if topics.is_empty() {
        return Ok(());
    }
    let mut pipe = any_broker(bootstrap, ApiKey::DeleteTopics).await?;
    let request = DeleteTopicsRequest::default()
        .with_timeout_ms(30_000)
        .with_topic_names(
            topics
                .iter()
                .map(|t| TopicName(StrBytes::from_string(t.clone())))
                .collect(),
        );
    let answer = pipe.call(4, &request).await?;
    let failed: Vec<String> = answer
        .responses
        .iter()
        .filter(|r| r.error_code != 0 && r.error_code != UNKNOWN_TOPIC)
        .map(|r| {
            format!(
                "{}: {}",
                r.name.as_ref().map_or("?", |n| n.as_str()),
                error_name(r.error_code)
            )
        })
        .collect();
    if !failed.is_empty() {
        bail!("deleting the bench's topics: {}", failed.join(", "));
    }
    Ok(())
}

/// Fails unless a broker of `bootstrap` answers a Metadata request.
pub async fn reachable(bootstrap: &str) -> anyhow::Result<()> {
    let mut pipe = any_broker(bootstrap, ApiKey::Metadata).await?;
    pipe.call(9, &MetadataRequest::default().with_topics(Some(vec![])))
        .await
        .map(|_| ())
        .with_context(|| format!("the cluster at {bootstrap}"))
}
