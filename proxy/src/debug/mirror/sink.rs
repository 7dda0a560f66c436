//! The mirror's sinks, each a task of its own behind a bounded queue: a
//! full queue drops the record and counts it (the reader never waits for a
//! sink); a failed write drops its records, counts them and is logged at
//! most once a minute, and the next records try again.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use metrics::Counter;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::warn;

use super::jsonl::Writer;
use crate::codec::build::{build_batch, Producer, RecordSpec};
use crate::kafka_client::KafkaClient;

/// Records queued for a sink at most.
pub const QUEUE: usize = 1024;
/// Records written at once at most.
const BATCH_RECORDS: usize = 512;
/// JSON bytes of one produced batch at most (under a broker's default
/// 1 MiB `message.max.bytes`).
const BATCH_BYTES: usize = 512 << 10;
const LOG_EVERY: Duration = Duration::from_secs(60);
/// After a failed write a sink takes nothing for this long: its records are
/// counted as dropped without being rendered or queued, so a stopped sink
/// costs the reader almost nothing.
pub const BACK_OFF_MS: u64 = 1_000;

/// One mirrored record: its source partition and key, and its JSON.
#[derive(Debug, Clone)]
pub struct Line {
    pub partition: i32,
    pub key: Option<Bytes>,
    pub json: Bytes,
}

/// What became of a record at a sink.
#[derive(Debug, Clone, Copy)]
pub enum Outcome {
    Written,
    DroppedFull,
    DroppedRate,
    DroppedError,
    SampledOut,
}

const OUTCOMES: [&str; 5] = [
    "written",
    "dropped_full",
    "dropped_rate",
    "dropped_error",
    "sampled_out",
];

/// One sink's counts (for `/debug/mirror`) and metric handles.
pub struct SinkStats {
    pub kind: &'static str,
    counts: [AtomicU64; 5],
    metrics: [Counter; 5],
    /// Until when (ms since the epoch) the sink takes nothing after a failure.
    failing_until_ms: AtomicU64,
}

#[derive(Debug, Serialize)]
pub struct SinkCounts {
    pub sink: &'static str,
    pub written: u64,
    pub dropped_full: u64,
    pub dropped_rate: u64,
    pub dropped_error: u64,
    pub sampled_out: u64,
}

impl SinkStats {
    pub fn new(policy: &str, kind: &'static str) -> SinkStats {
        SinkStats {
            kind,
            counts: Default::default(),
            metrics: OUTCOMES.map(|o| crate::metrics::mirror_records(policy, kind, o)),
            failing_until_ms: AtomicU64::new(0),
        }
    }

    /// A write failed: take nothing for [`BACK_OFF_MS`].
    fn failed(&self) {
        let until = crate::metrics::now_ms() + BACK_OFF_MS;
        self.failing_until_ms.store(until, Ordering::Relaxed);
    }

    pub fn count(&self, outcome: Outcome, n: u64) {
        let i = outcome as usize;
        self.counts[i].fetch_add(n, Ordering::Relaxed);
        self.metrics[i].increment(n);
    }

    pub fn snapshot(&self) -> SinkCounts {
        let c = |o: Outcome| self.counts[o as usize].load(Ordering::Relaxed);
        SinkCounts {
            sink: self.kind,
            written: c(Outcome::Written),
            dropped_full: c(Outcome::DroppedFull),
            dropped_rate: c(Outcome::DroppedRate),
            dropped_error: c(Outcome::DroppedError),
            sampled_out: c(Outcome::SampledOut),
        }
    }
}

/// A sink's end of the queue and its counts.
pub struct Sink {
    pub tx: mpsc::Sender<Line>,
    pub stats: Arc<SinkStats>,
}

impl Sink {
    /// Queues a record, or drops and counts it when the sink backs off after
    /// a failure or its queue is full.
    pub fn offer(&self, line: Line) {
        if let Some(why) = self.unavailable() {
            return self.stats.count(why, 1);
        }
        if self.tx.try_send(line).is_err() {
            self.stats.count(Outcome::DroppedFull, 1);
        }
    }

    /// Why the sink would drop a record offered now, if it would.
    pub fn unavailable(&self) -> Option<Outcome> {
        let until = self.stats.failing_until_ms.load(Ordering::Relaxed);
        if crate::metrics::now_ms() < until {
            Some(Outcome::DroppedError)
        } else if self.tx.capacity() == 0 {
            Some(Outcome::DroppedFull)
        } else {
            None
        }
    }
}

/// Logs a sink's failures at most once a minute.
struct Limiter(Option<Instant>);

impl Limiter {
    fn due(&mut self) -> bool {
        let now = Instant::now();
        if self.0.is_some_and(|at| now < at + LOG_EVERY) {
            return false;
        }
        self.0 = Some(now);
        true
    }
}

/// Takes what is queued, up to a batch, after waiting for the first.
async fn next_batch(rx: &mut mpsc::Receiver<Line>) -> Option<Vec<Line>> {
    let first = rx.recv().await?;
    let mut bytes = first.json.len();
    let mut batch = vec![first];
    while batch.len() < BATCH_RECORDS && bytes < BATCH_BYTES {
        match rx.try_recv() {
            Ok(l) => {
                bytes += l.json.len();
                batch.push(l);
            }
            Err(_) => break,
        }
    }
    Some(batch)
}

/// Writes queued records to the topic's JSONL files on the blocking pool
/// until the queue's sender is gone.
pub async fn jsonl(mut rx: mpsc::Receiver<Line>, mut writer: Writer, stats: Arc<SinkStats>) {
    let mut log = Limiter(None);
    while let Some(batch) = next_batch(&mut rx).await {
        let n = batch.len() as u64;
        let done = tokio::task::spawn_blocking(move || {
            let r = writer.write(batch.iter().map(|l| &l.json[..]));
            (writer, r)
        })
        .await;
        let Ok((w, result)) = done else { return };
        writer = w;
        match result {
            Ok(()) => stats.count(Outcome::Written, n),
            Err(e) => {
                stats.count(Outcome::DroppedError, n);
                stats.failed();
                if log.due() {
                    warn!(dir = %writer.dir().display(),
                          error = %e, dropped = n, "mirror: cannot write the JSONL file; records dropped (logged once a minute)");
                }
            }
        }
    }
}

/// Produces queued records to the mirror topic (JSON values keyed by the
/// source key, the source partition modulo the mirror topic's partitions)
/// until the queue's sender is gone.
pub async fn topic(
    mut rx: mpsc::Receiver<Line>,
    client: Arc<KafkaClient>,
    name: String,
    stats: Arc<SinkStats>,
) {
    let mut log = Limiter(None);
    let mut partitions: Option<i32> = None;
    while let Some(batch) = next_batch(&mut rx).await {
        let n = batch.len() as u64;
        let result = produce(&client, &name, &mut partitions, &batch, &stats).await;
        if let Err(e) = result {
            partitions = None;
            stats.failed();
            if log.due() {
                warn!(topic = %name, error = %e, dropped = n,
                      "mirror: cannot produce to the mirror topic; records dropped (logged once a minute)");
            }
        }
    }
}

async fn produce(
    client: &KafkaClient,
    name: &str,
    partitions: &mut Option<i32>,
    batch: &[Line],
    stats: &SinkStats,
) -> Result<(), String> {
    let count = match *partitions {
        Some(n) => n,
        None => match client.partitions(name).await {
            Ok(Some(n)) if n > 0 => *partitions.insert(n),
            Ok(_) => {
                stats.count(Outcome::DroppedError, batch.len() as u64);
                return Err(format!("the mirror topic {name:?} does not exist"));
            }
            Err(e) => {
                stats.count(Outcome::DroppedError, batch.len() as u64);
                return Err(e.to_string());
            }
        },
    };
    let mut first_error = None;
    for p in 0..count {
        let lines: Vec<&Line> = batch
            .iter()
            .filter(|l| l.partition.rem_euclid(count) == p)
            .collect();
        if lines.is_empty() {
            continue;
        }
        let specs: Vec<RecordSpec<'_>> = lines
            .iter()
            .map(|l| (l.key.as_deref(), Some(&l.json[..]), &[][..]))
            .collect();
        let records = build_batch(Producer::NONE, crate::metrics::now_ms() as i64, &specs);
        let n = lines.len() as u64;
        match client.produce(name, p, records).await {
            Ok(_) => stats.count(Outcome::Written, n),
            Err(e) => {
                stats.count(Outcome::DroppedError, n);
                first_error.get_or_insert(e.to_string());
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}
