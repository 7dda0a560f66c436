//! Chunking: a value too large for the broker is written, in pieces, by
//! Strait's own producer to a companion topic, and the client's record
//! carries a [`Manifest`] of where the pieces are. Each chunk record has the
//! value's SHA-256 (hex) as key and header `strait.chunk` = `<index>/<count>`
//! (index from 0), so a chunk can be told apart from any other record, and
//! the value read back is checked whole against the hash.
//!
//! The chunk topic has as many partitions as its source (a value's chunks go
//! to the partition of the same number), `cleanup.policy=delete`, a
//! retention no shorter than the source's and no size retention: chunks
//! outlive the manifests that point at them. A compacted source is refused
//! unless allowed: compaction keeps manifests by key, forever, while their
//! chunks would expire (allowed, its chunks are kept forever).

mod read;
mod topic;

use std::ops::Range;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};

use super::reference::{Manifest, MAX_CHUNKS, MAX_VALUE_BYTES};
use crate::codec::batch::BATCH_HEADER_LEN;
use crate::codec::build::{encode_batch, Producer};
use crate::codec::records::{put_varint, Record};
use crate::kafka_client::{KafkaClient, KafkaError};

pub use read::read_chunks;
pub use topic::{ensure_chunk_topic, ChunkTopics};

/// Chunks per batch Strait writes (one produce each) at most.
pub const MAX_CHUNKS_PER_BATCH: usize = 8;
/// Fewer chunks per batch when they are large: batches stay near this size.
const BATCH_TARGET_BYTES: u64 = 4 << 20;
/// The header naming a chunk's place: `<index>/<count>`.
pub const CHUNK_HEADER: &[u8] = b"strait.chunk";
/// Bytes of a chunk record beyond its chunk: length, attributes, deltas,
/// the 64-digit key, the header (its value at most `131071/131072`).
const RECORD_OVERHEAD: u64 = 128;
/// The most a fetch asks for (a larger first batch still comes whole).
const FETCH_CAP: u64 = 32 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ChunkError {
    #[error(transparent)]
    Kafka(#[from] KafkaError),
    #[error("topic {topic} does not exist: nothing to chunk into {chunk_topic}")]
    NoSource { topic: String, chunk_topic: String },
    #[error("topic {topic} has cleanup.policy={policy}: compaction keeps its manifests by key while their chunks in {chunk_topic} would expire, so it is not chunked (allow_compacted = true in its policy chunks it anyway, keeping chunks forever)")]
    Compacted {
        topic: String,
        chunk_topic: String,
        policy: String,
    },
    #[error("chunk topic {topic}: {problem}")]
    ChunkTopic { topic: String, problem: String },
    #[error("chunk {index} of {chunks} is missing: {topic}/{partition} has no record at offset {offset} ({why})")]
    Missing {
        topic: String,
        partition: i32,
        offset: i64,
        index: u32,
        chunks: u32,
        why: String,
    },
    #[error("chunks in {topic}/{partition} at {at} do not rebuild the value: {what}")]
    Mismatch {
        topic: String,
        partition: i32,
        at: String,
        what: String,
    },
    #[error("a value of {size} bytes is over the {max}-byte limit")]
    TooLarge { size: u64, max: u64 },
    #[error("chunk topic {topic}: no answer within {timeout:?}")]
    Timeout { topic: String, timeout: Duration },
}

impl ChunkError {
    /// Whether the same operation may succeed later.
    pub fn retriable(&self) -> bool {
        match self {
            ChunkError::Kafka(e) => e.retriable(),
            ChunkError::Timeout { .. } => true,
            _ => false,
        }
    }
}

/// How many chunks of `chunk_bytes` go in one batch: up to
/// [`MAX_CHUNKS_PER_BATCH`], about 4 MiB at most unless one chunk is larger.
pub fn chunks_per_batch(chunk_bytes: u32) -> usize {
    let n = BATCH_TARGET_BYTES / u64::from(chunk_bytes.max(1));
    (n as usize).clamp(1, MAX_CHUNKS_PER_BATCH)
}

/// The largest batch [`write_chunks`] writes with `chunk_bytes` chunks: the
/// chunk topic's `max.message.bytes` must allow it, and a fetch's answer
/// must fit `limits.max_frame_bytes`.
pub fn max_batch_bytes(chunk_bytes: u32) -> u64 {
    let n = chunks_per_batch(chunk_bytes) as u64;
    BATCH_HEADER_LEN as u64 + n * (u64::from(chunk_bytes) + RECORD_OVERHEAD)
}

/// The byte ranges of a value's chunks: `chunk_bytes` each, the last one
/// shorter; an empty value is one empty chunk.
pub fn split(len: usize, chunk_bytes: u32) -> Vec<Range<usize>> {
    let step = chunk_bytes.max(1) as usize;
    let n = len.div_ceil(step).max(1);
    (0..n).map(|i| i * step..len.min((i + 1) * step)).collect()
}

/// Appends a run of `n` offsets from `base`, merged with the previous run
/// when they touch.
fn push_range(ranges: &mut Vec<(i64, u32)>, base: i64, n: u32) {
    match ranges.last_mut() {
        Some(last) if last.0 + i64::from(last.1) == base => last.1 += n,
        _ => ranges.push((base, n)),
    }
}

/// One batch of chunks `first..` of `count`, zero-copy slices of `value`.
fn chunk_batch(
    key: &Bytes,
    value: &Bytes,
    pieces: &[Range<usize>],
    first: usize,
    count: usize,
    timestamp: i64,
) -> Bytes {
    let records: Vec<Record> = pieces
        .iter()
        .enumerate()
        .map(|(i, piece)| {
            let tag = format!("{}/{count}", first + i);
            let mut h = BytesMut::with_capacity(CHUNK_HEADER.len() + tag.len() + 2);
            put_varint(&mut h, CHUNK_HEADER.len() as i64);
            h.put_slice(CHUNK_HEADER);
            put_varint(&mut h, tag.len() as i64);
            h.put_slice(tag.as_bytes());
            let v = value.slice(piece.clone());
            Record::new(0, 0, i as i64, Some(key.clone()), Some(v), 1, h.freeze())
        })
        .collect();
    encode_batch(Producer::NONE, timestamp, &records)
}

/// Writes `value` to `chunk_topic`/`partition` in chunks of `chunk_bytes`,
/// [`chunks_per_batch`] per batch, each batch acknowledged before the next;
/// returns the manifest. `sha256` is the value's hash (the caller has it).
/// A failure part-way leaves the batches written so far in the topic, where
/// no manifest points at them; they expire with the topic's retention.
pub async fn write_chunks(
    client: &KafkaClient,
    chunk_topic: &str,
    partition: i32,
    value: Bytes,
    chunk_bytes: u32,
    sha256: [u8; 32],
) -> Result<Manifest, ChunkError> {
    let max = MAX_VALUE_BYTES.min(u64::from(MAX_CHUNKS) * u64::from(chunk_bytes.max(1)));
    if value.len() as u64 > max {
        return Err(ChunkError::TooLarge {
            size: value.len() as u64,
            max,
        });
    }
    let pieces = split(value.len(), chunk_bytes);
    let key = Bytes::from(hex::encode(sha256));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let mut ranges = Vec::new();
    let per_batch = chunks_per_batch(chunk_bytes);
    for (b, group) in pieces.chunks(per_batch).enumerate() {
        let batch = chunk_batch(&key, &value, group, b * per_batch, pieces.len(), now);
        let base = client.produce(chunk_topic, partition, batch).await?;
        push_range(&mut ranges, base, group.len() as u32);
    }
    Ok(Manifest {
        topic: chunk_topic.to_string(),
        partition,
        ranges,
        chunks: pieces.len() as u32,
        size: value.len() as u64,
        sha256,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::batch::batches;
    use crate::codec::records::decode_records;

    #[test]
    fn values_split_into_whole_chunks_and_a_shorter_last_one() {
        assert_eq!(
            split(1000, 300),
            vec![0..300, 300..600, 600..900, 900..1000]
        );
        assert_eq!(split(600, 300), vec![0..300, 300..600]);
        assert_eq!(split(5 << 20, 512 << 10).len(), 10);
        assert_eq!(
            split(0, 300),
            vec![0..0],
            "an empty value is one empty chunk"
        );
        assert_eq!(split(3, 0).len(), 3, "a zero chunk size is one byte");
    }

    #[test]
    fn ranges_merge_when_batches_touch() {
        let mut r = Vec::new();
        push_range(&mut r, 120, 8);
        push_range(&mut r, 128, 8);
        push_range(&mut r, 140, 2);
        assert_eq!(r, vec![(120, 16), (140, 2)]);
    }

    #[test]
    fn a_chunk_batch_carries_slices_the_key_and_each_place() {
        let value = Bytes::from((0..1000u32).map(|i| i as u8).collect::<Vec<u8>>());
        let key = Bytes::from(hex::encode([7u8; 32]));
        let pieces = split(value.len(), 300);
        let raw = chunk_batch(
            &key,
            &value,
            &pieces[1..],
            1,
            pieces.len(),
            1_700_000_000_000,
        );
        let b = batches(raw).unwrap().remove(0);
        assert_eq!((b.producer_id(), b.record_count()), (-1, 3));
        let section = b.record_bytes(1 << 20).unwrap();
        let records = decode_records(&section, 3).unwrap();
        for (i, r) in records.iter().enumerate() {
            assert_eq!(r.offset_delta, i as i64);
            assert_eq!(r.key.as_ref(), Some(&key));
            assert_eq!(r.value.as_deref(), Some(&value[pieces[i + 1].clone()]));
            let place = format!("{}/4", i + 1);
            assert_eq!(r.header(CHUNK_HEADER), Some(Some(place.as_bytes())));
        }
    }

    #[test]
    fn chunk_work_can_cross_threads() {
        fn send<T: Send>(_: &T) {}
        let cfg = crate::config::UpstreamConfig {
            bootstrap: vec!["127.0.0.1:1".into()],
            connect_timeout_ms: 100,
            tls: None,
            sasl: None,
            leader_endpoints: Default::default(),
        };
        let dialer = crate::upstream::Dialer::new(&cfg, 1 << 20).unwrap();
        let c = KafkaClient::new(std::sync::Arc::new(dialer), Duration::from_secs(1));
        let m = Manifest {
            topic: "c".into(),
            partition: 0,
            ranges: vec![(0, 1)],
            chunks: 1,
            size: 0,
            sha256: [0; 32],
        };
        send(&write_chunks(&c, "c", 0, Bytes::new(), 10, [0; 32]));
        send(&read_chunks(&c, &m, 10));
        send(&ensure_chunk_topic(&c, "s", "c", 10, false));
        let rules = strait_policies::LargeRecordRules {
            threshold: 1,
            remedies: Vec::new(),
            prefix: "strait".into(),
            chunk_topic: "{topic}.c".into(),
            chunk_bytes: 10,
            allow_compacted: false,
        };
        send(&ChunkTopics::default().ensure(&c, "s", "c", &rules));
    }

    #[test]
    fn large_chunks_go_fewer_to_a_batch() {
        assert_eq!(chunks_per_batch(512 << 10), 8);
        assert_eq!(chunks_per_batch(16 << 10), 8);
        assert_eq!(chunks_per_batch(1 << 20), 4);
        assert_eq!(chunks_per_batch(8 << 20), 1);
        assert!(max_batch_bytes(8 << 20) < 9 << 20);
    }

    #[test]
    fn the_largest_batch_fits_max_batch_bytes() {
        let chunk = 1000u32;
        let value = Bytes::from(vec![1u8; chunk as usize * MAX_CHUNKS_PER_BATCH]);
        let key = Bytes::from(hex::encode([0xffu8; 32]));
        let pieces = split(value.len(), chunk);
        let count = MAX_CHUNKS as usize;
        let raw = chunk_batch(
            &key,
            &value,
            &pieces,
            count - MAX_CHUNKS_PER_BATCH,
            count,
            i64::MAX / 2,
        );
        assert!(raw.len() as u64 <= max_batch_bytes(chunk), "{}", raw.len());
    }
}
