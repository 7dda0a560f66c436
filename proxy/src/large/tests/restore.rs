//! Tests of `large::restore`.
use std::sync::Mutex;

use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;
use sha2::Digest;

use super::*;
use crate::codec::build::{build_batch, Producer};
use crate::large::reference::{Manifest, ObjectRef};

/// Hands out the value every reference names (size and hash true), as a
/// store or chunk topic holding it would; records what it was asked.
struct Anything {
    asked: Mutex<Vec<Reference>>,
}

const VALUE: &[u8] = b"another topic's value";

impl ValueSource for Anything {
    fn value(&self, r: &Reference) -> Result<Bytes, LargeError> {
        self.asked.lock().unwrap().push(r.clone());
        Ok(Bytes::from_static(VALUE))
    }
    fn hold(&self, _bytes: u64) -> Result<Option<Held>, LargeError> {
        Ok(None)
    }
    fn per_connection(&self) -> usize {
        1 << 20
    }
}

fn object(topic: &str) -> Reference {
    let sha256: [u8; 32] = sha2::Sha256::digest(VALUE).into();
    Reference::Object(ObjectRef {
        key: format!("strait/{topic}/{}", hex::encode(sha256)),
        size: VALUE.len() as u64,
        sha256,
    })
}

fn manifest(chunk_topic: &str) -> Reference {
    Reference::Chunks(Manifest {
        topic: chunk_topic.into(),
        partition: 0,
        ranges: vec![(0, 1)],
        chunks: 1,
        size: VALUE.len() as u64,
        sha256: sha2::Sha256::digest(VALUE).into(),
    })
}

/// Restores a fetch of topic `t` (policy defaults: prefix "strait",
/// chunk topic "{topic}.strait-chunks") whose one record carries `r`.
fn fetch_of_t(r: &Reference) -> (PartitionData, Vec<Reference>) {
    let value = r.encode();
    let batch = build_batch(
        Producer::NONE,
        0,
        &[(
            Some(&b"k"[..]),
            Some(&value[..]),
            &[(MARKER, Some(r.marker()))],
        )],
    );
    let mut resp = FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
        .with_topic(TopicName(StrBytes::from_static_str("t")))
        .with_partitions(vec![PartitionData::default()
            .with_partition_index(3)
            .with_records(Some(batch))])]);
    let spec = spec_of_t(1 << 20);
    let source = Anything {
        asked: Mutex::new(Vec::new()),
    };
    restore(&mut resp, &spec, |_| None, &source, 1 << 20);
    let p = resp.responses.remove(0).partitions.remove(0);
    (p, source.asked.into_inner().unwrap())
}

#[test]
fn references_of_the_topic_itself_are_restored() {
    for r in [object("t"), manifest("t.strait-chunks")] {
        let (p, asked) = fetch_of_t(&r);
        assert_eq!(p.error_code, 0, "{r:?}");
        assert_eq!(asked, vec![r]);
    }
}

/// Restores a fetch of `t` whose record carries `r` and checks that it
/// failed as a record that cannot be restored does, without a read.
fn refused(r: Reference) {
    let (p, asked) = fetch_of_t(&r);
    assert_eq!(
        asked,
        Vec::<Reference>::new(),
        "topic t's record made Strait read {r:?}"
    );
    assert_eq!(p.error_code, KAFKA_STORAGE_ERROR, "{r:?}");
    assert_eq!(p.records.as_deref(), Some(&b""[..]), "no record passes");
}

#[test]
fn a_claim_check_of_another_topics_object_is_refused_unread() {
    refused(object("payroll"));
    refused(object("t.strait-chunks"));
}

#[test]
fn a_manifest_of_another_chunk_topic_is_refused_unread() {
    refused(manifest("payroll.strait-chunks"));
    refused(manifest("payroll"));
    refused(manifest("t"));
}

/// A batch at `base` of one record of topic t carrying `value` under the
/// marker `marker` (a reference, or anything), sealed in `codec`.
fn marked_batch(base: i64, marker: &[u8], value: &[u8], codec: Compression) -> Bytes {
    let batch = build_batch(
        Producer::NONE,
        0,
        &[(Some(&b"k"[..]), Some(value), &[(MARKER, Some(marker))])],
    );
    let mut b = if codec == Compression::None {
        batch.to_vec()
    } else {
        let one = Batches::new(batch).next().unwrap().unwrap();
        let mut edit = BatchEdit::new(one.clone(), 1 << 20).unwrap();
        let plain = one.record_bytes(1 << 20).unwrap();
        edit.set_section(
            codec,
            crate::codec::compression::compress(codec, 3, &plain).unwrap(),
        );
        edit.finish().unwrap().to_vec()
    };
    b[..8].copy_from_slice(&base.to_be_bytes());
    Bytes::from(b)
}

/// The (offset, value) of every record of `records`.
fn values(records: &Bytes) -> Vec<(i64, Bytes)> {
    let mut out = Vec::new();
    for b in Batches::new(records.clone()) {
        let b = b.unwrap();
        let bytes = b.record_bytes(1 << 20).unwrap();
        for (i, v) in crate::codec::batch::records(&bytes, b.record_count())
            .unwrap()
            .iter()
            .enumerate()
        {
            assert!(!v.has_header(MARKER), "a marker passed on");
            let value = crate::codec::records::decode_records(&bytes, b.record_count()).unwrap()[i]
                .value
                .clone()
                .unwrap_or_default();
            out.push((b.base_offset() + i as i64, value));
        }
    }
    out
}

fn spec_of_t(max_bytes: usize) -> RestoreSpec {
    RestoreSpec {
        max_bytes,
        partition_max: Vec::new(),
        restores: Arc::new(|topic| {
            let set = strait_policies::PolicySet::parse(&[(
                "p.toml".into(),
                "[[policy]]\nname = \"p\"\ntopics = { exact = \"t\" }\n\
                 [policy.large_records]\nremedies = [\"claim-check\"]\n"
                    .into(),
            )])
            .unwrap();
            let rules = set.resolve(topic)?.large_records.as_ref()?;
            Some(Scope::new(topic, rules))
        }),
    }
}

fn response_of_t(partitions: Vec<Bytes>) -> FetchResponse {
    FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
        .with_topic(TopicName(StrBytes::from_static_str("t")))
        .with_partitions(
            partitions
                .into_iter()
                .enumerate()
                .map(|(i, r)| {
                    PartitionData::default()
                        .with_partition_index(i as i32)
                        .with_records(Some(r))
                })
                .collect(),
        )])
}

/// Issue 15, point 5: a batch whose reference does not parse, after good
/// ones, ends the answer before it; the good ones are delivered (the old
/// walk failed the whole partition).
#[test]
fn a_bad_batch_after_good_ones_keeps_the_good_ones() {
    let good = object("t");
    let mut records = marked_batch(0, good.marker(), &good.encode(), Compression::None).to_vec();
    records.extend_from_slice(&marked_batch(
        1,
        good.marker(),
        b"{not a reference",
        Compression::None,
    ));
    let mut resp = response_of_t(vec![Bytes::from(records)]);
    let source = Anything {
        asked: Mutex::new(Vec::new()),
    };
    restore(&mut resp, &spec_of_t(1 << 20), |_| None, &source, 1 << 20);
    let p = &resp.responses[0].partitions[0];
    assert_eq!(p.error_code, 0, "the good batch is delivered");
    assert_eq!(
        values(p.records.as_ref().unwrap()),
        vec![(0, Bytes::from_static(VALUE))],
        "offset 0 restored, the answer ends before offset 1"
    );
    // Fetched again from the bad batch, it is the first: the partition fails.
    let bad = marked_batch(1, good.marker(), b"{not a reference", Compression::None);
    let mut resp = response_of_t(vec![bad]);
    restore(&mut resp, &spec_of_t(1 << 20), |_| None, &source, 1 << 20);
    assert_eq!(
        resp.responses[0].partitions[0].error_code,
        KAFKA_STORAGE_ERROR
    );
}

/// Issue 15, point 1 (unit level): batches the broker recompressed are
/// opened and restored, in every codec; and several partitions share the
/// answer's byte total: the answer's first batch is always kept (KIP-74),
/// a later partition's batch past the total waits for the next fetch.
#[test]
fn recompressed_batches_are_restored_and_partitions_share_the_answer_total() {
    let r = object("t");
    for codec in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let batch = marked_batch(5, r.marker(), &r.encode(), codec);
        let mut resp = response_of_t(vec![batch.clone(), batch]);
        let source = Anything {
            asked: Mutex::new(Vec::new()),
        };
        // Room for one restored batch only.
        restore(&mut resp, &spec_of_t(100), |_| None, &source, 1 << 20);
        let parts = &resp.responses[0].partitions;
        assert_eq!(parts[0].error_code, 0, "{codec:?}");
        assert_eq!(
            values(parts[0].records.as_ref().unwrap()),
            vec![(5, Bytes::from_static(VALUE))],
            "{codec:?}: the first batch of the answer, restored though over max_bytes"
        );
        assert_eq!(parts[1].error_code, 0, "{codec:?}");
        assert_eq!(
            parts[1].records.as_deref(),
            Some(&b""[..]),
            "{codec:?}: the second partition waits for the next fetch"
        );
    }
}
