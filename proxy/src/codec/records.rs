//! Lossless record-batch editing (magic 2), for the record pipeline.
//!
//! A [`BatchEdit`] holds one batch as the client sent it and decodes only as
//! far as a stage asks: the records section as bytes, decompressed bytes, or
//! records. Records keep every field as received (attributes, timestamp and
//! offset deltas, key, value, and the encoded headers with duplicate keys in
//! their order); stages may only add headers. An untouched batch is returned
//! as the original bytes. A changed one gets the original 61-byte header with
//! the length, the codec bits and a fresh CRC-32C patched in; producer id,
//! epoch, base sequence, record count, flags, timestamps and offset deltas
//! stay as they were, so the broker's idempotence checks see the same batch.

use bytes::{BufMut, Bytes, BytesMut};
use strait_policies::Codec;

use super::batch::{
    decompress, BatchError, Cursor, ATTRIBUTES_OFFSET, BASE_SEQUENCE_OFFSET, BATCH_HEADER_LEN,
    CRC_OFFSET, LENGTH_OFFSET, MAGIC_OFFSET, PRODUCER_ID_OFFSET, RECORD_COUNT_OFFSET,
};

const CODEC_MASK: i16 = 0x07;
const TRANSACTIONAL: i16 = 0x10;
const CONTROL: i16 = 0x20;

/// One record, every field as received. Headers are kept encoded; added ones
/// follow them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub attributes: i8,
    pub timestamp_delta: i64,
    pub offset_delta: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    header_count: usize,
    headers: Bytes,
    added: Vec<(Bytes, Option<Bytes>)>,
}

impl Record {
    /// Headers in order, duplicates included: received ones, then added ones.
    pub fn headers(&self) -> impl Iterator<Item = (&[u8], Option<&[u8]>)> + '_ {
        let mut r = Cursor(&self.headers[..]);
        let received = (0..self.header_count).map_while(move |_| {
            let k = r.bytes_varint()??;
            let v = r.bytes_varint()?;
            Some((k, v))
        });
        received.chain(self.added.iter().map(|(k, v)| (&k[..], v.as_deref())))
    }

    /// The first value of header `key` (a null value is `Some(None)`).
    pub fn header(&self, key: &[u8]) -> Option<Option<&[u8]>> {
        self.headers().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Appends a header after the existing ones.
    pub fn add_header(&mut self, key: Bytes, value: Option<Bytes>) {
        self.added.push((key, value));
    }

    fn body_len(&self) -> usize {
        let bytes = |b: &Option<Bytes>| match b {
            None => 1,
            Some(b) => varint_len(b.len() as i64) + b.len(),
        };
        let added: usize = self
            .added
            .iter()
            .map(|(k, v)| varint_len(k.len() as i64) + k.len() + bytes(v))
            .sum();
        1 + varint_len(self.timestamp_delta)
            + varint_len(self.offset_delta)
            + bytes(&self.key)
            + bytes(&self.value)
            + varint_len((self.header_count + self.added.len()) as i64)
            + self.headers.len()
            + added
    }

    fn encoded_len(&self) -> usize {
        let n = self.body_len();
        varint_len(n as i64) + n
    }

    fn encode(&self, out: &mut BytesMut) {
        let bytes = |out: &mut BytesMut, b: &Option<Bytes>| match b {
            None => put_varint(out, -1),
            Some(b) => {
                put_varint(out, b.len() as i64);
                out.put_slice(b);
            }
        };
        put_varint(out, self.body_len() as i64);
        out.put_i8(self.attributes);
        put_varint(out, self.timestamp_delta);
        put_varint(out, self.offset_delta);
        bytes(out, &self.key);
        bytes(out, &self.value);
        put_varint(out, (self.header_count + self.added.len()) as i64);
        out.put_slice(&self.headers);
        for (k, v) in &self.added {
            put_varint(out, k.len() as i64);
            out.put_slice(k);
            bytes(out, v);
        }
    }
}

/// Parses exactly `count` records filling `data` (uncompressed), zero-copy.
pub fn decode_records(data: &Bytes, count: i32) -> Result<Vec<Record>, BatchError> {
    let count = usize::try_from(count).map_err(|_| BatchError::Count {
        count,
        bytes: data.len(),
    })?;
    if count > data.len() / 7 + 1 {
        return Err(BatchError::Count {
            count: count as i32,
            bytes: data.len(),
        });
    }
    let mut out = Vec::with_capacity(count);
    let mut r = Cursor(&data[..]);
    let at = |s: &[u8]| s.as_ptr() as usize - data.as_ptr() as usize;
    let slice = |s: &[u8]| data.slice(at(s)..at(s) + s.len());
    for _ in 0..count {
        let len = r.varint().ok_or(BatchError::Record("length"))?;
        let len = usize::try_from(len).map_err(|_| BatchError::Record("negative length"))?;
        let body = r
            .take(len)
            .ok_or(BatchError::Record("length past the batch"))?;
        let mut b = Cursor(body);
        let attributes = b.take(1).ok_or(BatchError::Record("attributes"))?[0] as i8;
        let timestamp_delta = b.varint().ok_or(BatchError::Record("timestamp delta"))?;
        let offset_delta = b.varint().ok_or(BatchError::Record("offset delta"))?;
        let key = b.bytes_varint().ok_or(BatchError::Record("key"))?;
        let value = b.bytes_varint().ok_or(BatchError::Record("value"))?;
        let header_count = b.varint().ok_or(BatchError::Record("header count"))?;
        let header_count = usize::try_from(header_count)
            .map_err(|_| BatchError::Record("negative header count"))?;
        let headers = b.0;
        // Headers must parse exactly, so re-encoding them as bytes is faithful.
        let mut h = Cursor(headers);
        for _ in 0..header_count {
            h.bytes_varint()
                .flatten()
                .ok_or(BatchError::Record("header key"))?;
            h.bytes_varint().ok_or(BatchError::Record("header value"))?;
        }
        if !h.0.is_empty() {
            return Err(BatchError::Record("bytes after the last header"));
        }
        out.push(Record {
            attributes,
            timestamp_delta,
            offset_delta,
            key: key.map(slice),
            value: value.map(slice),
            header_count,
            headers: slice(headers),
            added: Vec::new(),
        });
    }
    if !r.0.is_empty() {
        return Err(BatchError::Record("bytes after the last record"));
    }
    Ok(out)
}

/// Encodes records back to an (uncompressed) records section.
pub fn encode_records(records: &[Record]) -> Bytes {
    let mut out = BytesMut::new();
    encode_records_into(records, &mut out);
    out.freeze()
}

/// Appends records to `out` (uncompressed), for sealing in place.
fn encode_records_into(records: &[Record], out: &mut BytesMut) {
    out.reserve(records.iter().map(Record::encoded_len).sum());
    for r in records {
        r.encode(out);
    }
}

fn varint_len(v: i64) -> usize {
    let z = ((v << 1) ^ (v >> 63)) as u64;
    (64 - (z | 1).leading_zeros() as usize).div_ceil(7)
}

fn put_varint(out: &mut BytesMut, v: i64) {
    // One slice write: BytesMut::put_u8 per byte costs a capacity check each.
    let mut buf = [0u8; 10];
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    let mut n = 0;
    while z >= 0x80 {
        buf[n] = (z as u8) | 0x80;
        z >>= 7;
        n += 1;
    }
    buf[n] = z as u8;
    out.put_slice(&buf[..=n]);
}

/// The records section as it stands after the stages so far.
#[derive(Debug)]
enum Section {
    /// As received.
    Original,
    /// Decoded records (uncompressed when encoded).
    Records(Vec<Record>),
    /// Encoded bytes in a codec.
    Encoded { codec: Codec, bytes: Bytes },
}

/// One batch under edit. See the module docs.
#[derive(Debug)]
pub struct BatchEdit {
    original: Bytes,
    section: Section,
    /// A stage changed the section (decoding alone changes nothing).
    dirty: bool,
    cap: usize,
}

impl BatchEdit {
    /// Takes one whole batch (as split by [`super::batch::batches`]) and
    /// checks what the broker would check before a stage rewrites it: magic 2,
    /// a known codec and the CRC-32C, so Strait never re-seals a corrupt batch.
    /// `cap` bounds decompression.
    pub fn new(original: Bytes, cap: usize) -> Result<BatchEdit, BatchError> {
        if original.len() < BATCH_HEADER_LEN {
            return Err(BatchError::Truncated("batch header"));
        }
        let magic = original[MAGIC_OFFSET] as i8;
        if magic != 2 {
            return Err(BatchError::Magic(magic));
        }
        let stated = u32::from_be_bytes(read(&original, CRC_OFFSET));
        let actual = crc32c::crc32c(&original[ATTRIBUTES_OFFSET..]);
        if stated != actual {
            return Err(BatchError::Crc { stated, actual });
        }
        let edit = BatchEdit {
            original,
            section: Section::Original,
            dirty: false,
            cap,
        };
        Codec::from_attributes(edit.attributes())
            .ok_or(BatchError::Codec(edit.attributes() & CODEC_MASK))?;
        Ok(edit)
    }

    fn attributes(&self) -> i16 {
        i16::from_be_bytes(read(&self.original, ATTRIBUTES_OFFSET))
    }

    pub fn producer_id(&self) -> i64 {
        i64::from_be_bytes(read(&self.original, PRODUCER_ID_OFFSET))
    }

    pub fn producer_epoch(&self) -> i16 {
        i16::from_be_bytes(read(&self.original, PRODUCER_ID_OFFSET + 8))
    }

    pub fn base_sequence(&self) -> i32 {
        i32::from_be_bytes(read(&self.original, BASE_SEQUENCE_OFFSET))
    }

    pub fn record_count(&self) -> i32 {
        i32::from_be_bytes(read(&self.original, RECORD_COUNT_OFFSET))
    }

    pub fn is_control(&self) -> bool {
        self.attributes() & CONTROL != 0
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes() & TRANSACTIONAL != 0
    }

    /// The codec the client compressed the batch with.
    pub fn original_codec(&self) -> Codec {
        Codec::from_attributes(self.attributes()).expect("checked in new")
    }

    /// The codec the records section is in now.
    /// Decoded records are written back in the client's codec unless a
    /// stage sets another section.
    pub fn codec(&self) -> Codec {
        match &self.section {
            Section::Original | Section::Records(_) => self.original_codec(),
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
    /// headers; the count must stay.
    pub fn records(&mut self) -> Result<&mut Vec<Record>, BatchError> {
        self.dirty = true; // on error the edit is dropped, so nothing is half-changed
        self.decoded()
    }

    fn decoded(&mut self) -> Result<&mut Vec<Record>, BatchError> {
        if !matches!(self.section, Section::Records(_)) {
            let plain = self.plain()?;
            let records = decode_records(&plain, self.record_count())?;
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
            Section::Original => decompress(
                self.original_codec(),
                &self.original.slice(BATCH_HEADER_LEN..),
                self.cap,
            ),
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
            _ => self.original.len() - BATCH_HEADER_LEN,
        }
    }

    /// Replaces the records section with `bytes` encoded in `codec`.
    pub fn set_section(&mut self, codec: Codec, bytes: Bytes) {
        self.section = Section::Encoded { codec, bytes };
        self.dirty = true;
    }

    /// The batch to forward: the original bytes when no stage changed it,
    /// else the original header with length, codec and CRC-32C renewed.
    pub fn finish(self) -> Result<Bytes, BatchError> {
        let attributes = self.attributes();
        let count = self.record_count();
        if !self.dirty {
            return Ok(self.original);
        }
        let mut out = BytesMut::new();
        let header = &self.original[..BATCH_HEADER_LEN];
        let codec = match self.section {
            Section::Original => return Ok(self.original),
            Section::Records(r) => {
                if r.len() != count as usize {
                    return Err(BatchError::Count {
                        count: r.len() as i32,
                        bytes: 0,
                    });
                }
                let codec = Codec::from_attributes(attributes).expect("checked in new");
                if codec == Codec::None {
                    // Encoded straight after the header: one pass, no copy.
                    out.put_slice(header);
                    encode_records_into(&r, &mut out);
                } else {
                    let level = match codec {
                        Codec::Gzip => strait_policies::set::GZIP_DEFAULT_LEVEL,
                        Codec::Zstd => strait_policies::set::ZSTD_DEFAULT_LEVEL,
                        _ => 0,
                    };
                    let packed = super::compression::compress(codec, level, &encode_records(&r))?;
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

/// Producer fields of a batch built by [`build_batch`].
#[derive(Debug, Clone, Copy)]
pub struct Producer {
    pub id: i64,
    pub epoch: i16,
    pub base_sequence: i32,
    pub transactional: bool,
}

impl Producer {
    /// No producer id: a non-idempotent producer.
    pub const NONE: Producer = Producer {
        id: -1,
        epoch: -1,
        base_sequence: -1,
        transactional: false,
    };
}

/// A header as (key, value); a null value is `None`.
pub type HeaderSpec<'a> = (&'a [u8], Option<&'a [u8]>);
/// A record as (key, value, headers) for [`build_batch`].
pub type RecordSpec<'a> = (Option<&'a [u8]>, Option<&'a [u8]>, &'a [HeaderSpec<'a>]);

/// Builds an uncompressed magic-2 batch of records given as (key, value,
/// headers), the way a client would: offset deltas 0.., timestamp deltas 0..
/// from `base_timestamp`. For tests, benchmarks and fuzzing.
pub fn build_batch(producer: Producer, base_timestamp: i64, records: &[RecordSpec<'_>]) -> Bytes {
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (k, v, hs))| {
            let mut headers = BytesMut::new();
            for (hk, hv) in hs.iter() {
                put_varint(&mut headers, hk.len() as i64);
                headers.put_slice(hk);
                match hv {
                    None => put_varint(&mut headers, -1),
                    Some(hv) => {
                        put_varint(&mut headers, hv.len() as i64);
                        headers.put_slice(hv);
                    }
                }
            }
            Record {
                attributes: 0,
                timestamp_delta: i as i64,
                offset_delta: i as i64,
                key: k.map(Bytes::copy_from_slice),
                value: v.map(Bytes::copy_from_slice),
                header_count: hs.len(),
                headers: headers.freeze(),
                added: Vec::new(),
            }
        })
        .collect();
    let section = encode_records(&records);
    let n = records.len() as i32;
    let mut out = BytesMut::with_capacity(BATCH_HEADER_LEN + section.len());
    out.put_i64(0); // base offset
    out.put_i32((BATCH_HEADER_LEN - 12 + section.len()) as i32);
    out.put_i32(-1); // partition leader epoch
    out.put_i8(2);
    out.put_u32(0); // crc, below
    out.put_i16(if producer.transactional {
        TRANSACTIONAL
    } else {
        0
    });
    out.put_i32(n - 1);
    out.put_i64(base_timestamp);
    out.put_i64(base_timestamp + i64::from(n.max(1) - 1));
    out.put_i64(producer.id);
    out.put_i16(producer.epoch);
    out.put_i32(producer.base_sequence);
    out.put_i32(n);
    out.put_slice(&section);
    let crc = crc32c::crc32c(&out[ATTRIBUTES_OFFSET..]);
    out[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    out.freeze()
}

fn read<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    b[at..at + N].try_into().expect("inside the header")
}

#[cfg(test)]
mod tests {
    use super::*;

    type Spec<'a> = RecordSpec<'a>;

    fn producer() -> Producer {
        Producer {
            id: 4000,
            epoch: 3,
            base_sequence: 17,
            transactional: true,
        }
    }

    #[test]
    fn decode_encode_is_lossless_with_duplicate_and_null_headers() {
        let dup: &[(&[u8], Option<&[u8]>)] = &[
            (b"k", Some(b"1")),
            (b"k", Some(b"2")),
            (b"n", None),
            (b"k", Some(b"")),
        ];
        let recs: &[Spec] = &[
            (Some(b"a"), Some(b"x"), dup),
            (None, None, &[]),
            (Some(b""), Some(&[0u8; 300]), &[]),
        ];
        let batch = build_batch(producer(), 1_700_000_000_000, recs);
        let section = batch.slice(BATCH_HEADER_LEN..);
        let decoded = decode_records(&section, 3).unwrap();
        assert_eq!(encode_records(&decoded), section, "byte for byte");
        let hs: Vec<_> = decoded[0].headers().collect();
        assert_eq!(
            hs,
            vec![
                (&b"k"[..], Some(&b"1"[..])),
                (b"k", Some(b"2")),
                (b"n", None),
                (b"k", Some(b""))
            ]
        );
        assert_eq!(decoded[0].header(b"k"), Some(Some(&b"1"[..])));
        assert_eq!(decoded[1].key, None);
        assert!(
            decode_records(&section, 2).is_err(),
            "bytes after the last record"
        );
        assert!(decode_records(&section, 4).is_err(), "count past the data");
        assert!(decode_records(&section, i32::MAX).is_err(), "hostile count");
    }

    #[test]
    fn an_untouched_edit_is_the_original_and_a_changed_one_keeps_the_header() {
        let recs: &[Spec] = &[(Some(b"a"), Some(b"x"), &[]), (Some(b"b"), Some(b"y"), &[])];
        let batch = build_batch(producer(), 5, recs);
        let mut e = BatchEdit::new(batch.clone(), 1 << 20).unwrap();
        e.peek_records().unwrap();
        assert!(!e.changed());
        assert_eq!(e.finish().unwrap(), batch, "decoding alone changes nothing");

        let mut e = BatchEdit::new(batch.clone(), 1 << 20).unwrap();
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
        let again = BatchEdit::new(out.clone(), 1 << 20).expect("fresh CRC verifies");
        assert_eq!(again.record_count(), 2);
        let mut again = again;
        let rs = again.peek_records().unwrap();
        assert_eq!(rs[1].header(b"h"), Some(Some(&b"v"[..])));
        assert_eq!(rs[1].value.as_deref(), Some(&b"y"[..]));
    }

    #[test]
    fn corrupt_batches_are_refused_not_resealed() {
        let recs: &[Spec] = &[(Some(b"a"), Some(b"x"), &[])];
        let mut bad = build_batch(producer(), 5, recs).to_vec();
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        assert!(matches!(
            BatchEdit::new(Bytes::from(bad), 1 << 20),
            Err(BatchError::Crc { .. })
        ));
        let mut old = build_batch(producer(), 5, recs).to_vec();
        old[MAGIC_OFFSET] = 1;
        assert_eq!(
            BatchEdit::new(Bytes::from(old), 1 << 20).unwrap_err(),
            BatchError::Magic(1)
        );
    }

    #[test]
    fn varints_round_trip_at_every_width() {
        for v in [
            0i64,
            1,
            -1,
            63,
            -64,
            64,
            8191,
            -8192,
            1 << 40,
            i64::MAX,
            i64::MIN,
        ] {
            let mut b = BytesMut::new();
            put_varint(&mut b, v);
            assert_eq!(b.len(), varint_len(v), "{v}");
            assert_eq!(Cursor(&b).varint(), Some(v));
        }
    }
}
