//! The keys of a sampled produce request, read on the tap's thread: the
//! request walked by hand ([`Wire`]), each batch decompressed (at most
//! [`MAX_BATCH_BYTES`]) and its records decoded for their keys; values are
//! never kept. Control batches have no keys of their own.

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;
use uuid::Uuid;

use super::decode::TopicRef;
use super::wire::{Short, Wire};
use crate::codec::batch::Batches;
use crate::codec::records::decode_records;

/// The most a sampled batch is decompressed to; a larger one is skipped.
pub const MAX_BATCH_BYTES: usize = 8 << 20;

/// One partition's keys in a produce request.
pub struct Keys {
    pub topic: TopicRef,
    pub partition: i32,
    pub keys: Vec<Bytes>,
}

/// The keys of every partition of a produce request body (after the length
/// prefix; the header is walked here too).
pub fn keys(body: &Bytes) -> Result<Vec<Keys>, Short> {
    let mut h = Wire::new(body, false);
    h.i16()?;
    let version = h.i16()?;
    h.i32()?;
    h.classic_string()?;
    let flexible = ApiKey::Produce.request_header_version(version) >= 2;
    let mut w = Wire::new(h.rest(), flexible);
    w.tags()?;
    if version >= 3 {
        w.string()?; // transactional_id
    }
    w.i16()?; // acks
    w.i32()?; // timeout_ms
    let mut out = Vec::new();
    for _ in 0..w.array(2)? {
        let topic = if version >= 13 {
            TopicRef::Id(Uuid::from_bytes(w.uuid()?))
        } else {
            TopicRef::Name(w.string()?.unwrap_or_default().to_string())
        };
        for _ in 0..w.array(5)? {
            let partition = w.i32()?;
            let records = w.bytes()?.map(|r| body.slice_ref(r));
            w.tags()?;
            let keys = records.map(batch_keys).unwrap_or_default();
            out.push(Keys {
                topic: topic.clone(),
                partition,
                keys,
            });
        }
        w.tags()?;
    }
    Ok(out)
}

fn batch_keys(records: Bytes) -> Vec<Bytes> {
    let mut keys = Vec::new();
    for batch in Batches::new(records) {
        let Ok(batch) = batch else { break };
        if batch.is_control() {
            continue;
        }
        let Ok(data) = batch.record_bytes(MAX_BATCH_BYTES) else {
            continue;
        };
        let Ok(records) = decode_records(&data, batch.record_count()) else {
            continue;
        };
        keys.extend(records.into_iter().filter_map(|r| r.key));
    }
    keys
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ProduceRequest, RequestHeader, TopicName};
    use kafka_protocol::protocol::{Encodable, StrBytes};
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    use super::*;

    fn records(keys: &[&str], compression: Compression) -> Bytes {
        let recs: Vec<Record> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                sequence: -1,
                timestamp: 0,
                key: Some(Bytes::copy_from_slice(k.as_bytes())),
                value: Some(Bytes::from_static(b"v")),
                headers: Default::default(),
            })
            .collect();
        let mut b = BytesMut::new();
        let opts = RecordEncodeOptions {
            version: 2,
            compression,
        };
        RecordBatchEncoder::encode(&mut b, &recs, &opts).unwrap();
        b.freeze()
    }

    #[test]
    fn keys_of_every_partition_at_every_version() {
        for v in 3..=12 {
            // kafka-protocol here encodes uncompressed batches only (its codec
            // features are off); compressed batches go through the same
            // `Batch::record_bytes` every pipeline test covers.
            {
                let c = Compression::None;
                let r = ProduceRequest::default()
                    .with_acks(-1)
                    .with_topic_data(vec![TopicProduceData::default()
                        .with_name(TopicName(StrBytes::from_static_str("orders")))
                        .with_partition_data(vec![
                            PartitionProduceData::default()
                                .with_index(3)
                                .with_records(Some(records(&["a", "b", "a"], c))),
                            PartitionProduceData::default().with_index(4),
                        ])]);
                let mut b = BytesMut::new();
                RequestHeader::default()
                    .with_request_api_key(0)
                    .with_request_api_version(v)
                    .encode(&mut b, ApiKey::Produce.request_header_version(v))
                    .unwrap();
                r.encode(&mut b, v).unwrap();
                let got = keys(&b.freeze()).unwrap();
                assert_eq!(got.len(), 2, "v{v}");
                assert_eq!(got[0].topic, TopicRef::Name("orders".into()));
                assert_eq!(got[0].partition, 3);
                let k: Vec<&[u8]> = got[0].keys.iter().map(|k| &k[..]).collect();
                assert_eq!(k, [&b"a"[..], b"b", b"a"], "v{v} {c:?}");
                assert!(got[1].keys.is_empty());
            }
        }
    }
}
