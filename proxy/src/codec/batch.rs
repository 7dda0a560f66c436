//! Strait's own record-batch reader (magic 2): one bounds-checked view of a
//! batch header ([`Batch`]) that the produce checks, the record pipeline and
//! the fetch-side filters all read, zero-copy on `Bytes`. Record views
//! ([`records`]) walk an uncompressed records section without allocating per
//! record. kafka-protocol's record layer is not used: it is lossy and trusts
//! `record_count` (ARCHITECTURE.md).

use bytes::{Buf, Bytes};
use thiserror::Error;

use super::compression::{decompress, Compression};

/// Bytes before the records in a v2 batch.
pub const BATCH_HEADER_LEN: usize = 61;
// The v2 batch header, by byte offset (shared with `edit` and `build`).
pub(crate) const LENGTH_OFFSET: usize = 8;
pub(crate) const MAGIC_OFFSET: usize = 16;
pub(crate) const CRC_OFFSET: usize = 17;
pub(crate) const ATTRIBUTES_OFFSET: usize = 21;
const LAST_OFFSET_DELTA_OFFSET: usize = 23;
const BASE_TIMESTAMP_OFFSET: usize = 27;
const MAX_TIMESTAMP_OFFSET: usize = 35;
pub(crate) const PRODUCER_ID_OFFSET: usize = 43;
const PRODUCER_EPOCH_OFFSET: usize = 51;
pub(crate) const BASE_SEQUENCE_OFFSET: usize = 53;
pub(crate) const RECORD_COUNT_OFFSET: usize = 57;
/// Attribute bits.
pub(crate) const CODEC_MASK: i16 = 0x07;
pub(crate) const TRANSACTIONAL: i16 = 0x10;
pub(crate) const CONTROL: i16 = 0x20;

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

/// One whole magic-2 batch as received, with its header fields read in
/// place. Construction ([`Batches`]) checks the length, the magic, the codec
/// and that an uncompressed record count fits its bytes; the CRC is checked
/// only where a batch is about to be rewritten ([`super::edit::BatchEdit`]).
#[derive(Debug, Clone)]
pub struct Batch {
    raw: Bytes,
}

fn at<const N: usize>(b: &[u8], offset: usize) -> [u8; N] {
    b[offset..offset + N].try_into().expect("inside the header")
}

impl Batch {
    /// The whole batch as received.
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    pub fn into_raw(self) -> Bytes {
        self.raw
    }

    pub fn base_offset(&self) -> i64 {
        i64::from_be_bytes(at(&self.raw, 0))
    }

    /// The offset of the batch's last record.
    pub fn last_offset(&self) -> i64 {
        self.base_offset() + i64::from(i32::from_be_bytes(at(&self.raw, LAST_OFFSET_DELTA_OFFSET)))
    }

    /// The first record's timestamp (ms since the epoch; with
    /// LogAppendTime, see [`Batch::max_timestamp`]).
    pub fn base_timestamp(&self) -> i64 {
        i64::from_be_bytes(at(&self.raw, BASE_TIMESTAMP_OFFSET))
    }

    /// The largest timestamp in the batch (the broker's append time when
    /// the topic uses LogAppendTime).
    pub fn max_timestamp(&self) -> i64 {
        i64::from_be_bytes(at(&self.raw, MAX_TIMESTAMP_OFFSET))
    }

    pub fn magic(&self) -> i8 {
        self.raw[MAGIC_OFFSET] as i8
    }

    pub fn stated_crc(&self) -> u32 {
        u32::from_be_bytes(at(&self.raw, CRC_OFFSET))
    }

    pub fn attributes(&self) -> i16 {
        i16::from_be_bytes(at(&self.raw, ATTRIBUTES_OFFSET))
    }

    pub fn compression(&self) -> Compression {
        Compression::from_attributes(self.attributes()).expect("checked when split")
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes() & TRANSACTIONAL != 0
    }

    /// A control batch (transaction marker).
    pub fn is_control(&self) -> bool {
        self.attributes() & CONTROL != 0
    }

    pub fn producer_id(&self) -> i64 {
        i64::from_be_bytes(at(&self.raw, PRODUCER_ID_OFFSET))
    }

    pub fn producer_epoch(&self) -> i16 {
        i16::from_be_bytes(at(&self.raw, PRODUCER_EPOCH_OFFSET))
    }

    pub fn base_sequence(&self) -> i32 {
        i32::from_be_bytes(at(&self.raw, BASE_SEQUENCE_OFFSET))
    }

    pub fn record_count(&self) -> i32 {
        i32::from_be_bytes(at(&self.raw, RECORD_COUNT_OFFSET))
    }

    /// The records section (possibly compressed).
    pub fn records(&self) -> Bytes {
        self.raw.slice(BATCH_HEADER_LEN..)
    }

    /// The records section decompressed (up to `cap` bytes) when needed.
    pub fn record_bytes(&self, cap: usize) -> Result<Bytes, BatchError> {
        decompress(self.compression(), &self.records(), cap)
    }

    /// Reads the batch at the front of `data` and advances past it.
    fn split_from(data: &mut Bytes) -> Result<Batch, BatchError> {
        if data.len() < MAGIC_OFFSET + 1 {
            return Err(BatchError::Truncated("batch header"));
        }
        let magic = data[MAGIC_OFFSET] as i8;
        if magic != 2 {
            return Err(BatchError::Magic(magic));
        }
        let batch_len = i64::from(i32::from_be_bytes(at(data, LENGTH_OFFSET)));
        let total = 12 + batch_len;
        if batch_len < (BATCH_HEADER_LEN - 12) as i64 || total as usize > data.len() {
            return Err(BatchError::Truncated("batch length"));
        }
        let batch = Batch {
            raw: data.split_to(total as usize),
        };
        let attributes = batch.attributes();
        let compression = Compression::from_attributes(attributes)
            .ok_or(BatchError::Codec(attributes & CODEC_MASK))?;
        let count = batch.record_count();
        let section = batch.raw.len() - BATCH_HEADER_LEN;
        // Every record takes at least 7 bytes uncompressed; compressed data
        // is checked again after decompression.
        if count < 0 || (compression == Compression::None && count as usize > section / 7 + 1) {
            return Err(BatchError::Count {
                count,
                bytes: section,
            });
        }
        Ok(batch)
    }
}

/// The batches of a partition's records bytes, front to back. Stops at the
/// first error; [`Batches::rest`] then holds the bytes not yet read (a fetch
/// may end in a partial batch, which the consumer fetches again).
pub struct Batches {
    rest: Bytes,
}

impl Batches {
    pub fn new(data: Bytes) -> Batches {
        Batches { rest: data }
    }

    /// What has not been split off yet.
    pub fn rest(&self) -> &Bytes {
        &self.rest
    }
}

impl Iterator for Batches {
    type Item = Result<Batch, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if !self.rest.has_remaining() {
            return None;
        }
        let mut ahead = self.rest.clone();
        match Batch::split_from(&mut ahead) {
            Ok(b) => {
                self.rest = ahead;
                Some(Ok(b))
            }
            Err(e) => Some(Err(e)),
        }
    }
}

/// Splits a partition's produced `records` into batches: all whole, or an
/// error (produce batches are never partial).
pub fn batches(data: Bytes) -> Result<Vec<Batch>, BatchError> {
    Batches::new(data).collect()
}

/// A record's view for policy checks: its size and its header keys.
#[derive(Debug, Clone, Copy)]
pub struct RecordView<'a> {
    size: usize,
    headers: &'a [u8],
    header_count: usize,
}

impl RecordView<'_> {
    /// The record's encoded size in bytes (its length prefix).
    pub fn size(&self) -> usize {
        self.size
    }

    /// Whether the record has a header with this key.
    pub fn has_header(&self, key: &[u8]) -> bool {
        self.any_header_key(|k| k == key)
    }

    /// Whether the record has a header whose key starts with `prefix`.
    pub fn has_header_prefix(&self, prefix: &[u8]) -> bool {
        self.any_header_key(|k| k.starts_with(prefix))
    }

    fn any_header_key(&self, mut f: impl FnMut(&[u8]) -> bool) -> bool {
        let mut r = Cursor(self.headers);
        for _ in 0..self.header_count {
            let Some(k) = r.bytes_varint() else {
                return false;
            };
            if k.is_some_and(&mut f) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::build::{build_batch, Producer};

    fn batch(values: &[&'static [u8]], headers: &[&'static str], pid: i64) -> Bytes {
        let hs: Vec<(&[u8], Option<&[u8]>)> = headers
            .iter()
            .map(|h| (h.as_bytes(), Some(&b"v"[..])))
            .collect();
        let recs: Vec<_> = values
            .iter()
            .map(|v| (Some(&b"k"[..]), Some(*v), &hs[..]))
            .collect();
        let producer = Producer {
            id: pid,
            epoch: 0,
            base_sequence: 0,
            transactional: false,
        };
        build_batch(producer, 0, &recs)
    }

    #[test]
    fn reads_batch_facts_and_records() {
        let data = batch(&[b"one", b"three"], &["event-id", "revision"], 9);
        let bs = batches(data).unwrap();
        assert_eq!(bs.len(), 1);
        assert_eq!(bs[0].producer_id(), 9);
        assert_eq!(bs[0].compression(), Compression::None);
        assert_eq!((bs[0].base_offset(), bs[0].last_offset()), (0, 1));
        let bytes = bs[0].record_bytes(1 << 20).unwrap();
        let rs = records(&bytes, bs[0].record_count()).unwrap();
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
            records(&bs[0].records(), 2).is_err(),
            "count beyond the records"
        );
    }

    #[test]
    fn the_iterator_stops_at_a_partial_batch_and_keeps_it() {
        let one = batch(&[b"x"], &[], -1);
        let mut data = one.to_vec();
        data.extend_from_slice(&one[..30]);
        let mut it = Batches::new(Bytes::from(data));
        assert!(it.next().unwrap().is_ok());
        assert!(it.next().unwrap().is_err());
        assert_eq!(&it.rest()[..], &one[..30]);
    }

    #[test]
    fn decompression_is_capped() {
        use std::io::Write;
        let plain = vec![b'a'; 100_000];
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&plain).unwrap();
        let gz = Bytes::from(gz.finish().unwrap());
        assert_eq!(
            decompress(Compression::Gzip, &gz, 1000).unwrap_err(),
            BatchError::TooLarge(1000)
        );
        assert_eq!(
            decompress(Compression::Gzip, &gz, 200_000).unwrap().len(),
            100_000
        );
    }
}
