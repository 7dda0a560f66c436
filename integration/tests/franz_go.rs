//! franz-go (github.com/twmb/franz-go, pure Go) through Strait against real
//! brokers: one test per conformance scenario, each driving the
//! `conformance/go` driver (`strait-franz`) as a subprocess.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::Value;
use strait_integration::franz_go::{create_topic, franz, stored_batches, Pki};
use strait_integration::large::{
    assert_round_trip, consumed, driver, metric, policy, produce_errors, produced, strait_with_dir,
    strait_with_store, Stack, StoreKind,
};
use strait_integration::produce_rules::{
    rule_policy, write_rule_policies, RuleFlags, HEADER_FLAGS, PRODUCE_RULES, VALUE_SIZE_FLAGS,
};
use strait_integration::tempdir::Dir;
use strait_integration::{
    assert_usage_error, cluster, field, message, run, spawn_lines, unique, KilledNode, Output,
    S3Server, Strait,
};

const MIB: u64 = 1 << 20;

/// The 3-broker tests kill and restart brokers of the one shared cluster:
/// one at a time.
static NODES: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Strait with a policy per topic: `[policy.compress] codec` (with
/// `recompress = true`: batches the client compressed in another codec are
/// re-compressed too, and franz-go compresses in snappy by default) and
/// `[policy.trace]` (a traceparent added to every record without one, and
/// the producing client's id as a header).
fn pipeline_strait(upstream: &str, topics: &[(&str, &str)]) -> (Strait, Dir) {
    let dir = Dir::new("fg-policies");
    for (i, (topic, codec)) in topics.iter().enumerate() {
        std::fs::write(
            dir.path().join(format!("p{i}.toml")),
            format!(
                "[[policy]]\nname = \"{topic}-pipeline\"\ntopics = {{ exact = \"{topic}\" }}\n\
                 [policy.compress]\ncodec = \"{codec}\"\nrecompress = true\n\
                 [policy.trace]\nclient_id_header = \"strait-client-id\"\n"
            ),
        )
        .unwrap();
    }
    let strait = Strait::with_policies(upstream, dir.path());
    (strait, dir)
}

fn records_read(upstream: &str, topic: &str, isolation: &str) -> u64 {
    let out = run(&mut franz(
        "read",
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
    out.assert_ok(&format!(
        "franz-go read of {topic} ({isolation}) on the broker"
    ));
    out.summary()["count"].as_u64().unwrap()
}

/// Scenario 1. franz-go produces uncompressed batches, and zstd and lz4
/// batches (so Strait decodes franz-go's compression too); Strait re-seals
/// them in each topic's codec (zstd, lz4, snappy, gzip) with traceparents;
/// franz-go's group consumer reads every record back byte-identical (key,
/// value, headers in order, then Strait's additions) at the offset its
/// produce result gave. The broker's log holds only batches in the codec.
#[test]
fn franz_go_round_trip_through_recompression_and_traceparents() {
    const RECORDS: u64 = 300;
    let upstream = cluster(1);
    let base = unique("fg-pipe");
    // (policy codec, franz-go's own batch compression)
    let cases = [
        ("zstd", "none"),
        ("lz4", "zstd"),
        ("snappy", "none"),
        ("gzip", "lz4"),
    ];
    let topics: Vec<String> = cases
        .iter()
        .map(|(codec, own)| format!("{base}-{codec}-from-{own}"))
        .collect();
    for t in &topics {
        create_topic(&upstream, t, 1, 1);
    }
    let policies: Vec<(&str, &str)> = topics
        .iter()
        .zip(cases)
        .map(|(t, (codec, _))| (t.as_str(), codec))
        .collect();
    let (strait, _dir) = pipeline_strait(&upstream, &policies);
    for (topic, (codec, own)) in topics.iter().zip(cases) {
        let out = run(&mut franz(
            "produce-consume",
            &[
                "--bootstrap",
                &strait.bootstrap,
                "--topic",
                topic,
                "--records",
                &RECORDS.to_string(),
                "--compression",
                own,
                "--trace-header",
                "traceparent",
                "--own-traceparent-every",
                "10",
            ],
        ));
        out.assert_ok(&format!(
            "franz-go ({own}) round trip through the {codec} pipeline"
        ));
        let s = out.summary();
        println!("franz-go {own} -> {codec}: {s}");
        assert_eq!(s["verified"].as_u64(), Some(RECORDS), "{s}");
        assert_eq!(
            (s["mismatches"].as_u64(), s["duplicates"].as_u64()),
            (Some(0), Some(0))
        );
        let stored = stored_batches(&upstream, topic, 0);
        assert_eq!(
            stored.iter().map(|b| b.count).sum::<u64>(),
            RECORDS,
            "{codec}: {stored:?}"
        );
        assert!(
            stored.iter().all(|b| b.codec == codec),
            "the broker stores {codec} batches: {stored:?}"
        );
    }
    assert!(strait.warnings().is_empty(), "{:#?}", strait.warnings());
}

/// Scenario 2. Two franz-go group members (cooperative-sticky, the
/// client's default) join, share the 4 partitions, consume and commit;
/// one leaves; the survivor owns every partition, resumes exactly at the
/// committed offsets and reads to the end: every record once, the
/// group's committed offsets at the end offsets.
#[test]
fn franz_go_consumer_group_joins_rebalances_commits_and_resumes() {
    let upstream = cluster(1);
    let strait = Strait::quick(&upstream);
    strait.wait_ready();
    let topic = unique("fg-group");
    create_topic(&upstream, &topic, 4, 1);
    let out = run(&mut franz(
        "group",
        &[
            "--bootstrap",
            &strait.bootstrap,
            "--topic",
            &topic,
            "--records",
            "2000",
        ],
    ));
    out.assert_ok("franz-go consumer group through Strait");
    let lines = out.json_lines();
    let assigned = |when: &str, member: u64| -> Vec<u64> {
        lines
            .iter()
            .find(|l| l["type"] == "assignment" && l["when"] == when && l["member"] == member)
            .and_then(|l| l["partitions"].as_array())
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default()
    };
    let (a, b) = (assigned("before", 1), assigned("before", 2));
    assert!(
        !a.is_empty() && !b.is_empty(),
        "both members joined: {a:?} {b:?}"
    );
    let mut all: Vec<u64> = a.iter().chain(&b).copied().collect();
    all.sort();
    assert_eq!(all, [0, 1, 2, 3], "disjoint shares of every partition");
    assert_eq!(assigned("after", 1), [0, 1, 2, 3], "the survivor owns all");
    let s = out.summary();
    println!("franz-go group: {s}");
    for k in [
        "missing",
        "duplicates",
        "bad_values",
        "resume_mismatches",
        "offset_mismatches",
    ] {
        assert_eq!(s[k].as_u64(), Some(0), "{k}: {s}");
    }
    // The lag view of the group this stack committed through Strait equals
    // kafka-consumer-groups.
    let group = s["group"].as_str().expect("the driver names its group");
    strait_integration::lag::assert_lag_as_kafka_says(&strait, &upstream, group, &topic);
    assert!(s["member2_consumed"].as_u64() > Some(0), "{s}");
    assert!(strait.warnings().is_empty(), "{:#?}", strait.warnings());
}

/// Scenario 3. franz-go's idempotent producer (its defaults: idempotent,
/// acks=all, unlimited retries until the record delivery timeout, which the
/// driver sets to most of the run) through the record pipeline (every batch
/// re-sealed in zstd with trace headers) on a 3-broker cluster; the
/// partition leader is SIGKILLed after 4,000 acknowledgements and restarted
/// after 12,000. No send fails: every record is acknowledged, 8,000 of them
/// while the old leader is down, and read back through Strait exactly once
/// and in order.
#[test]
fn franz_go_idempotent_producer_through_the_record_pipeline_survives_a_leader_crash() {
    const RECORDS: usize = 24_000;
    let _one_at_a_time = NODES.lock().unwrap_or_else(|e| e.into_inner());
    let upstream = cluster(3);
    let topic = unique("fg-failover");
    let (strait, _dir) = pipeline_strait(&upstream, &[(topic.as_str(), "zstd")]);
    let leader = create_topic(&upstream, &topic, 1, 3)[0];
    let (mut producer, events) = spawn_lines(&mut franz(
        "verifiable-produce",
        &[
            "--bootstrap",
            &strait.bootstrap,
            "--topic",
            &topic,
            "--max-messages",
            &RECORDS.to_string(),
            "--throughput",
            "4000",
            "--timeout-ms",
            "150000",
        ],
    ));
    let mut acked: HashSet<u64> = HashSet::new();
    let mut send_errors: Vec<String> = Vec::new();
    let mut killed: Option<KilledNode> = None;
    let (mut was_killed, mut summary) = (false, Value::Null);
    let (mut acked_at_kill, mut acked_while_down) = (0, None);
    let deadline = Instant::now() + Duration::from_secs(200);
    while let Ok(ev) = events.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        match ev["name"].as_str() {
            Some("producer_send_success") => {
                acked.insert(ev["value"].as_str().unwrap().parse().unwrap());
            }
            Some("producer_send_error") => {
                send_errors.push(format!("{}: {}", ev["exception"], ev["message"]))
            }
            _ if ev["type"] == "summary" => summary = ev.clone(),
            _ => {}
        }
        if !was_killed && acked.len() >= 4_000 {
            eprintln!("killing leader node {leader} after {} acks", acked.len());
            killed = Some(KilledNode::kill(leader));
            was_killed = true;
            acked_at_kill = acked.len();
        }
        if acked.len() >= 12_000 {
            if let Some(k) = killed.take() {
                eprintln!("restarting node {leader} after {} acks", acked.len());
                acked_while_down = Some(acked.len() - acked_at_kill);
                k.restart();
            }
        }
    }
    let status = producer.wait().unwrap();
    drop(killed.take());
    assert!(
        was_killed,
        "the leader was killed mid-run ({} acks)",
        acked.len()
    );
    assert!(
        status.success(),
        "franz-go producer exited with {status}: {summary}"
    );
    // Retries without limit (franz-go's default) until the delivery
    // timeout, which outlasts the failover: no send is given up, and the
    // producer was acknowledged while the old leader was down (restarted
    // mid-run after 8,000 more acknowledgements, not at the end).
    assert!(
        send_errors.is_empty(),
        "send errors: {} {:?}",
        send_errors.len(),
        send_errors
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
    );
    assert!(
        acked_while_down.is_some_and(|n| n >= 8_000),
        "acknowledged while the leader was down: {acked_while_down:?} (want 8,000)"
    );
    assert_eq!(acked.len(), RECORDS, "every record acknowledged: {summary}");

    // Read back through Strait: values in offset order.
    let out = run(&mut franz(
        "read",
        &[
            "--bootstrap",
            &strait.bootstrap,
            "--topic",
            &topic,
            "--timeout-ms",
            "120000",
        ],
    ));
    out.assert_ok("franz-go read through Strait");
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
    println!(
        "franz-go failover through the pipeline: produced {RECORDS}, acknowledged {}, send errors {} {:?}, \
         read {} ({} distinct), acknowledged but not read {missing}, duplicates {duplicates}, \
         out of order {out_of_order} (leader node {leader} killed and restarted)",
        acked.len(),
        send_errors.len(),
        send_errors.iter().take(5).collect::<Vec<_>>(),
        values.len(),
        seen.len(),
    );
    let fatal: Vec<&String> = send_errors
        .iter()
        .filter(|e| {
            e.contains("OUT_OF_ORDER") || e.contains("DUPLICATE_SEQUENCE") || e.contains("loss")
        })
        .collect();
    assert!(fatal.is_empty(), "idempotence errors: {fatal:?}");
    assert_eq!(missing, 0, "acknowledged records were lost");
    assert_eq!(
        duplicates, 0,
        "rewritten idempotent batches were duplicated"
    );
    assert_eq!(
        out_of_order, 0,
        "records out of produce order in the partition"
    );
    let stored = stored_batches(&upstream, &topic, 0);
    // A batch of one small record may stay uncompressed: the compress stage
    // keeps a batch as it came when zstd would not make it smaller.
    assert!(
        stored.iter().any(|b| b.codec == "zstd")
            && stored.iter().all(|b| b.codec == "zstd" || b.count == 1),
        "the broker stores zstd batches: {stored:?}"
    );
}

/// Scenario 4. franz-go's transactional producer through the pipeline
/// (zstd + trace): 30 transactions of 50 records, every third aborted.
/// Read committed through Strait: each committed record once with a
/// traceparent, no aborted one; read uncommitted: the aborted records are in
/// the log. On the broker: 1000 committed records.
#[test]
fn franz_go_transactions_through_rewriting_are_read_committed_once() {
    let upstream = cluster(1);
    let topic = unique("fg-txn");
    create_topic(&upstream, &topic, 1, 1);
    let (strait, _dir) = pipeline_strait(&upstream, &[(topic.as_str(), "zstd")]);
    let out = run(&mut franz(
        "transactions",
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
    out.assert_ok("franz-go transactions through the pipeline");
    let s = out.summary();
    println!("franz-go transactions through the pipeline: {s}");
    assert_eq!(
        (s["committed"].as_u64(), s["aborted"].as_u64()),
        (Some(1000), Some(500))
    );
    assert_eq!(s["distinct"].as_u64(), Some(1000), "{s}");
    assert_eq!(s["aborted_in_log"].as_u64(), Some(500), "{s}");
    assert_eq!(records_read(&upstream, &topic, "read_committed"), 1000);
    let stored = stored_batches(&upstream, &topic, 0);
    assert!(
        !stored.is_empty() && stored.iter().all(|b| b.codec == "zstd"),
        "the broker stores zstd batches: {stored:?}"
    );
}

fn policy_produce(bootstrap: &str, topic: &str, extra: &[&str], expect_failure: bool) -> Output {
    let mut args = vec!["--bootstrap", bootstrap, "--topic", topic, "--records", "5"];
    args.extend_from_slice(extra);
    if expect_failure {
        args.push("--expect-failure");
    }
    run(&mut franz("policy-produce", &args))
}

/// Scenario 5. Every produce rule against franz-go: the violating producer
/// gets the rule's error code (POLICY_VIOLATION 44 / INVALID_RECORD 87) for
/// every record and nothing reaches the broker; the compliant producer's
/// records arrive. franz-go does not surface a produce response's
/// error_message (only the code's name), so the rule name is not asserted
/// in its error; Strait's `strait_policy_decisions_total` counts each
/// refusal under the policy's and the rule's name.
#[test]
fn franz_go_gets_the_policy_error_for_every_produce_rule() {
    let upstream = cluster(1);
    let base = unique("fg-rules");
    let dir = Dir::new("fg-policies");
    const FLAGS: RuleFlags = [
        (&["--acks", "1", "--no-idempotence"], &["--acks", "all"]),
        (&["--no-idempotence"], &[]),
        HEADER_FLAGS,
        VALUE_SIZE_FLAGS,
        (&["--compression", "gzip"], &["--compression", "zstd"]),
    ];
    let topics = write_rule_policies(dir.path(), &base);
    for t in &topics {
        create_topic(&upstream, t, 1, 1);
    }
    let strait = Strait::with_policies(&upstream, dir.path());
    let mut table = Vec::new();
    for (i, (r, (bad, good))) in PRODUCE_RULES.iter().zip(FLAGS).enumerate() {
        let (rule, topic) = (r.rule, &topics[i]);
        let out = policy_produce(&strait.bootstrap, topic, bad, true);
        out.assert_ok(&format!("franz-go violating {rule}"));
        let s = out.summary();
        assert_eq!(
            s["failed"].as_u64(),
            Some(5),
            "{rule}: every record refused: {s}"
        );
        assert_eq!(s["first_name"], r.error, "{rule}: {s}");
        assert_eq!(s["first_code"], r.code, "{rule}: {s}");
        assert_eq!(
            records_read(&upstream, topic, "read_uncommitted"),
            0,
            "{rule}: nothing of the rejected batches reached the broker"
        );
        let policy_label = format!("policy=\"{}\"", rule_policy(&base, i));
        let rule_label = format!("rule=\"{rule}\"");
        assert!(
            metric(
                &strait,
                "strait_policy_decisions_total",
                &[&policy_label, &rule_label, "outcome=\"rejected\""]
            ) >= 1.0,
            "{rule}: the refusal is counted under the policy and rule"
        );
        policy_produce(&strait.bootstrap, topic, good, false)
            .assert_ok(&format!("compliant franz-go producer for {rule}"));
        assert_eq!(
            records_read(&upstream, topic, "read_uncommitted"),
            5,
            "{rule}: the compliant records arrived"
        );
        table.push(format!(
            "{rule}: franz-go \"{}\"",
            s["first_error"].as_str().unwrap_or("")
        ));
    }
    println!(
        "policy rejections seen by franz-go:\n  {}",
        table.join("\n  ")
    );
}

/// Scenario 5, admin side. franz-go's admin requests (kmsg, what kadm
/// wraps) against Strait's guardrails: each refusal carries
/// POLICY_VIOLATION and an error message naming the policy and the rule,
/// which franz-go hands to the application; refused changes never reach
/// the broker (no topic after the refused create, the protected topic
/// still there after the refused delete), compliant ones do.
#[test]
fn franz_go_admin_requests_get_the_guardrail_named() {
    let upstream = cluster(1);
    let base = unique("fg-guard");
    let dir = Dir::new("fg-policies");
    std::fs::write(
        dir.path().join("guard.toml"),
        format!(
            "[[policy]]\nname = \"{base}-guarded\"\ntopics = {{ prefix = \"{base}\" }}\n[policy.admin]\n\
             partitions = {{ min = 2, max = 6 }}\ndeny_configs = [\"retention.ms\"]\nprotect_delete = true\n"
        ),
    )
    .unwrap();
    let strait = Strait::with_policies(&upstream, dir.path());
    let topic = format!("{base}-t");
    let admin = |args: &[&str], expect_failure: bool| {
        let mut a = vec!["--bootstrap", strait.bootstrap.as_str(), "--topic", &topic];
        a.extend_from_slice(args);
        if expect_failure {
            a.push("--expect-failure");
        }
        run(&mut franz("admin", &a))
    };
    let refused = |args: &[&str], rule: &str| {
        let out = admin(args, true);
        out.assert_ok(&format!("{args:?} is refused"));
        let s = out.summary();
        assert_eq!(s["first_name"], "POLICY_VIOLATION", "{s}");
        let message = s["first_message"].as_str().unwrap_or_default();
        assert!(
            message.contains(rule) && message.contains(&format!("{base}-guarded")),
            "the message names the policy and {rule}: {s}"
        );
        message.to_string()
    };
    let mut seen = vec![refused(
        &[
            "--action",
            "create",
            "--partitions",
            "12",
            "--replication-factor",
            "1",
        ],
        "admin.partitions",
    )];
    let read = run(&mut franz(
        "read",
        &["--bootstrap", &upstream, "--topic", &topic],
    ));
    read.assert_ok("read on the broker");
    assert_eq!(
        read.summary()["topic_exists"],
        false,
        "no topic was created"
    );
    admin(
        &[
            "--action",
            "create",
            "--partitions",
            "3",
            "--replication-factor",
            "1",
        ],
        false,
    )
    .assert_ok("compliant create");
    for action in ["incremental-alter", "alter"] {
        seen.push(refused(
            &["--action", action, "--config", "retention.ms=1000"],
            "admin.deny_configs",
        ));
    }
    admin(
        &[
            "--action",
            "incremental-alter",
            "--config",
            "segment.ms=3600000",
        ],
        false,
    )
    .assert_ok("allowed config");
    seen.push(refused(&["--action", "delete"], "admin.protect_delete"));
    // The topic is still there: creating it again is the broker's TOPIC_ALREADY_EXISTS.
    let again = admin(
        &[
            "--action",
            "create",
            "--partitions",
            "3",
            "--replication-factor",
            "1",
        ],
        true,
    );
    again.assert_ok("the protected topic still exists");
    assert_eq!(again.summary()["first_name"], "TOPIC_ALREADY_EXISTS");
    println!(
        "guardrail messages franz-go returns:\n  {}",
        seen.join("\n  ")
    );
}

/// Produces `count` values of `size` bytes with `producer` and reads them
/// back with `consumer` through Strait on a fresh one-partition topic;
/// checks every value (SHA-256, size, key, header) and that the broker
/// stored only small batches. Returns the topic.
fn large_round_trip(
    strait: &Strait,
    upstream: &str,
    prefix: &str,
    (producer, consumer): (Option<Stack>, Option<Stack>),
    count: u32,
    size: u64,
) -> String {
    let topic = unique(prefix);
    create_topic(upstream, &topic, 1, 1);
    let (count_s, size_s) = (count.to_string(), size.to_string());
    let cmd = |stack: Option<Stack>, mode: &str, args: &[&str]| match stack {
        Some(s) => driver(s, mode, args),
        None => {
            let mut all = vec![mode];
            all.extend_from_slice(args);
            franz("large-records", &all)
        }
    };
    let common = [
        "--bootstrap",
        strait.bootstrap.as_str(),
        "--topic",
        topic.as_str(),
    ];
    let mut pargs = common.to_vec();
    pargs.extend(["--count", &count_s, "--size", &size_s]);
    let p = run(&mut cmd(producer, "produce", &pargs));
    let name = |s: Option<Stack>| s.map_or("franz-go".to_string(), |s| format!("{s:?}"));
    p.assert_ok(&format!(
        "{} produces {count} x {size} bytes",
        name(producer)
    ));
    assert!(produce_errors(&p).is_empty(), "{:?}", produce_errors(&p));
    let mut cargs = common.to_vec();
    cargs.extend(["--expect", &count_s]);
    let c = run(&mut cmd(consumer, "consume", &cargs));
    c.assert_ok(&format!("{} consumes", name(consumer)));
    let (p, c) = (produced(&p), consumed(&c));
    assert_eq!(p.len(), count as usize);
    assert_round_trip(&p, &c, "");
    let stored = stored_batches(upstream, &topic, 0);
    assert_eq!(
        stored.iter().map(|b| b.count).sum::<u64>(),
        u64::from(count)
    );
    assert!(
        stored.iter().all(|b| b.size < 4096),
        "the broker stored only small batches: {stored:?}"
    );
    topic
}

/// Scenario 6. 5 MiB and 50 MiB values produced and consumed by franz-go
/// (only ProducerBatchMaxBytes raised; consumer defaults) through Strait's
/// claim-check (a local directory, an S3-compatible server) and chunking,
/// byte-identical (SHA-256 of the shared value spec); and across stacks
/// with librdkafka (franz-go to librdkafka and back, 5 MiB).
#[test]
fn franz_go_large_values_round_trip_by_claim_check_and_chunking() {
    let upstream = cluster(1);
    let fg = (None, None);
    let cross = [
        (None, Some(Stack::Librdkafka)),
        (Some(Stack::Librdkafka), None),
    ];

    let (strait, objects, _config) = strait_with_dir(&upstream, "fg-cc-dir.", &["claim-check"]);
    large_round_trip(&strait, &upstream, "fg-cc-dir.five", fg, 2, 5 * MIB);
    let fifty = large_round_trip(&strait, &upstream, "fg-cc-dir.fifty", fg, 1, 50 * MIB);
    for stacks in cross {
        large_round_trip(&strait, &upstream, "fg-cc-dir.x", stacks, 1, 5 * MIB);
    }
    let names: Vec<_> = std::fs::read_dir(objects.path().join("strait").join(&fifty))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        names.len() == 1 && names[0].len() == 64,
        "one object named by its SHA-256: {names:?}"
    );
    assert_eq!(
        metric(&strait, "strait_large_objects_total", &["op=\"written\""]),
        5.0
    );
    drop(strait);

    let s3 = S3Server::start("strait-fg-claims");
    let (strait, _config) = strait_with_store(
        &upstream,
        &policy("fg-cc-s3.", &["claim-check"], ""),
        StoreKind::S3(&s3),
        "",
    );
    large_round_trip(&strait, &upstream, "fg-cc-s3.five", fg, 2, 5 * MIB);
    large_round_trip(&strait, &upstream, "fg-cc-s3.fifty", fg, 1, 50 * MIB);
    let objects = s3.objects();
    assert_eq!(objects.len(), 3, "one object per value: {objects:?}");
    assert!(
        objects.iter().all(|k| k.starts_with("strait/fg-cc-s3.")),
        "{objects:?}"
    );
    drop(strait);

    let (strait, objects, _config) = strait_with_dir(&upstream, "fg-chunked.", &["chunk"]);
    large_round_trip(&strait, &upstream, "fg-chunked.five", fg, 2, 5 * MIB);
    let fifty = large_round_trip(&strait, &upstream, "fg-chunked.fifty", fg, 1, 50 * MIB);
    large_round_trip(&strait, &upstream, "fg-chunked.x", cross[0], 1, 5 * MIB);
    let chunks = stored_batches(&upstream, &format!("{fifty}.strait-chunks"), 0);
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

fn tls_round_trip(strait: &Strait, pki: &Pki, cert: Option<&str>, expect_failure: bool) -> Output {
    let topic = unique("fg-tls");
    if !expect_failure {
        create_topic(&cluster(1), &topic, 1, 1);
    }
    let ca = pki.path("ca.crt").display().to_string();
    let (crt, key) = cert.map_or((String::new(), String::new()), |n| {
        (
            pki.path(&format!("{n}.crt")).display().to_string(),
            pki.path(&format!("{n}.key")).display().to_string(),
        )
    });
    let mut args = vec![
        "--bootstrap",
        &strait.bootstrap,
        "--topic",
        &topic,
        "--records",
        "200",
        "--ca-pem",
        &ca,
        "--timeout-ms",
        // A refusal ends in the client's delivery timeout (franz-go retries
        // connection errors until then): a short one.
        if expect_failure { "8000" } else { "30000" },
    ];
    if cert.is_some() {
        args.extend(["--cert-pem", &crt, "--key-pem", &key]);
    }
    if expect_failure {
        args.push("--expect-failure");
    }
    run(&mut franz("produce-consume", &args))
}

/// Scenario 7. franz-go over TLS (server certificate verified against the
/// CA and the host) and mTLS through Strait: a full produce / consume round
/// trip; without a client certificate, or with one from another CA, the
/// handshake is refused and nothing is acknowledged.
#[test]
fn franz_go_over_tls_and_mtls_and_refused_without_a_valid_certificate() {
    let pki = Pki::new();
    let upstream = cluster(1);
    let (tls, _c1) = Strait::with_config(&pki.listener_toml(&upstream, false));
    tls.wait_ready();
    let out = tls_round_trip(&tls, &pki, None, false);
    out.assert_ok("franz-go over TLS");
    assert_eq!(out.summary()["verified"], 200);

    let (mut mtls, _c2) = Strait::with_config(&pki.listener_toml(&upstream, true));
    mtls.wait_ready();
    let out = tls_round_trip(&mtls, &pki, Some("client"), false);
    out.assert_ok("franz-go over mTLS with the client certificate");
    assert_eq!(out.summary()["verified"], 200);
    // Both refusals at once: each ends in franz-go's delivery timeout.
    let refused: Vec<(Option<&str>, Output)> = std::thread::scope(|scope| {
        let runs: Vec<_> = [None, Some("intruder")]
            .into_iter()
            .map(|cert| {
                let (mtls, pki) = (&mtls, &pki);
                (
                    cert,
                    scope.spawn(move || tls_round_trip(mtls, pki, cert, true)),
                )
            })
            .collect();
        runs.into_iter()
            .map(|(cert, h)| (cert, h.join().unwrap()))
            .collect()
    });
    for (cert, out) in refused {
        out.assert_ok(&format!(
            "franz-go with client certificate {cert:?} is refused"
        ));
        let s = out.summary();
        println!("franz-go refused ({cert:?}): {s}");
        let ping = s["ping_error"].as_str().unwrap_or_default();
        // The TLS alert Strait's handshake sent, as crypto/tls reports it.
        let alert = match cert {
            None => "certificate required",
            Some(_) => "unknown certificate authority",
        };
        assert!(ping.contains(alert), "{alert}: {s}");
        assert_eq!(s["acked"].as_u64(), Some(0), "{s}");
    }
    let line = mtls.wait_log("a TLS refusal log line", |l| {
        message(l) == "TLS handshake failed; connection refused"
    });
    assert!(field(&line, "client").starts_with("127.0.0.1:"), "{line}");
}

/// The driver's contract on bad input: a usage error is a failing summary
/// with exit 2 (nothing produced); an unreachable bootstrap ends, within
/// its timeout, in a failing summary naming the error, exit 1.
#[test]
fn franz_go_driver_reports_bad_input_in_its_summary() {
    let usage = [
        vec!["no-such-command"],
        vec!["produce-consume", "--topic", "t"],
        vec![
            "produce-consume",
            "--bootstrap",
            "127.0.0.1:1",
            "--topic",
            "t",
            "--compression",
            "brotli",
        ],
        vec![
            "policy-produce",
            "--bootstrap",
            "127.0.0.1:1",
            "--topic",
            "t",
            "--cert-pem",
            "c.pem",
        ],
        vec![
            "large-records",
            "--bootstrap",
            "127.0.0.1:1",
            "--topic",
            "t",
        ],
        vec![
            "read",
            "--bootstrap",
            "127.0.0.1:1",
            "--topic",
            "t",
            "--isolation",
            "dirty",
        ],
    ];
    for args in usage {
        assert_usage_error(&mut franz(args[0], &args[1..]), &format!("{args:?}"));
    }
    // Nothing listens on a privileged port: Ping fails, every record times out.
    let started = Instant::now();
    let out = run(&mut franz(
        "policy-produce",
        &[
            "--bootstrap",
            "127.0.0.1:1",
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
    assert_eq!(
        (s["acked"].as_u64(), s["failed"].as_u64()),
        (Some(0), Some(3)),
        "{s}"
    );
    assert!(
        !s["first_error"].as_str().unwrap_or_default().is_empty(),
        "{s}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "bounded by --timeout-ms"
    );
}
