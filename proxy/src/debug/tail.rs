//! Live tail of a topic: each viewer gets a reader of its own (the debug
//! client, read_committed, from the latest offset, an offset or a time),
//! its filters, and a bounded queue to its connection. A viewer that reads
//! slower than the topic is written loses its own events (counted, and the
//! count is sent to it), never anyone else's, and never slows a producer or
//! a consumer: the data path does not see the tail at all. Records are
//! decoded on the blocking pool, only while someone tails the topic.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::mpsc;

pub use super::filter::Filter;
use super::lag::now_ms;
use super::stuck::{shown, shown_headers, Shown};
use crate::codec::aborted::drop_aborted;
use crate::codec::batch::Batches;
use crate::codec::records::decode_records;
use crate::kafka_client::{KafkaClient, OffsetSpec};
use crate::offload::Offload;

/// Bytes read per partition per fetch.
const FETCH_BYTES: i32 = 256 << 10;
/// Decompressed bytes of a batch at most.
const DECOMPRESS_CAP: usize = 64 << 20;
/// Events queued for a viewer at most; past it, its events are dropped.
const QUEUE: usize = 256;
/// How long a reader waits after a round that found nothing new.
const IDLE: Duration = Duration::from_millis(250);
/// How often a viewer gets its counters.
const STATS_EVERY: Duration = Duration::from_secs(1);
/// Viewers at once, over all topics (each reads the topic on its own).
pub const MAX_VIEWERS: usize = 16;

/// Where a tail starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    Latest,
    Earliest,
    Offset(i64),
    /// The first record at or after this time (ms since the epoch).
    Time(i64),
}

impl Start {
    pub fn parse(s: &str) -> Option<Start> {
        Some(match s {
            "latest" => Start::Latest,
            "earliest" => Start::Earliest,
            _ => match s.split_once(':')? {
                ("offset", n) => Start::Offset(n.parse().ok().filter(|n| *n >= 0)?),
                ("time", n) => Start::Time(n.parse().ok()?),
                _ => return None,
            },
        })
    }
}

/// One event sent to a viewer.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Event {
    Record {
        partition: i32,
        offset: i64,
        timestamp_ms: i64,
        key: Shown,
        headers: Vec<(String, Shown)>,
        value: Shown,
    },
    /// The viewer's counters, as in the talk: processed, passed the filter,
    /// last at; and the events it lost for reading slowly.
    Stats {
        processed: u64,
        passed: u64,
        dropped: u64,
        /// Records the CEL expression could not decide (not passed).
        filter_errors: u64,
        last_at_ms: Option<u64>,
        /// Next offset to read, per partition.
        positions: Vec<(i32, i64)>,
    },
    /// Why the CEL expression could not decide a record: the first such
    /// error, once (the tail goes on; `filter_errors` counts them all).
    #[serde(rename = "filter_error")]
    FilterError { message: String },
    /// The tail stopped (the topic went away, or the cluster failed it).
    Error { message: String },
}

/// A record as the tail reads it.
pub(super) struct Record {
    pub(super) partition: i32,
    pub(super) offset: i64,
    pub(super) timestamp: i64,
    pub(super) key: Option<Bytes>,
    pub(super) value: Option<Bytes>,
    pub(super) headers: Vec<(Bytes, Option<Bytes>)>,
}

/// Counts the viewers; a slot is given back when its reader ends.
#[derive(Default)]
pub struct Viewers(AtomicUsize);

pub struct Slot(Arc<Viewers>);

impl Viewers {
    pub fn take(self: &Arc<Self>) -> Option<Slot> {
        let n = self.0.fetch_add(1, Ordering::AcqRel);
        if n >= MAX_VIEWERS {
            self.0.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Slot(self.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0 .0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Starts a viewer's reader; its events come out of the receiver, which the
/// viewer's connection drains. The reader ends when the receiver is gone.
pub async fn start(
    client: Arc<KafkaClient>,
    offload: Offload,
    topic: String,
    start: Start,
    filter: Filter,
    values: bool,
    slot: Slot,
) -> Result<mpsc::Receiver<Event>, String> {
    let partitions = client
        .partitions(&topic)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("topic {topic:?} does not exist"))?;
    let parts: Vec<(String, i32)> = (0..partitions)
        .filter(|p| filter.partition.is_none_or(|f| f == *p))
        .map(|p| (topic.clone(), p))
        .collect();
    if parts.is_empty() {
        return Err(format!(
            "topic {topic:?} has no partition {:?}",
            filter.partition
        ));
    }
    let spec = match start {
        Start::Latest | Start::Offset(_) => OffsetSpec::Latest,
        Start::Earliest => OffsetSpec::Earliest,
        Start::Time(ms) => OffsetSpec::Timestamp(ms),
    };
    let ends = client
        .offsets(&parts, spec)
        .await
        .map_err(|e| e.to_string())?;
    let mut positions: Vec<(i32, i64)> = parts
        .iter()
        .map(|(t, p)| {
            let at = ends.get(&(t.clone(), *p)).copied().unwrap_or(0);
            (*p, if let Start::Offset(n) = start { n } else { at })
        })
        .collect();
    if let Start::Time(_) = start {
        // No record at or after the time: from the end.
        let latest = client
            .offsets(&parts, OffsetSpec::Latest)
            .await
            .map_err(|e| e.to_string())?;
        for (p, at) in positions.iter_mut() {
            if *at < 0 {
                *at = latest.get(&(topic.clone(), *p)).copied().unwrap_or(0);
            }
        }
    }
    let (tx, rx) = mpsc::channel(QUEUE);
    tokio::spawn(async move {
        let _slot = slot;
        let mut c = Counters::default();
        let mut last_stats = tokio::time::Instant::now();
        while !tx.is_closed() {
            let mut found = false;
            for (p, pos) in positions.iter_mut() {
                let got = match client.fetch_committed(&topic, *p, *pos, FETCH_BYTES).await {
                    Ok(got) => got,
                    Err(crate::kafka_client::KafkaError::OffsetOutOfRange { .. }) => {
                        // Deleted under the tail, or past the end: go on
                        // from the log start.
                        let earliest = client.earliest_offset(&topic, *p).await;
                        *pos = earliest.unwrap_or(*pos);
                        continue;
                    }
                    Err(e) => {
                        let _ = tx.try_send(Event::Error {
                            message: e.to_string(),
                        });
                        return;
                    }
                };
                let from = *pos;
                let part = *p;
                let f = filter.clone();
                // Decoding and filtering (JSON, the CEL expression, which
                // has no cost limit) happen here, never on the reactor.
                let decoded = offload
                    .run(move || {
                        let (recs, next, _) =
                            records(part, got.records, &got.aborted, from, usize::MAX);
                        (f.sift(recs), next)
                    })
                    .await;
                let Ok((sifted, next)) = decoded else {
                    return;
                };
                if next > *pos {
                    *pos = next;
                    found = true;
                }
                if sifted.processed > 0 {
                    c.last_at = Some(now_ms());
                }
                c.processed += sifted.processed;
                c.filter_errors += sifted.errors;
                if let (false, Some(message)) = (c.told_error, sifted.first_error) {
                    // Once, so the viewer knows why records do not pass.
                    c.told_error = tx.try_send(Event::FilterError { message }).is_ok();
                }
                for r in sifted.kept {
                    c.passed += 1;
                    if tx.try_send(event(r, values)).is_err() {
                        c.dropped += 1;
                    }
                }
            }
            if last_stats.elapsed() >= STATS_EVERY {
                last_stats = tokio::time::Instant::now();
                let _ = tx.try_send(c.stats(&positions));
            }
            if !found {
                tokio::select! {
                    _ = tokio::time::sleep(IDLE) => {}
                    _ = tx.closed() => return,
                }
            }
        }
    });
    Ok(rx)
}

#[derive(Default)]
struct Counters {
    processed: u64,
    passed: u64,
    dropped: u64,
    filter_errors: u64,
    told_error: bool,
    last_at: Option<u64>,
}

impl Counters {
    fn stats(&self, positions: &[(i32, i64)]) -> Event {
        Event::Stats {
            processed: self.processed,
            passed: self.passed,
            dropped: self.dropped,
            filter_errors: self.filter_errors,
            last_at_ms: self.last_at,
            positions: positions.to_vec(),
        }
    }
}

fn event(r: Record, values: bool) -> Event {
    Event::Record {
        partition: r.partition,
        offset: r.offset,
        timestamp_ms: r.timestamp,
        key: shown(r.key.as_deref(), true),
        headers: shown_headers(&r.headers),
        value: shown(r.value.as_deref(), values),
    }
}

/// The records at or after `from` a read_committed consumer is handed (at
/// most `limit`), the next offset to read, and why reading stopped early
/// when a batch could not be read. Shared with the stuck message.
pub(super) fn records(
    partition: i32,
    data: Bytes,
    aborted: &[(i64, i64)],
    from: i64,
    limit: usize,
) -> (Vec<Record>, i64, Option<String>) {
    let mut out = Vec::new();
    let mut next = from;
    for batch in Batches::new(drop_aborted(&data, aborted)) {
        let batch = match batch {
            Ok(b) => b,
            Err(e) => return (out, next, Some(e.to_string())),
        };
        next = next.max(batch.last_offset() + 1);
        if batch.is_control() || batch.last_offset() < from {
            continue;
        }
        let recs = batch
            .record_bytes(DECOMPRESS_CAP)
            .and_then(|bytes| decode_records(&bytes, batch.record_count()));
        let recs = match recs {
            Ok(r) => r,
            Err(e) => return (out, next, Some(e.to_string())),
        };
        let log_append = batch.attributes() & 0x08 != 0;
        for r in recs {
            let offset = batch.base_offset() + r.offset_delta;
            if offset < from {
                continue;
            }
            if out.len() == limit {
                return (out, offset, None);
            }
            let headers = r
                .headers()
                .map(|(k, v)| (Bytes::copy_from_slice(k), v.map(Bytes::copy_from_slice)))
                .collect();
            out.push(Record {
                partition,
                offset,
                timestamp: if log_append {
                    batch.max_timestamp()
                } else {
                    batch.base_timestamp() + r.timestamp_delta
                },
                key: r.key,
                value: r.value,
                headers,
            });
        }
    }
    (out, next, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_parse_and_bad_ones_are_refused() {
        assert_eq!(Start::parse("latest"), Some(Start::Latest));
        assert_eq!(Start::parse("earliest"), Some(Start::Earliest));
        assert_eq!(Start::parse("offset:42"), Some(Start::Offset(42)));
        assert_eq!(
            Start::parse("time:1700000000000"),
            Some(Start::Time(1_700_000_000_000))
        );
        for bad in ["", "offset:-1", "offset:x", "time:", "yesterday", "offset"] {
            assert_eq!(Start::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn viewers_are_bounded_and_give_their_slot_back() {
        let v = Arc::new(Viewers::default());
        let slots: Vec<_> = (0..MAX_VIEWERS)
            .map(|_| v.take().expect("a slot"))
            .collect();
        assert!(v.take().is_none());
        drop(slots);
        assert!(v.take().is_some());
    }
}
