//! Strait in front of a cluster whose only client listeners are SASL
//! (`integration/kafka up --sasl --tls --reauth-ms 10000`: SASL_PLAINTEXT and
//! SASL_SSL, PLAIN and SCRAM users, sessions re-authenticated every 10 s).
//! Clients authenticate to the brokers through Strait with their own
//! credentials (Java kafka-clients and librdkafka, PLAIN and SCRAM-SHA-512,
//! plaintext and TLS on both sides of Strait); Strait's own connections
//! (discovery, the internal client that chunking uses) authenticate with
//! `[upstream.sasl]`. Refusals, the clients' and Strait's own, are logged as
//! authentication failures and counted.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use strait_integration::large::{
    assert_round_trip, consumed, driver, metric, produce_errors, produced, Stack,
};
use strait_integration::sasl::{
    assert_client_auth_failures, ca, flags, strait, strait_with_env, strs, upstream, Own,
    Transport, ALICE, PLAIN, SCRAM, STRAIT_USER,
};
use strait_integration::tempdir::Dir;
use strait_integration::{field, harness, java, message, python, run, spawn_lines, unique, Strait};

/// Java client properties for `user` with `mechanism` over `t`.
fn java_props(t: Transport, mechanism: &str, (user, password): (&str, &str)) -> Vec<String> {
    let module = if mechanism == PLAIN {
        "org.apache.kafka.common.security.plain.PlainLoginModule"
    } else {
        "org.apache.kafka.common.security.scram.ScramLoginModule"
    };
    let mut p = vec![
        format!(
            "security.protocol={}",
            if t == Transport::Tls {
                "SASL_SSL"
            } else {
                "SASL_PLAINTEXT"
            }
        ),
        format!("sasl.mechanism={mechanism}"),
        format!("sasl.jaas.config={module} required username=\"{user}\" password=\"{password}\";"),
    ];
    if t == Transport::Tls {
        p.push("ssl.truststore.type=PEM".into());
        p.push(format!("ssl.truststore.location={}", ca().display()));
    }
    p
}

/// librdkafka client properties for `user` with `mechanism` over `t`.
fn rdkafka_props(t: Transport, mechanism: &str, (user, password): (&str, &str)) -> Vec<String> {
    let mut p = vec![
        format!(
            "security.protocol={}",
            if t == Transport::Tls {
                "sasl_ssl"
            } else {
                "sasl_plaintext"
            }
        ),
        format!("sasl.mechanisms={mechanism}"),
        format!("sasl.username={user}"),
        format!("sasl.password={password}"),
    ];
    if t == Transport::Tls {
        p.push(format!("ssl.ca.location={}", ca().display()));
    }
    p
}

/// A client properties file (for Kafka's tools: --command-config, --producer.config).
fn props_file(dir: &Path, name: &str, props: &[String]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, props.join("\n") + "\n").unwrap();
    path.display().to_string()
}

/// Creates a topic on the cluster directly, authenticated as alice.
fn create_topic(t: Transport, dir: &Path, topic: &str, partitions: u32) {
    let config = props_file(
        dir,
        &format!("admin-{topic}.properties"),
        &java_props(t, SCRAM, ALICE),
    );
    run(&mut harness(&[
        "topics",
        "--bootstrap-server",
        &upstream(t),
        "--command-config",
        &config,
        "--create",
        "--topic",
        topic,
        "--partitions",
        &partitions.to_string(),
        "--replication-factor",
        "1",
    ]))
    .assert_ok(&format!("create {topic}"));
}

/// Java and librdkafka through Strait with `mechanism` over `t`: round trip
/// and consumer group (GroupRebalance, produce_consume.py), transactions
/// (PolicyProduce --transactional-id then ReadTopic read_committed;
/// transactions.py). Strait authenticates itself with the same mechanism.
fn clients_through_strait(t: Transport, mechanism: &str) {
    let (strait, dir) = strait(t, Own::Env(mechanism, STRAIT_USER), "");
    strait.wait_ready();
    let java_p = java_props(t, mechanism, ALICE);
    let rd_p = rdkafka_props(t, mechanism, ALICE);
    let name = format!("sasl-{}-{t:?}", mechanism.to_lowercase()).to_lowercase();

    // The two stacks at once (the suite's wall time).
    std::thread::scope(|scope| {
        let rdkafka = scope.spawn(|| {
            // librdkafka: round trip with a consumer group.
            let mut args = vec![
                "--bootstrap".to_string(),
                strait.bootstrap.clone(),
                "--topic".into(),
                unique(&format!("{name}-rdkafka")),
                "--records".into(),
                "300".into(),
                "--timeout-ms".into(),
                "90000".into(),
            ];
            for kind in ["producer", "consumer", "admin"] {
                args.extend(flags(&format!("--{kind}-prop"), &rd_p));
            }
            run(&mut python("produce_consume.py", &strs(&args)))
                .assert_ok("librdkafka produce_consume over SASL");

            // librdkafka: transactions, some aborted, read back read_committed.
            let topic = unique(&format!("{name}-rdkafka-txn"));
            create_topic(t, dir.path(), &topic, 1);
            let mut args = vec![
                "--bootstrap".to_string(),
                strait.bootstrap.clone(),
                "--topic".into(),
                topic,
                "--transactions".into(),
                "10".into(),
                "--per-transaction".into(),
                "20".into(),
                "--timeout-ms".into(),
                "90000".into(),
            ];
            args.extend(flags("--producer-prop", &rd_p));
            args.extend(flags("--consumer-prop", &rd_p));
            run(&mut python("transactions.py", &strs(&args)))
                .assert_ok("librdkafka transactions over SASL");
        });
        // Java: produce, then a group of two members with a rebalance.
        let mut args = vec![
            "--bootstrap".to_string(),
            strait.bootstrap.clone(),
            "--topic".into(),
            unique(&format!("{name}-java-group")),
            "--records".into(),
            "400".into(),
            "--timeout-ms".into(),
            "90000".into(),
        ];
        for kind in ["producer", "consumer", "admin"] {
            args.extend(flags(&format!("--{kind}-prop"), &java_p));
        }
        run(&mut java("GroupRebalance", &strs(&args))).assert_ok("Java GroupRebalance over SASL");

        // Java: a transaction, read back read_committed.
        let txn_topic = unique(&format!("{name}-java-txn"));
        create_topic(t, dir.path(), &txn_topic, 1);
        let mut args = vec![
            "--bootstrap".to_string(),
            strait.bootstrap.clone(),
            "--topic".into(),
            txn_topic.clone(),
            "--records".into(),
            "50".into(),
            "--transactional-id".into(),
            unique("sasl-txn"),
            "--timeout-ms".into(),
            "60000".into(),
        ];
        args.extend(flags("--producer-prop", &java_p));
        let produced = run(&mut java("PolicyProduce", &strs(&args)));
        produced.assert_ok("Java transactional produce over SASL");
        assert_eq!(produced.summary()["committed"], true, "{}", produced.stdout);
        let mut args = vec![
            "--bootstrap".to_string(),
            strait.bootstrap.clone(),
            "--topic".into(),
            txn_topic,
            "--isolation".into(),
            "read_committed".into(),
            "--expect".into(),
            "50".into(),
            "--quiet".into(),
        ];
        args.extend(flags("--consumer-prop", &java_p));
        run(&mut java("ReadTopic", &strs(&args))).assert_ok("Java read_committed over SASL");
        rdkafka.join().expect("the librdkafka half");
    });

    let failures = metric(&strait, "strait_sasl_authentication_failures_total", &[]);
    assert_eq!(failures, 0.0, "no authentication failed");
    // No connection ended in error on Strait's or the broker's side. (A
    // client that closes a connection before the TLS handshake, or before
    // reading a response it no longer wants, is the client's choice: seen
    // now and then from the clients' bootstrap connections.)
    let errors: Vec<_> = strait
        .warnings()
        .into_iter()
        .filter(|l| message(l) != "TLS handshake failed; connection refused")
        .filter(|l| {
            !(field(l, "side") == "client" && field(l, "error").starts_with("client I/O error"))
        })
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn plain_over_sasl_plaintext_java_and_librdkafka() {
    clients_through_strait(Transport::Plaintext, PLAIN);
}

#[test]
fn scram_sha_512_over_sasl_plaintext_java_and_librdkafka() {
    clients_through_strait(Transport::Plaintext, SCRAM);
}

#[test]
fn plain_over_tls_java_and_librdkafka() {
    clients_through_strait(Transport::Tls, PLAIN);
}

#[test]
fn scram_sha_512_over_tls_java_and_librdkafka() {
    clients_through_strait(Transport::Tls, SCRAM);
}

#[test]
fn a_wrong_client_password_is_refused_logged_and_counted() {
    let (strait, dir) = strait(Transport::Plaintext, Own::File(SCRAM, STRAIT_USER), "");
    strait.wait_ready();
    let topic = unique("sasl-wrong");
    create_topic(Transport::Plaintext, dir.path(), &topic, 1);
    let wrong = ("alice", "not-her-password");
    for mechanism in [PLAIN, SCRAM] {
        // Java: the send fails with an authentication error, in time.
        let mut args = vec![
            "--bootstrap".to_string(),
            strait.bootstrap.clone(),
            "--topic".into(),
            topic.clone(),
            "--records".into(),
            "1".into(),
            "--timeout-ms".into(),
            "30000".into(),
            "--expect-failure".into(),
        ];
        args.extend(flags(
            "--producer-prop",
            &java_props(Transport::Plaintext, mechanism, wrong),
        ));
        let started = Instant::now();
        let out = run(&mut java("PolicyProduce", &strs(&args)));
        out.assert_ok(&format!("Java {mechanism} with a wrong password fails"));
        let first = out.summary()["first_exception"].to_string();
        assert!(
            first.contains("SaslAuthenticationException"),
            "{}",
            out.stdout
        );
        assert!(started.elapsed() < Duration::from_secs(30));
        // librdkafka: the same.
        let mut args = vec![
            "--bootstrap".to_string(),
            strait.bootstrap.clone(),
            "--topic".into(),
            topic.clone(),
            "--records".into(),
            "1".into(),
            "--timeout-ms".into(),
            "20000".into(),
            "--expect-failure".into(),
        ];
        args.extend(flags(
            "--prop",
            &rdkafka_props(Transport::Plaintext, mechanism, wrong),
        ));
        let out = run(&mut python("policy_produce.py", &strs(&args)));
        out.assert_ok(&format!(
            "librdkafka {mechanism} with a wrong password fails"
        ));
        assert!(
            out.stderr.contains("Authentication failed")
                || out.stdout.contains("Authentication failed")
                || out.stdout.contains("_AUTHENTICATION"),
            "{}\n{}",
            out.stdout,
            out.stderr
        );
        // Both refusals logged at WARN with the mechanism and the client.
        // (Counted per mechanism: both clients retry until they give up,
        // dozens of refusals per round, and the last of a round can be
        // logged just after its count was taken.)
        assert_client_auth_failures(&strait, mechanism, 2, wrong.1);
    }
    // Nothing reached the topic: read directly from the broker (as alice,
    // not through Strait), it exists and holds no record.
    let mut args = vec![
        "--bootstrap".to_string(),
        upstream(Transport::Plaintext),
        "--topic".into(),
        topic.clone(),
        "--expect".into(),
        "0".into(),
        "--timeout-ms".into(),
        "30000".into(),
    ];
    args.extend(flags(
        "--consumer-prop",
        &java_props(Transport::Plaintext, SCRAM, ALICE),
    ));
    let on_broker = run(&mut java("ReadTopic", &strs(&args)));
    on_broker.assert_ok("the topic read directly from the broker");
    let summary = on_broker.summary();
    assert_eq!(summary["topic_exists"], true, "{}", on_broker.stdout);
    assert_eq!(
        summary["count"], 0,
        "records of a refused client reached the topic: {}",
        on_broker.stdout
    );
    // A right password still works after.
    let mut args = vec![
        "--bootstrap".to_string(),
        strait.bootstrap.clone(),
        "--topic".into(),
        topic,
        "--records".into(),
        "3".into(),
    ];
    args.extend(flags(
        "--producer-prop",
        &java_props(Transport::Plaintext, SCRAM, ALICE),
    ));
    run(&mut java("PolicyProduce", &strs(&args))).assert_ok("the right password");
    assert_eq!(
        metric(
            &strait,
            "strait_sasl_authentication_failures_total",
            &["side=\"strait\""]
        ),
        0.0
    );
}

#[test]
fn straits_own_wrong_password_is_a_clear_warning_and_not_ready() {
    for (t, mechanism) in [(Transport::Plaintext, SCRAM), (Transport::Tls, PLAIN)] {
        let (mut strait, _dir) = strait(t, Own::Env(mechanism, ("strait", "wrong")), "");
        let line = strait.wait_log("Strait's authentication failure", |l| {
            message(l) == "Strait's own SASL authentication failed"
        });
        assert_eq!(field(&line, "mechanism"), mechanism, "{line}");
        assert_eq!(field(&line, "username"), "strait", "{line}");
        assert!(
            field(&line, "error").contains("Authentication failed"),
            "{line}"
        );
        assert!(
            !line.to_string().contains("wrong\""),
            "no password logged: {line}"
        );
        assert_eq!(strait.admin_get("/readyz").0, 503);
        let counted = metric(
            &strait,
            "strait_sasl_authentication_failures_total",
            &["side=\"strait\"", &format!("mechanism=\"{mechanism}\"")],
        );
        assert!(counted >= 1.0, "counted {counted}");
    }
}

#[test]
fn a_bad_password_source_stops_strait_at_start_with_a_clear_error() {
    let dir = Dir::new("strait-sasl-bad");
    for (source, want) in [
        (
            "password_file = \"/nonexistent/strait-pw\"",
            "/nonexistent/strait-pw",
        ),
        (
            "password_env = \"STRAIT_TEST_UNSET_VAR\"",
            "STRAIT_TEST_UNSET_VAR",
        ),
        ("", "neither"),
    ] {
        let path = dir.path().join("strait.toml");
        std::fs::write(
            &path,
            format!(
                "[listen]\nbootstrap = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n\
                 [upstream]\nbootstrap = [{:?}]\n[upstream.sasl]\nmechanism = \"PLAIN\"\n\
                 username = \"strait\"\n{source}\n",
                upstream(Transport::Plaintext)
            ),
        )
        .unwrap();
        let out = run(Command::new(strait_integration::strait_bin())
            .args(["run", "--config", path.to_str().unwrap()])
            .env_remove("STRAIT_TEST_UNSET_VAR"));
        assert!(!out.ok, "strait started with {source:?}");
        assert!(out.stderr.contains(want), "{source:?}: {}", out.stderr);
    }
}

/// A policy directory (chunking for `sasl-chunk.` topics, a required
/// header for `sasl-guarded.` ones) and a store directory, and the TOML
/// that points Strait at them.
fn chunk_policy() -> (Dir, Dir, String) {
    let policies = Dir::new("sasl-policies");
    std::fs::write(
        policies.path().join("p.toml"),
        "[[policy]]\nname = \"large\"\ntopics = { prefix = \"sasl-chunk.\" }\n\
         [policy.large_records]\nremedies = [\"chunk\"]\n\
         [[policy]]\nname = \"headers\"\ntopics = { prefix = \"sasl-guarded.\" }\n\
         [policy.produce]\nrequired_headers = [\"event-id\"]\n",
    )
    .unwrap();
    let objects = Dir::new("sasl-objects");
    let extra = format!(
        "[policies]\ndir = {:?}\n[large_records]\nstore = {:?}\n",
        policies.path().display().to_string(),
        objects.path().display().to_string()
    );
    (policies, objects, extra)
}

/// 2 x 3 MiB values, chunked by Strait's internal client (authenticated as
/// strait), from Java to librdkafka (both as alice with SCRAM-SHA-512).
fn chunk_round_trip(strait: &Strait, t: Transport, dir: &Path, when: &str) {
    let topic = unique("sasl-chunk.");
    create_topic(t, dir, &topic, 1);
    let before = metric(
        strait,
        "strait_large_record_remedies_total",
        &["remedy=\"chunk\"", "outcome=\"ok\""],
    );
    let mut args = vec![
        "--bootstrap".to_string(),
        strait.bootstrap.clone(),
        "--topic".into(),
        topic.clone(),
        "--count".into(),
        "2".into(),
        "--size".into(),
        (3 << 20).to_string(),
    ];
    args.extend(flags("--producer-prop", &java_props(t, SCRAM, ALICE)));
    let p = run(&mut driver(Stack::Java, "produce", &strs(&args)));
    p.assert_ok(&format!("Java produces 2 x 3 MiB over SASL {when}"));
    assert!(produce_errors(&p).is_empty(), "{:?}", produce_errors(&p));
    let mut args = vec![
        "--bootstrap".to_string(),
        strait.bootstrap.clone(),
        "--topic".into(),
        topic,
        "--expect".into(),
        "2".into(),
    ];
    args.extend(flags("--config", &rdkafka_props(t, SCRAM, ALICE)));
    let c = run(&mut driver(Stack::Librdkafka, "consume", &strs(&args)));
    c.assert_ok(&format!("librdkafka consumes the chunked values {when}"));
    assert_round_trip(&produced(&p), &consumed(&c), "");
    let chunked = metric(
        strait,
        "strait_large_record_remedies_total",
        &["remedy=\"chunk\"", "outcome=\"ok\""],
    );
    assert_eq!(chunked - before, 2.0, "{when}");
}

#[test]
fn ready_in_front_of_a_sasl_only_cluster_with_chunking_and_policies() {
    let (_policies, _objects, extra) = chunk_policy();
    let (strait, dir) = strait(Transport::Tls, Own::File(SCRAM, STRAIT_USER), &extra);
    strait.wait_ready();
    assert_eq!(strait.admin_get("/readyz").0, 200);
    chunk_round_trip(&strait, Transport::Tls, dir.path(), "over TLS");
    let java_p = java_props(Transport::Tls, SCRAM, ALICE);

    // A policy refuses a record without its header on an authenticated connection.
    let guarded = unique("sasl-guarded.");
    create_topic(Transport::Tls, dir.path(), &guarded, 1);
    let mut args = vec![
        "--bootstrap".to_string(),
        strait.bootstrap.clone(),
        "--topic".into(),
        guarded.clone(),
        "--records".into(),
        "3".into(),
        "--timeout-ms".into(),
        "30000".into(),
        "--expect-failure".into(),
    ];
    args.extend(flags("--producer-prop", &java_p));
    let out = run(&mut java("PolicyProduce", &strs(&args)));
    out.assert_ok("the policy refuses records without event-id");
    assert!(out.stdout.contains("INVALID_RECORD") || out.stdout.contains("InvalidRecord"));
    let decisions = metric(
        &strait,
        "strait_policy_decisions_total",
        &["policy=\"headers\"", "rule=\"produce.required_headers\""],
    );
    assert!(decisions >= 1.0, "{decisions}");
    assert!(
        !strait
            .warnings()
            .iter()
            .any(|l| message(l).contains("authentication")),
        "{:#?}",
        strait.warnings()
    );
}

/// How long the load runs: the broker re-authenticates every 10 s.
const REAUTH_LOAD: Duration = Duration::from_secs(120);
const RATE: u64 = 50;

// Named to sort first among the slow tests (libtest starts tests in name
// order): the other tests run beside it, so the file takes about as long as it.
#[test]
fn a_long_load_through_two_minutes_of_re_authentication_loses_nothing() {
    let t = Transport::Plaintext;
    let (_policies, _objects, extra) = chunk_policy();
    // Strait logs each client SaslHandshake (one per authentication) with
    // the client's address and client id at DEBUG.
    let log = (
        "RUST_LOG",
        "info,strait_proxy::connection::sasl=debug".to_string(),
    );
    let (strait, dir) = strait_with_env(t, Own::Env(SCRAM, STRAIT_USER), &extra, &[log]);
    strait.wait_ready();
    // The internal client's pooled connections open now, and must still
    // work after the load (their sessions end every 10 s).
    chunk_round_trip(&strait, t, dir.path(), "before the load");
    let records = (REAUTH_LOAD.as_secs() * RATE).to_string();
    let java_topic = unique("sasl-reauth-java");
    let rd_topic = unique("sasl-reauth-rdkafka");
    create_topic(t, dir.path(), &java_topic, 1);
    create_topic(t, dir.path(), &rd_topic, 1);
    // Each client with its own client id, so its connections can be told
    // apart in Strait's logs.
    const JAVA_PRODUCER: &str = "reauth-java-producer";
    const RD_PRODUCER: &str = "reauth-rdkafka-producer";
    const JAVA_CONSUMER: &str = "reauth-consumer-of-java-topic";
    const RD_CONSUMER: &str = "reauth-consumer-of-rdkafka-topic";
    let java_p = java_props(t, SCRAM, ALICE);
    let with_id = |id: &str| {
        let mut p = java_p.clone();
        p.push(format!("client.id={id}"));
        props_file(dir.path(), &format!("{id}.properties"), &p)
    };
    let pconf = with_id(JAVA_PRODUCER);

    // Consumers first (groups, reading as records arrive), then producers.
    let consumer = |topic: &str, client_id: &str| {
        let cconf = with_id(client_id);
        spawn_lines(&mut harness(&[
            "tool",
            "org.apache.kafka.tools.VerifiableConsumer",
            "--bootstrap-server",
            &strait.bootstrap,
            "--topic",
            topic,
            "--group-id",
            &unique("sasl-reauth"),
            "--verbose",
            "--reset-policy",
            "earliest",
            "--consumer.config",
            &cconf,
        ]))
    };
    let (mut java_consumer, java_records) = consumer(&java_topic, JAVA_CONSUMER);
    let (mut rd_consumer, rd_records) = consumer(&rd_topic, RD_CONSUMER);
    let (mut java_producer, java_events) = spawn_lines(&mut harness(&[
        "tool",
        "org.apache.kafka.tools.VerifiableProducer",
        "--bootstrap-server",
        &strait.bootstrap,
        "--topic",
        &java_topic,
        "--max-messages",
        &records,
        "--throughput",
        &RATE.to_string(),
        "--acks",
        "-1",
        "--producer.config",
        &pconf,
    ]));
    let mut rd_args = vec![
        "--bootstrap-server".to_string(),
        strait.bootstrap.clone(),
        "--topic".into(),
        rd_topic.clone(),
        "--max-messages".into(),
        records.clone(),
        "--throughput".into(),
        RATE.to_string(),
    ];
    let mut rd_p = rdkafka_props(t, SCRAM, ALICE);
    rd_p.push(format!("client.id={RD_PRODUCER}"));
    rd_args.extend(flags("--prop", &rd_p));
    let mut rd_cmd = python("verifiable_producer.py", &strs(&rd_args));
    let (mut rd_producer, rd_events) = spawn_lines(&mut rd_cmd);

    // Both producers run for the whole load; Strait stays ready throughout.
    let started = Instant::now();
    let deadline = started + REAUTH_LOAD + Duration::from_secs(90);
    let mut acked: [HashSet<String>; 2] = [HashSet::new(), HashSet::new()];
    let mut errors: Vec<String> = Vec::new();
    let mut done = [false, false];
    let mut not_ready = 0;
    while !(done[0] && done[1]) && Instant::now() < deadline {
        for (i, events) in [&java_events, &rd_events].into_iter().enumerate() {
            while let Ok(ev) = events.recv_timeout(Duration::from_millis(100)) {
                match ev["name"].as_str() {
                    Some("producer_send_success") => {
                        acked[i].insert(ev["value"].as_str().unwrap().to_string());
                    }
                    Some("producer_send_error") => errors.push(ev.to_string()),
                    Some("shutdown_complete") => done[i] = true,
                    _ => {}
                }
            }
        }
        if strait.admin_get("/readyz").0 != 200 {
            not_ready += 1;
        }
    }
    let elapsed = started.elapsed();
    let java_status = java_producer.wait().unwrap();
    let rd_status = rd_producer.wait().unwrap();
    eprintln!(
        "re-authentication load: {elapsed:?}, acked java {} librdkafka {}, errors {}",
        acked[0].len(),
        acked[1].len(),
        errors.len()
    );
    assert!(done[0] && done[1], "both producers finished");
    assert!(java_status.success() && rd_status.success());
    assert!(errors.is_empty(), "send errors: {errors:#?}");
    assert!(
        elapsed >= REAUTH_LOAD - Duration::from_secs(5),
        "ran {elapsed:?}"
    );
    let want = REAUTH_LOAD.as_secs() * RATE;
    assert_eq!(acked[0].len() as u64, want);
    assert_eq!(acked[1].len() as u64, want);
    assert_eq!(not_ready, 0, "Strait was not ready {not_ready} times");

    // The consumers read every acknowledged record.
    for (i, records) in [&java_records, &rd_records].into_iter().enumerate() {
        let mut missing: HashSet<String> = acked[i].clone();
        let until = Instant::now() + Duration::from_secs(60);
        while !missing.is_empty() && Instant::now() < until {
            if let Ok(ev) = records.recv_timeout(Duration::from_millis(500)) {
                if ev["name"] == "record_data" {
                    missing.remove(ev["value"].as_str().unwrap());
                }
            }
        }
        assert!(
            missing.is_empty(),
            "consumer {i}: {} missing",
            missing.len()
        );
    }
    // SIGTERM: VerifiableConsumer closes its consumer (leaves the group,
    // closes its connections) instead of dropping them.
    for c in [&mut java_consumer, &mut rd_consumer] {
        run(Command::new("kill").args(["-TERM", &c.id().to_string()]));
    }
    let _ = java_consumer.wait();
    let _ = rd_consumer.wait();

    // Each client kept a connection through the load that re-authenticated
    // on the same connection: the broker ends sessions every 10 s, so a
    // connection that lived through two minutes authenticated ~12 times;
    // at least 3 (connections the clients closed early, e.g. bootstrap
    // ones, authenticated once or twice).
    let mut per_connection: BTreeMap<(String, String), u32> = BTreeMap::new();
    for l in strait.logs() {
        if message(&l) == "client SASL handshake" {
            *per_connection
                .entry((field(&l, "client_id"), field(&l, "client")))
                .or_default() += 1;
        }
    }
    eprintln!("authentications per client connection: {per_connection:?}");
    for id in [JAVA_PRODUCER, RD_PRODUCER, JAVA_CONSUMER, RD_CONSUMER] {
        let most = per_connection
            .iter()
            .filter(|((client_id, _), _)| client_id == id)
            .map(|(_, &n)| n)
            .max()
            .unwrap_or(0);
        assert!(
            most >= 3,
            "a connection of {id} authenticated at least 3 times (most: {most}): {per_connection:?}"
        );
    }
    assert_eq!(
        f64::from(per_connection.values().sum::<u32>()),
        metric(&strait, "strait_requests_total", &["api=\"SaslHandshake\""]),
        "every handshake logged"
    );

    // Strait's own pooled connections outlived several sessions: the
    // internal client still works (a new session after each expiry).
    assert_eq!(
        metric(&strait, "strait_sasl_authentication_failures_total", &[]),
        0.0
    );
    chunk_round_trip(&strait, t, dir.path(), "after the load");
    assert_eq!(
        metric(
            &strait,
            "strait_large_record_remedies_total",
            &["remedy=\"chunk\"", "outcome=\"failed\""]
        ),
        0.0,
        "the internal client never used an expired session"
    );
    let warnings = strait.warnings();
    assert!(warnings.is_empty(), "{warnings:#?}");
}

/// Strait's own connections honour the broker's session lifetime (KIP-368):
/// the broker grants 10 s, the connection says it is over after 85% of
/// that, before the broker ends it; and the broker does end it (a request
/// on the old session closes the connection), which is why the internal
/// client's pool replaces expired connections instead of using them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_connections_end_before_the_brokers_session_does() {
    use kafka_protocol::messages::MetadataRequest;
    use strait_proxy::config::{
        LeaderEndpoints, SaslMechanism, UpstreamConfig, UpstreamSaslConfig,
    };
    use strait_proxy::upstream::Dialer;

    let dir = Dir::new("strait-sasl-own");
    let password = dir.path().join("password");
    std::fs::write(&password, STRAIT_USER.1).unwrap();
    let cfg = UpstreamConfig {
        bootstrap: vec![upstream(Transport::Plaintext)],
        connect_timeout_ms: 10_000,
        tls: None,
        sasl: Some(UpstreamSaslConfig {
            mechanism: SaslMechanism::ScramSha512,
            username: STRAIT_USER.0.into(),
            password_file: Some(password),
            password_env: None,
        }),
        leader_endpoints: LeaderEndpoints::Clamp,
    };
    let dialer = Dialer::new(&cfg, 1 << 20).expect("dialer");
    let (io, addr) = dialer.connect_bootstrap().await.expect("connect");
    let authenticated = Instant::now();
    let mut conn = dialer
        .own(io, addr, "strait-test", Duration::from_secs(10), 1 << 20)
        .await
        .expect("SCRAM-SHA-512 as strait");
    let metadata = || MetadataRequest::default().with_topics(Some(vec![]));
    assert!(!conn.expired());
    conn.call(9, &metadata())
        .await
        .expect("Metadata on a new session");

    // Bounded polling: Strait's deadline comes first...
    let deadline = authenticated + Duration::from_secs(30);
    while !conn.expired() {
        assert!(Instant::now() < deadline, "the session never expired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let expired_after = authenticated.elapsed();
    assert!(
        expired_after >= Duration::from_secs(7) && expired_after < Duration::from_secs(10),
        "expired after {expired_after:?}: at 85% of the broker's 10 s, before the broker's end"
    );
    // ...then the broker's: a request on the old session ends the connection.
    let refused = loop {
        assert!(
            Instant::now() < deadline,
            "the broker never ended the session"
        );
        if let Err(e) = conn.call(9, &metadata()).await {
            break e;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let ended_after = authenticated.elapsed();
    eprintln!("Strait retired its session after {expired_after:?}; the broker ended it after {ended_after:?} ({refused:#})");
    assert!(ended_after >= Duration::from_secs(10), "{ended_after:?}");
}
