//! Reading a manifest's chunks back: fetched in order, each record checked
//! (offset, key, place), the value checked whole (size, SHA-256).

use bytes::{Bytes, BytesMut};

use super::{ChunkError, CHUNK_HEADER, FETCH_CAP, MAX_CHUNKS_PER_BATCH, RECORD_OVERHEAD};
use crate::codec::batch::{BatchError, Batches, BATCH_HEADER_LEN};
use crate::codec::records::{decode_records, Record};
use crate::kafka_client::{KafkaClient, KafkaError};
use crate::large::reference::{check_value, Manifest};

/// Reads a manifest's chunks back and returns the value, checked: every
/// chunk at its offset, with the value's hash as key and its place in the
/// header; the whole of the manifest's size and SHA-256. The manifest's
/// size is allocated up front, so a manifest claiming more than
/// `max_value_bytes` (the caller's memory bound) is refused unread.
pub async fn read_chunks(
    client: &KafkaClient,
    m: &Manifest,
    max_value_bytes: usize,
) -> Result<Bytes, ChunkError> {
    if m.size > max_value_bytes as u64 {
        return Err(ChunkError::TooLarge {
            size: m.size,
            max: max_value_bytes as u64,
        });
    }
    let per_chunk = m.size.div_ceil(u64::from(m.chunks.max(1)));
    let mut a = Assembler::new(m);
    for &(base, n) in &m.ranges {
        let end = base + i64::from(n);
        let mut offset = base;
        while offset < end {
            let records = ((end - offset) as u64).min(MAX_CHUNKS_PER_BATCH as u64);
            let want = BATCH_HEADER_LEN as u64 + records * (per_chunk + RECORD_OVERHEAD);
            let max_bytes = want.clamp(64 << 10, FETCH_CAP) as i32;
            let fetched = match client.fetch(&m.topic, m.partition, offset, max_bytes).await {
                Ok(f) => f,
                Err(KafkaError::OffsetOutOfRange { .. }) => {
                    let why =
                        "out of the partition's range: deleted by retention, or never written";
                    return Err(a.missing(offset, why.into()));
                }
                Err(e) => return Err(e.into()),
            };
            let (next, unreadable) = a.take(fetched.records, offset, end)?;
            if next == offset {
                return Err(match unreadable {
                    Some(e) => {
                        a.mismatch(format!("offset {offset}"), format!("unreadable batch: {e}"))
                    }
                    None if offset >= fetched.high_watermark => {
                        let hw = fetched.high_watermark;
                        a.missing(offset, format!("the partition ends at offset {hw}"))
                    }
                    None => a.missing(offset, "the fetch returned no record at it".into()),
                });
            }
            offset = next;
        }
    }
    a.finish()
}

/// Rebuilds a value from fetched chunk records, checking each.
struct Assembler<'a> {
    m: &'a Manifest,
    key: String,
    out: BytesMut,
    /// The next chunk's index.
    index: u32,
}

impl<'a> Assembler<'a> {
    fn new(m: &'a Manifest) -> Assembler<'a> {
        Assembler {
            m,
            key: hex::encode(m.sha256),
            out: BytesMut::with_capacity(m.size as usize),
            index: 0,
        }
    }

    fn missing(&self, offset: i64, why: String) -> ChunkError {
        ChunkError::Missing {
            topic: self.m.topic.clone(),
            partition: self.m.partition,
            offset,
            index: self.index,
            chunks: self.m.chunks,
            why,
        }
    }

    fn mismatch(&self, at: String, what: String) -> ChunkError {
        ChunkError::Mismatch {
            topic: self.m.topic.clone(),
            partition: self.m.partition,
            at,
            what,
        }
    }

    /// Takes the records of `data` (fetched from `offset`) in `offset..end`,
    /// in order; returns the next offset wanted and, if a batch could not be
    /// read, why (the last batch of a fetch may be partial).
    fn take(
        &mut self,
        data: Bytes,
        mut offset: i64,
        end: i64,
    ) -> Result<(i64, Option<BatchError>), ChunkError> {
        for batch in Batches::new(data) {
            let batch = match batch {
                Ok(b) => b,
                Err(e) => return Ok((offset, Some(e))),
            };
            if batch.base_offset() >= end {
                break;
            }
            if batch.last_offset() < offset || batch.is_control() {
                continue;
            }
            let cap = self.m.size as usize + (1 << 20);
            let bytes = batch.record_bytes(cap);
            let records = bytes.and_then(|b| decode_records(&b, batch.record_count()));
            let records = records.map_err(|e| {
                self.mismatch(format!("offset {offset}"), format!("bad batch: {e}"))
            })?;
            for r in records {
                let at = batch.base_offset() + r.offset_delta;
                if at < offset {
                    continue;
                }
                if at >= end {
                    break;
                }
                if at != offset {
                    let why = format!("the next record is at offset {at} (compacted?)");
                    return Err(self.missing(offset, why));
                }
                self.push(at, &r)?;
                offset += 1;
            }
        }
        Ok((offset, None))
    }

    fn push(&mut self, at: i64, r: &Record) -> Result<(), ChunkError> {
        let here = format!("offset {at}");
        if r.key.as_deref() != Some(self.key.as_bytes()) {
            let key = String::from_utf8_lossy(r.key.as_deref().unwrap_or_default());
            let key: String = key.chars().take(16).collect();
            let what = format!(
                "key {key:?}… is not the manifest's sha256 {}…",
                &self.key[..16]
            );
            return Err(self.mismatch(here, what));
        }
        let want = format!("{}/{}", self.index, self.m.chunks);
        let tag = r.header(CHUNK_HEADER).flatten().unwrap_or_default();
        if tag != want.as_bytes() {
            let what = format!(
                "header strait.chunk is {:?}, expected {want:?}",
                String::from_utf8_lossy(tag)
            );
            return Err(self.mismatch(here, what));
        }
        let v = r.value.as_deref().unwrap_or_default();
        if (self.out.len() + v.len()) as u64 > self.m.size {
            let what = format!("the chunks exceed the manifest's {} bytes", self.m.size);
            return Err(self.mismatch(here, what));
        }
        self.out.extend_from_slice(v);
        self.index += 1;
        Ok(())
    }

    /// The value, once every chunk is in and size and hash agree.
    fn finish(self) -> Result<Bytes, ChunkError> {
        let at = offsets(&self.m.ranges);
        let what = if self.index != self.m.chunks {
            format!(
                "the ranges hold {} chunks, the manifest says {}",
                self.index, self.m.chunks
            )
        } else {
            match check_value(&self.out, self.m.size, &self.m.sha256) {
                Ok(()) => return Ok(self.out.freeze()),
                Err(why) => why,
            }
        };
        Err(self.mismatch(at, what))
    }
}

/// `offsets 120..=127, 131..=134` (or `offset 120`).
fn offsets(ranges: &[(i64, u32)]) -> String {
    if let [(o, 1)] = ranges {
        return format!("offset {o}");
    }
    let runs: Vec<String> = ranges
        .iter()
        .map(|&(b, n)| format!("{b}..={}", b + i64::from(n) - 1))
        .collect();
    format!("offsets {}", runs.join(", "))
}

#[cfg(test)]
mod tests {
    use super::super::{chunk_batch, split};
    use super::*;
    use crate::codec::build::{build_batch, Producer};
    use sha2::{Digest, Sha256};

    /// A value of 2500 bytes in 300-byte chunks: batches of 8 and 1 at
    /// offsets 10 and 19, another writer's record at 18 between them.
    fn written(hash_of: &[u8]) -> (Bytes, Manifest, Bytes) {
        let value = Bytes::from((0..2500u32).map(|i| (i * 7) as u8).collect::<Vec<u8>>());
        let sha256: [u8; 32] = Sha256::digest(hash_of).into();
        let key = Bytes::from(hex::encode(sha256));
        let pieces = split(value.len(), 300);
        let at = |base: i64, batch: Bytes| {
            let mut b = batch.to_vec();
            b[..8].copy_from_slice(&base.to_be_bytes());
            b
        };
        let mut log = at(10, chunk_batch(&key, &value, &pieces[..8], 0, 9, 0));
        let other = build_batch(
            Producer::NONE,
            0,
            &[(Some(&b"k"[..]), Some(&b"v"[..]), &[])],
        );
        log.extend(at(18, other));
        log.extend(at(19, chunk_batch(&key, &value, &pieces[8..], 8, 9, 0)));
        let m = Manifest {
            topic: "t.strait-chunks".into(),
            partition: 1,
            ranges: vec![(10, 8), (19, 1)],
            chunks: 9,
            size: 2500,
            sha256,
        };
        (value, m, Bytes::from(log))
    }

    fn assemble(m: &Manifest, log: &Bytes) -> Result<Bytes, ChunkError> {
        let mut a = Assembler::new(m);
        for &(base, n) in &m.ranges {
            let (next, bad) = a.take(log.clone(), base, base + i64::from(n))?;
            assert!(bad.is_none());
            if next != base + i64::from(n) {
                return Err(a.missing(next, "not in the log".into()));
            }
        }
        a.finish()
    }

    #[test]
    fn chunks_at_the_manifest_offsets_rebuild_the_value() {
        let (value, m, log) = written(&(0..2500u32).map(|i| (i * 7) as u8).collect::<Vec<u8>>());
        assert_eq!(assemble(&m, &log).unwrap(), value);
    }

    #[test]
    fn a_wrong_hash_names_the_offsets() {
        // Chunks keyed by a hash that is not the value's: each record passes,
        // the whole does not.
        let (_, m, log) = written(b"something else");
        let e = assemble(&m, &log).unwrap_err().to_string();
        assert!(
            e.contains("t.strait-chunks/1 at offsets 10..=17, 19..=19"),
            "{e}"
        );
        assert!(e.contains("hash mismatch"), "{e}");
    }

    #[test]
    fn records_that_are_not_the_chunks_are_mismatches_or_missing() {
        let (_, m, log) = written(b"x");
        let mut other = m.clone();
        other.sha256[0] ^= 1;
        let e = assemble(&other, &log).unwrap_err().to_string();
        assert!(e.contains("at offset 10") && e.contains("sha256"), "{e}");

        let mut shifted = m.clone();
        shifted.ranges = vec![(10, 9)];
        let e = assemble(&shifted, &log).unwrap_err().to_string();
        assert!(e.contains("at offset 18") && e.contains("key"), "{e}");

        let mut reordered = m.clone();
        reordered.ranges = vec![(19, 1), (10, 8)];
        let e = assemble(&reordered, &log).unwrap_err().to_string();
        assert!(e.contains("\"8/9\", expected \"0/9\""), "{e}");

        let mut short = m.clone();
        short.size = 2000;
        let e = assemble(&short, &log).unwrap_err().to_string();
        assert!(e.contains("exceed the manifest's 2000 bytes"), "{e}");

        let mut gone = m.clone();
        gone.ranges = vec![(10, 8), (20, 1)];
        let e = assemble(&gone, &log).unwrap_err();
        assert!(
            matches!(
                e,
                ChunkError::Missing {
                    offset: 20,
                    index: 8,
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn offsets_read_as_runs() {
        assert_eq!(offsets(&[(5, 1)]), "offset 5");
        assert_eq!(offsets(&[(5, 3), (9, 1)]), "offsets 5..=7, 9..=9");
    }
}
