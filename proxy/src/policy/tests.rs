//! Produce enforcement without Kafka: what is patched, rewritten and handed
//! to the response plan.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ProduceRequest, RequestHeader, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use strait_policies::PolicySet;

use super::produce::{produce, scan, Scan};
use super::request::{decode_header, Outcome};
use super::Compiled;
use crate::cluster::TopicIds;
use crate::response::Step;

fn compiled(text: &str) -> Compiled {
    Compiled::new(
        PolicySet::parse(&[("p.toml".into(), text.into())]).unwrap(),
        100,
    )
}

/// Scans, then enforces when the scan finds a policed topic, as the pump does.
fn enforce(set: &Compiled, at: usize, frame: Bytes) -> Outcome {
    let ids = TopicIds::new(10);
    match scan(set, &ids, 9, &frame).unwrap() {
        Scan::Unpoliced => Outcome::forward(frame),
        _ => produce(set, &ids, 9, at, 1 << 20, frame).unwrap(),
    }
}

fn produce_frame(topic: &str, acks: i16) -> (Bytes, usize) {
    produce_frame_with(&[(topic, None)], acks)
}

/// A Produce v9 frame with one partition per (topic, records).
fn produce_frame_with(topics: &[(&str, Option<Bytes>)], acks: i16) -> (Bytes, usize) {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    let mut b = BytesMut::new();
    b.extend_from_slice(&[0; 4]);
    RequestHeader::default()
        .with_request_api_key(0)
        .with_request_api_version(9)
        .with_client_id(Some(StrBytes::from_static_str("c")))
        .encode(&mut b, 2)
        .unwrap();
    ProduceRequest::default()
        .with_acks(acks)
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
        .encode(&mut b, 9)
        .unwrap();
    let len = (b.len() - 4) as i32;
    b[..4].copy_from_slice(&len.to_be_bytes());
    let at = crate::codec::peek_produce_acks(&b[4..], 9, b.len() - 4)
        .unwrap()
        .unwrap()
        .1
        + 4;
    (b.freeze(), at)
}

#[test]
fn acks_one_is_upgraded_in_place_and_other_topics_pass_untouched() {
    let set = compiled(
        "[[policy]]\nname = \"up\"\ntopics = { exact = \"t\" }\n[policy.produce]\nacks = \"upgrade\"\n",
    );
    let (frame, at) = produce_frame("t", 1);
    let Outcome::Forward { frame: out, steps } = enforce(&set, at, frame.clone()) else {
        panic!("forwarded")
    };
    assert!(steps.is_empty());
    assert_eq!(
        i16::from_be_bytes([out[at], out[at + 1]]),
        -1,
        "acks=1 became acks=all"
    );
    let mut diff: Vec<usize> = (0..frame.len()).filter(|&i| frame[i] != out[i]).collect();
    diff.dedup();
    assert!(
        diff.iter().all(|&i| i == at || i == at + 1),
        "only the acks bytes change"
    );
    let (other, at) = produce_frame("unpoliced", 1);
    let Outcome::Forward { frame: same, .. } = enforce(&set, at, other.clone()) else {
        panic!("forwarded")
    };
    assert_eq!(same, other, "a topic without policy passes byte for byte");
}

#[test]
fn pipeline_rewrites_only_its_topic_and_hands_trace_ids_to_the_response() {
    use crate::codec::build::{build_batch, Producer, RecordSpec};
    let set =
        compiled("[[policy]]\nname = \"traced\"\ntopics = { exact = \"t\" }\n[policy.trace]\n");
    let record: RecordSpec<'_> = (None, Some(&b"v"[..]), &[]);
    let batch = build_batch(Producer::NONE, 0, &[record; 3]);
    let (frame, at) = produce_frame_with(
        &[("t", Some(batch.clone())), ("other", Some(batch.clone()))],
        -1,
    );
    let Outcome::Forward { frame: out, steps } = enforce(&set, at, frame) else {
        panic!("forwarded")
    };
    let [Step::IndexTraces(traces)] = &steps[..] else {
        panic!("trace ids wait for the response, and nothing else: {steps:?}")
    };
    assert_eq!(traces.len(), 1);
    assert_eq!(traces[0].topic, "t");
    assert_eq!(traces[0].traced.len(), 3);
    let body = out.slice(4..);
    let (header_len, _) = decode_header(ApiKey::Produce, 9, &body).unwrap();
    let req = ProduceRequest::decode(&mut body.slice(header_len..), 9).unwrap();
    let records = |i: usize| req.topic_data[i].partition_data[0].records.clone().unwrap();
    assert_eq!(
        records(1),
        batch,
        "the unpoliced topic's batch passes as bytes"
    );
    let b = crate::codec::batch::batches(records(0)).unwrap().remove(0);
    let mut edit = crate::codec::edit::BatchEdit::new(b, 1 << 20).unwrap();
    let rs = edit.peek_records().unwrap();
    assert!(rs.iter().all(|r| r.header(b"traceparent").is_some()));
}
