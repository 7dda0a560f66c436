//! Large records under faults, with real parts only: Kafka KRaft brokers,
//! the Java (kafka-clients) and librdkafka (confluent-kafka) drivers of
//! `LargeRecords`, a local-directory store and an S3-compatible server
//! (s3s-fs) behind Strait.
//!
//! - An idempotent producer through a partition leader crash: nothing lost,
//!   nothing twice, in order, no OutOfOrderSequence, and each value's object
//!   written once (a retry finds it there).
//! - Transactional producers (Java and librdkafka, one transaction per
//!   record, some aborted): read_committed consumers see only the committed
//!   values, byte-identical; the aborted values' objects stay in the store.
//! - The object store stopped mid-produce: producers get retriable errors,
//!   finish once it is back, and every value is stored whole and read back
//!   intact; stopped mid-consume: consumers get a retriable error, never a
//!   wrong value, and everything once it is back.
//!
//! - A store that hangs, or chunk-topic writes that fail (too few in-sync
//!   replicas), as an idempotent producer starts: its first batch is refused
//!   (retriable), and the ones pipelined behind it wait for its retry
//!   instead of reaching the broker first (which would leave the producer
//!   with records out of order and lost, or duplicated).
//! - Aborted values are not read back for read_committed consumers.
//!
//! Every wait polls ([`eventually`], driver output as it comes); nothing
//! sleeps to synchronise, and nothing asserts on timing.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use strait_integration::large::{
    assert_round_trip, consumed, driver, metric, policy, produce_errors, produced, spawn_driver,
    strait_with_dir, strait_with_store, Produced, Running, Stack, StoreKind,
};
use strait_integration::{
    cluster, create_topic, create_topic_with_configs, eventually, field, freeze_node, harness,
    leader_of, message, run, tempdir, unique, KilledNode, S3Server, Strait,
};

const MIB: u64 = 1 << 20;
/// How long a driver may run (its own bound; its watchdog adds 15 s).
const DRIVER_TIMEOUT_S: &str = "240";
/// Bound on waiting for a driver's output or a condition of the run.
const WAIT: Duration = Duration::from_secs(270);

// ------------------------------------------------------------------ helpers

/// The tests of this file that kill brokers of the one shared 3-node
/// cluster (or need all of them up) run one at a time.
static NODES: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The log end offset of `topic`'s partition 0, asked of the brokers.
fn end_offset(bootstrap: &str, topic: &str) -> i64 {
    let out = run(&mut harness(&[
        "tool",
        "org.apache.kafka.tools.GetOffsetShell",
        "--bootstrap-server",
        bootstrap,
        "--topic",
        topic,
        "--partitions",
        "0",
    ]));
    out.assert_ok("GetOffsetShell");
    out.stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{topic}:0:"))?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no end offset for {topic}:0 in:\n{}", out.stdout))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The files under `dir` (recursively), as paths relative to it, sorted.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// The objects of `topic` in a claim-check directory `root` (keys
/// `strait/<topic>/<sha256>`): each one's name, after checking it is whole
/// (its content hashes to its name) and of `size` bytes; nothing else may
/// lie there (no torn upload, no temporary file).
fn whole_objects(root: &Path, size: u64) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for rel in files_under(root) {
        let path = root.join(&rel);
        let name = rel.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(
            bytes.len() as u64,
            size,
            "{} is {} bytes, a value is {size}",
            path.display(),
            bytes.len()
        );
        assert_eq!(
            hex(&Sha256::digest(&bytes)),
            name,
            "{} is not the value it is named after",
            path.display()
        );
        names.insert(name);
    }
    names
}

/// Produce arguments: `count` values of `size` bytes, `extra` options after.
fn produce_args(
    bootstrap: &str,
    topic: &str,
    count: u64,
    size: u64,
    extra: &[&str],
) -> Vec<String> {
    let mut args: Vec<String> = [
        "--bootstrap",
        bootstrap,
        "--topic",
        topic,
        "--count",
        &count.to_string(),
        "--size",
        &size.to_string(),
        "--timeout-s",
        DRIVER_TIMEOUT_S,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// The client setting bounding how long a record may take, raised so that
/// an outage of a minute or two ends in retries, not errors (both clients
/// retry a retriable error until then).
fn patient(stack: Stack) -> &'static str {
    match stack {
        Stack::Java => "delivery.timeout.ms=200000",
        Stack::Librdkafka => "message.timeout.ms=200000",
    }
}

fn start(stack: Stack, mode: &str, args: &[String]) -> Running {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    spawn_driver(&mut driver(stack, mode, &args))
}

/// Consumes `expect` records of `topic` through Strait with `stack`.
fn consume(strait: &Strait, stack: Stack, topic: &str, expect: usize, extra: &[&str]) -> Running {
    let mut args: Vec<String> = [
        "--bootstrap",
        &strait.bootstrap,
        "--topic",
        topic,
        "--expect",
        &expect.to_string(),
        "--timeout-s",
        DRIVER_TIMEOUT_S,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    start(stack, "consume", &args)
}

/// Reads `running`'s JSON lines until it has acknowledged `n` records (or
/// it ends); returns how many it had acknowledged.
fn wait_acked(running: &Running, acked: &mut usize, n: usize) -> usize {
    let deadline = Instant::now() + WAIT;
    while *acked < n {
        let Some(line) = running.next_line(deadline.saturating_duration_since(Instant::now()))
        else {
            break;
        };
        if line["type"] == "acked" {
            *acked += 1;
        }
    }
    *acked
}

/// Counts the acknowledgements among lines already printed.
fn count_acked(running: &Running, acked: &mut usize) {
    *acked += running
        .lines_so_far()
        .iter()
        .filter(|l| l["type"] == "acked")
        .count();
}

/// An idempotent producer with at most 5 requests in flight (the Java
/// client's default) keeps a partition's records in the order sent: each
/// index got a higher offset than the one before.
fn assert_in_order(sent: &[Produced]) {
    let mut by_index = sent.to_vec();
    by_index.sort_by_key(|r| r.index);
    assert!(
        by_index.windows(2).all(|w| w[0].offset < w[1].offset),
        "records out of order, (index, offset): {:?}",
        by_index
            .iter()
            .map(|r| (r.index, r.offset))
            .collect::<Vec<_>>()
    );
}

/// Strait's warnings whose message is `msg` and whose error names `what`.
fn warnings_naming(strait: &Strait, msg: &str, what: &str) -> Vec<String> {
    strait
        .warnings()
        .iter()
        .filter(|l| message(l) == msg && field(l, "error").contains(what))
        .map(|l| field(l, "error"))
        .collect()
}

fn objects_op(strait: &Strait, op: &str) -> f64 {
    metric(
        strait,
        "strait_large_objects_total",
        &[&format!("op=\"{op}\"")],
    )
}

// ------------------------------------------------------------------ 1. idempotent producer, leader crash

/// A Java producer (idempotent by default, acks=all) sends 40 claim-checked
/// values of 1.5 MiB to a topic with replication factor 3; after 2 are
/// acknowledged the partition leader is frozen (SIGSTOP) until Strait has
/// stored values it has no acknowledgement for, then SIGKILLed, and
/// restarted once the new leader has taken 4 more.
/// Every value is read back once through Strait, byte-identical; the log
/// holds exactly 40 records; the producer never saw OutOfOrderSequence;
/// the store holds 40 whole objects and Strait wrote each once (the retries
/// of values it had already stored found them: `op="exists"`).
#[test]
fn idempotent_producer_through_a_leader_crash_stores_each_value_once() {
    const COUNT: u64 = 40;
    let size = 3 * MIB / 2;
    let _one_at_a_time = NODES.lock().unwrap_or_else(|e| e.into_inner());
    let upstream = cluster(3);
    let (strait, objects, _dir) = strait_with_dir(&upstream, "lf-idem.", &["claim-check"]);
    let topic = unique("lf-idem.crash");
    create_topic(&upstream, &topic, 1, 3);
    let leader = leader_of(&upstream, &topic);

    let producer = start(
        Stack::Java,
        "produce",
        &produce_args(
            &strait.bootstrap,
            &topic,
            COUNT,
            size,
            &["--config", patient(Stack::Java)],
        ),
    );
    let mut acked = 0;
    wait_acked(&producer, &mut acked, 2);
    // The leader frozen first: requests go on arriving and Strait stores
    // their values before forwarding them into the silent broker. Killed
    // once at least two values more than the acknowledged records are
    // stored, the producer must resend a value Strait already has.
    freeze_node(3, leader);
    eventually(
        "values stored beyond the acknowledged records",
        Duration::from_secs(60),
        || {
            count_acked(&producer, &mut acked);
            (objects_op(&strait, "written") >= acked as f64 + 2.0).then_some(())
        },
    );
    eprintln!("killing the frozen leader node {leader} after {acked} acks");
    let down = KilledNode::kill(leader);
    // Acks that came while kill-node ran count as before the kill (an upper
    // bound): at least COUNT - at_kill records were acknowledged after it.
    count_acked(&producer, &mut acked);
    let at_kill = acked;
    // Restarted once the new leader has taken a few records.
    wait_acked(&producer, &mut acked, (at_kill + 4).min(COUNT as usize));
    eprintln!("restarting node {leader} after {acked} acks");
    down.restart();
    let p = producer.finish();
    eprintln!(
        "producer: {} (leader {leader} killed after {at_kill} acks)",
        p.summary()
    );
    p.assert_ok("the Java producer through the leader crash");
    assert!(
        (at_kill as u64) < COUNT,
        "the leader died mid-run: {at_kill} of {COUNT} acknowledged before"
    );
    let sent = produced(&p);
    assert_eq!(sent.len() as u64, COUNT, "every record acknowledged");
    assert_in_order(&sent);
    assert!(produce_errors(&p).is_empty(), "{:?}", produce_errors(&p));
    let warned: Vec<&str> = p.stderr.lines().filter(|l| l.contains("WARN")).collect();
    eprintln!(
        "producer log: {} WARN lines, e.g. {:#?}",
        warned.len(),
        &warned[..warned.len().min(4)]
    );
    for needle in ["OutOfOrderSequence", "OUT_OF_ORDER_SEQUENCE"] {
        assert!(
            !p.stdout.contains(needle) && !p.stderr.contains(needle),
            "the producer saw {needle}:\n{}",
            p.stderr
        );
    }

    let c = consume(&strait, Stack::Librdkafka, &topic, COUNT as usize, &[]).finish();
    c.assert_ok("librdkafka consumes through Strait");
    assert_round_trip(&sent, &consumed(&c), "");
    assert_eq!(
        end_offset(&upstream, &topic),
        COUNT as i64,
        "the log holds each record once"
    );

    let distinct: BTreeSet<String> = sent.iter().map(|r| r.sha256.clone()).collect();
    assert_eq!(distinct.len() as u64, COUNT);
    let stored = whole_objects(&objects.path().join("strait").join(&topic), size);
    assert_eq!(stored, distinct, "one whole object per value, nothing else");
    let (written, exists) = (
        objects_op(&strait, "written"),
        objects_op(&strait, "exists"),
    );
    eprintln!("objects: written {written}, exists {exists}");
    assert_eq!(written, COUNT as f64, "each object written once");
    assert!(
        exists >= 1.0,
        "the crash made the producer resend values Strait had stored"
    );
    assert_eq!(objects_op(&strait, "put_failed"), 0.0);
}

// ------------------------------------------------------------------ 2. transactions

/// Each record its own transaction (Java and librdkafka producers), records
/// 1, 4 and 6 of 8 aborted: read_committed consumers of both stacks read the
/// 5 committed values byte-identical and none of the aborted ones, though
/// the aborted values' objects are in the store (garbage until gc).
#[test]
fn read_committed_consumers_see_only_committed_large_values() {
    const COUNT: u64 = 8;
    const ABORT: [u64; 3] = [1, 4, 6];
    let size = 3 * MIB / 2;
    let upstream = cluster(1);
    let (strait, objects, _dir) = strait_with_dir(&upstream, "lf-txn.", &["claim-check"]);
    for producer in Stack::BOTH {
        let topic = unique("lf-txn.tx");
        create_topic(&upstream, &topic, 1, 1);
        let txn = unique("lf-txn-id");
        let abort: Vec<String> = ABORT.iter().map(u64::to_string).collect();
        let abort = abort.join(",");
        let p = start(
            producer,
            "produce",
            &produce_args(
                &strait.bootstrap,
                &topic,
                COUNT,
                size,
                &["--transactional-id", &txn, "--abort-indices", &abort],
            ),
        )
        .finish();
        p.assert_ok(&format!("{producer:?} transactional producer"));
        let sent = produced(&p);
        let (aborted, committed): (Vec<&Produced>, Vec<&Produced>) =
            sent.iter().partition(|r| r.aborted);
        assert_eq!(
            aborted.iter().map(|r| r.index).collect::<Vec<_>>(),
            ABORT.to_vec()
        );
        assert_eq!(committed.len() as u64, COUNT - ABORT.len() as u64);
        let last = committed.iter().map(|r| r.offset).max().unwrap();
        assert!(
            aborted.iter().all(|r| r.offset < last),
            "the aborted records lie before the last committed one: {sent:?}"
        );

        let reads_before = (
            objects_op(&strait, "read"),
            objects_op(&strait, "cache_hit"),
        );
        for consumer in Stack::BOTH {
            let c = consume(
                &strait,
                consumer,
                &topic,
                committed.len(),
                &["--read-committed"],
            )
            .finish();
            c.assert_ok(&format!(
                "{consumer:?} read_committed consumer of {producer:?}'s transactions"
            ));
            let got = consumed(&c);
            assert_round_trip(&sent, &got, "");
            assert!(
                got.iter()
                    .all(|g| g.index.is_some_and(|i| !ABORT.contains(&i))),
                "{consumer:?} read an aborted record: {got:?}"
            );
        }
        let reads = objects_op(&strait, "read") - reads_before.0;
        let hits = objects_op(&strait, "cache_hit") - reads_before.1;
        eprintln!(
            "{producer:?}: two read_committed consumers: {reads} object reads, {hits} cache hits \
             ({} committed, {} aborted)",
            committed.len(),
            aborted.len()
        );

        let stored = whole_objects(&objects.path().join("strait").join(&topic), size);
        let all: BTreeSet<String> = sent.iter().map(|r| r.sha256.clone()).collect();
        assert_eq!(
            stored, all,
            "every value's object is stored, the aborted ones too"
        );
    }
}

/// The aborted values' objects stay in the store (garbage until gc), and a
/// read_committed consumer never needs them: Strait should not read them
/// back for it. Today it does: the restore step runs before the client drops
/// the aborted batches, and Strait drops them itself only for clients it
/// forces to read_committed (see the report of this file's tests).
#[test]
fn aborted_large_values_are_not_read_back_for_read_committed_consumers() {
    const COUNT: u64 = 6;
    let size = 3 * MIB / 2;
    let upstream = cluster(1);
    let (strait, objects, _dir) = strait_with_dir(&upstream, "lf-txr.", &["claim-check"]);
    let topic = unique("lf-txr.tx");
    create_topic(&upstream, &topic, 1, 1);
    let txn = unique("lf-txr-id");
    let p = start(
        Stack::Java,
        "produce",
        &produce_args(
            &strait.bootstrap,
            &topic,
            COUNT,
            size,
            &["--transactional-id", &txn, "--abort-indices", "0,2,4"],
        ),
    )
    .finish();
    p.assert_ok("the Java transactional producer");
    let sent = produced(&p);
    let c = consume(&strait, Stack::Java, &topic, 3, &["--read-committed"]).finish();
    c.assert_ok("a read_committed consumer");
    assert_round_trip(&sent, &consumed(&c), "");
    let stored = whole_objects(&objects.path().join("strait").join(&topic), size);
    assert_eq!(stored.len() as u64, COUNT, "the aborted values are stored");
    let reads = objects_op(&strait, "read") + objects_op(&strait, "cache_hit");
    assert_eq!(
        reads, 3.0,
        "objects read for 3 committed and 3 aborted values"
    );
}

// ------------------------------------------------------------------ 3. object store outage

/// Strait with claim-checks in a fresh s3s-fs server (`store_timeout_ms` 5000).
fn s3_strait(upstream: &str, bucket: &str, prefix: &str) -> (S3Server, Strait, tempdir::Dir) {
    let s3 = S3Server::start(bucket);
    let (strait, dir) = strait_with_store(
        upstream,
        &policy(prefix, &["claim-check"], ""),
        StoreKind::S3(&s3),
        "",
    );
    (s3, strait, dir)
}

/// The objects of `topic` in the S3 server, each checked whole.
fn whole_s3_objects(s3: &S3Server, topic: &str, size: u64) -> BTreeSet<String> {
    whole_objects(
        &s3.data_dir().join(&s3.bucket).join("strait").join(topic),
        size,
    )
}

/// 20 values of 2 MiB per producer stack; the store is killed after 2 are
/// acknowledged and started again once Strait has refused two produces for
/// it (a retriable KAFKA_STORAGE_ERROR: the client retried, and was refused
/// again). The producer finishes with every
/// record acknowledged, the other stack reads them all back intact, the
/// store holds each value whole, and Strait's warning names the store.
#[test]
fn producers_finish_through_an_object_store_outage() {
    const COUNT: u64 = 20;
    let size = 2 * MIB;
    let upstream = cluster(1);
    let (mut s3, strait, _dir) = s3_strait(&upstream, "lf-produce-outage", "lf-s3p.");
    let store = format!("object store s3://{}", s3.bucket);
    for (producer, consumer) in [
        (Stack::Java, Stack::Librdkafka),
        (Stack::Librdkafka, Stack::Java),
    ] {
        let topic = unique("lf-s3p.out");
        create_topic(&upstream, &topic, 1, 1);
        let failed = |s: &Strait| {
            metric(
                s,
                "strait_large_record_remedies_total",
                &["outcome=\"failed\""],
            )
        };
        let failed_before = failed(&strait);
        let running = start(
            producer,
            "produce",
            &produce_args(
                &strait.bootstrap,
                &topic,
                COUNT,
                size,
                &["--config", patient(producer)],
            ),
        );
        let mut acked = 0;
        wait_acked(&running, &mut acked, 2);
        s3.stop();
        eprintln!("{producer:?}: store stopped after {acked} acks");
        let mut running = running;
        eventually(
            "Strait refusing a produce while the store is down",
            WAIT,
            || {
                assert!(
                    running.is_running(),
                    "{producer:?}: the producer ended before the outage hit it"
                );
                (failed(&strait) > failed_before + 1.0).then_some(())
            },
        );
        count_acked(&running, &mut acked);
        s3.restart();
        eprintln!("{producer:?}: store restarted after {acked} acks");
        let p = running.finish();
        eprintln!("{producer:?} producer: {}", p.summary());
        p.assert_ok(&format!("{producer:?} producer through the store outage"));
        assert!(
            (acked as u64) < COUNT,
            "the outage was mid-run: {acked} of {COUNT} acknowledged before the restart"
        );
        let sent = produced(&p);
        assert_eq!(sent.len() as u64, COUNT);
        if producer == Stack::Java {
            assert_in_order(&sent); // idempotent (librdkafka's driver is not)
        }

        let c = consume(&strait, consumer, &topic, COUNT as usize, &[]).finish();
        c.assert_ok(&format!("{consumer:?} consumes after the outage"));
        assert_round_trip(&sent, &consumed(&c), "");
        let distinct: BTreeSet<String> = sent.iter().map(|r| r.sha256.clone()).collect();
        assert_eq!(
            whole_s3_objects(&s3, &topic, size),
            distinct,
            "each value stored whole, nothing else"
        );
    }
    let named = warnings_naming(&strait, "cannot offload a large record", &store);
    assert!(
        !named.is_empty(),
        "no warning naming {store}: {:#?}",
        strait.warnings()
    );
    eprintln!("e.g. {}", named[0]);
}

/// 6 values of 2 MiB are produced (store up); the store is killed and a
/// consumer (each stack) starts: until Strait has answered a fetch with a
/// retriable error for the store, and after, the consumer has read nothing
/// (nothing can be restored, and nothing else may be passed off as a value);
/// once the store is back it reads all 6, byte-identical. Strait's warning
/// names the store.
#[test]
fn consumers_get_no_wrong_value_while_the_object_store_is_down() {
    const COUNT: u64 = 6;
    let size = 2 * MIB;
    let upstream = cluster(1);
    let (mut s3, strait, _dir) = s3_strait(&upstream, "lf-consume-outage", "lf-s3c.");
    let store = format!("object store s3://{}", s3.bucket);
    for consumer in Stack::BOTH {
        let topic = unique("lf-s3c.out");
        create_topic(&upstream, &topic, 1, 1);
        let p = start(
            Stack::Java,
            "produce",
            &produce_args(&strait.bootstrap, &topic, COUNT, size, &[]),
        )
        .finish();
        p.assert_ok("the Java producer (store up)");
        let sent = produced(&p);

        let restore_failed = |s: &Strait| {
            metric(
                s,
                "strait_large_restore_partitions_total",
                &["outcome=\"failed\""],
            )
        };
        let before = restore_failed(&strait);
        s3.stop();
        let mut running = consume(&strait, consumer, &topic, COUNT as usize, &[]);
        eventually(
            "Strait answering a fetch with a retriable error while the store is down",
            WAIT,
            || (restore_failed(&strait) > before + 1.0).then_some(()),
        );
        let early: Vec<_> = running
            .lines_so_far()
            .into_iter()
            .filter(|l| l["type"] == "record")
            .collect();
        assert!(
            early.is_empty(),
            "{consumer:?} read records while the store was down: {early:?}"
        );
        assert!(
            running.is_running(),
            "{consumer:?} gave up while the store was down"
        );
        s3.restart();
        let c = running.finish();
        c.assert_ok(&format!("{consumer:?} consumes once the store is back"));
        assert_round_trip(&sent, &consumed(&c), "");
    }
    let named = warnings_naming(
        &strait,
        "cannot restore large records; the partition gets a retriable error",
        &store,
    );
    assert!(
        !named.is_empty(),
        "no warning naming {store}: {:#?}",
        strait.warnings()
    );
    eprintln!("e.g. {}", named[0]);
}

/// Why the tests below are ignored: they fail, reproducibly, on a Strait bug.
/// When Strait refuses an idempotent batch with a retriable error (its value
/// could not be offloaded), the batches behind it on the connection (the
/// client pipelines up to 5) are still offloaded and forwarded once the
/// store or chunk topic is back, leaving a gap in the producer's sequence.
/// A broker that holds no state for the producer yet (its first batches)
/// accepts the gap; the client's retry of the refused batch is then
/// OUT_OF_ORDER_SEQUENCE_NUMBER until the Java client bumps its epoch and
/// resends (duplicates) or the record expires (out of order, then lost).
const SEQUENCE_GAP: &str = "Strait bug: a retriable large-record refusal lets the later in-flight \
     batches of the same idempotent producer through (sequence gap)";

/// The store hangs (SIGSTOP) before an idempotent Java producer of 8 values
/// of 2 MiB starts: the first produce is refused after `store_timeout_ms`
/// (a retriable KAFKA_STORAGE_ERROR), then the store resumes. The producer
/// must finish with every record acknowledged once and in order, all read
/// back intact.
#[test]
fn idempotent_producer_keeps_order_when_a_hung_store_recovers() {
    const COUNT: u64 = 8;
    let size = 2 * MIB;
    let upstream = cluster(1);
    let (mut s3, strait, _dir) = s3_strait(&upstream, "lf-hung-store", "lf-s3h.");
    let topic = unique("lf-s3h.t");
    create_topic(&upstream, &topic, 1, 1);
    let failed = |s: &Strait| {
        metric(
            s,
            "strait_large_record_remedies_total",
            &["outcome=\"failed\""],
        )
    };
    s3.pause();
    let mut running = start(
        Stack::Java,
        "produce",
        &produce_args(
            &strait.bootstrap,
            &topic,
            COUNT,
            size,
            // Long enough for the outage; short enough that a record
            // retried in vain fails the test within a minute.
            &["--config", "delivery.timeout.ms=60000"],
        ),
    );
    eventually(
        "Strait refusing a produce while the store hangs",
        WAIT,
        || {
            assert!(running.is_running(), "the producer ended during the hang");
            (failed(&strait) > 0.0).then_some(())
        },
    );
    s3.resume();
    let p = running.finish();
    eprintln!("producer: {} ({SEQUENCE_GAP})", p.summary());
    let oos = p
        .stderr
        .lines()
        .filter(|l| l.contains("OUT_OF_ORDER_SEQUENCE"))
        .count();
    p.assert_ok("the Java producer once the store resumes");
    let sent = produced(&p);
    assert_eq!(sent.len() as u64, COUNT);
    assert_in_order(&sent);
    assert_eq!(
        oos, 0,
        "OUT_OF_ORDER_SEQUENCE_NUMBER answers:\n{}",
        p.stderr
    );
    assert_eq!(
        end_offset(&upstream, &topic),
        COUNT as i64,
        "the topic holds each record once"
    );
    let c = consume(&strait, Stack::Librdkafka, &topic, COUNT as usize, &[]).finish();
    c.assert_ok("librdkafka consumes");
    assert_round_trip(&sent, &consumed(&c), "");
}

// ------------------------------------------------------------------ 4. chunk topic writes failing

/// Chunking on the 3-broker cluster, the chunk topic created beforehand with
/// `min.insync.replicas=3` and one of its followers (a broker leading
/// neither partition) killed: Strait's chunk writes fail (a timeout, then
/// NOT_ENOUGH_REPLICAS) and the Java producer of 12 values of 2 MiB gets
/// retriable errors, with nothing acknowledged; once the broker is back it
/// finishes, every value is read back intact through its manifest, and the
/// source topic holds each record once.
#[test]
fn producers_finish_when_chunk_topic_writes_fail_for_a_while() {
    const COUNT: u64 = 12;
    let size = 2 * MIB;
    let _one_at_a_time = NODES.lock().unwrap_or_else(|e| e.into_inner());
    let upstream = cluster(3);
    let (strait, _objects, _dir) = strait_with_dir(&upstream, "lf-chunk.", &["chunk"]);
    let topic = unique("lf-chunk.t");
    let chunk_topic = format!("{topic}.strait-chunks");
    create_topic(&upstream, &topic, 1, 3);
    create_topic_with_configs(
        &upstream,
        &chunk_topic,
        1,
        3,
        &[
            ("min.insync.replicas", "3"),
            ("retention.ms", "-1"),
            ("max.message.bytes", "10485760"),
        ],
    );
    let leaders = [
        leader_of(&upstream, &topic),
        leader_of(&upstream, &chunk_topic),
    ];
    let victim = (1..=3).find(|n| !leaders.contains(n)).unwrap();
    let failed = |s: &Strait| {
        metric(
            s,
            "strait_large_record_remedies_total",
            &["remedy=\"chunk\"", "outcome=\"failed\""],
        )
    };

    eprintln!("killing node {victim} (leaders: {leaders:?})");
    let down = KilledNode::kill(victim);
    let mut running = start(
        Stack::Java,
        "produce",
        &produce_args(
            &strait.bootstrap,
            &topic,
            COUNT,
            size,
            &["--config", patient(Stack::Java)],
        ),
    );
    eventually("a chunk write failing", WAIT, || {
        assert!(
            running.is_running(),
            "the producer ended before a chunk write failed"
        );
        (failed(&strait) > 0.0).then_some(())
    });
    let mut acked = 0;
    count_acked(&running, &mut acked);
    assert_eq!(
        acked, 0,
        "records were acknowledged while their chunks could not be written"
    );
    down.restart();
    let p = running.finish();
    eprintln!("producer: {}", p.summary());
    p.assert_ok("the Java producer while chunk writes fail");
    let sent = produced(&p);
    assert_eq!(sent.len() as u64, COUNT);
    assert_in_order(&sent);
    assert_eq!(
        end_offset(&upstream, &topic),
        COUNT as i64,
        "the source topic holds each record once ({SEQUENCE_GAP})"
    );
    let c = consume(&strait, Stack::Librdkafka, &topic, COUNT as usize, &[]).finish();
    c.assert_ok("librdkafka consumes the chunked values");
    assert_round_trip(&sent, &consumed(&c), "");
    let warned = strait
        .warnings()
        .into_iter()
        .filter(|l| message(l) == "cannot offload a large record" && field(l, "remedy") == "chunk")
        .map(|l| field(&l, "error"))
        .collect::<Vec<_>>();
    eprintln!("chunk-write warnings: {warned:#?}");
    assert!(!warned.is_empty(), "{:#?}", strait.warnings());
}
