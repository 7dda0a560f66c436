//! One mirrored topic's reader: the debug client reads the topic's log
//! (read_committed, from the latest offset when it starts), records are
//! sampled, rendered as JSON on the blocking pool, held to the policy's
//! byte rate and offered to the sinks' queues, never waited for.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use tracing::warn;

use super::rate::{sampled, Bucket};
use super::sink::{Line, Outcome, Sink};
use crate::codec::batch::Batches;
use crate::debug::stuck::{shown, shown_headers, Shown};
use crate::debug::tail::records;
use crate::kafka_client::{KafkaClient, KafkaError, OffsetSpec};
use crate::offload::Offload;

/// Bytes read per partition per fetch.
const FETCH_BYTES: i32 = 256 << 10;
/// How long a reader waits after a round that found nothing new, or
/// after a failure.
const IDLE: Duration = Duration::from_millis(250);
const RETRY: Duration = Duration::from_secs(2);
const LOG_EVERY: Duration = Duration::from_secs(60);
/// How often a reader looks for partitions added to its topic.
const PARTITIONS_EVERY: Duration = Duration::from_secs(30);

/// What a reader does with its topic's records.
#[derive(Clone)]
pub struct Setup {
    pub topic: String,
    pub sample: f64,
    /// The topic's policy lets values be shown (`debug.values`).
    pub values: bool,
    pub bucket: Arc<Mutex<Bucket>>,
}

/// Records read and what the reader itself did with them.
#[derive(Default)]
pub struct ReadStats {
    /// The reader knows where it starts: records written from now on
    /// are mirrored.
    pub reading: AtomicBool,
    pub read: AtomicU64,
    pub sampled_out: AtomicU64,
    pub dropped_rate: AtomicU64,
}

/// A mirrored record as written: the tail's rules for showing keys,
/// headers and values; no value at all when the policy hides values.
#[derive(Serialize)]
struct Mirrored<'a> {
    topic: &'a str,
    partition: i32,
    offset: i64,
    timestamp: i64,
    key: Shown,
    headers: Vec<(String, Shown)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<Shown>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    value_hidden: bool,
}

/// Reads and mirrors until aborted.
pub async fn run(
    client: Arc<KafkaClient>,
    offload: Offload,
    setup: Setup,
    sinks: Vec<Sink>,
    stats: Arc<ReadStats>,
) {
    let topic = setup.topic.clone();
    let mut logged: Option<tokio::time::Instant> = None;
    let mut complain = |what: &str, e: &dyn std::fmt::Display| {
        let now = tokio::time::Instant::now();
        if logged.is_none_or(|at| now >= at + LOG_EVERY) {
            logged = Some(now);
            warn!(topic = %topic, error = %e, "mirror: {what} failed; retrying (logged once a minute)");
        }
    };
    let mut positions = loop {
        match start(&client, &topic).await {
            Ok(p) => break p,
            Err(e) => complain("reading the topic's partitions", &e),
        }
        tokio::time::sleep(RETRY).await;
    };
    stats.reading.store(true, Ordering::Release);
    let mut partitions_at = tokio::time::Instant::now();
    loop {
        if partitions_at.elapsed() >= PARTITIONS_EVERY {
            partitions_at = tokio::time::Instant::now();
            // A partition added since the reader started holds only
            // records written since: from its start.
            if let Ok(Some(n)) = client.partitions(&topic).await {
                let known = positions.len() as i32;
                positions.extend((known..n).map(|p| (p, 0)));
            }
        }
        let mut found = false;
        for (p, pos) in positions.iter_mut() {
            let got = match client.fetch_committed(&topic, *p, *pos, FETCH_BYTES).await {
                Ok(got) => got,
                Err(KafkaError::OffsetOutOfRange { .. }) => {
                    // Deleted under the reader: go on from the log start.
                    *pos = client.earliest_offset(&topic, *p).await.unwrap_or(*pos);
                    continue;
                }
                Err(e) => {
                    complain("fetching", &e);
                    continue;
                }
            };
            let (from, part, s) = (*pos, *p, setup.clone());
            let blocked: Vec<Option<Outcome>> = sinks.iter().map(Sink::unavailable).collect();
            if !sinks.is_empty() && blocked.iter().all(Option::is_some) {
                // Every sink would drop what it is offered (backing off
                // after a failure, or full): count, do not render.
                let (n, next) = count_records(got.records, from);
                stats.read.fetch_add(n, Ordering::Relaxed);
                for (sink, why) in sinks.iter().zip(blocked.into_iter().flatten()) {
                    sink.stats.count(why, n);
                }
                if next > *pos {
                    *pos = next;
                    found = true;
                }
                continue;
            }
            let rendered = offload
                .run(move || render(&s, part, got.records, &got.aborted, from))
                .await;
            let Ok((lines, next, unreadable)) = rendered else {
                continue;
            };
            if let Some(why) = unreadable {
                complain("decoding a batch", &why);
            }
            if next > *pos {
                *pos = next;
                found = true;
            }
            offer(&setup, lines, &sinks, &stats);
        }
        if !found {
            tokio::time::sleep(IDLE).await;
        }
    }
}

/// The records of fetched batches from `from` on (read from the batch
/// headers, never decompressed; control batches have none), and the next
/// offset. Aborted transactions' records count too: close enough for
/// records that are dropped anyway.
fn count_records(data: Bytes, from: i64) -> (u64, i64) {
    let (mut n, mut next) = (0u64, from);
    for batch in Batches::new(data) {
        let Ok(b) = batch else { break };
        if b.last_offset() < from {
            continue;
        }
        if !b.is_control() {
            let whole = u64::try_from(b.record_count()).unwrap_or(0);
            let skipped = u64::try_from(from - b.base_offset()).unwrap_or(0);
            n += whole.saturating_sub(skipped);
        }
        next = b.last_offset() + 1;
    }
    (n, next)
}

/// Each partition and its latest offset: mirroring starts there.
async fn start(client: &KafkaClient, topic: &str) -> Result<Vec<(i32, i64)>, String> {
    let n = client
        .partitions(topic)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("topic {topic:?} does not exist"))?;
    let parts: Vec<(String, i32)> = (0..n).map(|p| (topic.to_string(), p)).collect();
    let ends = client
        .offsets(&parts, OffsetSpec::Latest)
        .await
        .map_err(|e| e.to_string())?;
    Ok(parts
        .iter()
        .map(|k| (k.1, ends.get(k).copied().unwrap_or(0)))
        .collect())
}

/// Counts, samples and rate-limits `lines` (`None`: sampled out), then
/// offers each kept one to every sink.
fn offer(setup: &Setup, lines: Vec<Option<Line>>, sinks: &[Sink], stats: &ReadStats) {
    let each = |o: Outcome| sinks.iter().for_each(|s| s.stats.count(o, 1));
    for line in lines {
        stats.read.fetch_add(1, Ordering::Relaxed);
        let Some(line) = line else {
            stats.sampled_out.fetch_add(1, Ordering::Relaxed);
            each(Outcome::SampledOut);
            continue;
        };
        let now = std::time::Instant::now();
        let allowed = setup
            .bucket
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take(line.json.len(), now);
        if !allowed {
            stats.dropped_rate.fetch_add(1, Ordering::Relaxed);
            each(Outcome::DroppedRate);
            continue;
        }
        for s in sinks {
            s.offer(line.clone());
        }
    }
}

/// The records of a fetched partition as mirrored JSON (`None` for those
/// the sample leaves out), the next offset, and why decoding stopped early.
fn render(
    setup: &Setup,
    partition: i32,
    data: Bytes,
    aborted: &[(i64, i64)],
    from: i64,
) -> (Vec<Option<Line>>, i64, Option<String>) {
    let (recs, next, unreadable) = records(partition, data, aborted, from, usize::MAX);
    let lines = recs
        .into_iter()
        .map(|r| {
            if !sampled(&setup.topic, partition, r.offset, setup.sample) {
                return None;
            }
            let m = Mirrored {
                topic: &setup.topic,
                partition,
                offset: r.offset,
                timestamp: r.timestamp,
                key: shown(r.key.as_deref(), true),
                headers: shown_headers(&r.headers),
                value: setup.values.then(|| shown(r.value.as_deref(), true)),
                value_hidden: !setup.values,
            };
            let json = serde_json::to_vec(&m).unwrap_or_default();
            Some(Line {
                partition,
                key: r.key,
                json: json.into(),
            })
        })
        .collect();
    (lines, next, unreadable)
}
