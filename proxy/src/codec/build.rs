//! Building record batches and produce requests the way a client does, for
//! tests, benchmarks and fuzzing. Strait builds batches from scratch only as
//! a producer of its own (chunks of large records), with [`encode_batch`].

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, ProduceRequest, RequestHeader, TopicName};
use kafka_protocol::protocol::{Encodable, StrBytes};

use super::batch::{ATTRIBUTES_OFFSET, BATCH_HEADER_LEN, CRC_OFFSET, TRANSACTIONAL};
use super::records::{encode_records_into, put_varint, Record};

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
    encode_batch(producer, base_timestamp, &records)
}

/// Seals `records` (offset deltas 0.., timestamp deltas from
/// `base_timestamp`) into an uncompressed magic-2 batch at base offset 0,
/// zero-copy up to the one write of each record into the batch.
pub fn encode_batch(producer: Producer, base_timestamp: i64, records: &[Record]) -> Bytes {
    let n = records.len() as i32;
    let max_delta = records.iter().map(|r| r.timestamp_delta).max().unwrap_or(0);
    let section_len: usize = records.iter().map(Record::encoded_len).sum();
    let mut out = BytesMut::with_capacity(BATCH_HEADER_LEN + section_len);
    out.put_i64(0); // base offset
    out.put_i32((BATCH_HEADER_LEN - 12 + section_len) as i32);
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
    out.put_i64(base_timestamp + max_delta);
    out.put_i64(producer.id);
    out.put_i16(producer.epoch);
    out.put_i32(producer.base_sequence);
    out.put_i32(n);
    encode_records_into(records, &mut out);
    let crc = crc32c::crc32c(&out[ATTRIBUTES_OFFSET..]);
    out[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    out.freeze()
}

/// A Produce frame (length prefix included) at `version` with one
/// partition (0) per (topic, records), and the offset of `acks` in it, as
/// the request pump finds it.
pub fn produce_frame(version: i16, acks: i16, topics: &[(&str, Option<Bytes>)]) -> (Bytes, usize) {
    let mut b = BytesMut::new();
    b.put_i32(0);
    RequestHeader::default()
        .with_request_api_key(ApiKey::Produce as i16)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("c")))
        .encode(&mut b, ApiKey::Produce.request_header_version(version))
        .expect("a produce header encodes");
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(30_000)
        .with_topic_data(
            topics
                .iter()
                .map(|(topic, records)| {
                    TopicProduceData::default()
                        .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                        .with_partition_data(vec![PartitionProduceData::default()
                            .with_index(0)
                            .with_records(records.clone())])
                })
                .collect(),
        )
        .encode(&mut b, version)
        .expect("a produce request encodes");
    let len = (b.len() - 4) as i32;
    b[..4].copy_from_slice(&len.to_be_bytes());
    let (_, at) = super::peek_produce_acks(&b[4..], version, b.len() - 4)
        .expect("a well-formed produce request")
        .expect("a whole frame");
    (b.freeze(), at + 4)
}
