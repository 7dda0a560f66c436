//! The lag view and the stuck message (`/debug/...`, `strait lag`,
//! `strait stuck`) against Kafka's own `kafka-consumer-groups --describe`,
//! with real Java consumers: a classic group and a KIP-848 group through
//! Strait, a group whose consumers connect to the broker directly, a
//! read_committed group on a transactional topic (where Kafka's tool counts
//! transaction markers as lag and this view does not), a consumer that
//! stops (STOP) and one that keeps failing on a record (STALL).

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use strait_integration::lag::{get, kafka_describe, partition, view_with_commits};
use strait_integration::large::spawn_driver;
use strait_integration::{
    cluster, create_topic, eventually, harness, http_get, http_get_with_token, java, kcat_produce,
    run, strait_bin, unique, Strait,
};

/// Evaluations every 500 ms, a window of 4: a status settles within ~2 s.
fn strait(upstream: &str, extra: &str) -> (Strait, strait_integration::tempdir::Dir) {
    let (s, dir) = Strait::with_config(&format!(
        "[listen]\nbootstrap = '127.0.0.1:0'\n[upstream]\nbootstrap = ['{upstream}']\n\
         [admin]\nlisten = '127.0.0.1:0'\n[debug]\nlag_interval_ms = 500\nlag_window = 4\n{extra}"
    ));
    s.wait_ready();
    (s, dir)
}

/// Produces `n` records to each partition of `topic` directly, keys
/// `k-<p>-<i>`, JSON values.
fn produce(bootstrap: &str, topic: &str, partitions: i32, n: usize) {
    for p in 0..partitions {
        let records: Vec<(String, String)> = (0..n)
            .map(|i| {
                (
                    format!("k-{p}-{i}"),
                    format!("{{\"id\":{i},\"partition\":{p}}}"),
                )
            })
            .collect();
        kcat_produce(bootstrap, topic, p, &records);
    }
}

fn consume(
    bootstrap: &str,
    topic: &str,
    group: &str,
    extra: &[&str],
) -> strait_integration::Output {
    let mut args = vec!["--bootstrap", bootstrap, "--topic", topic, "--group", group];
    args.extend_from_slice(extra);
    let out = run(&mut java("GroupConsume", &args));
    out.assert_ok(&format!("GroupConsume {group}"));
    out
}

#[test]
fn lag_per_partition_equals_kafka_consumer_groups_for_every_kind_of_group() {
    let broker = cluster(1);
    let (s, _dir) = strait(&broker, "");
    let topic = unique("lag-plain");
    create_topic(&broker, &topic, 3, 1);
    produce(&broker, &topic, 3, 30);
    let txn = unique("lag-txn");
    let produced = run(&mut java(
        "TxnProduce",
        &[
            "--bootstrap",
            &broker,
            "--topic",
            &txn,
            "--records",
            "20",
            "--txn-size",
            "5",
            "--abort-every",
            "3",
        ],
    ));
    produced.assert_ok("TxnProduce");

    // Four groups, consumed side by side: classic and KIP-848 through
    // Strait, classic directly at the broker, read_committed on the
    // transactional topic through Strait.
    let (classic, kip848, direct, committed) = (
        unique("g-classic"),
        unique("g-848"),
        unique("g-direct"),
        unique("g-rc"),
    );
    let runs = [
        (
            s.bootstrap.clone(),
            topic.clone(),
            classic.clone(),
            vec!["--records", "40"],
        ),
        (
            s.bootstrap.clone(),
            topic.clone(),
            kip848.clone(),
            vec!["--records", "25", "--group-protocol", "consumer"],
        ),
        (
            broker.clone(),
            topic.clone(),
            direct.clone(),
            vec!["--records", "45"],
        ),
        (
            s.bootstrap.clone(),
            txn.clone(),
            committed.clone(),
            vec!["--records", "20", "--isolation", "read_committed"],
        ),
    ];
    let handles: Vec<_> = runs
        .iter()
        .map(|(b, t, g, extra)| {
            let mut args = vec![
                "--bootstrap",
                b.as_str(),
                "--topic",
                t.as_str(),
                "--group",
                g.as_str(),
            ];
            args.extend_from_slice(extra);
            spawn_driver(&mut java("GroupConsume", &args))
        })
        .collect();
    for h in handles {
        h.finish().assert_ok("GroupConsume");
    }

    for (group, t) in [
        (&classic, &topic),
        (&kip848, &topic),
        (&direct, &topic),
        (&committed, &txn),
    ] {
        let kafka = kafka_describe(&broker, group, t);
        assert!(!kafka.is_empty(), "kafka-consumer-groups shows {group}");
        let want: BTreeMap<i32, i64> = kafka.iter().map(|(p, (c, _, _))| (*p, *c)).collect();
        let v = view_with_commits(&s, group, &want);
        for (p, (current, end, lag)) in &kafka {
            let ours = partition(&v, *p);
            assert_eq!(ours["end_offset"], *end, "{group}/{p}: {ours}");
            assert_eq!(ours["lag_kafka"], *lag, "{group}/{p}: {ours}");
            if t == &topic {
                assert_eq!(
                    ours["lag"], *lag,
                    "{group}/{p}: the same lag as Kafka's tool"
                );
                assert_eq!(ours["lag_exact"], true, "{ours}");
            }
            eprintln!("{group} {t}/{p}: committed {current}, kafka-consumer-groups lag {lag}, Strait lag {}", ours["lag"]);
        }
        assert_eq!(
            v["protocol"],
            if group == &kip848 {
                "consumer"
            } else {
                "classic"
            },
            "{v}"
        );
    }
    // The transactional topic read to its end: markers are no lag.
    let kafka = kafka_describe(&broker, &committed, &txn);
    let (_, _, kafka_lag) = kafka[&0];
    assert!(
        kafka_lag >= 1,
        "kafka-consumer-groups counts the last marker: {kafka:?}"
    );
    let v = get(&s, &format!("/debug/lag/{committed}")).1;
    assert_eq!(partition(&v, 0)["lag"], 0, "caught up: {v:#}");
    assert_eq!(partition(&v, 0)["lag_exact"], true);

    // Every consumer has stopped: the groups with records left on a
    // partition they committed are STOP (40, 25 and 45 are no multiple of
    // the 30 records a partition holds), the caught-up one OK.
    for group in [&classic, &kip848, &direct] {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let v = get(&s, &format!("/debug/lag/{group}")).1;
            if v["status"] == "STOP" {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{group} to be STOP: {v:#}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    assert_eq!(
        get(&s, &format!("/debug/lag/{committed}")).1["status"],
        "OK"
    );
    // The list names them all.
    let (code, all) = get(&s, "/debug/groups");
    assert_eq!(code, 200);
    let names: Vec<&str> = all["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|g| g["group"].as_str())
        .collect();
    for g in [&classic, &kip848, &direct, &committed] {
        assert!(names.contains(&g.as_str()), "{g} in {names:?}");
    }
}

#[test]
fn a_consumer_failing_on_a_record_is_stall_and_the_stuck_message_is_that_record() {
    let broker = cluster(1);
    let (s, _dir) = strait(&broker, "");
    let topic = unique("lag-stall");
    create_topic(&broker, &topic, 1, 1);
    produce(&broker, &topic, 1, 20);
    let group = unique("g-stall");
    let consumer = spawn_driver(&mut java(
        "GroupConsume",
        &[
            "--bootstrap",
            &s.bootstrap,
            "--topic",
            &topic,
            "--group",
            &group,
            "--stall-at",
            "7",
            "--stall-partition",
            "0",
            "--client-id",
            "stall-me",
        ],
    ));
    eventually(
        "the consumer to stall on offset 7",
        Duration::from_secs(60),
        || {
            consumer
                .next_line(Duration::from_secs(1))
                .filter(|l| l["type"] == "stalled")
        },
    );
    let v = eventually("the partition to be STALL", Duration::from_secs(30), || {
        let v = get(&s, &format!("/debug/lag/{group}")).1;
        (v["status"] == "STALL").then_some(v)
    });
    let p = partition(&v, 0);
    assert_eq!(
        (p["committed"].as_i64(), p["lag"].as_i64()),
        (Some(7), Some(13)),
        "{p}"
    );
    assert_eq!(p["client_id"], "stall-me", "the consuming member: {p}");
    assert!(p["host"].as_str().is_some_and(|h| !h.is_empty()), "{p}");

    let (code, m) = get(&s, &format!("/debug/stuck/{group}/{topic}/0"));
    assert_eq!(code, 200, "{m}");
    assert_eq!(m["offset"], 7);
    assert_eq!(m["key"]["text"], "k-0-7");
    assert_eq!(m["value"]["format"], "json");
    assert!(
        m["value"]["text"].as_str().unwrap().contains("\"id\": 7"),
        "{m}"
    );
    // The kcat command prints exactly that record, through Strait.
    let kcat = m["kcat"].as_str().unwrap();
    let out = run(Command::new("sh").args(["-c", kcat]));
    out.assert_ok("the stuck message's kcat command");
    assert!(
        out.stdout.contains("offset 7") && out.stdout.contains("{\"id\":7,"),
        "{}",
        out.stdout
    );

    // The CLI says the same, for people and as JSON.
    let cli = |args: &[&str]| {
        run(Command::new(strait_bin())
            .args(args)
            .args(["--admin", &s.admin]))
    };
    let out = cli(&["stuck", &group, &topic, "0"]);
    out.assert_ok("strait stuck");
    assert!(
        out.stdout
            .contains(&format!("waits on {topic}/0 at offset 7")),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("kcat -C -b"), "{}", out.stdout);
    let out = cli(&["lag", &group]);
    out.assert_ok("strait lag");
    assert!(
        out.stdout.contains("STALL") && out.stdout.contains("stall-me"),
        "{}",
        out.stdout
    );
    let out = cli(&["lag", &group, "--json"]);
    let json: Value = serde_json::from_str(&out.stdout).expect("strait lag --json prints JSON");
    assert_eq!(json["partitions"][0]["committed"], 7);
    drop(consumer);
}

#[test]
fn bad_requests_get_clear_answers() {
    let broker = cluster(1);
    let (s, _dir) = strait(&broker, "");
    let (code, body) = http_get(&s.admin, "/debug/lag/no-such-group");
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("not in the lag view"), "{body}");
    let (code, body) = http_get(&s.admin, "/debug/stuck/g/t/not-a-number");
    assert_eq!(code, 400, "{body}");
    // A group with no commit on the partition.
    let (code, body) = http_get(&s.admin, &format!("/debug/stuck/{}/t/0", unique("g-none")));
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("no committed offset"), "{body}");
    // A group caught up: nothing waits.
    let topic = unique("lag-caught-up");
    create_topic(&broker, &topic, 1, 1);
    produce(&broker, &topic, 1, 3);
    let group = unique("g-caught-up");
    consume(&s.bootstrap, &topic, &group, &["--records", "3"]);
    let (code, body) = http_get(&s.admin, &format!("/debug/stuck/{group}/{topic}/0"));
    assert_eq!(code, 409, "{body}");
    assert!(body.contains("caught up"), "{body}");
    // A committed offset that retention (here DeleteRecords) took: the
    // first record still there, which `earliest` hands the consumer.
    let topic = unique("lag-deleted");
    create_topic(&broker, &topic, 1, 1);
    produce(&broker, &topic, 1, 10);
    let group = unique("g-deleted");
    consume(&s.bootstrap, &topic, &group, &["--records", "2"]);
    let dir = strait_integration::tempdir::Dir::new("lag-deleted");
    let offsets = dir.path().join("offsets.json");
    std::fs::write(
        &offsets,
        format!("{{\"partitions\":[{{\"topic\":\"{topic}\",\"partition\":0,\"offset\":6}}],\"version\":1}}"),
    )
    .unwrap();
    run(&mut harness(&[
        "tool",
        "org.apache.kafka.tools.DeleteRecordsCommand",
        "--bootstrap-server",
        &broker,
        "--offset-json-file",
        offsets.to_str().unwrap(),
    ]))
    .assert_ok("DeleteRecordsCommand");
    let (code, body) = get(&s, &format!("/debug/stuck/{group}/{topic}/0"));
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        (&body["committed"], &body["offset"]),
        (&2.into(), &6.into()),
        "{body:#}"
    );
    assert_eq!(body["key"]["text"], "k-0-6", "{body:#}");
    // The CLI against nothing listening: a clear error, exit 1.
    let out = run(Command::new(strait_bin()).args(["lag", "--admin", "127.0.0.1:1"]));
    assert!(
        !out.ok && out.stderr.contains("127.0.0.1:1"),
        "{}",
        out.stderr
    );
}

#[test]
fn off_loopback_the_debug_api_wants_its_token_and_hidden_values_never_show() {
    let broker = cluster(1);
    let config = |extra: &str| {
        Strait::with_config(&format!(
            "[listen]\nbootstrap = '127.0.0.1:0'\n[upstream]\nbootstrap = ['{broker}']\n\
             [admin]\nlisten = '0.0.0.0:0'\n{extra}"
        ))
    };
    // Beyond loopback without a token: the debug API is off, metrics are not.
    let (open, _d1) = config("");
    let (code, body) = http_get_with_token(&open.admin, "/debug/groups", None);
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("debug.token_file"), "{body}");
    assert_eq!(http_get_with_token(&open.admin, "/metrics", None).0, 200);
    // The broker map and the trace index are debug views too.
    let trace = format!("/traces/{:032x}", 7);
    for path in [
        "/brokers",
        trace.as_str(),
        "/debug/route/0123456789abcdef0123456789abcdef",
    ] {
        assert_eq!(
            http_get_with_token(&open.admin, path, None).0,
            403,
            "{path}"
        );
    }
    drop(open);

    let dir = strait_integration::tempdir::Dir::new("lag-token");
    let token = "s3cr3t-t0ken-for-the-debug-api";
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let prefix = unique("lag-secret");
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    std::fs::write(
        policies.join("secret.toml"),
        format!("[[policy]]\nname = \"secret\"\ntopics = {{ prefix = \"{prefix}\" }}\n[policy.debug]\nvalues = false\n"),
    )
    .unwrap();
    let (s, _d2) = config(&format!(
        "[debug]\ntoken_file = {:?}\n[policies]\ndir = {:?}\n",
        token_file, policies
    ));
    s.wait_ready();
    assert_eq!(http_get_with_token(&s.admin, "/debug/groups", None).0, 401);
    assert_eq!(
        http_get_with_token(&s.admin, "/debug/groups", Some("wrong-token-wrong-token")).0,
        403
    );
    let (code, body) = http_get_with_token(&s.admin, "/debug/groups", Some(token));
    assert_eq!(code, 200, "{body}");
    assert_eq!(http_get_with_token(&s.admin, "/brokers", None).0, 401);
    assert_eq!(http_get_with_token(&s.admin, &trace, None).0, 401);
    let (code, body) = http_get_with_token(&s.admin, "/brokers", Some(token));
    assert!(code == 200 && !body.is_empty(), "{code} {body}");
    assert_eq!(http_get_with_token(&s.admin, &trace, Some(token)).0, 404);

    // A topic whose policy hides values: the stuck message shows its key
    // and size, never the value.
    let topic = format!("{prefix}-t");
    create_topic(&broker, &topic, 1, 1);
    produce(&broker, &topic, 1, 3);
    let group = unique("g-secret");
    run(&mut harness(&[
        "consumer-groups",
        "--bootstrap-server",
        &broker,
        "--group",
        &group,
        "--topic",
        &topic,
        "--reset-offsets",
        "--to-offset",
        "1",
        "--execute",
    ]))
    .assert_ok("reset offsets");
    let (code, body) = http_get_with_token(
        &s.admin,
        &format!("/debug/stuck/{group}/{topic}/0"),
        Some(token),
    );
    assert_eq!(code, 200, "{body}");
    let m: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(m["offset"], 1);
    assert_eq!(m["key"]["text"], "k-0-1");
    assert_eq!(
        (m["value"]["format"].as_str(), m["value"]["text"].as_str()),
        (Some("hidden"), None),
        "{m}"
    );
    assert!(
        !body.contains("\\\"id\\\"") && !body.contains("\"id\""),
        "no value anywhere: {body}"
    );
    // The CLI with the token file.
    let out = run(Command::new(strait_bin()).args([
        "stuck",
        &group,
        &topic,
        "0",
        "--admin",
        &s.admin,
        "--token-file",
        token_file.to_str().unwrap(),
    ]));
    out.assert_ok("strait stuck --token-file");
    assert!(out.stdout.contains("hidden by policy"), "{}", out.stdout);
    let out = run(Command::new(strait_bin()).args(["lag", "--admin", &s.admin]));
    assert!(
        !out.ok && out.stderr.contains("401"),
        "without the token: {}",
        out.stderr
    );
}
