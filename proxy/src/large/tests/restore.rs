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
    let spec = RestoreSpec {
        max_bytes: 1 << 20,
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
    };
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
