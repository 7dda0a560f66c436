//! Records of a magic-2 batch, decoded losslessly and zero-copy: every field
//! as received, headers kept encoded (duplicate keys and their order), added
//! headers after them; encoding gives back the same bytes for an unchanged
//! record.

use bytes::{BufMut, Bytes, BytesMut};

use super::batch::{BatchError, Cursor};

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
    /// A record from its fields; `headers` holds `header_count` encoded headers.
    pub(crate) fn new(
        attributes: i8,
        timestamp_delta: i64,
        offset_delta: i64,
        key: Option<Bytes>,
        value: Option<Bytes>,
        header_count: usize,
        headers: Bytes,
    ) -> Record {
        Record {
            attributes,
            timestamp_delta,
            offset_delta,
            key,
            value,
            header_count,
            headers,
            added: Vec::new(),
        }
    }

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

    /// Removes every header with this key (received or added); the others
    /// keep their order. Returns how many went.
    pub fn remove_header(&mut self, key: &[u8]) -> usize {
        let before = self.header_count + self.added.len();
        self.added.retain(|(k, _)| &k[..] != key);
        if self
            .headers()
            .take(self.header_count)
            .any(|(k, _)| k == key)
        {
            let mut kept = BytesMut::with_capacity(self.headers.len());
            let mut count = 0;
            for (k, v) in self.headers().take(self.header_count) {
                if k == key {
                    continue;
                }
                put_varint(&mut kept, k.len() as i64);
                kept.put_slice(k);
                match v {
                    None => put_varint(&mut kept, -1),
                    Some(v) => {
                        put_varint(&mut kept, v.len() as i64);
                        kept.put_slice(v);
                    }
                }
                count += 1;
            }
            self.headers = kept.freeze();
            self.header_count = count;
        }
        before - self.header_count - self.added.len()
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

    pub(crate) fn encoded_len(&self) -> usize {
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
pub(crate) fn encode_records_into(records: &[Record], out: &mut BytesMut) {
    out.reserve(records.iter().map(Record::encoded_len).sum());
    for r in records {
        r.encode(out);
    }
}

fn varint_len(v: i64) -> usize {
    let z = ((v << 1) ^ (v >> 63)) as u64;
    (64 - (z | 1).leading_zeros() as usize).div_ceil(7)
}

pub(crate) fn put_varint(out: &mut BytesMut, v: i64) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::batch::BATCH_HEADER_LEN;
    use crate::codec::build::{build_batch, Producer, RecordSpec};

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
