//! The live tail (`/debug/tail/{topic}`, `strait tail`): from the start or
//! live, with filters on key and JSON fields, values hidden where a policy
//! says so, and clear refusals of bad requests.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use strait_integration::large::spawn_driver;
use strait_integration::{
    cluster, create_topic, http_get, kcat_produce, run, strait_bin, unique, Strait,
};

fn orders(prefix: &str, n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| {
            let status = if i % 2 == 0 { "paid" } else { "open" };
            (
                format!("{prefix}-{i}"),
                format!("{{\"id\":{i},\"order\":{{\"status\":\"{status}\"}}}}"),
            )
        })
        .collect()
}

fn tail_cli(s: &Strait, args: &[&str]) -> Command {
    let mut c = Command::new(strait_bin());
    c.arg("tail")
        .args(args)
        .args(["--admin", &s.admin, "--json"]);
    c
}

#[test]
fn a_tail_shows_exactly_the_records_its_filters_keep_from_the_start_and_live() {
    let broker = cluster(1);
    let dir = strait_integration::tempdir::Dir::new("tail-policies");
    let secret = unique("tail-secret");
    std::fs::write(
        dir.path().join("secret.toml"),
        format!("[[policy]]\nname = \"secret\"\ntopics = {{ exact = \"{secret}\" }}\n[policy.debug]\nvalues = false\n"),
    )
    .unwrap();
    let s = Strait::with_policies(&broker, dir.path());
    let topic = unique("tail");
    create_topic(&broker, &topic, 2, 1);
    kcat_produce(&broker, &topic, 0, &orders("a", 10));

    // From the start, a JSON-field filter: exactly the five paid orders.
    let out = run(&mut tail_cli(
        &s,
        &[
            &topic,
            "--from",
            "earliest",
            "--json-field",
            "order.status=paid",
            "--limit",
            "5",
        ],
    ));
    out.assert_ok("strait tail --from earliest");
    let records: Vec<Value> = out
        .json_lines()
        .into_iter()
        .filter(|l| l["type"] == "record")
        .collect();
    let keys: Vec<&str> = records
        .iter()
        .filter_map(|r| r["key"]["text"].as_str())
        .collect();
    assert_eq!(keys, ["a-0", "a-2", "a-4", "a-6", "a-8"], "{}", out.stdout);
    assert!(records.iter().all(|r| r["value"]["format"] == "json"));

    // Live: a viewer from the latest offset sees only what comes after it
    // started, across partitions, filtered by key.
    let live = spawn_driver(&mut tail_cli(&s, &[&topic, "--key", "b-3", "--limit", "1"]));
    let stats = live
        .next_line(Duration::from_secs(30))
        .expect("the tail's first counters");
    assert_eq!(stats["type"], "stats", "{stats}");
    kcat_produce(&broker, &topic, 1, &orders("b", 5));
    let out = live.finish();
    assert!(out.ok, "{}\n{}", out.stdout, out.stderr);
    let records: Vec<Value> = out
        .json_lines()
        .into_iter()
        .filter(|l| l["type"] == "record")
        .collect();
    assert_eq!(records.len(), 1, "{}", out.stdout);
    assert_eq!(
        (
            records[0]["partition"].as_i64(),
            records[0]["key"]["text"].as_str()
        ),
        (Some(1), Some("b-3"))
    );

    // A topic whose policy hides values: keys show, values never; value
    // filters are refused.
    create_topic(&broker, &secret, 1, 1);
    kcat_produce(&broker, &secret, 0, &orders("s", 2));
    let out = run(&mut tail_cli(
        &s,
        &[&secret, "--from", "earliest", "--limit", "2"],
    ));
    out.assert_ok("strait tail on a hidden topic");
    assert!(
        !out.stdout.contains("paid") && !out.stdout.contains("\"id\""),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("\"hidden\"") && out.stdout.contains("s-1"),
        "{}",
        out.stdout
    );
    let (code, body) = http_get(&s.admin, &format!("/debug/tail/{secret}?contains=paid"));
    assert_eq!(code, 403, "{body}");
}

#[test]
fn bad_tail_requests_get_clear_answers() {
    let broker = cluster(1);
    let s = Strait::quick(&broker);
    s.wait_ready();
    for (path, code, says) in [
        ("/debug/tail/t?from=yesterday", 400, "from="),
        ("/debug/tail/t?partition=-1", 400, "partition"),
        ("/debug/tail/t?json=nofield", 400, "json="),
        ("/debug/tail/t?colour=red", 400, "unknown parameter"),
        (
            &format!("/debug/tail/{}", unique("tail-none"))[..],
            404,
            "does not exist",
        ),
    ] {
        let (got, body) = http_get(&s.admin, path);
        assert_eq!(got, code, "{path}: {body}");
        assert!(body.contains(says), "{path}: {body}");
    }
    let out = run(Command::new(strait_bin()).args([
        "tail",
        "t",
        "--from",
        "yesterday",
        "--admin",
        &s.admin,
    ]));
    assert!(!out.ok && out.stderr.contains("400"), "{}", out.stderr);
}

/// Percent-encodes a query value.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn a_cel_filter_keeps_exactly_the_records_it_is_true_for() {
    let broker = cluster(1);
    let dir = strait_integration::tempdir::Dir::new("tail-cel-policies");
    let secret = unique("tail-cel-secret");
    std::fs::write(
        dir.path().join("secret.toml"),
        format!("[[policy]]\nname = \"secret\"\ntopics = {{ exact = \"{secret}\" }}\n[policy.debug]\nvalues = false\n"),
    )
    .unwrap();
    let s = Strait::with_policies(&broker, dir.path());
    let topic = unique("tail-cel");
    create_topic(&broker, &topic, 2, 1);
    // Partition 0: orders of 0, 3, .., 33; those over 10 are o-4 to o-11.
    let orders: Vec<(String, String)> = (0..12)
        .map(|i| {
            let amount = i * 3;
            (
                format!("o-{i}"),
                format!("{{\"kind\":\"order\",\"amount\":{amount}}}"),
            )
        })
        .collect();
    kcat_produce(&broker, &topic, 0, &orders);
    // Partition 1: other kinds, and three records the expression cannot
    // decide (not JSON, no amount, an amount that is text).
    let others: Vec<(String, String)> = [
        ("r-1", r#"{"kind":"refund","amount":50}"#),
        ("t-1", "not json at all"),
        ("n-1", r#"{"kind":"order"}"#),
        ("x-1", r#"{"kind":"order","amount":"12"}"#),
        ("p-1", r#"{"kind":"order","amount":11}"#),
        ("r-2", r#"{"kind":"refund","amount":5}"#),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    kcat_produce(&broker, &topic, 1, &others);
    let total = (orders.len() + others.len()) as u64;

    let viewer = spawn_driver(&mut tail_cli(
        &s,
        &[
            &topic,
            "--from",
            "earliest",
            "--filter",
            r#"json.kind == "order" && json.amount > 10"#,
        ],
    ));
    // Records come before the counters that count them: once the counters
    // say every record was processed, the viewer has been sent all that
    // passed.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    let last = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = viewer
            .next_line(left)
            .unwrap_or_else(|| panic!("no counters with {total} processed; seen {seen:?}"));
        if line["type"] == "stats" && line["processed"] == total {
            break line;
        }
        seen.push(line);
    };
    // Values are shown pretty-printed: compared as JSON.
    let json = |text: &str| serde_json::from_str::<Value>(text).unwrap_or(Value::Null);
    let mut got: Vec<(i64, i64, String)> = seen
        .iter()
        .filter(|l| l["type"] == "record")
        .map(|r| {
            (
                r["partition"].as_i64().unwrap(),
                r["offset"].as_i64().unwrap(),
                json(r["value"]["text"].as_str().unwrap_or("")).to_string(),
            )
        })
        .collect();
    got.sort();
    let mut want: Vec<(i64, i64, String)> = (4..12)
        .map(|i| (0, i, json(&orders[i as usize].1).to_string()))
        .collect();
    want.push((1, 4, json(&others[4].1).to_string()));
    assert_eq!(got, want, "{seen:?}");
    assert_eq!(last["passed"], want.len() as u64, "{last}");
    assert_eq!(last["filter_errors"], 3, "{last}");
    let told: Vec<&Value> = seen
        .iter()
        .filter(|l| l["type"] == "filter_error")
        .collect();
    assert_eq!(told.len(), 1, "the first filter error, once: {seen:?}");
    assert!(
        told[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("partition 1")),
        "{}",
        told[0]
    );
    drop(viewer);

    // Refusals: the parser's reason, the bound, hidden values.
    let (code, body) = http_get(
        &s.admin,
        &format!("/debug/tail/{topic}?filter={}", enc("json.kind ==")),
    );
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains("not a CEL expression: ") && body.contains("ERROR"),
        "{body}"
    );
    let long = format!("key == '{}'", "x".repeat(2048));
    let (code, body) = http_get(
        &s.admin,
        &format!("/debug/tail/{topic}?filter={}", enc(&long)),
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("at most 2048"), "{body}");
    create_topic(&broker, &secret, 1, 1);
    kcat_produce(&broker, &secret, 0, &orders[..2]);
    for reads in [
        r#"value.contains("order")"#,
        "json.amount > 1",
        ".value == 'x'",
    ] {
        let (code, body) = http_get(
            &s.admin,
            &format!("/debug/tail/{secret}?filter={}", enc(reads)),
        );
        assert_eq!(code, 403, "{reads}: {body}");
        assert!(body.contains("hides its values"), "{reads}: {body}");
    }
    // An expression on keys alone is no value filter.
    let out = run(&mut tail_cli(
        &s,
        &[
            &secret,
            "--from",
            "earliest",
            "--filter",
            "key == 'o-1'",
            "--limit",
            "1",
        ],
    ));
    out.assert_ok("strait tail --filter on a hidden topic's keys");
    let records: Vec<Value> = out
        .json_lines()
        .into_iter()
        .filter(|l| l["type"] == "record")
        .collect();
    assert_eq!(records.len(), 1, "{}", out.stdout);
    assert_eq!(records[0]["key"]["text"], "o-1");
    assert_eq!(records[0]["value"]["format"], "hidden");
}

/// Reads server-sent events from a raw connection until `done` says so (or
/// the stream ends): every `data:` line's JSON.
fn read_events(stream: &mut std::net::TcpStream, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    use std::io::{BufRead, BufReader};
    let mut events = Vec::new();
    let mut lines = BufReader::new(stream.try_clone().unwrap()).lines();
    while !done(&events) {
        let Some(Ok(line)) = lines.next() else { break };
        if let Some(json) = line.strip_prefix("data:") {
            if let Ok(v) = serde_json::from_str::<Value>(json.trim()) {
                events.push(v);
            }
        }
    }
    events
}

#[test]
fn a_slow_viewer_loses_only_its_own_events_and_is_told() {
    use std::io::Write;
    let broker = cluster(1);
    let s = Strait::quick(&broker);
    s.wait_ready();
    let topic = unique("tail-slow");
    create_topic(&broker, &topic, 1, 1);
    // 2,000 records of 8 KiB: far more than the slow viewer's queue (256
    // events) and its socket buffers hold.
    let n = 2_000usize;
    let big = "x".repeat(8 << 10);
    let records: Vec<(String, String)> = (0..n)
        .map(|i| (format!("k{i}"), format!("{{\"i\":{i},\"pad\":\"{big}\"}}")))
        .collect();
    kcat_produce(&broker, &topic, 0, &records);

    // The slow viewer connects first and reads nothing for now.
    let mut slow = std::net::TcpStream::connect(&s.admin).unwrap();
    write!(
        slow,
        "GET /debug/tail/{topic}?from=earliest HTTP/1.1\r\nHost: strait\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    // Another viewer of the same topic at the same time, whose filter keeps
    // only the last record: its queue never fills, so whatever it lost
    // could only be the slow viewer's doing. It reads until its counters say
    // every record was processed (a read timeout ends a stalled stream, and
    // the assertions then fail rather than hang).
    let last = format!("k{}", n - 1);
    let mut fast = std::net::TcpStream::connect(&s.admin).unwrap();
    write!(
        fast,
        "GET /debug/tail/{topic}?from=earliest&key={last} HTTP/1.1\r\nHost: strait\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    fast.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let got = read_events(&mut fast, |events| {
        events
            .iter()
            .any(|e| e["type"] == "stats" && e["processed"] == n as u64)
    });
    let done = got
        .iter()
        .find(|e| e["type"] == "stats" && e["processed"] == n as u64)
        .expect("the filtered viewer's counters for every record");
    assert_eq!(done["passed"], 1, "{done}");
    assert_eq!(done["dropped"], 0, "the other viewer lost nothing: {done}");
    let records: Vec<&Value> = got.iter().filter(|e| e["type"] == "record").collect();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["offset"], n as i64 - 1);

    // Now the slow one reads: it got what fitted, and its counters say how
    // many it lost; received + dropped = passed.
    slow.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let events = read_events(&mut slow, |events| {
        events
            .iter()
            .rev()
            .find(|e| e["type"] == "stats")
            .is_some_and(|st| st["processed"] == n as u64 && st["passed"] == n as u64)
    });
    let stats = events
        .iter()
        .rev()
        .find(|e| e["type"] == "stats")
        .expect("a stats event");
    let received = events.iter().filter(|e| e["type"] == "record").count() as u64;
    let dropped = stats["dropped"].as_u64().unwrap();
    assert_eq!(stats["processed"], n as u64, "{stats}");
    assert!(dropped > 0, "the slow viewer lost events: {stats}");
    assert!(received < n as u64, "{received} received");
    assert_eq!(
        received + dropped,
        n as u64,
        "received {received} + dropped {dropped}"
    );
}
