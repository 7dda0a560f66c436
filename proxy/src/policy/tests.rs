//! Produce enforcement without Kafka: what is patched, rewritten and handed
//! to the response plan.

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, ProduceRequest};
use kafka_protocol::protocol::Decodable;
use strait_policies::PolicySet;

use super::produce::{scan_and_produce, Work};
use super::request::{decode_header, Outcome};
use super::Compiled;
use crate::cluster::TopicIds;
use crate::codec::build;
use crate::response::Step;

fn compiled(text: &str) -> Compiled {
    Compiled::new(
        PolicySet::parse(&[("p.toml".into(), text.into())]).unwrap(),
        100,
    )
}

/// Enforces a Produce v9 frame the way the pump does, inline.
fn enforce(set: &Compiled, at: usize, frame: Bytes) -> Outcome {
    scan_and_produce(
        set,
        &TopicIds::new(10),
        9,
        at,
        &Work::capped(1 << 20),
        frame,
    )
    .unwrap()
}

fn produce_frame(topic: &str, acks: i16) -> (Bytes, usize) {
    build::produce_frame(9, acks, &[(topic, None)])
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
    // The policed topic first, then second (the scan remembers each topic's
    // plan by position, from the first policed one on).
    for policed_first in [true, false] {
        let (t, other) = if policed_first { (0, 1) } else { (1, 0) };
        let mut topics = vec![("other", Some(batch.clone()))];
        topics.insert(t, ("t", Some(batch.clone())));
        let (frame, at) = build::produce_frame(9, -1, &topics);
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
            records(other),
            batch,
            "the unpoliced topic's batch passes as bytes"
        );
        let b = crate::codec::batch::batches(records(t)).unwrap().remove(0);
        let mut edit = crate::codec::edit::BatchEdit::new(b, 1 << 20).unwrap();
        let rs = edit.peek_records().unwrap();
        assert!(rs.iter().all(|r| r.header(b"traceparent").is_some()));
    }
}
