//! Strait's own record-batch reader (magic 2): bounds-checked, zero-copy on
//! `Bytes`, decompression capped. It reads what policies need (batch header
//! fields, record sizes and header keys) and never allocates per record for
//! uncompressed batches. kafka-protocol's record layer is not used: it is lossy
//! and trusts `record_count` (DESIGN.md).

use std::io::Read;

use bytes::{Buf, Bytes};
use strait_policies::decide::{BatchFacts, RecordFacts};
use strait_policies::Codec;
use thiserror::Error;

/// Bytes before the records in a v2 batch.
pub const BATCH_HEADER_LEN: usize = 61;
// The v2 batch header, by byte offset (shared with `records`).
pub(crate) const LENGTH_OFFSET: usize = 8;
pub(crate) const MAGIC_OFFSET: usize = 16;
pub(crate) const CRC_OFFSET: usize = 17;
pub(crate) const ATTRIBUTES_OFFSET: usize = 21;
pub(crate) const PRODUCER_ID_OFFSET: usize = 43;
pub(crate) const BASE_SEQUENCE_OFFSET: usize = 53;
pub(crate) const RECORD_COUNT_OFFSET: usize = 57;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum BatchError {
    #[error("record batch truncated: {0}")]
    Truncated(&'static str),
    #[error("unsupported record batch magic {0} (only magic 2 can be inspected)")]
    Magic(i8),
    #[error("unknown compression codec {0}")]
    Codec(i16),
    #[error("record count {count} does not fit in {bytes} bytes")]
    Count { count: i32, bytes: usize },
    #[error("decompressed batch exceeds the {0}-byte cap")]
    TooLarge(usize),
    #[error("cannot decompress {codec}: {why}")]
    Decompress { codec: &'static str, why: String },
    #[error("malformed record: {0}")]
    Record(&'static str),
    #[error("record batch CRC-32C mismatch (stated {stated:#010x}, computed {actual:#010x})")]
    Crc { stated: u32, actual: u32 },
    #[error("cannot compress {codec}: {why}")]
    Compress { codec: &'static str, why: String },
}

/// One batch: its header facts and its (possibly compressed) records.
#[derive(Debug, Clone)]
pub struct Batch {
    pub facts: BatchFacts,
    pub record_count: i32,
    /// A control batch (transaction marker).
    pub control: bool,
    /// The records section (possibly compressed).
    pub records: Bytes,
    /// The whole batch as received.
    pub raw: Bytes,
}

/// Splits a partition's `records` bytes into batches. A trailing partial batch
/// (allowed on fetch) is an error here: produce batches are whole.
pub fn batches(mut data: Bytes) -> Result<Vec<Batch>, BatchError> {
    let mut out = Vec::new();
    while data.has_remaining() {
        if data.len() < 17 {
            return Err(BatchError::Truncated("batch header"));
        }
        let batch_len = i32::from_be_bytes(data[8..12].try_into().expect("4")) as i64;
        let magic = data[MAGIC_OFFSET] as i8;
        if magic != 2 {
            return Err(BatchError::Magic(magic));
        }
        let total = 12 + batch_len;
        if batch_len < (BATCH_HEADER_LEN - 12) as i64 || total as usize > data.len() {
            return Err(BatchError::Truncated("batch length"));
        }
        let batch = data.split_to(total as usize);
        let attributes = i16::from_be_bytes(
            batch[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2]
                .try_into()
                .expect("2"),
        );
        let compression =
            Codec::from_attributes(attributes).ok_or(BatchError::Codec(attributes & 7))?;
        let producer_id = i64::from_be_bytes(
            batch[PRODUCER_ID_OFFSET..PRODUCER_ID_OFFSET + 8]
                .try_into()
                .expect("8"),
        );
        let record_count = i32::from_be_bytes(
            batch[RECORD_COUNT_OFFSET..RECORD_COUNT_OFFSET + 4]
                .try_into()
                .expect("4"),
        );
        let records = batch.slice(BATCH_HEADER_LEN..);
        // Every record takes at least 7 bytes uncompressed; compressed data
        // is checked again after decompression.
        if record_count < 0
            || (compression == Codec::None && record_count as usize > records.len() / 7 + 1)
        {
            return Err(BatchError::Count {
                count: record_count,
                bytes: records.len(),
            });
        }
        out.push(Batch {
            facts: BatchFacts {
                producer_id,
                transactional: attributes & 0x10 != 0,
                compression,
                magic,
            },
            record_count,
            control: attributes & 0x20 != 0,
            records,
            raw: batch,
        });
    }
    Ok(out)
}

/// The records of a batch, decompressed (up to `cap` bytes) when needed.
pub fn record_bytes(batch: &Batch, cap: usize) -> Result<Bytes, BatchError> {
    decompress(batch.facts.compression, &batch.records, cap)
}

/// A records section in `codec`, decompressed (up to `cap` bytes).
pub fn decompress(codec: Codec, data: &Bytes, cap: usize) -> Result<Bytes, BatchError> {
    let compressed = &data[..];
    let limited = |r: &mut dyn Read, codec: &'static str| -> Result<Bytes, BatchError> {
        let mut out = Vec::new();
        r.take(cap as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| BatchError::Decompress {
                codec,
                why: e.to_string(),
            })?;
        if out.len() > cap {
            return Err(BatchError::TooLarge(cap));
        }
        Ok(Bytes::from(out))
    };
    match codec {
        Codec::None => Ok(data.clone()),
        Codec::Gzip => limited(&mut flate2::read::MultiGzDecoder::new(compressed), "gzip"),
        Codec::Lz4 => limited(&mut lz4_flex::frame::FrameDecoder::new(compressed), "lz4"),
        Codec::Zstd => {
            let mut d = zstd::stream::read::Decoder::new(compressed).map_err(|e| {
                BatchError::Decompress {
                    codec: "zstd",
                    why: e.to_string(),
                }
            })?;
            limited(&mut d, "zstd")
        }
        Codec::Snappy => snappy(compressed, cap),
    }
}

/// Snappy as Java writes it (xerial framing: a 16-byte header, then
/// length-prefixed raw blocks) or as librdkafka writes it (one raw block).
fn snappy(data: &[u8], cap: usize) -> Result<Bytes, BatchError> {
    const XERIAL: &[u8] = b"\x82SNAPPY\x00";
    let err = |why: String| BatchError::Decompress {
        codec: "snappy",
        why,
    };
    let mut out = Vec::new();
    let block = |raw: &[u8], out: &mut Vec<u8>| -> Result<(), BatchError> {
        let n = snap::raw::decompress_len(raw).map_err(|e| err(e.to_string()))?;
        if out.len() + n > cap {
            return Err(BatchError::TooLarge(cap));
        }
        let start = out.len();
        out.resize(start + n, 0);
        snap::raw::Decoder::new()
            .decompress(raw, &mut out[start..])
            .map_err(|e| err(e.to_string()))?;
        Ok(())
    };
    if data.starts_with(XERIAL) {
        let mut rest = data
            .get(16..)
            .ok_or_else(|| err("xerial header truncated".into()))?;
        while !rest.is_empty() {
            let len = rest
                .get(..4)
                .ok_or_else(|| err("xerial block length truncated".into()))?;
            let len = u32::from_be_bytes(len.try_into().expect("4")) as usize;
            let raw = rest
                .get(4..4 + len)
                .ok_or_else(|| err("xerial block truncated".into()))?;
            block(raw, &mut out)?;
            rest = &rest[4 + len..];
        }
    } else {
        block(data, &mut out)?;
    }
    Ok(Bytes::from(out))
}

/// A record's view for policy checks: its size and its header keys.
#[derive(Debug, Clone, Copy)]
pub struct RecordView<'a> {
    size: usize,
    headers: &'a [u8],
    header_count: usize,
}

impl RecordFacts for RecordView<'_> {
    fn size(&self) -> usize {
        self.size
    }

    fn has_header(&self, key: &[u8]) -> bool {
        let mut r = Cursor(self.headers);
        for _ in 0..self.header_count {
            let Some(k) = r.bytes_varint() else {
                return false;
            };
            if k == Some(key) {
                return true;
            }
            if r.bytes_varint().is_none() {
                return false;
            }
        }
        false
    }
}

/// Walks the records of (decompressed) record bytes; checks the count.
pub fn records(data: &[u8], count: i32) -> Result<Vec<RecordView<'_>>, BatchError> {
    let mut out = Vec::with_capacity((count.max(0) as usize).min(data.len() / 7 + 1));
    let mut r = Cursor(data);
    for _ in 0..count {
        let len = r.varint().ok_or(BatchError::Record("length"))?;
        if len < 0 {
            return Err(BatchError::Record("negative length"));
        }
        let body = r
            .take(len as usize)
            .ok_or(BatchError::Record("length past the batch"))?;
        let mut b = Cursor(body);
        b.take(1).ok_or(BatchError::Record("attributes"))?;
        b.varint().ok_or(BatchError::Record("timestamp delta"))?;
        b.varint().ok_or(BatchError::Record("offset delta"))?;
        b.bytes_varint().ok_or(BatchError::Record("key"))?;
        b.bytes_varint().ok_or(BatchError::Record("value"))?;
        let header_count = b.varint().ok_or(BatchError::Record("header count"))?;
        if header_count < 0 {
            return Err(BatchError::Record("negative header count"));
        }
        out.push(RecordView {
            size: len as usize,
            headers: b.0,
            header_count: header_count as usize,
        });
    }
    if !r.0.is_empty() {
        return Err(BatchError::Record("bytes after the last record"));
    }
    Ok(out)
}

pub(crate) struct Cursor<'a>(pub(crate) &'a [u8]);

impl<'a> Cursor<'a> {
    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.0.len() {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }

    /// A zigzag varint (Kafka's signed varint / varlong).
    pub(crate) fn varint(&mut self) -> Option<i64> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let b = *self.0.first()?;
            self.0 = &self.0[1..];
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Some((v >> 1) as i64 ^ -((v & 1) as i64));
            }
        }
        None
    }

    /// Varint-length bytes; length -1 is null.
    pub(crate) fn bytes_varint(&mut self) -> Option<Option<&'a [u8]>> {
        let n = self.varint()?;
        if n < 0 {
            return Some(None);
        }
        self.take(n as usize).map(Some)
    }
}

/// Drops the batches of aborted transactions from a partition's fetched
/// records, as a read_committed consumer would, for clients that Strait
/// forces to read_committed but that filter nothing themselves.
/// `aborted` is the fetch response's (producer id, first offset) list.
/// Partial trailing bytes (a truncated last batch) are kept as they are.
pub fn drop_aborted(records: &Bytes, aborted: &[(i64, i64)]) -> Bytes {
    let mut pending: Vec<(i64, i64)> = aborted.to_vec();
    pending.sort_by_key(|a| a.1);
    let mut next = 0;
    let mut active: Vec<i64> = Vec::new();
    let mut kept: Vec<(usize, usize)> = Vec::new();
    let mut dropped = false;
    let data = &records[..];
    let mut pos = 0;
    while pos + BATCH_HEADER_LEN <= data.len() {
        let b = &data[pos..];
        let len = i32::from_be_bytes(b[8..12].try_into().expect("4")) as i64;
        let end = pos as i64 + 12 + len;
        if len < (BATCH_HEADER_LEN - 12) as i64 || end as usize > data.len() || b[MAGIC_OFFSET] != 2
        {
            break;
        }
        let end = end as usize;
        let base = i64::from_be_bytes(b[0..8].try_into().expect("8"));
        let last = base + i64::from(i32::from_be_bytes(b[23..27].try_into().expect("4")));
        let attributes = i16::from_be_bytes(
            b[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2]
                .try_into()
                .expect("2"),
        );
        let pid = i64::from_be_bytes(
            b[PRODUCER_ID_OFFSET..PRODUCER_ID_OFFSET + 8]
                .try_into()
                .expect("8"),
        );
        let transactional = attributes & 0x10 != 0;
        let control = attributes & 0x20 != 0;
        let mut keep = true;
        if pid >= 0 {
            while next < pending.len() && pending[next].1 <= last {
                active.push(pending[next].0);
                next += 1;
            }
            if control {
                if is_abort_marker(&data[pos + BATCH_HEADER_LEN..end]) {
                    active.retain(|p| *p != pid);
                }
            } else if transactional && active.contains(&pid) {
                keep = false;
            }
        }
        if keep {
            kept.push((pos, end));
        } else {
            dropped = true;
        }
        pos = end;
    }
    if !dropped {
        return records.clone();
    }
    let mut out = bytes::BytesMut::with_capacity(data.len());
    for (a, b) in kept {
        out.extend_from_slice(&data[a..b]);
    }
    out.extend_from_slice(&data[pos..]);
    out.freeze()
}

/// Whether a control batch's first record is an ABORT marker (key: version, type 0).
fn is_abort_marker(records: &[u8]) -> bool {
    let mut r = Cursor(records);
    let parsed = (|| {
        r.varint()?; // length
        r.take(1)?; // attributes
        r.varint()?; // timestamp delta
        r.varint()?; // offset delta
        let key = r.bytes_varint()??;
        Some(key.get(2..4)? == [0, 0])
    })();
    parsed.unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::indexmap::IndexMap;
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    fn batch(values: &[&'static [u8]], headers: &[&'static str], pid: i64) -> Bytes {
        let records: Vec<Record> = values
            .iter()
            .enumerate()
            .map(|(i, v)| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: pid,
                producer_epoch: 0,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                sequence: i as i32,
                timestamp: 0,
                key: Some(Bytes::from_static(b"k")),
                value: Some(Bytes::from_static(v)),
                headers: headers
                    .iter()
                    .map(|h| (StrBytes::from_static_str(h), Some(Bytes::from_static(b"v"))))
                    .collect::<IndexMap<_, _>>(),
            })
            .collect();
        let mut b = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut b,
            &records,
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .unwrap();
        b.freeze()
    }

    #[test]
    fn reads_batch_facts_and_records() {
        let data = batch(&[b"one", b"three"], &["event-id", "revision"], 9);
        let bs = batches(data).unwrap();
        assert_eq!(bs.len(), 1);
        assert_eq!(bs[0].facts.producer_id, 9);
        assert_eq!(bs[0].facts.compression, Codec::None);
        let bytes = record_bytes(&bs[0], 1 << 20).unwrap();
        let rs = records(&bytes, bs[0].record_count).unwrap();
        assert_eq!(rs.len(), 2);
        assert!(rs[1].size() > rs[0].size());
        assert!(rs[0].has_header(b"revision"));
        assert!(!rs[0].has_header(b"trace"));
    }

    #[test]
    fn hostile_counts_and_lengths_are_errors_not_allocations() {
        let mut data = batch(&[b"x"], &[], -1).to_vec();
        data[RECORD_COUNT_OFFSET..RECORD_COUNT_OFFSET + 4].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(matches!(
            batches(Bytes::from(data.clone())),
            Err(BatchError::Count { .. })
        ));
        data[8..12].copy_from_slice(&1_000_000i32.to_be_bytes());
        assert_eq!(
            batches(Bytes::from(data)).unwrap_err(),
            BatchError::Truncated("batch length")
        );
        let bs = batches(batch(&[b"x"], &[], -1)).unwrap();
        assert!(
            records(&bs[0].records, 2).is_err(),
            "count beyond the records"
        );
    }

    /// A transactional batch of one record at `base` from producer `pid`.
    fn txn_batch(base: i64, pid: i64) -> Vec<u8> {
        let mut b = batch(&[b"v"], &[], pid).to_vec();
        b[0..8].copy_from_slice(&base.to_be_bytes());
        b[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&0x10i16.to_be_bytes());
        b
    }

    #[test]
    fn aborted_transactions_are_dropped() {
        // pid 5's batch at offset 0 belongs to an aborted transaction; pid 6's does not.
        let a = txn_batch(0, 5);
        let c = txn_batch(1, 6);
        let mut data = a.clone();
        data.extend_from_slice(&c);
        data.extend_from_slice(&[1, 2, 3]); // a truncated tail stays
        let records = Bytes::from(data);
        let out = drop_aborted(&records, &[(5, 0)]);
        let mut want = c.clone();
        want.extend_from_slice(&[1, 2, 3]);
        assert_eq!(&out[..], &want[..]);
        assert_eq!(
            drop_aborted(&records, &[]),
            records,
            "nothing aborted: untouched"
        );
        assert_eq!(
            drop_aborted(&records, &[(5, 7)]),
            records,
            "abort starts later"
        );
    }

    #[test]
    fn decompression_is_capped() {
        use std::io::Write;
        let plain = vec![b'a'; 100_000];
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&plain).unwrap();
        let b = Batch {
            facts: BatchFacts {
                producer_id: -1,
                transactional: false,
                compression: Codec::Gzip,
                magic: 2,
            },
            record_count: 0,
            control: false,
            records: Bytes::from(gz.finish().unwrap()),
            raw: Bytes::new(),
        };
        assert_eq!(
            record_bytes(&b, 1000).unwrap_err(),
            BatchError::TooLarge(1000)
        );
        assert_eq!(record_bytes(&b, 200_000).unwrap().len(), 100_000);
    }
}
