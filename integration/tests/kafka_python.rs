//! kafka-python (pure Python, `conformance/python/kafka_python/`) through
//! Strait against the real broker, one test per conformance scenario:
//! produce / consume through rewriting policies, a consumer group, the
//! idempotent producer through a leader crash, transactions, policy
//! rejections, large records, and TLS / mTLS.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::Value;
use strait_integration::kafka_python::{create_topics, kafka_python, pipeline_strait, stored, Pki};
use strait_integration::large::{
    assert_round_trip, consumed, driver, metric, produce_errors, produced, strait_with_store,
    Stack, StoreKind,
};
use strait_integration::produce_rules::{
    rule_policy, write_rule_policies, RuleFlags, HEADER_FLAGS, PRODUCE_RULES, VALUE_SIZE_FLAGS,
};
use strait_integration::tempdir::Dir;
use strait_integration::{
    assert_usage_error, cluster, create_topic, dump_batches, leader_of, run, spawn_lines, unique,
    KilledNode, Output, S3Server, Strait,
};

/// The 3-broker test of this file kills and restarts a broker of the one
/// shared cluster: one at a time.
static NODES: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn no_warnings(strait: &Strait) {
    assert!(
        strait.warnings().is_empty(),
        "unexpected warnings: {:#?}",
        strait.warnings()
    );
}

/// How many records of a topic a reader sees directly on the broker, with
/// kcat (librdkafka) at the given isolation level: a client other than the
/// one under test.
fn broker_count(bootstrap: &str, topic: &str, isolation: &str) -> usize {
    let out = run(std::process::Command::new("kcat").args([
        "-C",
        "-b",
        bootstrap,
        "-t",
        topic,
        "-X",
        &format!("isolation.level={isolation}"),
        "-o",
        "beginning",
        "-e",
        "-q",
        "-f",
        "%p:%o\\n",
    ]));
    out.assert_ok("kcat on the broker");
    out.stdout.lines().count()
}

#[test]
fn kafka_python_produces_and_consumes_intact_through_every_rewriting_codec() {
    const RECORDS: usize = 200;
    let upstream = cluster(1);
    let base = unique("kp-pipe");
    let codecs = ["zstd", "lz4", "snappy", "gzip"];
    let topics: Vec<String> = codecs.iter().map(|c| format!("{base}-{c}")).collect();
    create_topics(
        &upstream,
        1,
        &topics.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let pairs: Vec<(&str, &str)> = topics
        .iter()
        .map(String::as_str)
        .zip(codecs.iter().copied())
        .collect();
    let (strait, _policies) = pipeline_strait(&upstream, &pairs);
    for (n, (topic, codec)) in pairs.iter().enumerate() {
        // kafka-python sends its batches uncompressed, then compressed in
        // another codec (its own encoders: xerial-framed snappy, lz4 frames);
        // Strait adds a traceparent per record and re-seals every batch in the
        // topic's codec (`recompress`); kafka-python must decode what Strait
        // wrote.
        let other = codecs[(n + 1) % codecs.len()];
        for compression in [None, Some(other)] {
            let records = RECORDS.to_string();
            let mut args = vec![
                "--bootstrap",
                &strait.bootstrap,
                "--topic",
                topic,
                "--records",
                &records,
                "--trace-header",
                "traceparent",
                "--own-traceparent-every",
                "10",
            ];
            if let Some(c) = compression {
                args.extend(["--compression", c]);
            }
            let out = run(&mut kafka_python("produce_consume.py", &args));
            out.assert_ok(&format!(
                "kafka-python round trip from {compression:?} through {codec}"
            ));
            let s = out.summary();
            println!("kafka-python from {compression:?} through {codec}: {s}");
            assert_eq!(s["verified"], RECORDS as u64, "{s}");
            assert_eq!(s["duplicates"], 0, "{s}");
        }
        let stored = stored(1, topic, 0);
        if *codec == "zstd" {
            // The segment reader sees what Kafka's own DumpLogSegments sees.
            assert_eq!(stored, dump_batches(1, topic, 0));
        }
        assert!(
            stored.iter().all(|b| b.codec == *codec),
            "the broker stores {codec} batches only: {stored:?}"
        );
        let total: u64 = stored.iter().map(|b| b.count).sum();
        assert_eq!(
            total as usize,
            2 * RECORDS,
            "every record once on the broker"
        );
    }
    no_warnings(&strait);

    // The driver's contract on bad input: a usage error is a failing summary
    // (exit 2), an unreachable bootstrap a bounded, failing run naming it.
    assert_usage_error(
        &mut kafka_python(
            "produce_consume.py",
            &[
                "--bootstrap",
                &strait.bootstrap,
                "--topic",
                &topics[0],
                "--records",
                "0",
            ],
        ),
        "--records 0",
    );
    let started = Instant::now();
    let unreachable = run(&mut kafka_python(
        "produce_consume.py",
        &[
            "--bootstrap",
            "127.0.0.1:1",
            "--topic",
            &topics[0],
            "--records",
            "5",
            "--config",
            "bootstrap_timeout_ms=2000",
            "--timeout-ms",
            "20000",
        ],
    ));
    assert!(!unreachable.ok && started.elapsed() < Duration::from_secs(35));
    let s = unreachable.summary();
    assert!(
        s["error"]
            .as_str()
            .unwrap_or_default()
            .contains("Unable to bootstrap"),
        "{s}"
    );
}

#[test]
fn kafka_python_consumer_group_joins_rebalances_commits_and_resumes() {
    let upstream = cluster(1);
    let strait = Strait::quick(&upstream);
    strait.wait_ready();
    let topic = unique("kp-group");
    create_topics(&upstream, 4, &[&topic]);
    let out = run(&mut kafka_python(
        "group.py",
        &[
            "--bootstrap",
            &strait.bootstrap,
            "--topic",
            &topic,
            "--records",
            "1000",
        ],
    ));
    out.assert_ok("kafka-python consumer group through Strait");
    let steps: Vec<String> = out
        .json_lines()
        .iter()
        .filter(|l| l["type"] == "step")
        .map(|l| l["step"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        steps,
        [
            "produced",
            "A joined",
            "B joined, rebalanced",
            "consumed and committed",
            "B left, rebalanced",
            "C resumed"
        ],
        "{}",
        out.stdout
    );
    let s = out.summary();
    println!("kafka-python group: {s}");
    for (k, v) in [
        ("missing", 0),
        ("duplicates", 0),
        ("read_by_b", 100),
        ("read_by_a", 900),
        ("read_by_c", 50),
        ("reread_by_c", 0),
    ] {
        assert_eq!(s[k], v, "{k}: {s}");
    }
    for k in [
        "resume_mismatches",
        "commit_mismatches",
        "final_commit_mismatches",
    ] {
        assert_eq!(s[k], serde_json::json!({}), "{k}: {s}");
    }
    // The lag view of the group this stack committed through Strait equals
    // kafka-consumer-groups.
    let group = s["group"].as_str().expect("the driver names its group");
    strait_integration::lag::assert_lag_as_kafka_says(&strait, &upstream, group, &topic);
    no_warnings(&strait);
}

/// kafka-python's idempotent producer (enable_idempotence=True, acks=all,
/// retries unlimited within delivery_timeout_ms, as kafka-python 3.0
/// documents) through the record pipeline (every batch re-sealed in zstd
/// with trace headers) on a 3-broker cluster; the partition leader is
/// SIGKILLed after 3,000 acknowledgements and restarted after 8,000. No send
/// fails: every record is acknowledged, 5,000 of them while the old leader
/// is down, and read back through Strait exactly once, in production order.
#[test]
fn kafka_python_idempotent_producer_through_the_record_pipeline_survives_a_leader_crash() {
    const RECORDS: usize = 15_000;
    let _one_at_a_time = NODES.lock().unwrap_or_else(|e| e.into_inner());
    let upstream = cluster(3);
    let topic = unique("kp-failover");
    let (strait, _policies) = pipeline_strait(&upstream, &[(&topic, "zstd")]);
    create_topic(&upstream, &topic, 1, 3);
    let leader = leader_of(&upstream, &topic);
    let (mut producer, events) = spawn_lines(&mut kafka_python(
        "verifiable_producer.py",
        &[
            "--bootstrap",
            &strait.bootstrap,
            "--topic",
            &topic,
            "--max-messages",
            &RECORDS.to_string(),
            "--throughput",
            "1500",
        ],
    ));
    let mut acked: HashSet<u64> = HashSet::new();
    let mut send_errors: Vec<String> = Vec::new();
    let mut killed: Option<KilledNode> = None;
    let mut restarted = false;
    let (mut acked_at_kill, mut acked_while_down) = (0, None);
    let mut shutdown = Value::Null;
    let deadline = Instant::now() + Duration::from_secs(200);
    while let Ok(ev) = events.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        match ev["name"].as_str() {
            Some("producer_send_success") => {
                acked.insert(ev["value"].as_str().unwrap().parse().unwrap());
            }
            Some("producer_send_error") => send_errors.push(format!(
                "{}: {}",
                ev["exception"].as_str().unwrap_or("?"),
                ev["message"].as_str().unwrap_or("")
            )),
            Some("shutdown_complete") => shutdown = ev.clone(),
            _ => {}
        }
        if killed.is_none() && !restarted && acked.len() >= 3_000 {
            eprintln!("killing leader node {leader} after {} acks", acked.len());
            killed = Some(KilledNode::kill(leader));
            acked_at_kill = acked.len();
        }
        if acked.len() >= 8_000 {
            if let Some(node) = killed.take() {
                eprintln!("restarting node {leader} after {} acks", acked.len());
                acked_while_down = Some(acked.len() - acked_at_kill);
                node.restart();
                restarted = true;
            }
        }
    }
    let status = producer.wait().unwrap();
    let was_killed = restarted || killed.is_some();
    drop(killed);
    assert!(
        was_killed,
        "the leader was killed mid-run ({} acks)",
        acked.len()
    );
    assert!(
        status.success(),
        "producer exited with {status}: {shutdown}"
    );
    // Retries without limit until delivery_timeout_ms, which outlasts the
    // failover: no send is given up, and the producer was acknowledged
    // while the old leader was down (restarted mid-run after 5,000 more
    // acknowledgements, not at the end).
    assert!(
        send_errors.is_empty(),
        "send errors: {} {:?}",
        send_errors.len(),
        send_errors
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
    );
    assert!(
        acked_while_down.is_some_and(|n| n >= 5_000),
        "acknowledged while the leader was down: {acked_while_down:?} (want 5,000)"
    );
    assert_eq!(
        acked.len(),
        RECORDS,
        "every record acknowledged: {shutdown}"
    );

    let out = run(&mut kafka_python(
        "read_topic.py",
        &["--bootstrap", &strait.bootstrap, "--topic", &topic],
    ));
    out.assert_ok("kafka-python reads the topic back through Strait");
    let values: Vec<u64> = out
        .json_lines()
        .iter()
        .filter(|l| l["type"] == "record")
        .map(|l| l["value"].as_str().unwrap().parse().unwrap())
        .collect();
    let mut seen: HashMap<u64, u32> = HashMap::new();
    for v in &values {
        *seen.entry(*v).or_insert(0) += 1;
    }
    let missing = acked.iter().filter(|v| !seen.contains_key(v)).count();
    let duplicates: u32 = seen.values().map(|n| n - 1).sum();
    let out_of_order = values.windows(2).filter(|w| w[0] >= w[1]).count();
    let fatal: Vec<&String> = send_errors
        .iter()
        .filter(|e| e.contains("OutOfOrderSequence") || e.contains("DuplicateSequence"))
        .collect();
    println!(
        "kafka-python failover through the record pipeline: produced {RECORDS}, acknowledged {}, \
         send errors {} {:?}, read back {} ({} distinct), acknowledged but not read {missing}, \
         duplicates {duplicates}, out of order {out_of_order} (leader node {leader} killed and restarted)",
        acked.len(),
        send_errors.len(),
        send_errors.iter().take(3).collect::<Vec<_>>(),
        values.len(),
        seen.len()
    );
    assert!(fatal.is_empty(), "idempotence errors: {fatal:?}");
    assert_eq!(missing, 0, "acknowledged records were lost");
    assert_eq!(
        duplicates, 0,
        "rewritten idempotent batches were duplicated"
    );
    assert_eq!(out_of_order, 0, "records out of production order");
    let stored = stored(3, &topic, 0);
    assert!(
        stored.iter().any(|b| b.codec == "zstd")
            && stored.iter().all(|b| b.codec == "zstd" || b.count == 1),
        "the broker stores zstd batches: {stored:?}"
    );
}

#[test]
fn kafka_python_transactions_through_rewriting_are_read_committed_once() {
    let upstream = cluster(1);
    let topic = unique("kp-txn");
    create_topics(&upstream, 2, &[&topic]);
    let (strait, _policies) = pipeline_strait(&upstream, &[(&topic, "zstd")]);
    let out = run(&mut kafka_python(
        "transactions.py",
        &[
            "--bootstrap",
            &strait.bootstrap,
            "--topic",
            &topic,
            "--transactions",
            "30",
            "--per-transaction",
            "50",
            "--abort-every",
            "3",
            "--trace-header",
            "traceparent",
        ],
    ));
    out.assert_ok("kafka-python transactions through the pipeline");
    let s = out.summary();
    println!("kafka-python transactions through the pipeline: {s}");
    assert_eq!(
        (s["committed"].as_u64(), s["aborted"].as_u64()),
        (Some(1000), Some(500))
    );
    assert_eq!(s["distinct"], 1000, "{s}");
    assert_eq!(s["consumed"], 1000, "{s}");
    // On the broker: the aborted records are in the log (so read_committed
    // had something to leave out), and read_committed sees the committed once.
    assert_eq!(broker_count(&upstream, &topic, "read_uncommitted"), 1500);
    assert_eq!(broker_count(&upstream, &topic, "read_committed"), 1000);
    // Through Strait, kafka-python read_uncommitted sees the aborted ones too.
    let all = run(&mut kafka_python(
        "read_topic.py",
        &[
            "--bootstrap",
            &strait.bootstrap,
            "--topic",
            &topic,
            "--quiet",
            "--expect",
            "1500",
        ],
    ));
    all.assert_ok("kafka-python read_uncommitted through Strait");
    for partition in 0..2 {
        let stored = stored(1, &topic, partition);
        assert!(
            !stored.is_empty() && stored.iter().all(|b| b.codec == "zstd"),
            "the broker stores zstd batches: {stored:?}"
        );
    }
    no_warnings(&strait);
}

/// A kafka-python policy_produce.py run of 5 records.
fn produce(bootstrap: &str, topic: &str, extra: &[&str], expect_failure: bool) -> Output {
    let mut args = vec![
        "--bootstrap",
        bootstrap,
        "--topic",
        topic,
        "--records",
        "5",
        "--timeout-ms",
        "30000",
    ];
    args.extend_from_slice(extra);
    if expect_failure {
        args.push("--expect-failure");
    }
    run(&mut kafka_python("policy_produce.py", &args))
}

#[test]
fn every_produce_rule_and_admin_guardrail_against_kafka_python() {
    let upstream = cluster(1);
    let base = unique("kp-rules");
    let dir = Dir::new("policies");
    const FLAGS: RuleFlags = [
        (
            &["--config", "acks=1", "--config", "enable_idempotence=false"],
            &[],
        ),
        (
            &["--config", "enable_idempotence=false"],
            &["--config", "enable_idempotence=true"],
        ),
        HEADER_FLAGS,
        VALUE_SIZE_FLAGS,
        (
            &["--config", "compression_type=gzip"],
            &["--config", "compression_type=zstd"],
        ),
    ];
    let topics = write_rule_policies(dir.path(), &base);
    create_topics(
        &upstream,
        1,
        &topics.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let guarded = format!("{base}-guarded");
    std::fs::write(
        dir.path().join("guard.toml"),
        format!(
            "[[policy]]\nname = \"{base}-guard\"\ntopics = {{ prefix = \"{guarded}\" }}\n[policy.admin]\n\
             partitions = {{ min = 2, max = 6 }}\ndeny_configs = [\"retention.ms\"]\nprotect_delete = true\n"
        ),
    )
    .unwrap();
    let strait = Strait::with_policies(&upstream, dir.path());
    let mut table = Vec::new();
    for (i, (r, (bad, good))) in PRODUCE_RULES.iter().zip(FLAGS).enumerate() {
        let (rule, topic) = (r.rule, &topics[i]);
        // kafka-python's exception class for the error code.
        let exception = match r.code {
            44 => "PolicyViolationError",
            _ => "InvalidRecordError",
        };
        let out = produce(&strait.bootstrap, topic, bad, true);
        out.assert_ok(&format!("kafka-python producer violating {rule}"));
        let s = out.summary();
        assert_eq!(s["acked"], 0, "{s}");
        assert_eq!(s["failed"], 5, "every record failed: {s}");
        assert_eq!(s["first_errno"], r.code, "{rule}: error code: {s}");
        assert_eq!(s["first_exception"], exception, "{rule}: {s}");
        let text = s["first_message"].as_str().unwrap_or_default();
        assert!(
            text.contains(rule),
            "kafka-python's error names {rule}: {s}"
        );
        assert!(
            text.contains(&rule_policy(&base, i)),
            "kafka-python's error names the policy: {s}"
        );
        assert_eq!(
            broker_count(&upstream, topic, "read_uncommitted"),
            0,
            "{rule}: nothing of the rejected batches reached the broker"
        );
        let out = produce(&strait.bootstrap, topic, good, false);
        out.assert_ok(&format!("compliant kafka-python producer for {rule}"));
        assert_eq!(
            broker_count(&upstream, topic, "read_uncommitted"),
            5,
            "{rule}: the compliant records arrived"
        );
        table.push(format!("{rule}: {exception} \"{text}\""));
    }
    // The admin guardrails against kafka-python's KafkaAdminClient: refused
    // with the rule named, the compliant requests pass.
    let mut admin = |args: &[&str], refused: Option<&str>| {
        let mut all = vec![
            "--bootstrap",
            strait.bootstrap.as_str(),
            "--topic",
            &guarded,
        ];
        all.extend_from_slice(args);
        if refused.is_some() {
            all.push("--expect-failure");
        }
        let out = run(&mut kafka_python("policy_admin.py", &all));
        out.assert_ok(&format!("kafka-python admin {args:?}"));
        let s = out.summary();
        if let Some(rule) = refused {
            let text = s["first_message"].as_str().unwrap_or_default();
            assert!(
                text.contains(rule) && text.contains(&format!("{base}-guard")),
                "the admin error names the policy and {rule}: {s}"
            );
            assert!(text.contains("[Error 44] PolicyViolationError"), "{s}");
            table.push(format!(
                "{rule}: {}",
                text.chars().take(120).collect::<String>()
            ));
        }
    };
    let create = ["--action", "create", "--replication-factor", "1"];
    admin(
        &[&create[..], &["--partitions", "12"]].concat(),
        Some("admin.partitions"),
    );
    admin(&[&create[..], &["--partitions", "3"]].concat(), None);
    for action in ["alter", "incremental-alter"] {
        admin(
            &["--action", action, "--topic-config", "retention.ms=1000"],
            Some("admin.deny_configs"),
        );
    }
    admin(
        &[
            "--action",
            "incremental-alter",
            "--topic-config",
            "segment.ms=3600000",
        ],
        None,
    );
    admin(&["--action", "delete"], Some("admin.protect_delete"));
    // kafka-python's producer asks Metadata to auto-create a missing topic
    // (the broker's defaults: a create the partitions rule refuses); through
    // Strait it gets no metadata and the topic is not created.
    let auto = format!("{guarded}-auto");
    let out = run(&mut kafka_python(
        "policy_produce.py",
        &[
            "--bootstrap",
            &strait.bootstrap,
            "--topic",
            &auto,
            "--records",
            "1",
            "--timeout-ms",
            "12000",
            "--expect-failure",
        ],
    ));
    out.assert_ok("kafka-python producing to a missing guarded topic fails");
    assert_eq!(
        out.summary()["first_exception"],
        "KafkaTimeoutError",
        "{}",
        out.stdout
    );
    let listed = run(&mut strait_integration::harness(&[
        "topics",
        "--bootstrap-server",
        &upstream,
        "--describe",
        "--topic",
        &format!("{guarded}.*"),
    ]));
    listed.assert_ok("describe the guarded topics");
    assert!(
        listed.stdout.contains("PartitionCount: 3"),
        "the protected topic still exists: {}",
        listed.stdout
    );
    assert!(
        !listed.stdout.contains(&auto),
        "the guarded topic was not auto-created: {}",
        listed.stdout
    );
    println!(
        "policy rejections seen by kafka-python:\n  {}",
        table.join("\n  ")
    );
}

/// Produces `count` values of `size` bytes with `producer` and reads them
/// back with `consumer`, through Strait, on a fresh one-partition topic
/// named `prefix...`; checks every value and that the broker stored only
/// small batches.
fn large_round_trip(
    strait: &Strait,
    upstream: &str,
    prefix: &str,
    producer: Option<Stack>,
    consumer: Option<Stack>,
    count: u32,
    size: u64,
) {
    let started = Instant::now();
    let topic = unique(prefix);
    create_topics(upstream, 1, &[&topic]);
    let (count_s, size_s) = (count.to_string(), size.to_string());
    let produce_args = [
        "produce",
        "--bootstrap",
        &strait.bootstrap,
        "--topic",
        &topic,
        "--count",
        &count_s,
        "--size",
        &size_s,
    ];
    let p = run(&mut match producer {
        Some(stack) => driver(stack, produce_args[0], &produce_args[1..]),
        None => kafka_python("large_records.py", &produce_args),
    });
    p.assert_ok(&format!("{producer:?} produces {count} x {size} bytes"));
    assert!(produce_errors(&p).is_empty(), "{:?}", produce_errors(&p));
    let consume_args = [
        "consume",
        "--bootstrap",
        &strait.bootstrap,
        "--topic",
        &topic,
        "--expect",
        &count_s,
    ];
    let c = run(&mut match consumer {
        Some(stack) => driver(stack, consume_args[0], &consume_args[1..]),
        None => kafka_python("large_records.py", &consume_args),
    });
    c.assert_ok(&format!("{consumer:?} consumes"));
    assert_round_trip(&produced(&p), &consumed(&c), "");
    println!(
        "{prefix}: {count} x {size} bytes, {} to {}: {:?}",
        producer.map_or("kafka-python".into(), |s| format!("{s:?}")),
        consumer.map_or("kafka-python".into(), |s| format!("{s:?}")),
        started.elapsed()
    );
    let stored = stored(1, &topic, 0);
    assert_eq!(
        stored.iter().map(|b| b.count).sum::<u64>(),
        u64::from(count)
    );
    assert!(
        stored.iter().all(|b| b.size < 4096),
        "the broker stored only small batches: {stored:?}"
    );
}

/// kafka-python (None) both ways: 2 x 5 MiB and 1 x 50 MiB.
fn kafka_python_both_ways(strait: &Strait, upstream: &str, prefix: &str) {
    const MIB: u64 = 1 << 20;
    large_round_trip(strait, upstream, prefix, None, None, 2, 5 * MIB);
    large_round_trip(strait, upstream, prefix, None, None, 1, 50 * MIB);
}

/// Claim-checks in a local directory and in an S3-compatible server, and
/// chunks in a companion topic: kafka-python to kafka-python with only
/// `max_request_size` raised (consumer unchanged), and 5 MiB across stacks
/// with librdkafka each way (the same values, compared by SHA-256).
#[test]
fn kafka_python_large_records_round_trip_with_claim_checks_and_chunks() {
    const MIB: u64 = 1 << 20;
    let upstream = cluster(1);
    let policies = "[[policy]]\nname = \"kp-claim-checks\"\ntopics = { prefix = \"kp-cc.\" }\n\
                    [policy.large_records]\nremedies = [\"claim-check\"]\n\
                    [[policy]]\nname = \"kp-chunks\"\ntopics = { prefix = \"kp-chunk.\" }\n\
                    [policy.large_records]\nremedies = [\"chunk\"]\n";
    let objects = Dir::new("kp-objects");
    let (strait, _config) =
        strait_with_store(&upstream, policies, StoreKind::Dir(objects.path()), "");
    kafka_python_both_ways(&strait, &upstream, "kp-cc.dir");
    let rd = Some(Stack::Librdkafka);
    large_round_trip(&strait, &upstream, "kp-cc.dir", None, rd, 1, 5 * MIB);
    large_round_trip(&strait, &upstream, "kp-cc.dir", rd, None, 1, 5 * MIB);
    kafka_python_both_ways(&strait, &upstream, "kp-chunk.");
    let written = metric(&strait, "strait_large_objects_total", &["op=\"written\""]);
    assert_eq!(
        written, 5.0,
        "one object per claim-checked value, none for chunks"
    );
    drop(strait);

    let s3 = S3Server::start("strait-kp-claims");
    let (strait, _config) = strait_with_store(&upstream, policies, StoreKind::S3(&s3), "");
    kafka_python_both_ways(&strait, &upstream, "kp-cc.s3");
    let objects = s3.objects();
    assert_eq!(objects.len(), 3, "one object per value: {objects:?}");
    assert!(
        metric(&strait, "strait_large_objects_total", &["op=\"read\""]) >= 3.0,
        "restored from the store"
    );
}

/// Strait with client-facing TLS (and mTLS when `mtls`).
fn tls_strait(pki: &Pki, mtls: bool) -> (Strait, Dir) {
    let toml = pki.listener_toml(&cluster(1), mtls);
    let (strait, dir) = Strait::with_config(&toml);
    strait.wait_ready();
    (strait, dir)
}

/// produce_consume.py over TLS trusting `ca`, with client certificate `cert`.
fn tls_client(strait: &Strait, pki: &Pki, ca: &str, cert: Option<&str>, refused: bool) -> Output {
    let topic = unique("kp-tls");
    create_topics(&cluster(1), 1, &[&topic]);
    let ca = pki.path(ca).display().to_string();
    let mut args: Vec<String> = [
        "--bootstrap",
        &strait.bootstrap,
        "--topic",
        &topic,
        "--records",
        "200",
        "--security-protocol",
        "SSL",
        "--ssl-cafile",
        &ca,
        "--timeout-ms",
        "30000",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if let Some(name) = cert {
        for (flag, ext) in [("--ssl-certfile", "crt"), ("--ssl-keyfile", "key")] {
            args.push(flag.into());
            args.push(pki.path(&format!("{name}.{ext}")).display().to_string());
        }
    }
    if refused {
        // Give up on the bootstrap within the run's timeout.
        args.extend(["--config".into(), "bootstrap_timeout_ms=5000".into()]);
        args.push("--expect-failure".into());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run(&mut kafka_python("produce_consume.py", &args))
}

/// A refused run: nothing acknowledged, and the client's TLS error names `reason`.
fn assert_tls_failure(out: &Output, reason: &str) {
    let s = out.summary();
    println!("kafka-python refused ({reason}): {s}");
    assert_eq!(s["acked"], 0, "{s}");
    assert!(
        s["tls_log"]
            .as_array()
            .is_some_and(|l| l.iter().any(|e| e.as_str().unwrap_or("").contains(reason))),
        "the client's TLS error names {reason}: {s}"
    );
}

#[test]
fn kafka_python_over_tls_and_mtls_refuses_bad_certificates() {
    let pki = Pki::new();
    let (strait, _config) = tls_strait(&pki, false);
    let out = tls_client(&strait, &pki, "ca.crt", None, false);
    out.assert_ok("kafka-python over TLS (hostname checked)");
    assert_eq!(out.summary()["verified"], 200);
    // A client that does not trust Strait's certificate gives up.
    let out = tls_client(&strait, &pki, "stranger-ca.crt", None, true);
    out.assert_ok("kafka-python refuses a server certificate from an unknown CA");
    assert_tls_failure(&out, "CERTIFICATE_VERIFY_FAILED");
    drop(strait);

    let (mut strait, _config) = tls_strait(&pki, true);
    let out = tls_client(&strait, &pki, "ca.crt", Some("client"), false);
    out.assert_ok("kafka-python with a client certificate over mTLS");
    assert_eq!(out.summary()["verified"], 200);
    // Strait refuses the handshake (TLS 1.3: the client learns it from the alert).
    for (cert, alert) in [
        (None, "CERTIFICATE_REQUIRED"),
        (Some("intruder"), "UNKNOWN_CA"),
    ] {
        let out = tls_client(&strait, &pki, "ca.crt", cert, true);
        out.assert_ok(&format!(
            "kafka-python with client certificate {cert:?} is refused"
        ));
        assert_tls_failure(&out, alert);
    }
    let line = strait.wait_log("a TLS refusal log line", |l| {
        strait_integration::message(l) == "TLS handshake failed; connection refused"
    });
    assert!(
        strait_integration::field(&line, "client").starts_with("127.0.0.1:"),
        "{line}"
    );
}
