//! Frame-level micro-benchmarks: the per-frame work on the passthrough path
//! (length prefix + header peek, produce `acks` peek) and the cost of the one
//! rewrite most clients trigger (Metadata).

use bytes::{BufMut, Bytes, BytesMut};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use kafka_protocol::messages::metadata_response::MetadataResponseBroker;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    BrokerId, MetadataResponse, ProduceRequest, RequestHeader, ResponseHeader, TopicName,
    TransactionalId,
};
use kafka_protocol::protocol::{Encodable, StrBytes};
use strait_proxy::codec::{frame_len, peek_produce_acks, scan_produce_topics, RequestPeek};
use strait_proxy::response::{AddressMap, Decoded, Kind};

fn produce_frame(version: i16) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i32(0);
    RequestHeader::default()
        .with_request_api_key(0)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("producer-1")))
        .encode(&mut b, if version >= 9 { 2 } else { 1 })
        .unwrap();
    // The record batch bytes are never read on these paths; 16 KiB of them.
    let records = Bytes::from(vec![0u8; 16 * 1024]);
    ProduceRequest::default()
        .with_acks(-1)
        .with_transactional_id(Some(TransactionalId(StrBytes::from_static_str("tx"))))
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str("orders")))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(records))])])
        .encode(&mut b, version)
        .unwrap();
    let len = (b.len() - 4) as i32;
    b[..4].copy_from_slice(&len.to_be_bytes());
    b.freeze()
}

fn metadata_frame(brokers: i32) -> Bytes {
    let resp = MetadataResponse::default().with_brokers(
        (0..brokers)
            .map(|i| {
                MetadataResponseBroker::default()
                    .with_node_id(BrokerId(i))
                    .with_host(StrBytes::from_string(format!("kafka-{i}.internal.example")))
                    .with_port(9092)
            })
            .collect(),
    );
    let mut b = BytesMut::new();
    ResponseHeader::default()
        .with_correlation_id(1)
        .encode(&mut b, 1)
        .unwrap();
    resp.encode(&mut b, 12).unwrap();
    b.freeze()
}

struct Map;
impl AddressMap for Map {
    fn advertised(&self, node_id: i32) -> Option<(StrBytes, i32)> {
        Some((StrBytes::from_static_str("127.0.0.1"), 19000 + node_id))
    }
}

fn bench(c: &mut Criterion) {
    let frame = produce_frame(9);
    let mut g = c.benchmark_group("passthrough");
    g.throughput(Throughput::Elements(1));
    g.bench_function("frame_len+header_peek", |b| {
        b.iter(|| {
            let f = black_box(&frame[..]);
            let len = frame_len(f, 100 << 20).unwrap().unwrap();
            RequestPeek::parse(&f[4..], len).unwrap().unwrap()
        })
    });
    g.bench_function("produce_acks_peek_v9", |b| {
        b.iter(|| {
            let f = black_box(&frame[..]);
            peek_produce_acks(&f[4..], 9, f.len() - 4)
                .unwrap()
                .unwrap()
                .0
        })
    });
    g.finish();

    // With produce policies loaded, a request for an unpoliced topic costs a
    // scan of the request structure; decoding it would cost this much more.
    let mut g = c.benchmark_group("policy_fast_path");
    g.throughput(Throughput::Bytes(frame.len() as u64));
    g.bench_function("scan_topics_unpoliced", |b| {
        b.iter(|| {
            scan_produce_topics(black_box(&frame[4..]), 9, |t| {
                black_box(t) == strait_proxy::codec::TopicRef::Name(b"x")
            })
            .unwrap()
        })
    });
    g.bench_function("kafka_protocol_decode", |b| {
        b.iter(|| {
            let mut body = frame.slice(4..);
            let _ = <RequestHeader as kafka_protocol::protocol::Decodable>::decode(&mut body, 2)
                .unwrap();
            <ProduceRequest as kafka_protocol::protocol::Decodable>::decode(&mut body, 9).unwrap()
        })
    });
    g.finish();

    let meta = metadata_frame(6);
    let mut g = c.benchmark_group("rewrite");
    g.throughput(Throughput::Bytes(meta.len() as u64));
    g.bench_function("metadata_v12_6_brokers", |b| {
        b.iter(|| {
            let mut d = Decoded::decode(Kind::Metadata, 3, 12, black_box(meta.clone())).unwrap();
            d.rewrite_addresses(&Map).unwrap();
            d.encode().unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
