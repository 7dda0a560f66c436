//! Invariant 3 under a broker crash: Kafka's VerifiableProducer (acks=all,
//! made idempotent) and VerifiableConsumer through Strait against three
//! brokers; the partition leader is killed (SIGKILL) and restarted mid-run.
//! Each producer is configured as its client documents for idempotence and
//! retries until its delivery timeout, which outlasts the failover: every
//! send must be acknowledged (no send error at all), 30,000 of them while
//! the old leader is down, and every record consumed exactly once:
//! passthrough, and through the record pipeline (every batch re-sealed in
//! zstd with trace headers).

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use strait_integration::tempdir::Dir;
use strait_integration::{
    cluster, harness, leader_of, node3, python, spawn_lines, stored_batches, unique, Strait,
};

const RECORDS: u32 = 100_000;
/// The leader is killed after this many acknowledgements...
const KILL_AT: usize = 20_000;
/// ...and restarted after this many: `RESTART_AT - KILL_AT` acknowledgements
/// arrive while it is down.
const RESTART_AT: usize = 50_000;
/// How long a record may be retried (Java `delivery.timeout.ms`, librdkafka
/// `message.timeout.ms`): far longer than a leader election (seconds), within
/// the run's 240 s.
const DELIVERY_TIMEOUT_MS: &str = "180000";

/// The Java producer as kafka-clients documents an idempotent producer that
/// never gives a record up before its delivery timeout: idempotence on,
/// acks=all, retries=Integer.MAX_VALUE, and a `delivery.timeout.ms` that
/// outlasts the failover.
fn idempotent_producer_config(dir: &Path) -> std::path::PathBuf {
    let props = dir.join("idempotent-producer.properties");
    std::fs::write(
        &props,
        format!(
            "enable.idempotence=true\nacks=all\nretries=2147483647\n\
             delivery.timeout.ms={DELIVERY_TIMEOUT_MS}\n"
        ),
    )
    .unwrap();
    props
}

/// The tests of this file kill and restart brokers of the one shared
/// 3-node cluster: one at a time.
static NODES: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// What a produce-through-a-crash run saw.
struct Crash {
    leader: u32,
    acked: usize,
    /// Acknowledgements received after the leader was killed and before it
    /// was restarted.
    acked_while_down: usize,
    /// The leader was restarted during the run (after [`RESTART_AT`]
    /// acknowledgements), not after it.
    restarted_mid_run: bool,
    /// Exception class of every failed send.
    send_errors: Vec<String>,
    consumed_distinct: usize,
    missing: usize,
    duplicates: u32,
}

/// Kafka's VerifiableProducer (acks=-1, made idempotent: the tool's own
/// `retries=0` would turn idempotence off) through Strait.
fn java_producer(strait: &Strait, topic: &str, config: &Path) -> Command {
    harness(&[
        "tool",
        "org.apache.kafka.tools.VerifiableProducer",
        "--bootstrap-server",
        &strait.bootstrap,
        "--topic",
        topic,
        "--max-messages",
        &RECORDS.to_string(),
        "--throughput",
        "10000",
        "--acks",
        "-1",
        "--producer.config",
        config.to_str().unwrap(),
    ])
}

/// The producer (printing VerifiableProducer's JSON lines) runs through
/// Strait; the partition leader is SIGKILLed after [`KILL_AT`]
/// acknowledgements and restarted after [`RESTART_AT`]; then VerifiableConsumer reads the topic back
/// through Strait.
fn produce_through_a_leader_crash(
    strait: &Strait,
    upstream: &str,
    topic: &str,
    mut producer: Command,
) -> Crash {
    let leader = leader_of(upstream, topic);
    let (mut producer, events) = spawn_lines(&mut producer);
    let mut acked: HashSet<String> = HashSet::new();
    let mut send_errors = Vec::new();
    let (mut killed, mut restarted) = (false, false);
    let (mut acked_at_kill, mut acked_while_down) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let Ok(ev) = events.recv_timeout(remaining) else {
            break;
        };
        match ev["name"].as_str() {
            Some("producer_send_success") => {
                acked.insert(ev["value"].as_str().unwrap().to_string());
            }
            Some("producer_send_error") => {
                send_errors.push(ev["exception"].as_str().unwrap_or("?").to_string())
            }
            _ => {}
        }
        if !killed && acked.len() >= KILL_AT {
            eprintln!("killing leader node {leader} after {} acks", acked.len());
            node3("kill-node", leader);
            killed = true;
            acked_at_kill = acked.len();
        }
        if killed && !restarted && acked.len() >= RESTART_AT {
            eprintln!("restarting node {leader} after {} acks", acked.len());
            acked_while_down = acked.len() - acked_at_kill;
            node3("start-node", leader);
            restarted = true;
        }
    }
    let status = producer.wait().unwrap();
    if killed && !restarted {
        acked_while_down = acked.len() - acked_at_kill;
        node3("start-node", leader);
    }
    assert!(
        killed,
        "the leader was killed mid-run ({} acks)",
        acked.len()
    );
    assert!(status.success(), "VerifiableProducer exited with {status}");

    let group = unique("verify");
    let (mut consumer, records) = spawn_lines(&mut harness(&[
        "tool",
        "org.apache.kafka.tools.VerifiableConsumer",
        "--bootstrap-server",
        &strait.bootstrap,
        "--topic",
        topic,
        "--group-id",
        &group,
        "--verbose",
        "--reset-policy",
        "earliest",
    ]));
    let mut seen: HashMap<String, u32> = HashMap::new();
    let mut missing = acked.len();
    let deadline = Instant::now() + Duration::from_secs(180);
    while missing > 0 {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let Ok(ev) = records.recv_timeout(remaining) else {
            break;
        };
        if ev["name"] == "record_data" {
            let v = ev["value"].as_str().unwrap().to_string();
            let n = seen.entry(v.clone()).or_insert(0);
            *n += 1;
            if *n == 1 && acked.contains(&v) {
                missing -= 1;
            }
        }
    }
    let _ = consumer.kill();
    let _ = consumer.wait();
    Crash {
        leader,
        acked: acked.len(),
        acked_while_down,
        restarted_mid_run: restarted,
        send_errors,
        consumed_distinct: seen.len(),
        missing,
        duplicates: seen.values().map(|n| n - 1).sum(),
    }
}

impl Crash {
    fn report(&self, what: &str) {
        println!(
            "{what}: produced {RECORDS}, acknowledged {} ({} while the leader was down), send errors {} {:?}, \
             consumed {} distinct, acknowledged but not consumed {}, duplicates {} (leader node {} killed \
             and restarted)",
            self.acked,
            self.acked_while_down,
            self.send_errors.len(),
            self.send_errors.iter().collect::<std::collections::BTreeSet<_>>(),
            self.consumed_distinct,
            self.missing,
            self.duplicates,
            self.leader
        );
    }

    /// The idempotent producer retried through the failover without giving
    /// a record up: no send error of any kind, every record acknowledged,
    /// and the producer kept being acknowledged while the old leader was
    /// down (it was restarted mid-run, after `RESTART_AT - KILL_AT` more
    /// acknowledgements), not only after the run.
    fn assert_every_send_acknowledged(&self) {
        assert!(
            self.send_errors.is_empty(),
            "send errors: {} {:?}",
            self.send_errors.len(),
            self.send_errors
                .iter()
                .collect::<std::collections::BTreeSet<_>>()
        );
        assert!(
            self.restarted_mid_run && self.acked_while_down >= RESTART_AT - KILL_AT,
            "acknowledgements while the leader was down: {} (want {})",
            self.acked_while_down,
            RESTART_AT - KILL_AT
        );
        assert_eq!(self.acked, RECORDS as usize, "every record acknowledged");
    }
}

#[test]
fn no_acknowledged_record_is_lost_when_the_leader_dies() {
    let _one_at_a_time = NODES.lock().unwrap_or_else(|e| e.into_inner());
    let upstream = cluster(3);
    let strait = Strait::quick(&upstream);
    strait.wait_ready();
    let topic = unique("failover");
    strait_integration::create_topic(&upstream, &topic, 1, 3);
    let dir = Dir::new("failover");
    let config = idempotent_producer_config(dir.path());
    let crash = produce_through_a_leader_crash(
        &strait,
        &upstream,
        &topic,
        java_producer(&strait, &topic, &config),
    );
    crash.report("failover");
    crash.assert_every_send_acknowledged();
    assert_eq!(crash.missing, 0, "acknowledged records were lost");
    assert_eq!(
        crash.duplicates, 0,
        "an idempotent producer wrote duplicates"
    );
}

/// Strait with zstd + trace on `topic`, created with RF 3.
fn pipeline_strait(upstream: &str, topic: &str) -> (Strait, Dir) {
    let dir = Dir::new("policies");
    std::fs::write(
        dir.path().join("pipeline.toml"),
        format!(
            "[[policy]]\nname = \"rewrite-all\"\ntopics = {{ exact = \"{topic}\" }}\n\
             [policy.compress]\ncodec = \"zstd\"\n[policy.trace]\n"
        ),
    )
    .unwrap();
    let strait = Strait::with_policies(upstream, dir.path());
    strait.wait_ready();
    strait_integration::create_topic(upstream, topic, 1, 3);
    (strait, dir)
}

/// librdkafka's idempotent producer through the pipeline, same crash: no
/// loss, no duplicates, no fatal idempotence error.
#[test]
fn librdkafka_idempotent_producer_through_the_record_pipeline_survives_a_leader_crash() {
    let _one_at_a_time = NODES.lock().unwrap_or_else(|e| e.into_inner());
    let upstream = cluster(3);
    let topic = unique("failover-rdkafka");
    let (strait, _dir) = pipeline_strait(&upstream, &topic);
    let producer = python(
        "verifiable_producer.py",
        &[
            "--bootstrap-server",
            &strait.bootstrap,
            "--topic",
            &topic,
            "--max-messages",
            &RECORDS.to_string(),
            "--throughput",
            "10000",
            "--message-timeout-ms",
            DELIVERY_TIMEOUT_MS,
        ],
    );
    let crash = produce_through_a_leader_crash(&strait, &upstream, &topic, producer);
    crash.report("librdkafka failover through the record pipeline");
    let fatal: Vec<&String> = crash
        .send_errors
        .iter()
        .filter(|e| e.contains("OUT_OF_ORDER") || e.contains("FATAL") || e.contains("INCONSISTENT"))
        .collect();
    assert!(fatal.is_empty(), "idempotence errors: {fatal:?}");
    crash.assert_every_send_acknowledged();
    assert_eq!(crash.missing, 0, "acknowledged records were lost");
    assert_eq!(
        crash.duplicates, 0,
        "rewritten idempotent batches were duplicated"
    );
}

/// The record pipeline re-seals every batch (zstd + trace headers): retries
/// after the crash must still be recognised by the broker as the same
/// idempotent batches.
#[test]
fn idempotent_producer_through_the_record_pipeline_survives_a_leader_crash() {
    let _one_at_a_time = NODES.lock().unwrap_or_else(|e| e.into_inner());
    let upstream = cluster(3);
    let topic = unique("failover-pipeline");
    let (strait, dir) = pipeline_strait(&upstream, &topic);
    let config = idempotent_producer_config(dir.path());
    let crash = produce_through_a_leader_crash(
        &strait,
        &upstream,
        &topic,
        java_producer(&strait, &topic, &config),
    );
    crash.report("failover through the record pipeline");
    let out_of_order = crash
        .send_errors
        .iter()
        .filter(|e| e.contains("OutOfOrderSequence"))
        .count();
    assert_eq!(
        out_of_order, 0,
        "OutOfOrderSequence errors: {:?}",
        crash.send_errors
    );
    crash.assert_every_send_acknowledged();
    assert_eq!(crash.missing, 0, "acknowledged records were lost");
    assert_eq!(
        crash.duplicates, 0,
        "rewritten idempotent batches were duplicated"
    );
    let stored = stored_batches(3, &topic, 0);
    // A batch of one small record may stay uncompressed: the compress stage
    // keeps a batch as it came when zstd would not make it smaller.
    assert!(
        stored.iter().any(|(codec, _)| codec == "zstd")
            && stored.iter().all(|(codec, n)| codec == "zstd" || *n == 1),
        "the broker stores zstd batches: {stored:?}"
    );
}
