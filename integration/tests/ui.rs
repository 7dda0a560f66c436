//! The web UI (`/ui/`) in a real browser: Debian's headless chromium driven
//! by playwright-core (`integration/ui/ui_test.mjs`), against Strait on a
//! real broker. Records are produced through Strait with kcat (librdkafka),
//! with known key frequencies on partition 0 (`hot` 10 times, `warm` 5,
//! two keys once), and consumed by a Java consumer group that commits all
//! of them; then more are produced, so the lag is known exactly (5 records
//! on partition 0, 3 on partition 1) and the consumer is gone (STOP). JSON
//! orders and refunds go to a second topic for the tail's CEL filter, and a
//! traced record takes a route through a Java service that forwards it to a
//! third topic, read there by a second group. The script checks the numbers
//! each page renders against these (the top keys, the records a CEL filter
//! lets through, the route's events), that nothing with data shows without
//! the debug API's token, and saves a screenshot of each page to
//! `target/ui-screenshots/`. The kcat command the stuck-message page shows
//! is run here, and must print the record the page names.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use strait_integration::{
    cluster, create_topic, eventually, http_get_with_token, java, repo, run, tempdir, unique,
    Strait,
};

const TOKEN: &str = "ui-test-token-0123456789abcdef";
const TRACE: &str = "5c0ffee0ba5eba11deadbeef00c0ffee";

/// Produces `(key, value)` records to `topic`/`partition` with kcat, each
/// with the header `source=ui-test` (and `extra` headers, `name=value`).
fn produce(bootstrap: &str, topic: &str, partition: i32, records: &[(String, String)]) {
    produce_with(bootstrap, topic, partition, records, &[]);
}

fn produce_with(
    bootstrap: &str,
    topic: &str,
    partition: i32,
    records: &[(String, String)],
    extra: &[&str],
) {
    let text: String = records.iter().map(|(k, v)| format!("{k}\t{v}\n")).collect();
    let p = partition.to_string();
    let mut child = Command::new("kcat")
        .args(["-P", "-b", bootstrap, "-t", topic, "-p", &p, "-K", "\t"])
        .args(["-H", "source=ui-test"])
        .args(extra.iter().flat_map(|h| ["-H", h]))
        .stdin(Stdio::piped())
        .spawn()
        .expect("kcat");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(text.as_bytes()).unwrap();
    drop(stdin);
    assert!(child.wait().unwrap().success(), "kcat -P {topic}/{p}");
}

fn records(prefix: &str, partition: i32, ids: std::ops::Range<i32>) -> Vec<(String, String)> {
    ids.map(|i| {
        (
            format!("{prefix}-{partition}-{i}"),
            format!("{{\"id\":{i},\"partition\":{partition},\"kind\":\"{prefix}\"}}"),
        )
    })
    .collect()
}

/// Partition 0's keys by offset: `hot` 10 times, `warm` 5 times, and the
/// late records' first and last their own (`records` names the rest).
fn key_on_0(offset: i32) -> Option<&'static str> {
    match offset {
        0..=9 => Some("hot"),
        10 | 11 | 13..=15 => Some("warm"),
        _ => None,
    }
}

/// `records`, with partition 0's keys as `key_on_0` says from `first`.
fn keyed(mut r: Vec<(String, String)>, partition: i32, first: i32) -> Vec<(String, String)> {
    if partition == 0 {
        for (i, (k, _)) in r.iter_mut().enumerate() {
            if let Some(key) = key_on_0(first + i as i32) {
                *k = key.to_string();
            }
        }
    }
    r
}

fn lag_view(s: &Strait, group: &str) -> Option<Value> {
    let (code, body) = http_get_with_token(&s.admin, &format!("/debug/lag/{group}"), Some(TOKEN));
    (code == 200).then(|| serde_json::from_str(&body).expect("the lag view is JSON"))
}

#[test]
fn the_web_ui_renders_the_debug_api_in_a_browser_and_nothing_without_the_token() {
    let started = Instant::now();
    let ui = repo().join("integration/ui");
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists()
            && ui.join("node_modules/playwright-core").exists(),
        "chromium or playwright-core is missing: run scripts/install-deps"
    );
    let broker = cluster(1);
    let dir = tempdir::Dir::new("ui");
    std::fs::write(dir.path().join("token"), format!("{TOKEN}\n")).unwrap();
    let secret_prefix = unique("ui-secret");
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    let route_prefix = unique("ui-route");
    std::fs::write(
        policies.join("route.toml"),
        format!("[[policy]]\nname = \"route\"\ntopics = {{ prefix = \"{route_prefix}\" }}\n[policy.trace]\nclient_id_header = \"strait-client-id\"\n"),
    )
    .unwrap();
    std::fs::write(
        policies.join("secret.toml"),
        format!("[[policy]]\nname = \"secret\"\ntopics = {{ prefix = \"{secret_prefix}\" }}\n[policy.debug]\nvalues = false\n"),
    )
    .unwrap();
    // Evaluations every 500 ms, a window of 4: STOP within ~2 s. The token
    // guards the loopback listener too.
    let (s, _config) = Strait::with_config(&format!(
        "[listen]\nbootstrap = '127.0.0.1:0'\n[upstream]\nbootstrap = ['{broker}']\n\
         [admin]\nlisten = '127.0.0.1:0'\n[debug]\nlag_interval_ms = 500\nlag_window = 4\n\
         token_file = {:?}\n[policies]\ndir = {:?}\n",
        dir.path().join("token"),
        policies
    ));
    s.wait_ready();

    let topic = unique("ui");
    create_topic(&broker, &topic, 2, 1);
    // Through Strait, so its sample of produce requests counts the keys.
    produce(
        &s.bootstrap,
        &topic,
        0,
        &keyed(records("k", 0, 0..12), 0, 0),
    );
    produce(&s.bootstrap, &topic, 1, &records("k", 1, 0..8));
    let group = unique("g-ui");
    let consumed = run(&mut java(
        "GroupConsume",
        &[
            "--bootstrap",
            &s.bootstrap,
            "--topic",
            &topic,
            "--group",
            &group,
            "--records",
            "20",
        ],
    ));
    consumed.assert_ok("GroupConsume");
    assert_eq!(
        consumed.summary()["committed"],
        json!({"0": 12, "1": 8}),
        "{}",
        consumed.stdout
    );
    // After the consumer left: 5 and 3 records it has not read.
    produce(
        &s.bootstrap,
        &topic,
        0,
        &keyed(records("late", 0, 100..105), 0, 12),
    );
    produce(&s.bootstrap, &topic, 1, &records("late", 1, 100..103));
    let secret = format!("{secret_prefix}-t");
    create_topic(&broker, &secret, 1, 1);
    produce(&broker, &secret, 0, &records("s", 0, 0..2));

    // Orders and refunds for the CEL filter, through Strait.
    let cel_topic = unique("ui-cel");
    create_topic(&broker, &cel_topic, 1, 1);
    let cel: Vec<(String, String)> = (0..14)
        .map(|i| {
            let kind = if i % 3 == 2 { "refund" } else { "order" };
            (
                format!("c-{i}"),
                format!("{{\"kind\":\"{kind}\",\"amount\":{}}}", i * 2),
            )
        })
        .collect();
    produce(&s.bootstrap, &cel_topic, 0, &cel);
    let cel_filter = "json.kind == \"order\" && json.amount > 10";
    let cel_matches: Vec<Value> = cel
        .iter()
        .enumerate()
        .filter_map(|(offset, (_, v))| {
            let v: Value = serde_json::from_str(v).unwrap();
            (v["kind"] == "order" && v["amount"].as_i64().unwrap() > 10)
                .then(|| json!({"offset": offset, "value": v}))
        })
        .collect();
    assert!(
        cel_matches.len() >= 3 && cel_matches.len() < cel.len() / 2,
        "the filter must pass some records and drop more"
    );

    // A traced record between two untraced ones, read by a Java service
    // that forwards what it reads to a second topic, read by a second group.
    let (first, second) = (format!("{route_prefix}-a"), format!("{route_prefix}-b"));
    for t in [&first, &second] {
        create_topic(&broker, t, 1, 1);
    }
    let plain = |i: usize| vec![(format!("r{i}"), format!("{{\"n\":{i}}}"))];
    produce(&s.bootstrap, &first, 0, &plain(0));
    let traceparent = format!("traceparent=00-{TRACE}-00f067aa0ba902b7-01");
    produce_with(&s.bootstrap, &first, 0, &plain(1), &[&traceparent]);
    produce(&s.bootstrap, &first, 0, &plain(2));
    let (g1, g2) = (unique("g-forward"), unique("g-sink"));
    for (t, g, client, extra) in [
        (&first, &g1, "svc-a", vec!["--forward-to", second.as_str()]),
        (&second, &g2, "svc-b", vec![]),
    ] {
        let mut args: Vec<&str> = vec![
            "--bootstrap",
            &s.bootstrap,
            "--topic",
            t.as_str(),
            "--group",
            g.as_str(),
            "--client-id",
            client,
            "--records",
            "3",
        ];
        args.extend(extra);
        run(&mut java("GroupConsume", &args)).assert_ok(&format!("GroupConsume {g}"));
    }
    let hops = [
        ("produce", &first),
        ("fetch", &first),
        ("commit", &first),
        ("produce", &second),
        ("fetch", &second),
        ("commit", &second),
    ];
    let route = eventually(
        "the route to show both topics' produce, fetch and commit",
        Duration::from_secs(30),
        || {
            let (code, body) =
                http_get_with_token(&s.admin, &format!("/debug/route/{TRACE}"), Some(TOKEN));
            let v: Value = serde_json::from_str(&body).ok().filter(|_| code == 200)?;
            let events = v["events"].as_array()?;
            let has = |k: &str, t: &str| events.iter().any(|e| e["kind"] == k && e["topic"] == t);
            hops.iter().all(|(k, t)| has(k, t)).then_some(v)
        },
    );
    assert_eq!(route["events"].as_array().unwrap().len(), 6, "{route:#}");

    let want: BTreeMap<i64, (i64, i64, i64)> = [(0, (12, 17, 5)), (1, (8, 11, 3))].into();
    let v = eventually(
        "the lag view to show the group STOP with its known lag",
        Duration::from_secs(30),
        || {
            let v = lag_view(&s, &group)?;
            let got: BTreeMap<i64, (i64, i64, i64)> = v["partitions"]
                .as_array()?
                .iter()
                .map(|p| {
                    let n = |k: &str| p[k].as_i64().unwrap_or(-1);
                    (n("partition"), (n("committed"), n("end_offset"), n("lag")))
                })
                .collect();
            let sampled = |p: usize| v["partitions"][p]["top_keys"]["sampled"].as_u64();
            let settled = got == want
                && sampled(0) == Some(17)
                && sampled(1) == Some(11)
                && v["status"] == "STOP"
                && v["history"].as_array().is_some_and(|h| h.len() >= 2);
            settled.then_some(v)
        },
    );
    assert_eq!(v["lag"], 8, "{v:#}");
    // Fewer distinct keys than counters on partition 0: exact counts, and
    // the two keys seen once in key order.
    let top0 = json!({"sampled": 17, "max_error": 1, "keys": [
        {"key": "hot", "count": 10, "error": 0},
        {"key": "warm", "count": 5, "error": 0},
        {"key": "late-0-100", "count": 1, "error": 0},
        {"key": "late-0-104", "count": 1, "error": 0},
    ]});
    assert_eq!(v["partitions"][0]["top_keys"], top0, "{v:#}");

    let shots = repo().join("target/ui-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let expect = json!({
        "admin": format!("http://{}", s.admin),
        "token": TOKEN,
        "topic": topic,
        "secret_topic": secret,
        "group": group,
        "screenshots": shots,
        "topic_partitions": 2,
        "partitions": want.iter().map(|(p, (c, e, l))| json!({"partition": p, "committed": c, "end": e, "lag": l})).collect::<Vec<_>>(),
        "group_lag": 8,
        "group_status": "STOP",
        "records": {"0": 17, "1": 11},
        "late_records": 8,
        "secret_records": 2,
        // What the lag view says per partition, which the page must show.
        "observed": v["partitions"].as_array().unwrap().iter().map(|p| json!({
            "partition": p["partition"], "top_keys": p["top_keys"], "last_consume_ms": p["last_consume_ms"],
        })).collect::<Vec<_>>(),
        "top_key": {"partition": 0, "key": "hot", "count": 10},
        "cel": {"topic": cel_topic, "filter": cel_filter, "records": cel.len(), "matches": cel_matches},
        "route": {"trace": TRACE, "api": route, "topics": [first, second], "groups": [g1, g2]},
        "stuck": {
            "partition": 0,
            "offset": 12,
            "key": "late-0-100",
            "value": "\"id\": 100",
            "kcat_prefix": format!("kcat -C -b {} -t {topic} -p 0 -o 12 -c 1 -e", s.bootstrap),
        },
    });
    let ran = Instant::now();
    let out = run(Command::new("node")
        .arg(ui.join("ui_test.mjs"))
        .env("UI_TEST", expect.to_string()));
    eprintln!(
        "--- ui_test.mjs ({:.1} s)\n{}\n--- stderr\n{}",
        ran.elapsed().as_secs_f64(),
        out.stdout,
        out.stderr
    );
    assert!(out.ok, "the browser test failed (its output is above)");

    // The kcat command the page shows prints the record the page names.
    let kcat = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("KCAT "))
        .expect("the script prints the page's kcat command");
    let printed = run(Command::new("sh").args(["-c", kcat]));
    printed.assert_ok("the stuck page's kcat command");
    assert!(
        printed.stdout.contains("offset 12") && printed.stdout.contains("\"id\":100,"),
        "{}",
        printed.stdout
    );
    eprintln!("the UI test took {:.1} s", started.elapsed().as_secs_f64());
}
