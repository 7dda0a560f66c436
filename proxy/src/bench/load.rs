//! The load: producers writing pooled batches with a window of requests in
//! flight per leader connection (or at a fixed rate), and consumers reading
//! every partition to its end with fetches as a Java consumer sends them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, FetchRequest, ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use strait_proxy::codec::batch::Batches;
use strait_proxy::kafka_client::error_name;

use super::pipe::Pipe;
use super::values::with_sequence;

const PRODUCE_VERSION: i16 = 9;
const FETCH_VERSION: i16 = 12;

/// What one produce run is asked to do.
#[derive(Clone)]
pub struct ProduceWork {
    pub topic: String,
    /// Partition → its leader's address (as the side sees the cluster).
    pub leaders: BTreeMap<i32, String>,
    /// Records per producer, or until this instant.
    pub records: u64,
    pub until: Option<Instant>,
    pub acks: i16,
    pub in_flight: usize,
    /// Requests per second per leader connection (a fixed rate), if any.
    pub rate: Option<f64>,
    pub pool: Arc<Vec<Bytes>>,
    pub batch_records: usize,
    /// The producer id and epoch (idempotent producers).
    pub idempotent: Option<(i64, i16)>,
}

/// What a run did.
#[derive(Debug, Default, Clone)]
pub struct Done {
    pub records: u64,
    pub requests: u64,
    pub latencies_us: Vec<u32>,
    pub elapsed: Duration,
}

impl Done {
    fn add(&mut self, o: Done) {
        self.records += o.records;
        self.requests += o.requests;
        self.latencies_us.extend(o.latencies_us);
        self.elapsed = self.elapsed.max(o.elapsed);
    }
}

/// Joins runs side by side into one: records, requests and latencies add
/// up, the elapsed time is the longest.
pub async fn join(
    tasks: Vec<tokio::task::JoinHandle<anyhow::Result<Done>>>,
) -> anyhow::Result<Done> {
    let mut all = Done::default();
    for t in tasks {
        all.add(t.await.map_err(|e| anyhow!("a load task failed: {e}"))??);
    }
    Ok(all)
}

/// The leaders' partitions, by leader address.
fn by_leader(
    leaders: &BTreeMap<i32, String>,
    only: impl Fn(i32) -> bool,
) -> BTreeMap<String, Vec<i32>> {
    let mut out: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for (p, addr) in leaders {
        if only(*p) {
            out.entry(addr.clone()).or_default().push(*p);
        }
    }
    out
}

/// One producer: a connection per leader, each sending requests of one
/// batch per partition it leads until its share of the records is sent.
pub async fn produce(work: ProduceWork) -> anyhow::Result<Done> {
    let brokers = by_leader(&work.leaders, |_| true);
    let partitions = work.leaders.len().max(1) as u64;
    let mut tasks = Vec::new();
    for (addr, parts) in brokers {
        let work = work.clone();
        let share = work.records * parts.len() as u64 / partitions;
        tasks.push(tokio::spawn(async move {
            produce_to(&addr, &parts, share, &work).await
        }));
    }
    join(tasks).await
}

async fn produce_to(
    addr: &str,
    parts: &[i32],
    records: u64,
    w: &ProduceWork,
) -> anyhow::Result<Done> {
    let mut pipe = Pipe::connect(addr, ApiKey::Produce).await?;
    let per_request = (w.batch_records * parts.len()) as u64;
    let mut sequences: BTreeMap<i32, i32> = parts.iter().map(|p| (*p, 0)).collect();
    let mut done = Done::default();
    let started = Instant::now();
    let mut sent = 0u64;
    let mut n = 0usize;
    let more = |sent: u64| match w.until {
        Some(t) => Instant::now() < t,
        None => sent < records,
    };
    while more(sent) {
        if let Some(rate) = w.rate {
            // The request's slot on the fixed schedule: late ones go at once.
            let slot = started + Duration::from_secs_f64(n as f64 / rate);
            tokio::time::sleep_until(slot.into()).await;
        }
        if pipe.in_flight() >= w.in_flight {
            answer(&mut pipe, &mut done).await?;
        }
        let partition_data = parts
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let batch = &w.pool[(n + i) % w.pool.len()];
                let records = match w.idempotent {
                    None => batch.clone(),
                    Some((id, epoch)) => {
                        let seq = sequences.get_mut(p).expect("a sequence per partition");
                        let b = with_sequence(batch, id, epoch, *seq);
                        *seq = seq.wrapping_add(w.batch_records as i32);
                        b
                    }
                };
                PartitionProduceData::default()
                    .with_index(*p)
                    .with_records(Some(records))
            })
            .collect();
        let request = ProduceRequest::default()
            .with_acks(w.acks)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(w.topic.clone())))
                .with_partition_data(partition_data)]);
        pipe.send(PRODUCE_VERSION, &request).await?;
        if w.acks == 0 {
            pipe.expect_no_answer();
        }
        sent += per_request;
        done.records += per_request;
        done.requests += 1;
        n += 1;
    }
    while pipe.in_flight() > 0 {
        answer(&mut pipe, &mut done).await?;
    }
    done.elapsed = started.elapsed();
    Ok(done)
}

/// Reads the oldest produce answer: an error in it ends the run.
async fn answer(pipe: &mut Pipe, done: &mut Done) -> anyhow::Result<()> {
    let (answer, took) = pipe.recv::<ProduceRequest>().await?;
    for t in &answer.responses {
        for p in &t.partition_responses {
            if p.error_code != 0 {
                bail!(
                    "produce to {}/{} through {}: {} {}",
                    t.name.as_str(),
                    p.index,
                    pipe.addr(),
                    error_name(p.error_code),
                    p.error_message.as_deref().unwrap_or("")
                );
            }
        }
    }
    done.latencies_us
        .push(took.as_micros().min(u32::MAX as u128) as u32);
    Ok(())
}

/// Consumer `index` of `consumers`: reads its partitions (p mod consumers
/// = index) from offset 0 to their end, one fetch at a time per leader.
pub async fn consume(
    topic: &str,
    leaders: &BTreeMap<i32, String>,
    index: usize,
    consumers: usize,
) -> anyhow::Result<Done> {
    let brokers = by_leader(leaders, |p| p as usize % consumers == index);
    let mut tasks = Vec::new();
    for (addr, parts) in brokers {
        let topic = topic.to_string();
        tasks.push(tokio::spawn(async move {
            consume_from(&addr, &topic, &parts).await
        }));
    }
    join(tasks).await
}

async fn consume_from(addr: &str, topic: &str, parts: &[i32]) -> anyhow::Result<Done> {
    let mut pipe = Pipe::connect(addr, ApiKey::Fetch).await?;
    // Partition → (next offset, end offset once known).
    let mut at: BTreeMap<i32, (i64, Option<i64>)> = parts.iter().map(|p| (*p, (0, None))).collect();
    let mut done = Done::default();
    let started = Instant::now();
    let name = TopicName(StrBytes::from_string(topic.to_string()));
    while at.values().any(|(next, end)| end.is_none_or(|e| *next < e)) {
        let partitions = at
            .iter()
            .filter(|(_, (next, end))| end.is_none_or(|e| *next < e))
            .map(|(p, (next, _))| {
                FetchPartition::default()
                    .with_partition(*p)
                    .with_fetch_offset(*next)
                    .with_partition_max_bytes(1 << 20)
            })
            .collect();
        // As the Java consumer's defaults: 500 ms, 1 byte, 50 MiB.
        let request = FetchRequest::default()
            .with_max_wait_ms(500)
            .with_min_bytes(1)
            .with_max_bytes(50 << 20)
            .with_session_epoch(-1)
            .with_topics(vec![FetchTopic::default()
                .with_topic(name.clone())
                .with_partitions(partitions)]);
        let sent = Instant::now();
        let answer = pipe.call(FETCH_VERSION, &request).await?;
        done.latencies_us
            .push(sent.elapsed().as_micros().min(u32::MAX as u128) as u32);
        done.requests += 1;
        if answer.error_code != 0 {
            bail!("fetch from {addr}: {}", error_name(answer.error_code));
        }
        for t in answer.responses {
            for p in t.partitions {
                if p.error_code != 0 {
                    bail!(
                        "fetch {topic}/{} from {addr}: error {}",
                        p.partition_index,
                        p.error_code
                    );
                }
                let Some(entry) = at.get_mut(&p.partition_index) else {
                    continue;
                };
                // The produce run has ended: the high watermark is the end.
                entry.1 = Some(p.high_watermark);
                for batch in Batches::new(p.records.unwrap_or_default()) {
                    // A partial batch at the end is fetched again.
                    let Ok(batch) = batch else { break };
                    if batch.last_offset() >= entry.0 {
                        if !batch.is_control() {
                            done.records += batch.record_count().max(0) as u64;
                        }
                        entry.0 = batch.last_offset() + 1;
                    }
                }
            }
        }
    }
    done.elapsed = started.elapsed();
    Ok(done)
}
