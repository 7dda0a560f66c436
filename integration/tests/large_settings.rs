//! Large records whatever the broker does with what Strait wrote, and
//! whatever the consumer's connection saw before: the round trip under a
//! matrix of topic settings (a broker whose default `compression.type` is
//! gzip, a topic's own zstd or lz4, a compacted source, several partitions),
//! and consumers (Java, librdkafka) reading while Strait is restarted
//! (SIGTERM: the Java client keeps its fetch session and resumes it on the
//! new connection; SIGKILL). Every value comes back whole: never a
//! reference, never the marker, never a stall; no aborted record is read
//! by a consumer Strait forces to read_committed.

use std::process::Command;
use std::time::Duration;

use strait_integration::franz_go::franz;
use strait_integration::large::{
    assert_round_trip, consumed, consumed_lines, driver, produce_errors, produced, spawn_driver,
    Produced, Stack,
};
use strait_integration::tempdir::Dir;
use strait_integration::{
    cluster, create_topic, create_topic_with_configs, dump_batches_in, free_port_block, run,
    unique, OwnCluster, Strait,
};

const KIB: u64 = 1 << 10;

/// A claim-check (and, for `chunked.`, chunking) policy on `media.` topics,
/// with consumers of `media.` forced to read_committed.
const POLICIES: &str = r#"
[[policy]]
name = "media"
topics = { prefix = "media." }
[policy.large_records]
remedies = ["claim-check"]
threshold = 100000
[policy.fetch]
read_committed = true

[[policy]]
name = "chunked"
topics = { prefix = "chunked." }
[policy.large_records]
remedies = ["chunk"]
threshold = 100000
allow_compacted = true
"#;

/// Strait's config and store, kept across restarts on the same ports
/// (`ports`: a block from [`free_port_block`]; `None`: any free ports).
struct Setup {
    dir: Dir,
    config: String,
}

impl Setup {
    fn new(upstream: &str, ports: Option<u16>) -> Setup {
        let dir = Dir::new("large-settings");
        let pdir = dir.path().join("policies");
        std::fs::create_dir_all(&pdir).unwrap();
        std::fs::write(pdir.join("media.toml"), POLICIES).unwrap();
        let store = dir.path().join("objects");
        let (bootstrap, brokers) = match ports {
            Some(base) => (base, format!("{}-{}", base + 1, base + 9)),
            None => (0, "0".to_string()),
        };
        let upstream: Vec<String> = upstream.split(',').map(|b| format!("{b:?}")).collect();
        let toml = format!(
            "[listen]\nbootstrap = \"127.0.0.1:{bootstrap}\"\nbroker_ports = \"{brokers}\"\n\
             [admin]\nlisten = \"127.0.0.1:0\"\n[upstream]\nbootstrap = [{}]\n\
             [policies]\ndir = {:?}\n[shutdown]\ndrain_timeout_ms = 10000\n\
             [large_records]\nstore = {:?}\n",
            upstream.join(", "),
            pdir.display().to_string(),
            store.display().to_string(),
        );
        let config = dir.path().join("strait.toml");
        std::fs::write(&config, toml).unwrap();
        Setup {
            config: config.display().to_string(),
            dir,
        }
    }

    fn start(&self) -> Strait {
        let s = Strait::start(&["run", "--config", &self.config]);
        s.wait_ready();
        s
    }
}

/// Produces `count` keyed values of `size` bytes with the Java producer;
/// every one acknowledged (committed or aborted, as asked).
fn produce(bootstrap: &str, topic: &str, count: u32, size: u64, extra: &[&str]) -> Vec<Produced> {
    let (count, size) = (count.to_string(), size.to_string());
    let mut args = vec![
        "--bootstrap",
        bootstrap,
        "--topic",
        topic,
        "--count",
        &count,
        "--size",
        &size,
        "--key-prefix",
        "k",
    ];
    args.extend_from_slice(extra);
    let out = run(&mut driver(Stack::Java, "produce", &args));
    out.assert_ok(&format!("produce {count} x {size} bytes to {topic}"));
    assert!(
        produce_errors(&out).is_empty(),
        "{:?}",
        produce_errors(&out)
    );
    produced(&out)
}

/// The codecs the broker stored a partition's data batches in.
fn stored_codecs(cluster: &str, topic: &str, partition: u32) -> Vec<String> {
    let mut c: Vec<String> = dump_batches_in(cluster, topic, partition)
        .into_iter()
        .map(|b| b.codec)
        .collect();
    c.dedup();
    c
}

/// Topic and broker settings that change what the broker stores: on a
/// broker whose default `compression.type` is gzip, a topic that inherits
/// it (3 partitions), a zstd topic (2 partitions), and a compacted lz4 topic
/// whose records are chunked (`allow_compacted`). Java and librdkafka read
/// every value whole, though the broker recompressed every batch Strait
/// wrote uncompressed (checked in its log segments).
#[test]
fn large_records_come_back_whole_whatever_the_topic_and_broker_compression() {
    let kafka = OwnCluster::up(&unique("itgz"), &["compression.type=gzip"]);
    let setup = Setup::new(&kafka.bootstrap, None);
    let strait = setup.start();
    // (topic prefix, partitions, topic configs, the codec the broker stores)
    type Case<'a> = (&'a str, u32, &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 3] = [
        ("media.inherit", 3, &[], "gzip"),
        ("media.zstd", 2, &[("compression.type", "zstd")], "zstd"),
        (
            "chunked.compact",
            1,
            &[("cleanup.policy", "compact"), ("compression.type", "lz4")],
            "lz4",
        ),
    ];
    for (prefix, partitions, configs, codec) in cases {
        let topic = unique(prefix);
        create_topic_with_configs(&kafka.bootstrap, &topic, partitions, 1, configs);
        let produced = produce(&strait.bootstrap, &topic, 9, 300 * KIB, &[]);
        assert_eq!(produced.len(), 9, "{topic}: every record acknowledged");
        let used: std::collections::BTreeSet<i64> = produced.iter().map(|p| p.partition).collect();
        assert_eq!(
            used.len(),
            partitions as usize,
            "{topic}: keys spread over every partition"
        );
        for p in 0..partitions {
            assert_eq!(
                stored_codecs(&kafka.name, &topic, p),
                vec![codec.to_string()],
                "{topic}-{p}: the broker recompressed what Strait wrote"
            );
        }
        for consumer in Stack::BOTH {
            let c = run(&mut driver(
                consumer,
                "consume",
                &[
                    "--bootstrap",
                    &strait.bootstrap,
                    "--topic",
                    &topic,
                    "--expect",
                    "9",
                    "--timeout-s",
                    "60",
                ],
            ));
            c.assert_ok(&format!("{consumer:?} consumes {topic}"));
            assert_round_trip(&produced, &consumed(&c), "k");
        }
    }
    assert!(strait.warnings().is_empty(), "{:?}", strait.warnings());
}

/// The consumers of the restart tests.
#[derive(Debug, Clone, Copy)]
enum Reader {
    Java,
    Librdkafka,
    FranzGo,
}

/// `reader` reading `expect` records of `topic` from the start, one record
/// per fetch (the first batch of an answer is exempt from the limit), so
/// the read spans many fetches.
fn reader_cmd(reader: Reader, bootstrap: &str, topic: &str, expect: usize) -> Command {
    let expect = expect.to_string();
    let args = [
        "--bootstrap",
        bootstrap,
        "--topic",
        topic,
        "--expect",
        &expect,
        "--timeout-s",
        "90",
    ];
    fn with<'a>(args: &[&'a str], extra: [&'a str; 2]) -> Vec<&'a str> {
        let mut all = args.to_vec();
        all.extend(extra);
        all
    }
    match reader {
        Reader::Java => driver(
            Stack::Java,
            "consume",
            &with(&args, ["--config", "max.partition.fetch.bytes=160000"]),
        ),
        Reader::Librdkafka => driver(
            Stack::Librdkafka,
            "consume",
            &with(&args, ["--config", "max.partition.fetch.bytes=160000"]),
        ),
        Reader::FranzGo => {
            let mut all = vec!["consume"];
            all.extend(with(&args, ["--max-partition-fetch-bytes", "160000"]));
            franz("large-records", &all)
        }
    }
}

/// A consumer reading while Strait restarts on the same ports.
fn read_across_a_restart(signal: &str, consumer: Reader) {
    let upstream = cluster(1);
    let setup = Setup::new(&upstream, Some(free_port_block()));
    let mut strait = setup.start();
    let topic = unique("media.restart");
    create_topic(&upstream, &topic, 2, 1);
    // Transactions of one record each; every fifth aborted. Committed ones
    // are read, aborted ones never (the policy forces read_committed).
    let produced = produce(
        &strait.bootstrap,
        &topic,
        60,
        150 * KIB,
        &[
            "--transactional-id",
            &unique("tx"),
            "--abort-indices",
            "0,5,10,15,20,25,30,35,40,45,50,55",
        ],
    );
    let committed = produced.iter().filter(|p| !p.aborted).count();
    assert_eq!(committed, 48);
    let reader = spawn_driver(&mut reader_cmd(
        consumer,
        &strait.bootstrap,
        &topic,
        committed,
    ));
    let first = reader
        .next_line(Duration::from_secs(60))
        .expect("the consumer reads through the first Strait");
    let mut lines = vec![first];
    strait.signal(signal);
    let status = strait.wait_exit(Duration::from_secs(20));
    lines.extend(reader.lines_so_far());
    let before = consumed_lines(&lines).len();
    assert!(
        before < committed,
        "{consumer:?} read {before} of {committed} records before Strait stopped ({status:?}): \
         the restart did not fall in the read"
    );
    let again = setup.start();
    let out = reader.finish();
    out.assert_ok(&format!(
        "{consumer:?} reads across a {signal} restart of Strait"
    ));
    // The whole output holds the lines handed over before the restart too.
    let got = consumed(&out);
    assert_round_trip(&produced, &got, "k");
    assert_eq!(got.len(), committed, "no record read twice, none aborted");
    drop(again);
    drop(setup.dir);
}

#[test]
fn a_java_consumer_gets_every_large_value_whole_across_a_draining_restart() {
    read_across_a_restart("TERM", Reader::Java);
}

#[test]
fn a_java_consumer_gets_every_large_value_whole_across_a_killed_strait() {
    read_across_a_restart("KILL", Reader::Java);
}

#[test]
fn a_librdkafka_consumer_gets_every_large_value_whole_across_a_draining_restart() {
    read_across_a_restart("TERM", Reader::Librdkafka);
}

#[test]
fn a_franz_go_consumer_gets_every_large_value_whole_across_a_draining_restart() {
    read_across_a_restart("TERM", Reader::FranzGo);
}

#[test]
fn a_franz_go_consumer_gets_every_large_value_whole_across_a_killed_strait() {
    read_across_a_restart("KILL", Reader::FranzGo);
}

/// A large record produced through `strait` to partition 0 of `topic`, its
/// value `size` bytes of `byte`.
fn produce_one(strait: &Strait, topic: &str, byte: u8, size: usize) {
    use kafka_protocol::messages::{ApiKey, ProduceResponse};
    use strait_integration::wire::{partition_error, produce_request_with_batch, Wire};
    use strait_proxy::codec::build::{build_batch, Producer};
    let value = vec![byte; size];
    let batch = build_batch(Producer::NONE, 0, &[(Some(b"k"), Some(&value), &[])]);
    let mut w = Wire::connect(&strait.bootstrap);
    let r: ProduceResponse = w.call(
        ApiKey::Produce,
        9,
        &produce_request_with_batch(topic, -1, batch),
    );
    assert_eq!(partition_error(&r).0, 0, "produce to {topic}: {r:?}");
}

/// The values of a Fetch answer's records, all partitions, with whether
/// each still carries Strait's marker header.
fn values_of(resp: &kafka_protocol::messages::FetchResponse) -> Vec<(usize, u8, bool)> {
    use kafka_protocol::records::RecordBatchDecoder;
    let mut out = Vec::new();
    for t in &resp.responses {
        for p in &t.partitions {
            assert_eq!(p.error_code, 0, "partition {}: {resp:?}", p.partition_index);
            let mut records = p.records.clone().unwrap_or_default();
            for set in RecordBatchDecoder::decode_all(&mut records).expect("whole batches") {
                for r in set.records {
                    let v = r.value.clone().unwrap_or_default();
                    let marked = r.headers.keys().any(|k| k.starts_with("strait."));
                    out.push((v.len(), v.first().copied().unwrap_or(0), marked));
                }
            }
        }
    }
    out
}

fn fetch_of(
    topic: kafka_protocol::messages::fetch_request::FetchTopic,
    session_id: i32,
    epoch: i32,
) -> kafka_protocol::messages::FetchRequest {
    kafka_protocol::messages::FetchRequest::default()
        .with_max_wait_ms(200)
        .with_min_bytes(1)
        .with_max_bytes(8 << 20)
        .with_session_id(session_id)
        .with_session_epoch(epoch)
        .with_topics(if epoch > 0 { vec![] } else { vec![topic] })
}

fn partition_at(offset: i64) -> kafka_protocol::messages::fetch_request::FetchPartition {
    kafka_protocol::messages::fetch_request::FetchPartition::default()
        .with_partition(0)
        .with_fetch_offset(offset)
        .with_partition_max_bytes(8 << 20)
}

/// An incremental fetch names no topic: Strait decides from the session it
/// followed, so a record that arrives later in the session comes back whole;
/// a session Strait never saw created (here: created directly on the
/// broker, as one built before a restart or through another instance) gets
/// FETCH_SESSION_ID_NOT_FOUND, never the stored references.
#[test]
fn incremental_fetches_are_restored_and_an_unknown_session_starts_over() {
    use kafka_protocol::messages::fetch_request::FetchTopic;
    use kafka_protocol::messages::{ApiKey, FetchResponse, TopicName};
    use kafka_protocol::protocol::StrBytes;
    use strait_integration::wire::Wire;
    let upstream = cluster(1);
    let setup = Setup::new(&upstream, None);
    let strait = setup.start();
    let topic = unique("media.session");
    create_topic(&upstream, &topic, 1, 1);
    produce_one(&strait, &topic, b'a', 300_000);
    let named = |offset| {
        FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_string(topic.clone())))
            .with_partitions(vec![partition_at(offset)])
    };
    // A session Strait follows: created through it, then continued.
    let mut w = Wire::connect(&strait.bootstrap);
    let full: FetchResponse = w.call(ApiKey::Fetch, 12, &fetch_of(named(0), 0, 0));
    assert_eq!(full.error_code, 0, "{full:?}");
    assert_ne!(full.session_id, 0, "the broker gave the fetch a session");
    assert_eq!(values_of(&full), vec![(300_000, b'a', false)]);
    produce_one(&strait, &topic, b'b', 300_000);
    // Names no topic: the session's partition is still at offset 0.
    let next: FetchResponse = w.call(ApiKey::Fetch, 12, &fetch_of(named(1), full.session_id, 1));
    assert_eq!(next.error_code, 0, "{next:?}");
    assert_eq!(
        values_of(&next),
        vec![(300_000, b'a', false), (300_000, b'b', false)],
        "the incremental fetch named no topic; the session's records are restored"
    );
    // A session created on the broker, behind Strait's back.
    let mut direct = Wire::connect(&upstream);
    let elsewhere: FetchResponse = direct.call(ApiKey::Fetch, 12, &fetch_of(named(0), 0, 0));
    assert_ne!(elsewhere.session_id, 0);
    let mut w = Wire::connect(&strait.bootstrap);
    let unknown: FetchResponse = w.call(
        ApiKey::Fetch,
        12,
        &fetch_of(named(0), elsewhere.session_id, 1),
    );
    assert_eq!(
        unknown.error_code, 70,
        "FETCH_SESSION_ID_NOT_FOUND: {unknown:?}"
    );
    assert!(unknown.responses.is_empty(), "no data: {unknown:?}");
    assert!(strait.warnings().is_empty(), "{:?}", strait.warnings());
}

/// A Fetch v13 names topics by id only; a fresh Strait that never saw the
/// id in a Metadata answer (a client's cached ids after a restart) looks it
/// up, and restores the record instead of passing its reference on.
#[test]
fn a_fetch_by_an_id_strait_never_saw_is_looked_up_and_restored() {
    use kafka_protocol::messages::fetch_request::FetchTopic;
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    use kafka_protocol::messages::{
        ApiKey, FetchResponse, MetadataRequest, MetadataResponse, TopicName,
    };
    use kafka_protocol::protocol::StrBytes;
    use strait_integration::wire::Wire;
    let upstream = cluster(1);
    let setup = Setup::new(&upstream, None);
    let topic = unique("media.byid");
    create_topic(&upstream, &topic, 1, 1);
    {
        let first = setup.start();
        produce_one(&first, &topic, b'c', 300_000);
    }
    let mut direct = Wire::connect(&upstream);
    let meta: MetadataResponse = direct.call(
        ApiKey::Metadata,
        12,
        &MetadataRequest::default().with_topics(Some(vec![MetadataRequestTopic::default()
            .with_name(Some(TopicName(StrBytes::from_string(topic.clone()))))])),
    );
    let id = meta.topics[0].topic_id;
    assert!(!id.is_nil());
    // A Strait that has answered no Metadata request for this topic.
    let fresh = setup.start();
    let mut w = Wire::connect(&fresh.bootstrap);
    let by_id = FetchTopic::default()
        .with_topic_id(id)
        .with_partitions(vec![partition_at(0)]);
    let resp: FetchResponse = w.call(ApiKey::Fetch, 13, &fetch_of(by_id, 0, -1));
    assert_eq!(resp.error_code, 0, "{resp:?}");
    assert_eq!(values_of(&resp), vec![(300_000, b'c', false)]);
    assert!(fresh.warnings().is_empty(), "{:?}", fresh.warnings());
}
