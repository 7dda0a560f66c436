//! Policies against real, unmodified clients: the Java producer and
//! librdkafka (confluent-kafka) for every produce rule, the Java AdminClient
//! for the guardrails, and Kafka's TransactionalMessageCopier for
//! exactly-once with read_committed forced.

use strait_integration::tempdir::Dir;
use strait_integration::{
    cluster, copy_transactionally, create_topic, harness, java, python, run, unique, Output, Strait,
};

fn start(upstream: &str, dir: &Dir) -> Strait {
    Strait::with_policies(upstream, dir.path())
}

fn write_policy(dir: &Dir, file: &str, name: &str, topic: &str, rules: &str) {
    std::fs::write(
        dir.path().join(file),
        format!("[[policy]]\nname = \"{name}\"\ntopics = {{ exact = \"{topic}\" }}\n{rules}\n"),
    )
    .unwrap();
}

/// Produces 5 records with a driver (Java PolicyProduce or librdkafka policy_produce.py).
fn produce(
    driver: fn(&str, &[&str]) -> std::process::Command,
    program: &str,
    bootstrap: &str,
    topic: &str,
    extra: &[&str],
    expect_failure: bool,
) -> Output {
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
    run(&mut driver(program, &args))
}

fn java_produce(bootstrap: &str, topic: &str, extra: &[&str], expect_failure: bool) -> Output {
    produce(
        java,
        "PolicyProduce",
        bootstrap,
        topic,
        extra,
        expect_failure,
    )
}

fn rdkafka_produce(bootstrap: &str, topic: &str, extra: &[&str], expect_failure: bool) -> Output {
    produce(
        python,
        "policy_produce.py",
        bootstrap,
        topic,
        extra,
        expect_failure,
    )
}

fn broker_count(upstream: &str, topic: &str) -> u64 {
    let out = run(&mut java(
        "ReadTopic",
        &["--bootstrap", upstream, "--topic", topic, "--quiet"],
    ));
    out.assert_ok("ReadTopic on the broker");
    out.summary()["count"].as_u64().unwrap()
}

#[test]
fn every_produce_rule_against_java_and_librdkafka() {
    let upstream = cluster(1);
    let base = unique("rules");
    let dir = Dir::new("policies");
    // (rule, policy body, violating Java flags, violating librdkafka flags, compliant Java flags, librdkafka error name)
    type Case = (
        &'static str,
        &'static str,
        Vec<&'static str>,
        Vec<&'static str>,
        Vec<&'static str>,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (
            "produce.acks",
            "[policy.produce]\nacks = \"require-all\"",
            vec![
                "--producer-prop",
                "acks=1",
                "--producer-prop",
                "enable.idempotence=false",
            ],
            vec!["--prop", "acks=1", "--prop", "enable.idempotence=false"],
            vec!["--producer-prop", "acks=all"],
            "POLICY_VIOLATION",
        ),
        (
            "produce.require_idempotent",
            "[policy.produce]\nrequire_idempotent = true",
            vec!["--producer-prop", "enable.idempotence=false"],
            vec!["--prop", "enable.idempotence=false"],
            vec!["--producer-prop", "enable.idempotence=true"],
            "POLICY_VIOLATION",
        ),
        (
            "produce.required_headers",
            "[policy.produce]\nrequired_headers = [\"event-id\"]",
            vec![],
            vec![],
            vec!["--header", "event-id=42"],
            "INVALID_RECORD",
        ),
        (
            "produce.max_record_bytes",
            "[policy.produce]\nmax_record_bytes = 200",
            vec!["--value-bytes", "400"],
            vec!["--value-bytes", "400"],
            vec!["--value-bytes", "50"],
            "INVALID_RECORD",
        ),
        (
            "produce.allowed_compression",
            "[policy.produce]\nallowed_compression = [\"zstd\"]",
            vec!["--producer-prop", "compression.type=gzip"],
            vec!["--prop", "compression.type=gzip"],
            vec!["--producer-prop", "compression.type=zstd"],
            "POLICY_VIOLATION",
        ),
    ];
    let topics: Vec<String> = (0..cases.len()).map(|i| format!("{base}-{i}")).collect();
    for (i, (rule, body, ..)) in cases.iter().enumerate() {
        create_topic(&upstream, &topics[i], 1, 1);
        write_policy(
            &dir,
            &format!("p{i}.toml"),
            &format!("{base}-policy-{i}"),
            &topics[i],
            body,
        );
        let _ = rule;
    }
    let strait = start(&upstream, &dir);
    let mut table = Vec::new();
    for (i, (rule, _, bad_java, bad_rd, good_java, rd_name)) in cases.iter().enumerate() {
        let topic = &topics[i];
        let out = java_produce(&strait.bootstrap, topic, bad_java, true);
        out.assert_ok(&format!("Java producer violating {rule}"));
        let s = out.summary();
        let text = s["first_message"].as_str().unwrap_or_default().to_string();
        assert!(text.contains(rule), "Java exception names {rule}: {s}");
        assert!(
            text.contains(&format!("{base}-policy-{i}")),
            "Java exception names the policy: {s}"
        );

        let out = rdkafka_produce(&strait.bootstrap, topic, bad_rd, true);
        out.assert_ok(&format!("librdkafka producer violating {rule}"));
        let errors: Vec<_> = out
            .json_lines()
            .into_iter()
            .filter(|l| l["type"] == "error")
            .collect();
        assert!(
            errors.iter().any(|e| e["name"] == *rd_name),
            "librdkafka sees {rd_name} for {rule}: {errors:?}"
        );

        let before = broker_count(&upstream, topic);
        assert_eq!(
            before, 0,
            "{rule}: nothing of the rejected batches reached the broker"
        );
        let out = java_produce(&strait.bootstrap, topic, good_java, false);
        out.assert_ok(&format!("compliant Java producer for {rule}"));
        assert_eq!(
            broker_count(&upstream, topic),
            5,
            "{rule}: the compliant records arrived"
        );
        table.push(format!(
            "{rule}: Java \"{}\" | librdkafka {rd_name}",
            s["first_exception"].as_str().unwrap_or("")
        ));
    }
    println!(
        "policy rejections seen by clients:\n  {}",
        table.join("\n  ")
    );
}

#[test]
fn admin_guardrails_against_the_java_admin_client() {
    let upstream = cluster(1);
    let base = unique("guard");
    let dir = Dir::new("policies");
    std::fs::write(
        dir.path().join("guard.toml"),
        format!(
            "[[policy]]\nname = \"guarded\"\ntopics = {{ prefix = \"{base}\" }}\n[policy.admin]\n\
             partitions = {{ min = 2, max = 6 }}\ndeny_configs = [\"retention.ms\"]\nprotect_delete = true\n"
        ),
    )
    .unwrap();
    let strait = start(&upstream, &dir);
    let admin = |args: &[&str]| {
        let mut a = vec![
            "--bootstrap",
            strait.bootstrap.as_str(),
            "--timeout-ms",
            "30000",
        ];
        a.extend_from_slice(args);
        run(&mut java("PolicyAdmin", &a))
    };
    let topic = format!("{base}-t");
    let out = admin(&[
        "--action",
        "create",
        "--topic",
        &topic,
        "--partitions",
        "12",
        "--replication-factor",
        "1",
        "--expect-failure",
    ]);
    out.assert_ok("create with too many partitions is refused");
    assert!(
        out.stdout.contains("admin.partitions") && out.stdout.contains("PolicyViolation"),
        "{}",
        out.stdout
    );
    admin(&[
        "--action",
        "create",
        "--topic",
        &topic,
        "--partitions",
        "3",
        "--replication-factor",
        "1",
    ])
    .assert_ok("compliant create");
    let out = admin(&[
        "--action",
        "incremental-alter",
        "--topic",
        &topic,
        "--config",
        "retention.ms=1000",
        "--expect-failure",
    ]);
    out.assert_ok("altering a denied config is refused");
    assert!(out.stdout.contains("admin.deny_configs"), "{}", out.stdout);
    let out = admin(&[
        "--action",
        "alter",
        "--topic",
        &topic,
        "--config",
        "retention.ms=1000",
        "--expect-failure",
    ]);
    out.assert_ok("legacy AlterConfigs of a denied config is refused");
    assert!(out.stdout.contains("admin.deny_configs"), "{}", out.stdout);
    admin(&[
        "--action",
        "incremental-alter",
        "--topic",
        &topic,
        "--config",
        "segment.ms=3600000",
    ])
    .assert_ok("allowed config");
    let out = admin(&["--action", "delete", "--topic", &topic, "--expect-failure"]);
    out.assert_ok("deleting a protected topic is refused");
    assert!(
        out.stdout.contains("admin.protect_delete"),
        "{}",
        out.stdout
    );
    let listed = run(&mut harness(&[
        "topics",
        "--bootstrap-server",
        &upstream,
        "--list",
    ]));
    assert!(
        listed.stdout.lines().any(|l| l == topic),
        "the protected topic still exists"
    );
}

#[test]
fn transactional_copier_is_exactly_once_with_read_committed_forced() {
    const RECORDS: usize = 3000;
    let upstream = cluster(1);
    let base = unique("eos");
    let (input, output) = (format!("{base}-in"), format!("{base}-out"));
    create_topic(&upstream, &input, 1, 1);
    create_topic(&upstream, &output, 1, 1);
    let dir = Dir::new("policies");
    write_policy(
        &dir,
        "out.toml",
        "eos-output",
        &output,
        "[policy.produce]\nrequire_transactional = true\n[policy.fetch]\nread_committed = true",
    );
    let strait = start(&upstream, &dir);
    // Input written directly, keys 0..N.
    run(&mut java(
        "PolicyProduce",
        &[
            "--bootstrap",
            &upstream,
            "--topic",
            &input,
            "--records",
            &RECORDS.to_string(),
        ],
    ))
    .assert_ok("input records");
    // The copier commits and (randomly) aborts transactions through Strait.
    let out = copy_transactionally(&strait.bootstrap, &base, &input, &output, RECORDS);
    out.assert_ok("TransactionalMessageCopier through Strait (require_transactional passes)");
    // A read_uncommitted consumer through Strait is forced to read_committed.
    let through = run(&mut java(
        "ReadTopic",
        &[
            "--bootstrap",
            &strait.bootstrap,
            "--topic",
            &output,
            "--isolation",
            "read_uncommitted",
        ],
    ));
    through.assert_ok("ReadTopic through Strait");
    let keys: Vec<String> = through
        .json_lines()
        .into_iter()
        .filter(|l| l["type"] == "record")
        .map(|l| l["key"].to_string())
        .collect();
    let distinct: std::collections::HashSet<_> = keys.iter().collect();
    let direct = run(&mut java(
        "ReadTopic",
        &[
            "--bootstrap",
            &upstream,
            "--topic",
            &output,
            "--isolation",
            "read_uncommitted",
            "--quiet",
        ],
    ));
    direct.assert_ok("ReadTopic direct");
    let raw = direct.summary()["count"].as_u64().unwrap();
    println!(
        "copier: {RECORDS} input records; through Strait (read_committed forced) {} records, {} distinct; \
         directly read_uncommitted {raw} records (aborted ones included)",
        keys.len(),
        distinct.len()
    );
    assert_eq!(keys.len(), RECORDS, "each input record exactly once");
    assert_eq!(distinct.len(), keys.len(), "no duplicates");
    // A plain producer is refused on the output topic.
    let out = java_produce(&strait.bootstrap, &output, &[], true);
    out.assert_ok("non-transactional producer refused");
    assert!(out.summary()["first_message"]
        .as_str()
        .unwrap_or("")
        .contains("produce.require_transactional"));
}
