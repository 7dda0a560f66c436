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

/// The error codes of the partitions Strait refused in an outcome.
fn refused_codes(out: &Outcome) -> Vec<i16> {
    let Outcome::Forward { steps, .. } = out else {
        panic!("forwarded")
    };
    steps
        .iter()
        .filter_map(|s| match s {
            Step::MergeRejections(r) => Some(r.iter().map(|r| r.error_code)),
            _ => None,
        })
        .flatten()
        .collect()
}

/// The order guard holds an idempotent producer's later batches behind
/// one refused with a retriable error. When the retry of that batch gets a
/// final answer instead (here MESSAGE_TOO_LARGE, after a reload dropped the
/// claim-check remedy), nothing is left to wait for: the next batch goes on.
#[test]
fn a_final_verdict_on_the_awaited_retry_releases_the_order_guard() {
    use std::sync::Arc;

    use crate::codec::build::{build_batch, Producer};
    use crate::pipeline::large::{KAFKA_STORAGE_ERROR, MESSAGE_TOO_LARGE};
    use sha2::Digest;

    let policy = |remedies: &str| {
        compiled(&format!(
            "[[policy]]\nname = \"p\"\ntopics = {{ exact = \"t\" }}\n\
             [policy.large_records]\nthreshold = 1024\nremedies = [{remedies}]\n"
        ))
    };
    let claim_check = policy("\"claim-check\"");
    let compress_only = policy("\"compress\"");
    let work = Work {
        refusals: Some(Arc::default()),
        ..Work::capped(1 << 20) // no store: a claim-check is a retriable refusal
    };
    let noise: Vec<u8> = (0..157u32)
        .flat_map(|i| sha2::Sha256::digest(i.to_be_bytes()))
        .take(5000)
        .collect();
    let frame = |seq: i32, value: &[u8]| {
        let p = Producer {
            id: 5,
            epoch: 0,
            base_sequence: seq,
            transactional: false,
        };
        let id: &[(&[u8], Option<&[u8]>)] = &[(b"event-id", Some(b"1"))];
        let headers = if value.len() > 1024 { &[][..] } else { id };
        let batch = build_batch(p, 0, &[(None, Some(value), headers)]);
        build::produce_frame(9, -1, &[("t", Some(batch))])
    };
    let run = |set: &Compiled, (frame, at): (Bytes, usize)| {
        refused_codes(&scan_and_produce(set, &TopicIds::new(10), 9, at, &work, frame).unwrap())
    };
    assert_eq!(run(&claim_check, frame(0, &noise)), [KAFKA_STORAGE_ERROR]);
    assert_eq!(
        run(&claim_check, frame(1, b"small")),
        [KAFKA_STORAGE_ERROR],
        "the next batch waits for the retry of the first"
    );
    assert_eq!(
        run(&compress_only, frame(0, &noise)),
        [MESSAGE_TOO_LARGE],
        "the retry is refused for good"
    );
    assert_eq!(
        run(&compress_only, frame(1, b"small")),
        Vec::<i16>::new(),
        "nothing is left to wait for"
    );
    // The same when the retry fails a produce check (a reload added one).
    let checked = compiled(
        "[[policy]]\nname = \"p\"\ntopics = { exact = \"t\" }\n\
         [policy.produce]\nrequired_headers = [\"event-id\"]\n\
         [policy.large_records]\nthreshold = 1024\nremedies = [\"compress\"]\n",
    );
    assert_eq!(run(&claim_check, frame(2, &noise)), [KAFKA_STORAGE_ERROR]);
    assert_eq!(
        run(&checked, frame(2, &noise)),
        [strait_policies::decide::INVALID_RECORD],
        "the retry has no event-id header"
    );
    assert_eq!(
        run(&checked, frame(3, b"small")),
        Vec::<i16>::new(),
        "nothing is left to wait for after a check's verdict either"
    );
}

/// A Metadata v12 request frame for `topic`, asking to auto-create it or not.
fn metadata_frame(topic: &str, auto_create: bool) -> Bytes {
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    use kafka_protocol::messages::{MetadataRequest, RequestHeader, TopicName};
    use kafka_protocol::protocol::{Encodable, StrBytes};
    let mut header = bytes::BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(ApiKey::Metadata as i16)
        .with_request_api_version(12)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("kafka-python")))
        .encode(&mut header, ApiKey::Metadata.request_header_version(12))
        .unwrap();
    let req = MetadataRequest::default()
        .with_topics(Some(vec![MetadataRequestTopic::default()
            .with_name(Some(TopicName(StrBytes::from_string(topic.into()))))]))
        .with_allow_auto_topic_creation(auto_create);
    super::request::frame_with(&header, &req, ApiKey::Metadata, 12).unwrap()
}

/// Whether the forwarded Metadata request still asks to auto-create.
fn forwarded_auto_create(set: &Compiled, frame: Bytes) -> (bool, Bytes) {
    use kafka_protocol::messages::MetadataRequest;
    assert!(super::request::inspects(set, ApiKey::Metadata as i16));
    let Outcome::Forward { frame: out, steps } =
        super::admin::admin(set, &TopicIds::new(10), ApiKey::Metadata as i16, 12, frame).unwrap()
    else {
        panic!("forwarded")
    };
    assert!(steps.is_empty(), "nothing to do on the response");
    let body = out.slice(4..);
    let (header_len, header) = decode_header(ApiKey::Metadata, 12, &body).unwrap();
    assert_eq!(header.correlation_id, 7);
    let req = MetadataRequest::decode(&mut body.slice(header_len..), 12).unwrap();
    (req.allow_auto_topic_creation, out)
}

#[test]
fn metadata_does_not_auto_create_a_topic_the_create_rules_refuse() {
    // Auto-creation makes a topic with the broker's defaults: the same as a
    // CreateTopics without counts, which a partitions rule refuses.
    let set = compiled(
        "[[policy]]\nname = \"guarded\"\ntopics = { prefix = \"orders.\" }\n[policy.admin]\n\
         partitions = { min = 2, max = 6 }\n\
         [[policy]]\nname = \"configs-only\"\ntopics = { prefix = \"logs.\" }\n[policy.admin]\n\
         deny_configs = [\"retention.ms\"]\n",
    );
    let (auto, _) = forwarded_auto_create(&set, metadata_frame("orders.new", true));
    assert!(!auto, "the broker is asked not to auto-create orders.new");
    for topic in ["logs.new", "unpoliced"] {
        let frame = metadata_frame(topic, true);
        let (auto, out) = forwarded_auto_create(&set, frame.clone());
        assert!(auto);
        assert_eq!(out, frame, "{topic}: forwarded byte for byte");
    }
    let frame = metadata_frame("orders.new", false);
    assert_eq!(forwarded_auto_create(&set, frame.clone()).1, frame);
}

/// Turning auto-creation off keeps the client's request going (a Kafka
/// Streams app asks for it in every Metadata request): it is counted as what
/// it is, not as a rejection an alert would fire on.
#[test]
fn auto_creation_turned_off_is_not_counted_as_a_rejection() {
    let set = compiled(
        "[[policy]]\nname = \"guarded\"\ntopics = { prefix = \"orders.\" }\n[policy.admin]\n\
         partitions = { min = 2, max = 6 }\n",
    );
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let (auto, _) = metrics::with_local_recorder(&recorder, || {
        forwarded_auto_create(&set, metadata_frame("orders.new", true))
    });
    assert!(!auto);
    let rendered = recorder.handle().render();
    let decisions: Vec<&str> = rendered
        .lines()
        .filter(|l| l.starts_with("strait_policy_decisions_total{"))
        .collect();
    assert_eq!(decisions.len(), 1, "{rendered}");
    assert!(
        decisions[0].contains("policy=\"guarded\"")
            && decisions[0].contains("outcome=\"auto_create_off\"")
            && decisions[0].ends_with(" 1"),
        "{}",
        decisions[0]
    );
}

/// A request whose array length claims more than the frame holds is
/// refused before kafka-protocol decodes it (its decoder would reserve room
/// for all of them up front and abort the process); the error names the
/// api, the version and where, and the request is never forwarded.
#[test]
fn a_request_with_a_huge_array_count_is_refused_not_decoded() {
    let set = compiled(
        "[[policy]]\nname = \"guarded\"\ntopics = { prefix = \"orders.\" }\n[policy.admin]\n\
         partitions = { min = 2, max = 6 }\n",
    );
    // Metadata v12: the topics count (a compact array) is the first body
    // byte, after the header; 2^28 topics in five bytes.
    let frame = metadata_frame("orders.new", true);
    let (header_len, _) = decode_header(ApiKey::Metadata, 12, &frame.slice(4..)).unwrap();
    let at = 4 + header_len;
    assert_eq!(frame[at], 2, "one topic");
    let bad = [
        &frame[..at],
        &[0x81, 0x80, 0x80, 0x80, 0x01],
        &frame[at + 1..],
    ]
    .concat();
    let Err(err) = super::admin::admin(&set, &TopicIds::new(10), 3, 12, Bytes::from(bad)) else {
        panic!("refused")
    };
    let err = err.to_string();
    assert!(
        err.contains("Metadata v12") && err.contains("malformed body: an array at byte 0"),
        "{err}"
    );
    // A cut header is refused too.
    let cut = Bytes::copy_from_slice(&frame[..10]);
    let Err(err) = super::admin::admin(&set, &TopicIds::new(10), 3, 12, cut) else {
        panic!("refused")
    };
    let err = err.to_string();
    assert!(err.contains("malformed header"), "{err}");
}
