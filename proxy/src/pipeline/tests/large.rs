//! Tests of `pipeline::large`.
use std::sync::Arc;

use strait_policies::PolicySet;

use bytes::Bytes;

use super::super::{Context, Pipeline};
use super::{StageError, KAFKA_STORAGE_ERROR, MESSAGE_TOO_LARGE};
use crate::codec::batch::batches;
use crate::codec::build::{build_batch, Producer, RecordSpec};
use crate::codec::Compression;
use crate::config::{LargeRecordsConfig, LeaderEndpoints, UpstreamConfig};
use crate::kafka_client::KafkaClient;
use crate::large::reference::{Reference, Scope, MARKER};
use crate::large::restore::{restore_partition, Limits};
use crate::large::LargeRecords;
use crate::upstream::Dialer;

/// Large-record I/O with a store in a fresh directory and a client of a
/// cluster that is never asked (claim-checks need none).
fn large(dir: &std::path::Path) -> Arc<LargeRecords> {
    let upstream = UpstreamConfig {
        bootstrap: vec!["127.0.0.1:1".into()],
        connect_timeout_ms: 100,
        tls: None,
        sasl: None,
        leader_endpoints: LeaderEndpoints::Clamp,
    };
    let dialer = Arc::new(Dialer::new(&upstream, 1 << 20).unwrap());
    let client = Arc::new(KafkaClient::new(dialer, std::time::Duration::from_secs(1)));
    let cfg = LargeRecordsConfig {
        store: dir.display().to_string(),
        ..Default::default()
    };
    Arc::new(LargeRecords::new(&cfg, client).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_check_keeps_the_record_and_restores_it_whole() {
    let dir = std::env::temp_dir().join(format!("strait-claims-{}", std::process::id()));
    let large = large(&dir);
    let set = PolicySet::parse(&[(
        "p.toml".into(),
        "[[policy]]\nname = \"p\"\ntopics = { exact = \"t\" }\n[policy.trace]\n\
         [policy.large_records]\nthreshold = 1024\nremedies = [\"claim-check\"]\n"
            .into(),
    )])
    .unwrap();
    let rules = set.resolve("t").unwrap().large_records.as_ref().unwrap();
    let scope = Scope::new("t", rules);
    let big: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
    let h1: &[(&[u8], Option<&[u8]>)] = &[(b"h", Some(b"1"))];
    let h2: &[(&[u8], Option<&[u8]>)] = &[(b"h", Some(b"2"))];
    let recs: Vec<RecordSpec<'_>> = vec![
        (Some(&b"a"[..]), Some(&b"small"[..]), h1),
        (Some(&b"b"[..]), Some(&big[..]), h2),
        (Some(&b"c"[..]), None, &[]),
    ];
    let producer = Producer {
        id: 9,
        epoch: 0,
        base_sequence: 40,
        transactional: false,
    };
    let input = build_batch(producer, 1000, &recs);
    let io = large.clone();
    let (out, traced) = tokio::task::spawn_blocking(move || {
        let pipeline = Pipeline::for_policy(set.resolve("t").unwrap());
        let mut traced = Vec::new();
        let mut cx = Context {
            topic: "t",
            partition: 0,
            client_id: None,
            api_version: 9,
            received_at_ms: 0,
            traced: &mut traced,
            records_before: 0,
            large: Some(&io),
        };
        let out = pipeline.run(&batches(input).unwrap(), 1 << 20, &mut cx);
        (out.unwrap().expect("rewritten"), traced)
    })
    .await
    .unwrap();
    let b = &batches(out.clone()).unwrap()[0];
    assert_eq!(
        (b.producer_id(), b.base_sequence(), b.record_count()),
        (9, 40, 3),
        "the batch stays the producer's"
    );
    assert!(b.raw().len() < 1500, "the value left the batch");
    let mut edit = crate::codec::edit::BatchEdit::new(b.clone(), 1 << 20).unwrap();
    let rs = edit.peek_records().unwrap().to_vec();
    let marker = rs[1].header(MARKER).flatten().expect("marked");
    let Reference::Object(o) = Reference::parse(marker, rs[1].value.as_ref().unwrap()).unwrap()
    else {
        panic!("a claim-check")
    };
    assert!(dir.join(&o.key).exists(), "{} stored", o.key);
    assert_eq!(
        rs[1].header(b"h"),
        Some(Some(&b"2"[..])),
        "client headers kept"
    );
    assert!(rs[0].header(MARKER).is_none() && rs[2].header(MARKER).is_none());
    assert_eq!(
        traced[1].original_size,
        Some(5000),
        "the trace index learns the size"
    );
    assert_eq!(traced[0].original_size, None);
    // The fetch side puts it back: same records, marker gone.
    let limit = Limits {
        max_bytes: 1 << 20,
        partition_max: 1 << 20,
        per_connection: 1 << 20,
    };
    let io = large.clone();
    let restored = tokio::task::spawn_blocking(move || {
        restore_partition(&scope, out, &limit, io.as_ref(), 1 << 20)
            .unwrap()
            .expect("restored")
    })
    .await
    .unwrap();
    let mut edit =
        crate::codec::edit::BatchEdit::new(batches(restored).unwrap().remove(0), 1 << 20).unwrap();
    let back = edit.peek_records().unwrap();
    assert_eq!(back[1].value.as_deref(), Some(&big[..]), "byte-identical");
    assert!(back[1].header(MARKER).is_none(), "the marker is gone");
    assert_eq!(back[1].header(b"h"), Some(Some(&b"2"[..])));
    assert!(
        back[1].header(b"traceparent").is_some(),
        "the trace header stays"
    );
    assert_eq!(back[0].value.as_deref(), Some(&b"small"[..]));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A batch with one value that fits only compressed and one that fits
/// no way but a claim-check: both remedies must hold as sent, so the
/// batch carrying the reference is still sealed compressed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_check_in_the_batch_keeps_the_compress_remedy() {
    use sha2::Digest;
    let dir = std::env::temp_dir().join(format!("strait-claims-mixed-{}", std::process::id()));
    let large = large(&dir);
    let set = PolicySet::parse(&[(
        "p.toml".into(),
        "[[policy]]\nname = \"p\"\ntopics = { exact = \"t\" }\n\
         [policy.large_records]\nthreshold = 1024\nremedies = [\"compress\", \"claim-check\"]\n"
            .into(),
    )])
    .unwrap();
    let text = b"the same sentence again and again; ".repeat(300);
    let noise: Vec<u8> = (0..157u32)
        .flat_map(|i| sha2::Sha256::digest(i.to_be_bytes()))
        .take(5000)
        .collect();
    let recs: Vec<RecordSpec<'_>> = vec![
        (Some(&b"a"[..]), Some(&text[..]), &[]),
        (Some(&b"b"[..]), Some(&noise[..]), &[]),
    ];
    let producer = Producer {
        id: 9,
        epoch: 2,
        base_sequence: 40,
        transactional: false,
    };
    let input = build_batch(producer, 1000, &recs);
    let io = large.clone();
    let out = tokio::task::spawn_blocking(move || {
        let pipeline = Pipeline::for_policy(set.resolve("t").unwrap());
        let mut traced = Vec::new();
        let mut cx = Context {
            topic: "t",
            partition: 0,
            client_id: None,
            api_version: 9,
            received_at_ms: 0,
            traced: &mut traced,
            records_before: 0,
            large: Some(&io),
        };
        let out = pipeline.run(&batches(input).unwrap(), 1 << 20, &mut cx);
        out.unwrap().expect("rewritten")
    })
    .await
    .unwrap();
    let b = &batches(out).unwrap()[0];
    assert_eq!(
        (
            b.producer_id(),
            b.producer_epoch(),
            b.base_sequence(),
            b.record_count()
        ),
        (9, 2, 40, 2),
        "the batch stays the producer's"
    );
    assert_eq!(
        b.compression(),
        Compression::Zstd,
        "the compress remedy's codec"
    );
    assert!(
        b.raw().len() <= 1024,
        "the compressible value is within the threshold as sent: a batch of {} bytes",
        b.raw().len()
    );
    let mut edit = crate::codec::edit::BatchEdit::new(b.clone(), 1 << 20).unwrap();
    let rs = edit.peek_records().unwrap().to_vec();
    assert_eq!(
        rs[0].value.as_deref(),
        Some(&text[..]),
        "the client's value"
    );
    assert!(rs[0].header(MARKER).is_none(), "nothing to restore");
    let marker = rs[1].header(MARKER).flatten().expect("claim-checked");
    let Reference::Object(o) = Reference::parse(marker, rs[1].value.as_ref().unwrap()).unwrap()
    else {
        panic!("a claim-check")
    };
    assert!(dir.join(&o.key).exists(), "{} stored", o.key);
    let _ = std::fs::remove_dir_all(&dir);
}

fn run_without_io(
    remedies: &str,
    value: &[u8],
    api_version: i16,
) -> Result<Option<Bytes>, super::super::PipelineError> {
    let set = PolicySet::parse(&[(
        "p.toml".into(),
        format!(
            "[[policy]]\nname = \"p\"\ntopics = {{ exact = \"t\" }}\n\
             [policy.large_records]\nthreshold = 1024\nremedies = [{remedies}]\n"
        ),
    )])
    .unwrap();
    let input = build_batch(Producer::NONE, 0, &[(None, Some(value), &[])]);
    let pipeline = Pipeline::for_policy(set.resolve("t").unwrap());
    let mut traced = Vec::new();
    let mut cx = Context {
        topic: "t",
        partition: 0,
        client_id: None,
        api_version,
        received_at_ms: 0,
        traced: &mut traced,
        records_before: 0,
        large: None,
    };
    pipeline.run(&batches(input).unwrap(), 1 << 20, &mut cx)
}

#[test]
fn compress_seals_a_compressible_batch_and_nothing_fitting_is_message_too_large() {
    let text = b"the same sentence again and again; ".repeat(300);
    let out = run_without_io("\"compress\"", &text, 9)
        .unwrap()
        .expect("sealed");
    let b = &batches(out).unwrap()[0];
    assert_eq!(b.compression(), Compression::Zstd);
    let mut e = crate::codec::edit::BatchEdit::new(b.clone(), 1 << 20).unwrap();
    let r = &e.peek_records().unwrap()[0];
    assert_eq!(
        r.value.as_deref(),
        Some(&text[..]),
        "the value is the client's"
    );
    assert!(r.header(MARKER).is_none(), "nothing to restore");
    let out = run_without_io("\"compress\"", &text, 3).unwrap().unwrap();
    assert_eq!(
        batches(out).unwrap()[0].compression(),
        Compression::Lz4,
        "no zstd before Produce v7"
    );

    use sha2::Digest;
    let noise: Vec<u8> = (0..157u32)
        .flat_map(|i| sha2::Sha256::digest(i.to_be_bytes()))
        .take(5000)
        .collect();
    let err = run_without_io("\"compress\"", &noise, 9).unwrap_err();
    let StageError::Refused {
        error_code,
        message,
    } = err.error
    else {
        panic!("refused")
    };
    assert_eq!(error_code, MESSAGE_TOO_LARGE);
    assert!(
        message.contains("policy \"p\"") && message.contains("5000 bytes"),
        "{message}"
    );
    // A claim-check with no store running is a retriable error, not a pass.
    let err = run_without_io("\"claim-check\"", &noise, 9).unwrap_err();
    assert!(matches!(
        err.error,
        StageError::Refused {
            error_code: KAFKA_STORAGE_ERROR,
            ..
        }
    ));
}
