//! The record pipeline against real clients and a real broker: batches sent
//! uncompressed are stored compressed in the topic's codec (checked in the
//! broker's log segments), every consumed record carries a valid W3C
//! traceparent (records that had one keep it), records arrive intact for the
//! Java client and librdkafka, transactions stay exactly-once, and corrupt
//! batches are refused instead of being re-sealed.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse};
use serde_json::Value;
use strait_integration::tempdir::Dir;
use strait_integration::wire::{partition_error, produce_request, Wire};
use strait_integration::{
    cluster, copy_transactionally, create_topic, harness, java, python, run, spawn_lines,
    stored_batches, unique, values_on_broker, Strait,
};

/// A traceparent a producer sets itself (W3C's example).
const OWN: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

fn write_policy(dir: &Dir, topic: &str, body: &str) {
    std::fs::write(
        dir.path().join(format!("{topic}.toml")),
        format!(
            "[[policy]]\nname = \"{topic}-pipeline\"\ntopics = {{ exact = \"{topic}\" }}\n{body}\n"
        ),
    )
    .unwrap();
}

fn pipeline(codec: &str) -> String {
    format!(
        "[policy.compress]\ncodec = \"{codec}\"\n[policy.trace]\nclient_id_header = \"strait-client-id\"\n"
    )
}

/// A valid version-00 traceparent: its trace id.
fn trace_id(v: &str) -> Option<&str> {
    let parts: Vec<&str> = v.split('-').collect();
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let ok = parts.len() == 4
        && parts[0] == "00"
        && hex(parts[1], 32)
        && parts[1].bytes().any(|b| b != b'0')
        && hex(parts[2], 16)
        && parts[2].bytes().any(|b| b != b'0')
        && hex(parts[3], 2);
    ok.then_some(parts[1])
}

/// PolicyProduce's value for record `i`: "value-<i>;" repeated to `len` bytes.
fn java_value(i: &str, len: usize) -> String {
    format!("value-{i};")
        .repeat(len)
        .chars()
        .take(len)
        .collect()
}

fn headers(record: &Value) -> Vec<(String, Option<String>)> {
    record["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h[0].as_str().unwrap().to_string(),
                h[1].as_str().map(str::to_string),
            )
        })
        .collect()
}

#[test]
fn uncompressed_producers_are_stored_compressed_and_read_intact_with_traceparents() {
    const JAVA: usize = 300;
    const JAVA_OWN: usize = 20;
    const RDKAFKA: usize = 300;
    const VALUE: usize = 400;
    let upstream = cluster(1);
    let base = unique("pipe");
    let dir = Dir::new("policies");
    let codecs = ["zstd", "lz4", "snappy", "gzip"];
    for codec in codecs {
        let topic = format!("{base}-{codec}");
        create_topic(&upstream, &topic, 1, 1);
        write_policy(&dir, &topic, &pipeline(codec));
    }
    let strait = Strait::with_policies(&upstream, dir.path());
    for codec in codecs {
        let topic = format!("{base}-{codec}");
        let java_produce = |records: usize, extra: &[&str]| {
            let n = records.to_string();
            let size = VALUE.to_string();
            let mut args = vec![
                "--bootstrap",
                &strait.bootstrap,
                "--topic",
                &topic,
                "--records",
                &n,
                "--value-bytes",
                &size,
                "--partition",
                "0",
            ];
            args.extend_from_slice(extra);
            run(&mut java("PolicyProduce", &args)).assert_ok("Java producer (uncompressed)");
        };
        java_produce(JAVA, &[]);
        let own = format!("traceparent={OWN}");
        java_produce(JAVA_OWN, &["--header", &own]);
        // librdkafka producer and consumer: values and headers checked record
        // by record, a traceparent appended to each record that had none.
        run(&mut python(
            "produce_consume.py",
            &[
                "--bootstrap",
                &strait.bootstrap,
                "--topic",
                &topic,
                "--records",
                &RDKAFKA.to_string(),
                "--no-create-topic",
                "--skip-foreign-keys",
                "--trace-header",
                "traceparent",
                "--own-traceparent-every",
                "10",
                "--timeout-ms",
                "60000",
            ],
        ))
        .assert_ok(&format!(
            "librdkafka round trip through the {codec} pipeline"
        ));

        // On the broker: every data batch in the codec, every record there.
        let stored = stored_batches(1, &topic, 0);
        let total: u64 = stored.iter().map(|(_, n)| n).sum();
        assert_eq!(
            total as usize,
            JAVA + JAVA_OWN + RDKAFKA,
            "{codec}: {stored:?}"
        );
        assert!(
            stored.iter().all(|(c, _)| c == codec),
            "the broker stores {codec} batches: {stored:?}"
        );

        // The Java consumer through Strait: every record, a valid traceparent each.
        let out = run(&mut java(
            "ReadTopic",
            &[
                "--bootstrap",
                &strait.bootstrap,
                "--topic",
                &topic,
                "--values",
                "--expect",
                &(JAVA + JAVA_OWN + RDKAFKA).to_string(),
            ],
        ));
        out.assert_ok("Java consumer through Strait");
        let records: Vec<Value> = out
            .json_lines()
            .into_iter()
            .filter(|l| l["type"] == "record")
            .collect();
        let (mut kept, mut rd_kept) = (0, 0);
        for r in &records {
            let hs = headers(r);
            let tps: Vec<&str> = hs
                .iter()
                .filter(|(k, _)| k == "traceparent")
                .filter_map(|(_, v)| v.as_deref())
                .collect();
            assert_eq!(tps.len(), 1, "one traceparent per record: {r}");
            assert!(trace_id(tps[0]).is_some(), "valid traceparent: {r}");
            let key = r["key"].as_str().unwrap();
            if let Some(i) = key.strip_prefix("key-") {
                let i: usize = i.parse().unwrap();
                if i.is_multiple_of(10) {
                    assert_eq!(
                        tps[0],
                        format!("00-{:032x}-{:016x}-01", 0xABC0000 + i + 1, 0xDEF000 + i + 1)
                    );
                    rd_kept += 1;
                }
                continue;
            }
            assert_eq!(
                r["value"].as_str().unwrap(),
                java_value(key, VALUE),
                "value intact: {r}"
            );
            assert!(
                hs.iter()
                    .any(|(k, v)| k == "strait-client-id"
                        && v.as_deref().is_some_and(|v| !v.is_empty())),
                "the producing client's id is added: {r}"
            );
            if tps[0] == OWN {
                assert_eq!(
                    hs[0],
                    ("traceparent".to_string(), Some(OWN.to_string())),
                    "kept in place"
                );
                kept += 1;
            }
        }
        assert_eq!(
            kept, JAVA_OWN,
            "{codec}: Java records keep their own traceparent"
        );
        assert_eq!(
            rd_kept,
            RDKAFKA / 10,
            "{codec}: librdkafka records keep theirs"
        );

        // librdkafka (kcat) reads the Java-produced values intact too.
        let java_values: HashSet<String> = (0..JAVA)
            .map(|i| java_value(&i.to_string(), VALUE))
            .collect();
        let read = values_on_broker(&strait.bootstrap, &topic);
        let found = read.iter().filter(|v| java_values.contains(*v)).count();
        assert_eq!(
            found,
            JAVA + JAVA_OWN,
            "{codec}: kcat through Strait reads Java's values"
        );

        // The trace index knows where a traced record landed.
        let r = &records[7];
        let tp = headers(r)
            .into_iter()
            .find(|(k, _)| k == "traceparent")
            .unwrap()
            .1
            .unwrap();
        let (status, body) = strait.admin_get(&format!("/traces/{}", trace_id(&tp).unwrap()));
        assert_eq!(status, 200, "{body}");
        assert!(
            body.lines()
                .any(|l| l.starts_with(&format!("{topic} 0 {} ", r["offset"]))),
            "trace route names topic, partition and offset: {body}"
        );
    }
    let (status, body) = strait.admin_get("/traces/not-a-trace");
    assert_eq!(status, 400, "{body}");
    let (status, _) = strait.admin_get(&format!("/traces/{:032x}", 1));
    assert_eq!(status, 404);
}

#[test]
fn transactional_copier_is_exactly_once_through_rewriting() {
    const RECORDS: usize = 3000;
    let upstream = cluster(1);
    let base = unique("eos-pipe");
    let (input, output) = (format!("{base}-in"), format!("{base}-out"));
    create_topic(&upstream, &input, 1, 1);
    create_topic(&upstream, &output, 1, 1);
    let dir = Dir::new("policies");
    write_policy(&dir, &input, &pipeline("zstd"));
    write_policy(&dir, &output, &pipeline("lz4"));
    let strait = Strait::with_policies(&upstream, dir.path());
    // Input through Strait (rewritten), keys "0".."2999".
    run(&mut java(
        "PolicyProduce",
        &[
            "--bootstrap",
            &strait.bootstrap,
            "--topic",
            &input,
            "--records",
            &RECORDS.to_string(),
        ],
    ))
    .assert_ok("input records through Strait");
    // Consume-transform-produce with random aborts, both sides through Strait.
    copy_transactionally(&strait.bootstrap, &base, &input, &output, RECORDS)
        .assert_ok("TransactionalMessageCopier through the pipeline");

    let config = Dir::new("consumer");
    let props = config.path().join("consumer.properties");
    std::fs::write(&props, "isolation.level=read_committed\n").unwrap();
    let (mut consumer, events) = spawn_lines(&mut harness(&[
        "tool",
        "org.apache.kafka.tools.VerifiableConsumer",
        "--bootstrap-server",
        &strait.bootstrap,
        "--topic",
        &output,
        "--group-id",
        &unique("verify"),
        "--verbose",
        "--reset-policy",
        "earliest",
        "--consumer.config",
        props.to_str().unwrap(),
    ]));
    let mut seen: HashMap<String, u32> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while seen.len() < RECORDS {
        let Ok(ev) = events.recv_timeout(deadline.saturating_duration_since(Instant::now())) else {
            break;
        };
        if ev["name"] == "record_data" {
            *seen
                .entry(ev["key"].as_str().unwrap_or("null").to_string())
                .or_insert(0) += 1;
        }
    }
    let _ = consumer.kill();
    let _ = consumer.wait();
    let missing: Vec<usize> = (0..RECORDS)
        .filter(|i| !seen.contains_key(&i.to_string()))
        .collect();
    let duplicates: u32 = seen.values().map(|n| n - 1).sum();
    // The committed output holds each input record once (read on the broker).
    let committed = run(&mut java(
        "ReadTopic",
        &[
            "--bootstrap",
            &upstream,
            "--topic",
            &output,
            "--isolation",
            "read_committed",
            "--quiet",
        ],
    ));
    committed.assert_ok("ReadTopic read_committed on the broker");
    let committed = committed.summary()["count"].as_u64().unwrap();
    let stored = stored_batches(1, &output, 0);
    println!(
        "copier through the pipeline: {RECORDS} input records; VerifiableConsumer (read_committed) saw {} distinct, \
         {duplicates} duplicates, {} missing; committed on the broker {committed}; output batches stored: {} ({} lz4)",
        seen.len(),
        missing.len(),
        stored.len(),
        stored.iter().filter(|(c, _)| c == "lz4").count()
    );
    assert!(
        missing.is_empty(),
        "input records never seen: {:?}",
        &missing[..missing.len().min(20)]
    );
    assert_eq!(duplicates, 0, "records seen twice");
    assert_eq!(
        seen.len(),
        RECORDS,
        "only input keys: {:?}",
        seen.keys()
            .filter(|k| k.parse::<usize>().map_or(true, |i| i >= RECORDS))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        committed as usize, RECORDS,
        "committed records on the broker"
    );
    assert!(
        stored.iter().all(|(c, _)| c == "lz4"),
        "copier output stored in lz4: {stored:?}"
    );
    assert!(stored_batches(1, &input, 0)
        .iter()
        .all(|(c, _)| c == "zstd"));
}

/// librdkafka's transactional producer and read_committed consumer through
/// the pipeline: committed records once, aborted ones never, each with a
/// traceparent; stored in zstd.
#[test]
fn librdkafka_transactions_through_rewriting_are_read_committed_once() {
    let upstream = cluster(1);
    let topic = unique("txn-pipe");
    create_topic(&upstream, &topic, 1, 1);
    let dir = Dir::new("policies");
    write_policy(&dir, &topic, &pipeline("zstd"));
    let strait = Strait::with_policies(&upstream, dir.path());
    let out = run(&mut python(
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
    out.assert_ok("confluent-kafka transactions through the pipeline");
    let s = out.summary();
    println!("librdkafka transactions through the pipeline: {s}");
    assert_eq!(
        (s["committed"].as_u64(), s["aborted"].as_u64()),
        (Some(1000), Some(500))
    );
    assert_eq!(s["distinct"].as_u64(), Some(1000));
    let stored = stored_batches(1, &topic, 0);
    assert!(
        !stored.is_empty() && stored.iter().all(|(c, _)| c == "zstd"),
        "the broker stores zstd batches: {stored:?}"
    );
}

/// The batch bytes of a one-record produce request.
fn batch_of(req: &ProduceRequest) -> Vec<u8> {
    req.topic_data[0].partition_data[0]
        .records
        .as_ref()
        .unwrap()
        .to_vec()
}

fn with_batch(mut req: ProduceRequest, batch: Vec<u8>) -> ProduceRequest {
    req.topic_data[0].partition_data[0].records = Some(batch.into());
    req
}

#[test]
fn corrupt_and_old_format_batches_are_refused_not_resealed() {
    let upstream = cluster(1);
    let topic = unique("pipe-bad");
    create_topic(&upstream, &topic, 1, 1);
    let dir = Dir::new("policies");
    write_policy(&dir, &topic, &pipeline("zstd"));
    let strait = Strait::with_policies(&upstream, dir.path());
    let mut w = Wire::connect(&strait.bootstrap);

    // A flipped byte in the value: the CRC no longer matches.
    let good = produce_request(&topic, -1, b"payload-payload-payload");
    let mut bad = batch_of(&good);
    let last = bad.len() - 3;
    bad[last] ^= 0x20;
    let resp: ProduceResponse = w.call(ApiKey::Produce, 9, &with_batch(good.clone(), bad));
    let (code, msg) = partition_error(&resp);
    assert_eq!(
        code, 2,
        "CORRUPT_MESSAGE, as the broker would answer: {msg}"
    );
    assert!(
        msg.contains("CRC-32C mismatch") && msg.contains(&format!("{topic}-pipeline")),
        "{msg}"
    );

    // Magic 1 (old message format): a clear policy error.
    let mut old = batch_of(&good);
    old[16] = 1;
    let resp: ProduceResponse = w.call(ApiKey::Produce, 9, &with_batch(good.clone(), old));
    let (code, msg) = partition_error(&resp);
    assert_eq!(code, 44, "POLICY_VIOLATION: {msg}");
    assert!(
        msg.contains("magic 1") && msg.contains("cannot rewrite"),
        "{msg}"
    );

    // The same batch to a topic no policy rewrites passes as bytes: the broker answers.
    let free = unique("pipe-free");
    create_topic(&upstream, &free, 1, 1);
    let mut old = batch_of(&good);
    old[16] = 1;
    let resp: ProduceResponse = w.call(
        ApiKey::Produce,
        9,
        &with_batch(produce_request(&free, -1, b"payload-payload-payload"), old),
    );
    let (code, msg) = partition_error(&resp);
    println!("broker's answer to a magic-1 batch: error {code} {msg:?}");
    assert!(
        !msg.contains("Strait"),
        "Strait left it to the broker: {msg}"
    );

    // A record count past the records: refused, nothing allocated for it.
    let mut hostile = batch_of(&good);
    hostile[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
    let resp: ProduceResponse = w.call(ApiKey::Produce, 9, &with_batch(good.clone(), hostile));
    let (code, msg) = partition_error(&resp);
    assert_eq!(code, 44, "Strait refused it (POLICY_VIOLATION): {msg}");
    assert!(
        msg.contains(&format!("{topic}-pipeline")) && msg.contains("record count"),
        "the refusal names the policy and the record count: {msg}"
    );

    // The connection still works and a good batch is rewritten and stored.
    let resp: ProduceResponse = w.call(ApiKey::Produce, 9, &good);
    assert_eq!(partition_error(&resp).0, 0);
    assert_eq!(
        values_on_broker(&upstream, &topic),
        ["payload-payload-payload"],
        "only the good record reached the broker"
    );
    assert_eq!(stored_batches(1, &topic, 0).len(), 1);
}
