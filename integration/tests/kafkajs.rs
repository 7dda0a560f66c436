//! kafkajs 2.2.4 (pure JavaScript, `conformance/js`) through Strait against a
//! real broker: one test per scenario of the conformance matrix. Each is at
//! least as strict as the Java and librdkafka cells for the same scenario.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::Value;
use strait_integration::kafkajs::{node, Pki};
use strait_integration::large::{
    assert_round_trip, consumed, driver, policy, produce_errors, produced, strait_with_dir,
    strait_with_store, Stack, StoreKind,
};
use strait_integration::produce_rules::{
    rule_topic, write_policy, write_rule_policies, ProduceRule, RuleFlags, HEADER_FLAGS,
    PRODUCE_RULES, VALUE_SIZE_FLAGS,
};
use strait_integration::tempdir::Dir;
use strait_integration::{
    assert_usage_error, cluster, create_topic, dump_batches, field, java, message, run,
    spawn_lines, stored_batches, unique, values_on_broker, Output, S3Server, Strait,
};

/// The tests of this file that kill a broker of the shared 3-node cluster
/// run one at a time.
static NODES: std::sync::Mutex<()> = std::sync::Mutex::new(());

const MIB: u64 = 1 << 20;

/// Recompression in `codec` and a traceparent on every record, the client's
/// id in a header: the pipeline the Java and librdkafka cells go through.
fn pipeline(codec: &str) -> String {
    format!(
        "[policy.compress]\ncodec = \"{codec}\"\n[policy.trace]\nclient_id_header = \"strait-client-id\"\n"
    )
}

/// A valid version-00 W3C traceparent.
fn valid_traceparent(v: &str) -> bool {
    let parts: Vec<&str> = v.split('-').collect();
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            && s.bytes().any(|b| b != b'0')
    };
    parts.len() == 4
        && parts[0] == "00"
        && hex(parts[1], 32)
        && hex(parts[2], 16)
        && parts[3].len() == 2
}

fn lines_of(out: &Output, kind: &str) -> Vec<Value> {
    out.json_lines()
        .into_iter()
        .filter(|l| l["type"] == kind)
        .collect()
}

/// Records read back directly from the broker (Java ReadTopic), no Strait.
fn broker_count(upstream: &str, topic: &str, isolation: &str) -> u64 {
    let out = run(&mut java(
        "ReadTopic",
        &[
            "--bootstrap",
            upstream,
            "--topic",
            topic,
            "--isolation",
            isolation,
            "--quiet",
        ],
    ));
    out.assert_ok("ReadTopic on the broker");
    out.summary()["count"].as_u64().unwrap()
}

/// Scenario 1. kafkajs produces uncompressed batches, and batches it
/// compressed itself in another codec, and reads back what Strait re-sealed
/// in zstd, lz4, snappy and gzip (`recompress = true`) with traceparents
/// added: every record byte-identical (key, value, headers in order, offset).
#[test]
fn kafkajs_round_trip_through_recompression_and_traceparents() {
    const RECORDS: usize = 300;
    let upstream = cluster(1);
    let base = unique("kj-pipe");
    let dir = Dir::new("policies");
    // (the topic's codec, what kafkajs compresses in)
    let runs = [
        ("zstd", "none"),
        ("lz4", "none"),
        ("snappy", "none"),
        ("gzip", "none"),
        ("zstd", "lz4"),
        ("lz4", "zstd"),
        ("snappy", "gzip"),
        ("gzip", "snappy"),
    ];
    for (codec, from) in runs {
        let topic = format!("{base}-{codec}-{from}");
        create_topic(&upstream, &topic, 1, 1);
        write_policy(
            dir.path(),
            &format!("{codec}-{from}.toml"),
            &format!("{topic}-pipeline"),
            &topic,
            &pipeline(codec).replace("[policy.trace]", "recompress = true\n[policy.trace]"),
        );
    }
    let strait = Strait::with_policies(&upstream, dir.path());
    // The round trips run at once (each waits mostly on its group join).
    let outs: Vec<Output> = std::thread::scope(|scope| {
        let runs: Vec<_> = runs
            .iter()
            .map(|(codec, from)| {
                let (topic, strait) = (format!("{base}-{codec}-{from}"), &strait);
                scope.spawn(move || {
                    run(&mut node(
                        "produce_consume.js",
                        &[
                            "--bootstrap",
                            &strait.bootstrap,
                            "--topic",
                            &topic,
                            "--records",
                            &RECORDS.to_string(),
                            "--partitions",
                            "1",
                            "--no-create-topic",
                            "--compression",
                            from,
                            "--value-bytes",
                            "400",
                            "--own-traceparent-every",
                            "10",
                            "--added-header",
                            "traceparent",
                            "--added-header",
                            "strait-client-id",
                        ],
                    ))
                })
            })
            .collect();
        runs.into_iter()
            .map(|r| r.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    for ((codec, from), out) in runs.into_iter().zip(outs) {
        let topic = format!("{base}-{codec}-{from}");
        let codec = format!("{codec} (kafkajs compressing in {from})");
        let codec = codec.as_str();
        let target = &codec[..codec.find(' ').unwrap()];
        out.assert_ok(&format!("kafkajs round trip through the {codec} pipeline"));
        let s = out.summary();
        assert_eq!(s["verified"], RECORDS, "{codec}: {s}");
        let records = lines_of(&out, "record");
        assert_eq!(records.len(), RECORDS, "{codec}");
        for r in &records {
            let i = r["index"].as_u64().unwrap();
            let tps: Vec<&str> = r["traceparent"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            assert_eq!(tps.len(), 1, "{codec}: one traceparent per record: {r}");
            assert!(valid_traceparent(tps[0]), "{codec}: valid traceparent: {r}");
            if i % 10 == 0 {
                assert_eq!(
                    tps[0],
                    format!("00-{:032x}-{:016x}-01", 0xABC0000 + i + 1, 0xDEF000 + i + 1),
                    "{codec}: the record's own traceparent is kept: {r}"
                );
            }
            let added: Vec<(String, String)> = r["added"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| {
                    (
                        h[0].as_str().unwrap().to_string(),
                        h[1].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect();
            assert!(
                added
                    .iter()
                    .any(|(k, v)| k == "strait-client-id" && v == "produce_consume.js"),
                "{codec}: the producing client's id is added: {r}"
            );
        }
        let stored = stored_batches(1, &topic, 0);
        assert_eq!(
            stored.iter().map(|(_, n)| n).sum::<u64>() as usize,
            RECORDS,
            "{codec}: {stored:?}"
        );
        // A re-sealed batch replaces the client's only when smaller.
        assert!(
            stored
                .iter()
                .all(|(c, _)| c == target || (c == from && from != "none")),
            "{codec}: the broker stores {target} batches: {stored:?}"
        );
    }
    assert!(
        strait.warnings().is_empty(),
        "unexpected warnings: {:#?}",
        strait.warnings()
    );
}

/// Scenario 2. Two kafkajs members join, commit, one leaves; the survivor
/// owns every partition and resumes exactly at the committed offsets.
#[test]
fn kafkajs_consumer_group_joins_rebalances_commits_and_resumes() {
    let upstream = cluster(1);
    let strait = Strait::quick(&upstream);
    strait.wait_ready();
    let topic = unique("kj-group");
    let out = run(&mut node(
        "group.js",
        &[
            "--bootstrap",
            &strait.bootstrap,
            "--topic",
            &topic,
            "--records",
            "2000",
        ],
    ));
    out.assert_ok("kafkajs consumer group through Strait");
    let s = out.summary();
    println!("kafkajs group: {s}");
    for key in [
        "missing",
        "duplicates",
        "resume_mismatches",
        "offset_mismatches",
    ] {
        assert_eq!(s[key], 0, "{key}: {s}");
    }
    assert_eq!(s["distinct"], 2000);
    let before: Vec<Value> = lines_of(&out, "assignment")
        .into_iter()
        .filter(|l| l["when"] == "before")
        .collect();
    assert_eq!(before.len(), 2, "two members shared the partitions");
    let after = lines_of(&out, "assignment")
        .into_iter()
        .find(|l| l["when"] == "after")
        .expect("an assignment after the leave");
    assert_eq!(after["partitions"], serde_json::json!([0, 1, 2, 3]));
    let resumes = lines_of(&out, "resume");
    assert_eq!(resumes.len(), 4);
    assert!(
        resumes.iter().any(|r| r["committed"] != "-1"),
        "some partition resumed from a commit: {resumes:?}"
    );
    // The lag view of the group this stack committed through Strait equals
    // kafka-consumer-groups.
    let group = s["group"].as_str().expect("the driver names its group");
    strait_integration::lag::assert_lag_as_kafka_says(&strait, &upstream, group, &topic);
    assert!(
        strait.warnings().is_empty(),
        "unexpected warnings: {:#?}",
        strait.warnings()
    );
}

/// Scenario 3. kafkajs's idempotent producer (acks=-1, one request in flight)
/// through the record pipeline (zstd + trace) while the partition leader of
/// a 3-broker cluster is killed and restarted: every record is acknowledged
/// (the producer retries without limit, as kafkajs documents for idempotent
/// producers) and read back once, in the order it was produced.
#[test]
fn kafkajs_idempotent_producer_survives_a_leader_crash_through_the_pipeline() {
    const RECORDS: usize = 20_000;
    let _one_at_a_time = NODES.lock().unwrap_or_else(|e| e.into_inner());
    let upstream = cluster(3);
    let topic = unique("kj-failover");
    let dir = Dir::new("policies");
    write_policy(
        dir.path(),
        "pipeline.toml",
        "rewrite-all",
        &topic,
        "[policy.compress]\ncodec = \"zstd\"\n[policy.trace]\n",
    );
    let strait = Strait::with_policies(&upstream, dir.path());
    create_topic(&upstream, &topic, 1, 3);
    let leader = strait_integration::leader_of(&upstream, &topic);
    let (mut producer, events) = spawn_lines(&mut node(
        "verifiable_producer.js",
        &[
            "--bootstrap",
            &strait.bootstrap,
            "--topic",
            &topic,
            "--max-messages",
            &RECORDS.to_string(),
            "--throughput",
            "5000",
            "--timeout-ms",
            "150000",
        ],
    ));
    let mut acked: HashSet<u64> = HashSet::new();
    let mut send_errors: Vec<String> = Vec::new();
    let mut killed: Option<strait_integration::KilledNode> = None;
    let mut was_killed = false;
    let mut summary = Value::Null;
    let deadline = Instant::now() + Duration::from_secs(180);
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
            _ if ev["type"] == "summary" => summary = ev.clone(),
            _ => {}
        }
        if !was_killed && acked.len() >= RECORDS / 5 {
            eprintln!("killing leader node {leader} after {} acks", acked.len());
            killed = Some(strait_integration::KilledNode::kill(leader));
            was_killed = true;
        }
        if acked.len() >= RECORDS / 2 {
            if let Some(node) = killed.take() {
                eprintln!("restarting node {leader} after {} acks", acked.len());
                node.restart();
            }
        }
    }
    let status = producer.wait().unwrap();
    if let Some(node) = killed.take() {
        node.restart();
    }
    assert!(
        was_killed,
        "the leader was killed mid-run ({} acks)",
        acked.len()
    );
    println!(
        "kafkajs failover: acknowledged {} of {RECORDS}, send errors {} {:?}; {summary}",
        acked.len(),
        send_errors.len(),
        send_errors
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
    );
    let fatal: Vec<&String> = send_errors
        .iter()
        .filter(|e| {
            let e = e.to_ascii_uppercase();
            e.contains("OUT_OF_ORDER") || e.contains("SEQUENCE") || e.contains("PRODUCER_FENCED")
        })
        .collect();
    assert!(fatal.is_empty(), "idempotence errors: {fatal:?}");
    assert!(
        status.success(),
        "the kafkajs producer did not finish: {summary}"
    );
    // The idempotent producer retries without limit (see the driver): no
    // send is given up, every record is acknowledged.
    assert!(send_errors.is_empty(), "send errors: {send_errors:?}");
    assert_eq!(acked.len(), RECORDS, "every record acknowledged: {summary}");

    let out = run(&mut node(
        "read.js",
        &[
            "--bootstrap",
            &strait.bootstrap,
            "--topic",
            &topic,
            "--timeout-ms",
            "60000",
        ],
    ));
    out.assert_ok("kafkajs reads the topic back through Strait");
    let values: Vec<u64> = lines_of(&out, "record")
        .iter()
        .map(|r| r["value"].as_str().unwrap().parse().unwrap())
        .collect();
    let mut counts: HashMap<u64, u32> = HashMap::new();
    for v in &values {
        *counts.entry(*v).or_insert(0) += 1;
    }
    let duplicates: u32 = counts.values().map(|n| n - 1).sum();
    let mut missing: Vec<u64> = acked
        .iter()
        .filter(|v| !counts.contains_key(v))
        .copied()
        .collect();
    missing.sort_unstable();
    let out_of_order = values.windows(2).filter(|w| w[0] >= w[1]).count();
    println!(
        "kafkajs failover read back: {} records, {} distinct, {duplicates} duplicates, {} missing, {out_of_order} out of order",
        values.len(),
        counts.len(),
        missing.len()
    );
    assert!(
        missing.is_empty(),
        "acknowledged records lost: {:?}",
        &missing[..missing.len().min(20)]
    );
    assert_eq!(duplicates, 0, "records written twice");
    assert_eq!(out_of_order, 0, "records out of produce order");
    let stored = stored_batches(3, &topic, 0);
    assert!(
        stored.iter().any(|(c, _)| c == "zstd")
            && stored.iter().all(|(c, n)| c == "zstd" || *n == 1),
        "the broker stores zstd batches: {stored:?}"
    );
}

/// Scenario 4. kafkajs transactions through the pipeline: 30 transactions
/// of 50, every third aborted; kafkajs's read_committed consumer sees each
/// committed record once and no aborted one; the broker holds exactly the
/// committed ones under read_committed.
#[test]
fn kafkajs_transactions_through_rewriting_are_read_committed_once() {
    let upstream = cluster(1);
    let topic = unique("kj-txn");
    create_topic(&upstream, &topic, 1, 1);
    let dir = Dir::new("policies");
    write_policy(
        dir.path(),
        "txn.toml",
        &format!("{topic}-pipeline"),
        &topic,
        &pipeline("zstd"),
    );
    let strait = Strait::with_policies(&upstream, dir.path());
    let out = run(&mut node(
        "transactions.js",
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
        ],
    ));
    out.assert_ok("kafkajs transactions through the pipeline");
    let s = out.summary();
    println!("kafkajs transactions: {s}");
    assert_eq!(
        (s["committed"].as_u64(), s["aborted"].as_u64()),
        (Some(1000), Some(500))
    );
    assert_eq!(s["distinct"], 1000);
    assert_eq!(s["duplicates"], 0);
    assert_eq!(s["aborted_seen"], 0);
    assert_eq!(broker_count(&upstream, &topic, "read_committed"), 1000);
    assert_eq!(
        broker_count(&upstream, &topic, "read_uncommitted"),
        1500,
        "aborted records are on the broker, only hidden"
    );
    let stored = stored_batches(1, &topic, 0);
    assert!(
        !stored.is_empty() && stored.iter().all(|(c, _)| c == "zstd"),
        "the broker stores zstd batches: {stored:?}"
    );
}

/// Scenario 5. Every produce rule against kafkajs: the violating send fails
/// with the rule's error code (kafkajs speaks Produce up to v7, which has no
/// error message field, so its error carries the code's text only), nothing
/// of it reaches the broker, and a compliant kafkajs producer gets through.
/// Then the admin guardrails against kafkajs's admin client: refused with
/// POLICY_VIOLATION, the refused create and delete never reach the broker.
#[test]
fn kafkajs_gets_the_policy_error_and_nothing_reaches_the_broker() {
    let upstream = cluster(1);
    let base = unique("kj-rules");
    let dir = Dir::new("policies");
    const FLAGS: RuleFlags = [
        (&["--acks", "1"], &["--acks", "all"]),
        (&[], &["--idempotent"]),
        HEADER_FLAGS,
        VALUE_SIZE_FLAGS,
        (&["--compression", "gzip"], &["--compression", "zstd"]),
    ];
    for t in write_rule_policies(dir.path(), &base) {
        create_topic(&upstream, &t, 1, 1);
    }
    let guarded = format!("{base}-guarded");
    std::fs::write(
        dir.path().join("guard.toml"),
        format!(
            "[[policy]]\nname = \"{base}-guard\"\ntopics = {{ exact = \"{guarded}\" }}\n[policy.admin]\n\
             partitions = {{ min = 2, max = 6 }}\ndeny_configs = [\"retention.ms\"]\nprotect_delete = true\n"
        ),
    )
    .unwrap();
    let strait = Strait::with_policies(&upstream, dir.path());
    let produce = |topic: &str, flags: &[&str], expect_failure: bool| {
        let mut args = vec![
            "--bootstrap",
            strait.bootstrap.as_str(),
            "--topic",
            topic,
            "--records",
            "5",
        ];
        args.extend_from_slice(flags);
        if expect_failure {
            args.push("--expect-failure");
        }
        run(&mut node("policy_produce.js", &args))
    };
    // Each rule has its own topic: the five run at once.
    let check = |i: usize, (r, (bad, good)): (&ProduceRule, _)| -> String {
        let (rule, topic) = (r.rule, rule_topic(&base, i));
        let out = produce(&topic, bad, true);
        out.assert_ok(&format!("kafkajs violating {rule} is refused"));
        let s = out.summary();
        assert_eq!(s["first_error_type"], r.error, "{rule}: {s}");
        assert_eq!(s["first_code"], r.code, "{rule}: {s}");
        assert_eq!(
            values_on_broker(&upstream, &topic).len(),
            0,
            "{rule}: nothing of the rejected batch reached the broker"
        );
        produce(&topic, good, false).assert_ok(&format!("compliant kafkajs producer for {rule}"));
        assert_eq!(
            values_on_broker(&upstream, &topic).len(),
            5,
            "{rule}: the compliant records arrived"
        );
        format!(
            "{rule}: {} {} \"{}\"",
            s["first_exception"].as_str().unwrap_or(""),
            s["first_error_type"].as_str().unwrap_or(""),
            s["first_message"].as_str().unwrap_or("")
        )
    };
    let table: Vec<String> = std::thread::scope(|scope| {
        let runs: Vec<_> = PRODUCE_RULES
            .iter()
            .zip(FLAGS)
            .enumerate()
            .map(|(i, case)| {
                let check = &check;
                scope.spawn(move || check(i, case))
            })
            .collect();
        runs.into_iter()
            .map(|r| r.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    println!(
        "policy rejections seen by kafkajs:\n  {}",
        table.join("\n  ")
    );

    // The admin guardrails against kafkajs's admin client (its alterConfigs
    // is the legacy AlterConfigs request).
    let admin = |action: &str, extra: &[&str], expect_failure: bool| {
        let mut args = vec![
            "--bootstrap",
            strait.bootstrap.as_str(),
            "--topic",
            &guarded,
            "--action",
            action,
        ];
        args.extend_from_slice(extra);
        if expect_failure {
            args.push("--expect-failure");
        }
        let out = run(&mut node("admin.js", &args));
        out.assert_ok(&format!("kafkajs admin {action} {extra:?}"));
        out.summary()
    };
    // Metadata straight from the broker, never auto-creating the topic.
    let partitions_on_broker = || {
        use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
        use kafka_protocol::messages::{ApiKey, MetadataRequest, MetadataResponse, TopicName};
        use kafka_protocol::protocol::StrBytes;
        let mut w = strait_integration::wire::Wire::connect(&upstream);
        let req = MetadataRequest::default()
            .with_topics(Some(vec![MetadataRequestTopic::default()
                .with_name(Some(TopicName(StrBytes::from_string(guarded.clone()))))]))
            .with_allow_auto_topic_creation(false);
        let m: MetadataResponse = w.call(ApiKey::Metadata, 12, &req);
        let t = &m.topics[0];
        if t.error_code == 3 {
            0 // UNKNOWN_TOPIC_OR_PARTITION
        } else {
            assert_eq!(t.error_code, 0, "metadata of {guarded}");
            t.partitions.len()
        }
    };
    for (action, extra, refused) in [
        (
            "create",
            &["--partitions", "12", "--replication-factor", "1"][..],
            true,
        ),
        (
            "create",
            &["--partitions", "3", "--replication-factor", "1"][..],
            false,
        ),
        ("alter", &["--config", "retention.ms=1000"][..], true),
        (
            "alter",
            &["--config", "max.message.bytes=2000000"][..],
            false,
        ),
        ("delete", &[][..], true),
    ] {
        let s = admin(action, extra, refused);
        if refused {
            assert_eq!(
                (s["first_error_type"].as_str(), s["first_code"].as_i64()),
                (Some("POLICY_VIOLATION"), Some(44)),
                "{action} {extra:?}: {s}"
            );
        }
        if action == "create" && refused {
            assert_eq!(
                partitions_on_broker(),
                0,
                "the refused topic was not created"
            );
        }
    }
    assert_eq!(
        partitions_on_broker(),
        3,
        "the compliant topic exists as created: the refused delete never reached the broker"
    );
}

/// kafkajs's large-records driver (`large_records.js`, the JSON lines and
/// values of the Java and librdkafka twins).
fn kafkajs_large(mode: &str, args: &[&str]) -> std::process::Command {
    let mut all = vec![mode];
    all.extend_from_slice(args);
    node("large_records.js", &all)
}

/// Produces `count` values of `size` bytes with kafkajs and reads them back
/// with kafkajs (and, when `cross`, with librdkafka too) through Strait;
/// checks every value and that the broker stored small batches only.
fn large_round_trip(
    strait: &Strait,
    upstream: &str,
    prefix: &str,
    count: u32,
    size: u64,
    cross: bool,
) -> String {
    let topic = unique(prefix);
    create_topic(upstream, &topic, 1, 1);
    let (count_s, size_s) = (count.to_string(), size.to_string());
    let started = Instant::now();
    let p = run(&mut kafkajs_large(
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
    p.assert_ok(&format!("kafkajs produces {count} x {size} bytes"));
    assert!(produce_errors(&p).is_empty(), "{:?}", produce_errors(&p));
    let consume_args = [
        "--bootstrap",
        strait.bootstrap.as_str(),
        "--topic",
        &topic,
        "--expect",
        &count_s,
    ];
    let c = run(&mut kafkajs_large("consume", &consume_args));
    c.assert_ok("kafkajs consumes");
    assert_round_trip(&produced(&p), &consumed(&c), "");
    println!(
        "{prefix}: kafkajs {count} x {size} bytes produced in {} ms, consumed in {} ms",
        p.summary()["elapsed_ms"],
        c.summary()["elapsed_ms"]
    );
    if cross {
        let c = run(&mut driver(Stack::Librdkafka, "consume", &consume_args));
        c.assert_ok("librdkafka consumes what kafkajs produced");
        assert_round_trip(&produced(&p), &consumed(&c), "");
    }
    let stored = dump_batches(1, &topic, 0);
    assert_eq!(
        stored.iter().map(|b| b.count).sum::<u64>(),
        u64::from(count)
    );
    assert!(
        stored.iter().all(|b| b.size < 4096),
        "the broker stored only small batches: {stored:?}"
    );
    println!("{prefix}: round trip in {:?}", started.elapsed());
    topic
}

/// Scenario 6 (three tests, like the Java and librdkafka cells): 5 MiB and
/// 50 MiB values from kafkajs, no size setting changed in the client,
/// byte-identical (SHA-256) when kafkajs reads them back; librdkafka reads
/// kafkajs's 5 MiB ones and kafkajs the Java client's. Claim-checks in a
/// local directory:
#[test]
fn kafkajs_large_records_round_trip_5_and_50_mib_claim_checks_in_a_directory() {
    let upstream = cluster(1);
    let (strait, objects, _config) = strait_with_dir(&upstream, "kj-cc-dir.", &["claim-check"]);
    large_round_trip(&strait, &upstream, "kj-cc-dir.five", 2, 5 * MIB, true);
    let fifty = large_round_trip(&strait, &upstream, "kj-cc-dir.fifty", 1, 50 * MIB, false);
    // The other way across stacks: kafkajs reads what the Java client wrote.
    let topic = unique("kj-cc-dir.java");
    create_topic(&upstream, &topic, 1, 1);
    let size = (5 * MIB).to_string();
    let args = ["--bootstrap", strait.bootstrap.as_str(), "--topic", &topic];
    let p = run(&mut driver(
        Stack::Java,
        "produce",
        &[&args[..], &["--count", "2", "--size", &size]].concat(),
    ));
    p.assert_ok("Java produces 2 x 5 MiB");
    let c = run(&mut kafkajs_large(
        "consume",
        &[&args[..], &["--expect", "2"]].concat(),
    ));
    c.assert_ok("kafkajs consumes what Java produced");
    assert_round_trip(&produced(&p), &consumed(&c), "");
    let names: Vec<_> = std::fs::read_dir(objects.path().join("strait").join(&fifty))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 1, "one object for the 50 MiB value: {names:?}");
    assert_eq!(names[0].len(), 64, "named by its SHA-256: {names:?}");
}

/// Scenario 6: claim-checks in an S3-compatible server.
#[test]
fn kafkajs_large_records_round_trip_5_and_50_mib_claim_checks_in_s3() {
    let upstream = cluster(1);
    let s3 = S3Server::start("kj-claims");
    let (strait, _config) = strait_with_store(
        &upstream,
        &policy("kj-cc-s3.", &["claim-check"], ""),
        StoreKind::S3(&s3),
        "",
    );
    large_round_trip(&strait, &upstream, "kj-cc-s3.five", 2, 5 * MIB, false);
    large_round_trip(&strait, &upstream, "kj-cc-s3.fifty", 1, 50 * MIB, false);
    let stored = s3.objects();
    assert_eq!(stored.len(), 3, "one object per value: {stored:?}");
    assert!(
        stored.iter().all(|k| k.starts_with("strait/kj-cc-s3.")),
        "{stored:?}"
    );
}

/// Scenario 6: chunks in a companion topic.
#[test]
fn kafkajs_large_records_round_trip_5_and_50_mib_in_chunks() {
    let upstream = cluster(1);
    let (strait, objects, _config) = strait_with_dir(&upstream, "kj-chunked.", &["chunk"]);
    large_round_trip(&strait, &upstream, "kj-chunked.five", 2, 5 * MIB, false);
    let fifty = large_round_trip(&strait, &upstream, "kj-chunked.fifty", 1, 50 * MIB, false);
    let chunks = dump_batches(1, &format!("{fifty}.strait-chunks"), 0);
    assert_eq!(
        chunks.iter().map(|b| b.count).sum::<u64>(),
        100,
        "50 MiB in 512 KiB chunks"
    );
    assert!(
        std::fs::read_dir(objects.path()).map_or(true, |mut d| d.next().is_none()),
        "chunking needs no object store"
    );
}

/// Scenario 7. kafkajs over mTLS through Strait: with the client certificate
/// a full round trip; without one, and with one from another CA, refused
/// and nothing acknowledged.
#[test]
fn kafkajs_over_mtls_and_refused_without_a_valid_certificate() {
    let pki = Pki::new();
    let upstream = cluster(1);
    let toml = pki.listener_toml(&upstream, true);
    let (mut strait, _config) = Strait::with_config(&toml);
    strait.wait_ready();
    let client = |cert: Option<&str>, expect_failure: bool| {
        let topic = unique("kj-tls");
        let ca = pki.path("ca.crt").display().to_string();
        let (crt, key) = cert.map_or((String::new(), String::new()), |c| {
            (
                pki.path(&format!("{c}.crt")).display().to_string(),
                pki.path(&format!("{c}.key")).display().to_string(),
            )
        });
        let mut args = vec![
            "--bootstrap",
            strait.bootstrap.as_str(),
            "--topic",
            &topic,
            "--records",
            "200",
            "--ca-pem",
            &ca,
            "--timeout-ms",
            "30000",
        ];
        if cert.is_some() {
            args.extend(["--cert-pem", crt.as_str(), "--key-pem", key.as_str()]);
        }
        if expect_failure {
            args.push("--expect-failure");
        }
        run(&mut node("produce_consume.js", &args))
    };
    let out = client(Some("client"), false);
    out.assert_ok("kafkajs over mTLS");
    assert_eq!(out.summary()["verified"], 200);

    let refusals = [
        (None, "no client certificate"),
        (Some("intruder"), "a stranger CA's certificate"),
    ];
    // Both refusals at once (each waits out kafkajs's connection retries).
    let outs: Vec<Output> = std::thread::scope(|scope| {
        let client = &client;
        let runs: Vec<_> = refusals
            .iter()
            .map(|(cert, _)| scope.spawn(move || client(*cert, true)))
            .collect();
        runs.into_iter()
            .map(|r| r.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    for ((_, what), out) in refusals.iter().zip(outs) {
        out.assert_ok(&format!("kafkajs with {what} is refused"));
        let s = out.summary();
        println!("kafkajs with {what}: {s}");
        assert_eq!(s["acked"], 0, "{s}");
        assert!(
            s["first_message"]
                .as_str()
                .is_some_and(|m| m.contains("alert")),
            "the TLS alert Strait sent reaches the client: {s}"
        );
    }
    let line = strait.wait_log("a TLS refusal log line", |l| {
        message(l) == "TLS handshake failed; connection refused"
    });
    assert!(field(&line, "client").starts_with("127.0.0.1:"), "{line}");
}

/// The drivers' contract on bad input: a usage error is a failing summary
/// with exit 2 before any connection; an unreachable bootstrap ends within
/// the driver's timeout in a failing summary naming the error, exit 1.
#[test]
fn kafkajs_drivers_report_bad_input_in_their_summary() {
    let nowhere = "127.0.0.1:1";
    let usage: [(&str, Vec<&str>); 8] = [
        ("produce_consume.js", vec!["--topic", "t", "--records", "1"]),
        (
            "produce_consume.js",
            vec![
                "--bootstrap",
                nowhere,
                "--topic",
                "t",
                "--records",
                "1",
                "--compression",
                "brotli",
            ],
        ),
        ("large_records.js", vec![]),
        (
            "large_records.js",
            vec![
                "produce",
                "--bootstrap",
                nowhere,
                "--topic",
                "t",
                "--count",
                "1",
            ],
        ),
        (
            "policy_produce.js",
            vec![
                "--bootstrap",
                nowhere,
                "--topic",
                "t",
                "--records",
                "1",
                "--acks",
                "2",
            ],
        ),
        (
            "group.js",
            vec!["--bootstrap", nowhere, "--topic", "t", "--records", "3"],
        ),
        (
            "read.js",
            vec!["--bootstrap", nowhere, "--topic", "t", "--bogus"],
        ),
        (
            "verifiable_producer.js",
            vec![
                "--bootstrap",
                nowhere,
                "--topic",
                "t",
                "--max-messages",
                "x",
            ],
        ),
    ];
    for (script, args) in &usage {
        assert_usage_error(&mut node(script, args), &format!("{script} {args:?}"));
    }
    // Nothing listens on a privileged port: the connection never comes up.
    let started = Instant::now();
    let out = run(&mut node(
        "policy_produce.js",
        &[
            "--bootstrap",
            nowhere,
            "--topic",
            "t",
            "--records",
            "3",
            "--timeout-ms",
            "4000",
        ],
    ));
    let s = out.summary();
    assert!(!out.ok, "{s}");
    assert_eq!(s["type"], "summary", "{}", out.stdout);
    assert!(
        s["error"].as_str().is_some_and(|e| e.contains("connect")),
        "{s}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(19),
        "bounded by --timeout-ms and the watchdog: {:?}",
        started.elapsed()
    );
}
