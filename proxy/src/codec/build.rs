//! Building record batches the way a client does, for tests, benchmarks and
//! fuzzing (Strait itself never builds a batch from scratch).

use bytes::{BufMut, Bytes, BytesMut};

use super::batch::{ATTRIBUTES_OFFSET, BATCH_HEADER_LEN, CRC_OFFSET, TRANSACTIONAL};
use super::records::{encode_records, put_varint, Record};

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
            Record::new(
                0,
                i as i64,
                i as i64,
                k.map(Bytes::copy_from_slice),
                v.map(Bytes::copy_from_slice),
                hs.len(),
                headers.freeze(),
            )
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
