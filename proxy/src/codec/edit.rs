//! Lossless record-batch editing (magic 2), for the record pipeline.
//!
//! A [`BatchEdit`] holds one batch as the client sent it and decodes only as
//! far as a stage asks: the records section as bytes, decompressed bytes, or
//! records. Records keep every field as received (attributes, timestamp and
//! offset deltas, key, value, and the encoded headers with duplicate keys in
//! their order); stages may only add headers, and get the records as a
//! slice, so the record count cannot change. An untouched batch is returned
//! as the original bytes. A changed one gets the original 61-byte header with
//! the length, the codec bits and a fresh CRC-32C patched in; producer id,
//! epoch, base sequence, record count, flags, timestamps and offset deltas
//! stay as they were, so the broker's idempotence checks see the same batch.

use bytes::{BufMut, Bytes, BytesMut};

use super::batch::{
    Batch, BatchError, ATTRIBUTES_OFFSET, BATCH_HEADER_LEN, CODEC_MASK, CRC_OFFSET, LENGTH_OFFSET,
};
use super::compression::{compress, decompress, Compression};
use super::records::{decode_records, encode_records, encode_records_into, Record};

/// The records section as it stands after the stages so far.
#[derive(Debug)]
enum Section {
    /// As received.
    Original,
    /// Decoded records (uncompressed when encoded).
    Records(Vec<Record>),
    /// Encoded bytes in a codec.
    Encoded { codec: Compression, bytes: Bytes },
}

/// One batch under edit. See the module docs.
#[derive(Debug)]
pub struct BatchEdit {
    original: Batch,
    section: Section,
    /// A stage changed the section (decoding alone changes nothing).
    dirty: bool,
    cap: usize,
    /// The codec decoded records are sealed in (default: the client's).
    seal_as: Option<Compression>,
}

impl BatchEdit {
    /// Takes one whole batch and checks what the broker would check before a
    /// stage rewrites it: the CRC-32C (magic and codec were checked when the
    /// batch was split), so Strait never re-seals a corrupt batch. `cap`
    /// bounds decompression.
    pub fn new(original: Batch, cap: usize) -> Result<BatchEdit, BatchError> {
        let stated = original.stated_crc();
        let actual = crc32c::crc32c(&original.raw()[ATTRIBUTES_OFFSET..]);
        if stated != actual {
            return Err(BatchError::Crc { stated, actual });
        }
        Ok(BatchEdit {
            original,
            section: Section::Original,
            dirty: false,
            cap,
            seal_as: None,
        })
    }

    /// The batch as received (its header fields are the edit's, too).
    pub fn batch(&self) -> &Batch {
        &self.original
    }

    /// The codec the client compressed the batch with.
    pub fn original_codec(&self) -> Compression {
        self.original.compression()
    }

    /// The codec the records section is in now.
    /// Decoded records are written back in the client's codec unless a
    /// stage sets another section.
    pub fn codec(&self) -> Compression {
        match &self.section {
            Section::Original => self.original_codec(),
            Section::Records(_) => self.seal_as.unwrap_or(self.original_codec()),
            Section::Encoded { codec, .. } => *codec,
        }
    }

    /// Whether a stage changed anything.
    pub fn changed(&self) -> bool {
        self.dirty
    }

    /// The records, decoded (decompressing first when needed), to read.
    pub fn peek_records(&mut self) -> Result<&[Record], BatchError> {
        Ok(self.decoded()?)
    }

    /// The records, to change: the batch counts as changed. Stages may add
    /// headers; a slice keeps the count as it is.
    pub fn records(&mut self) -> Result<&mut [Record], BatchError> {
        self.dirty = true; // on error the edit is dropped, so nothing is half-changed
        Ok(self.decoded()?.as_mut_slice())
    }

    fn decoded(&mut self) -> Result<&mut Vec<Record>, BatchError> {
        if !matches!(self.section, Section::Records(_)) {
            let plain = self.plain()?;
            let records = decode_records(&plain, self.original.record_count())?;
            self.section = Section::Records(records);
        }
        match &mut self.section {
            Section::Records(r) => Ok(r),
            _ => unreachable!("set above"),
        }
    }

    /// The records section uncompressed, as it stands.
    pub fn plain(&self) -> Result<Bytes, BatchError> {
        match &self.section {
            Section::Original => self.original.record_bytes(self.cap),
            Section::Records(r) => Ok(encode_records(r)),
            Section::Encoded { codec, bytes } => decompress(*codec, bytes, self.cap),
        }
    }

    /// Bytes the records section takes as it stands (decoded records:
    /// uncompressed, an upper bound of what they will take).
    pub fn section_len(&self) -> usize {
        match &self.section {
            Section::Records(r) if self.dirty => r.iter().map(Record::encoded_len).sum(),
            Section::Encoded { bytes, .. } => bytes.len(),
            _ => self.original.raw().len() - BATCH_HEADER_LEN,
        }
    }

    /// Seals decoded records in `codec` instead of the client's (the
    /// large-record stage compresses; restoring writes values back plain).
    pub fn seal_as(&mut self, codec: Compression) {
        self.seal_as = Some(codec);
    }

    /// The codec a stage chose with [`BatchEdit::seal_as`], if any.
    pub fn sealed_as(&self) -> Option<Compression> {
        self.seal_as
    }

    /// Replaces the records section with `bytes` encoded in `codec`.
    pub fn set_section(&mut self, codec: Compression, bytes: Bytes) {
        self.section = Section::Encoded { codec, bytes };
        self.dirty = true;
    }

    /// The batch to forward: the original bytes when no stage changed it,
    /// else the original header with length, codec and CRC-32C renewed.
    pub fn finish(self) -> Result<Bytes, BatchError> {
        if !self.dirty {
            return Ok(self.original.into_raw());
        }
        let attributes = self.original.attributes();
        let mut out = BytesMut::new();
        let header = &self.original.raw()[..BATCH_HEADER_LEN];
        let codec = match self.section {
            Section::Original => return Ok(self.original.into_raw()),
            Section::Records(r) => {
                let codec = self.seal_as.unwrap_or(self.original.compression());
                if codec == Compression::None {
                    // Encoded straight after the header: one pass, no copy.
                    out.reserve(
                        BATCH_HEADER_LEN + r.iter().map(Record::encoded_len).sum::<usize>(),
                    );
                    out.put_slice(header);
                    encode_records_into(&r, &mut out);
                } else {
                    let packed = compress(codec, codec.default_level(), &encode_records(&r))?;
                    out.reserve(BATCH_HEADER_LEN + packed.len());
                    out.put_slice(header);
                    out.put_slice(&packed);
                }
                codec
            }
            Section::Encoded { codec, bytes } => {
                out.reserve(BATCH_HEADER_LEN + bytes.len());
                out.put_slice(header);
                out.put_slice(&bytes);
                codec
            }
        };
        let len =
            i32::try_from(out.len() - 12).map_err(|_| BatchError::TooLarge(i32::MAX as usize))?;
        out[LENGTH_OFFSET..LENGTH_OFFSET + 4].copy_from_slice(&len.to_be_bytes());
        let attributes = (attributes & !CODEC_MASK) | codec.id();
        out[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attributes.to_be_bytes());
        let crc = crc32c::crc32c(&out[ATTRIBUTES_OFFSET..]);
        out[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
        Ok(out.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::batch::{batches, MAGIC_OFFSET};
    use crate::codec::build::{build_batch, Producer, RecordSpec};

    fn producer() -> Producer {
        Producer {
            id: 4000,
            epoch: 3,
            base_sequence: 17,
            transactional: true,
        }
    }

    fn edit(bytes: Bytes) -> Result<BatchEdit, BatchError> {
        BatchEdit::new(batches(bytes)?.remove(0), 1 << 20)
    }

    #[test]
    fn an_untouched_edit_is_the_original_and_a_changed_one_keeps_the_header() {
        let recs: &[RecordSpec] = &[(Some(b"a"), Some(b"x"), &[]), (Some(b"b"), Some(b"y"), &[])];
        let batch = build_batch(producer(), 5, recs);
        let mut e = edit(batch.clone()).unwrap();
        e.peek_records().unwrap();
        assert!(!e.changed());
        assert_eq!(e.finish().unwrap(), batch, "decoding alone changes nothing");

        let mut e = edit(batch.clone()).unwrap();
        for r in e.records().unwrap() {
            r.add_header(Bytes::from_static(b"h"), Some(Bytes::from_static(b"v")));
        }
        let out = e.finish().unwrap();
        assert_ne!(out, batch);
        // Everything but length, CRC and the records is as it came.
        assert_eq!(out[..LENGTH_OFFSET], batch[..LENGTH_OFFSET]);
        assert_eq!(out[12..CRC_OFFSET], batch[12..CRC_OFFSET]);
        assert_eq!(
            out[ATTRIBUTES_OFFSET..BATCH_HEADER_LEN],
            batch[ATTRIBUTES_OFFSET..BATCH_HEADER_LEN]
        );
        let mut again = edit(out.clone()).expect("fresh CRC verifies");
        assert_eq!(again.batch().record_count(), 2);
        let rs = again.peek_records().unwrap();
        assert_eq!(rs[1].header(b"h"), Some(Some(&b"v"[..])));
        assert_eq!(rs[1].value.as_deref(), Some(&b"y"[..]));
    }

    #[test]
    fn corrupt_batches_are_refused_not_resealed() {
        let recs: &[RecordSpec] = &[(Some(b"a"), Some(b"x"), &[])];
        let mut bad = build_batch(producer(), 5, recs).to_vec();
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        assert!(matches!(
            edit(Bytes::from(bad)),
            Err(BatchError::Crc { .. })
        ));
        let mut old = build_batch(producer(), 5, recs).to_vec();
        old[MAGIC_OFFSET] = 1;
        assert_eq!(edit(Bytes::from(old)).unwrap_err(), BatchError::Magic(1));
    }
}
