//! Large records through Strait with unmodified clients (Java kafka-clients,
//! idempotent by default, and librdkafka through confluent-kafka), only their
//! size settings changed, against a broker whose `message.max.bytes` is left
//! at its default: values of 5 MiB and 50 MiB round-trip byte-identical with
//! claim-checks (a local directory and an S3-compatible server) and with
//! chunking, while the broker's own log holds only small records.

use strait_integration::large::{
    assert_round_trip, consumed, driver, metric, policy, produce_errors, produced, strait_with_dir,
    strait_with_store, Stack, StoreKind,
};
use strait_integration::{cluster, create_topic, dump_batches, run, unique, S3Server};

const MIB: u64 = 1 << 20;
/// What the broker stores for a record that left its value behind: a batch
/// of one record with a reference or manifest of a few hundred bytes.
const SMALL_BATCH: u64 = 4096;

/// Produces `count` values of `size` bytes with `producer` and reads them
/// back with `consumer`, through Strait, on a fresh one-partition topic;
/// checks every value and what the broker stored. Returns the topic.
fn round_trip(
    strait: &strait_integration::Strait,
    upstream: &str,
    prefix: &str,
    producer: Stack,
    consumer: Stack,
    count: u32,
    size: u64,
) -> String {
    let topic = unique(prefix);
    create_topic(upstream, &topic, 1, 1);
    let (count_s, size_s) = (count.to_string(), size.to_string());
    let p = run(&mut driver(
        producer,
        "produce",
        &[
            "--bootstrap",
            &strait.bootstrap,
            "--topic",
            &topic,
            "--count",
            &count_s,
            "--size",
            &size_s,
        ],
    ));
    p.assert_ok(&format!("{producer:?} produces {count} x {size} bytes"));
    assert!(produce_errors(&p).is_empty(), "{:?}", produce_errors(&p));
    let c = run(&mut driver(
        consumer,
        "consume",
        &[
            "--bootstrap",
            &strait.bootstrap,
            "--topic",
            &topic,
            "--expect",
            &count_s,
        ],
    ));
    c.assert_ok(&format!("{consumer:?} consumes"));
    assert_round_trip(&produced(&p), &consumed(&c), "");
    let stored = dump_batches(1, &topic, 0);
    assert_eq!(
        stored.iter().map(|b| b.count).sum::<u64>(),
        u64::from(count)
    );
    for b in &stored {
        assert!(
            b.size < SMALL_BATCH,
            "the broker stored a batch of {} bytes: {stored:?}",
            b.size
        );
    }
    topic
}

/// 2 × 5 MiB and 1 × 50 MiB each way (Java to librdkafka, then back),
/// with [`round_trip`]; returns the 50 MiB topics.
fn both_ways(strait: &strait_integration::Strait, upstream: &str, prefix: &str) -> Vec<String> {
    let mut fifty = Vec::new();
    for (producer, consumer) in [
        (Stack::Java, Stack::Librdkafka),
        (Stack::Librdkafka, Stack::Java),
    ] {
        let five = format!("{prefix}five");
        round_trip(strait, upstream, &five, producer, consumer, 2, 5 * MIB);
        let topic = format!("{prefix}fifty");
        fifty.push(round_trip(
            strait,
            upstream,
            &topic,
            producer,
            consumer,
            1,
            50 * MIB,
        ));
    }
    fifty
}

#[test]
fn claim_checks_in_a_local_directory_round_trip_5_and_50_mib() {
    let upstream = cluster(1);
    let (strait, objects, _dir) = strait_with_dir(&upstream, "cc-dir.", &["claim-check"]);
    for topic in both_ways(&strait, &upstream, "cc-dir.") {
        let dir = objects.path().join("strait").join(&topic);
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 1, "one object per value: {names:?}");
        assert_eq!(names[0].len(), 64, "named by its SHA-256: {names:?}");
    }
    assert_eq!(
        metric(&strait, "strait_large_objects_total", &["op=\"written\""]),
        6.0
    );
    assert_eq!(
        metric(
            &strait,
            "strait_large_objects_total",
            &["op=\"hash_mismatch\""]
        ),
        0.0
    );
}

#[test]
fn claim_checks_in_an_s3_compatible_server_round_trip_5_and_50_mib() {
    let upstream = cluster(1);
    let s3 = S3Server::start("strait-claims");
    let (strait, _dir) = strait_with_store(
        &upstream,
        &policy("cc-s3.", &["claim-check"], ""),
        StoreKind::S3(&s3),
        "",
    );
    round_trip(
        &strait,
        &upstream,
        "cc-s3.five",
        Stack::Java,
        Stack::Librdkafka,
        2,
        5 * MIB,
    );
    round_trip(
        &strait,
        &upstream,
        "cc-s3.fifty",
        Stack::Librdkafka,
        Stack::Java,
        1,
        50 * MIB,
    );
    round_trip(
        &strait,
        &upstream,
        "cc-s3.fifty",
        Stack::Java,
        Stack::Librdkafka,
        1,
        50 * MIB,
    );
    let objects = s3.objects();
    assert_eq!(objects.len(), 4, "one object per value: {objects:?}");
    assert!(
        objects.iter().all(|k| k.starts_with("strait/cc-s3.")),
        "{objects:?}"
    );
    assert!(
        metric(&strait, "strait_large_objects_total", &["op=\"read\""]) >= 4.0,
        "restored from the store"
    );
}

#[test]
fn chunked_values_round_trip_5_and_50_mib_through_a_companion_topic() {
    let upstream = cluster(1);
    let (strait, objects, _dir) = strait_with_dir(&upstream, "chunked.", &["chunk"]);
    for topic in both_ways(&strait, &upstream, "chunked.") {
        // The chunks are in the companion topic, in batches under its limit.
        let chunks = dump_batches(1, &format!("{topic}.strait-chunks"), 0);
        assert_eq!(
            chunks.iter().map(|b| b.count).sum::<u64>(),
            100,
            "50 MiB in 512 KiB chunks"
        );
        assert!(chunks.iter().all(|b| b.size < 9 * MIB), "{chunks:?}");
    }
    assert!(
        std::fs::read_dir(objects.path()).map_or(true, |mut d| d.next().is_none()),
        "chunking needs no object store"
    );
}
