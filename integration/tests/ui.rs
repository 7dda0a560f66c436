//! The web UI (`/ui/`) in a real browser: Debian's headless chromium driven
//! by playwright-core (`integration/ui/ui_test.mjs`), against Strait on a
//! real broker. Records are produced with kcat (librdkafka) and consumed by
//! a Java consumer group that commits all of them; then more are produced,
//! so the lag is known exactly (5 records on partition 0, 3 on partition 1)
//! and the consumer is gone (STOP). The script checks the numbers each page
//! renders against these, that nothing with data shows without the debug
//! API's token, and saves a screenshot of each page to
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

/// Produces `(key, value)` records to `topic`/`partition` with kcat, each
/// with the header `source=ui-test`.
fn produce(bootstrap: &str, topic: &str, partition: i32, records: &[(String, String)]) {
    let text: String = records.iter().map(|(k, v)| format!("{k}\t{v}\n")).collect();
    let p = partition.to_string();
    let mut child = Command::new("kcat")
        .args(["-P", "-b", bootstrap, "-t", topic, "-p", &p, "-K", "\t"])
        .args(["-H", "source=ui-test"])
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
    produce(&broker, &topic, 0, &records("k", 0, 0..12));
    produce(&broker, &topic, 1, &records("k", 1, 0..8));
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
    produce(&broker, &topic, 0, &records("late", 0, 100..105));
    produce(&broker, &topic, 1, &records("late", 1, 100..103));
    let secret = format!("{secret_prefix}-t");
    create_topic(&broker, &secret, 1, 1);
    produce(&broker, &secret, 0, &records("s", 0, 0..2));

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
            let settled = got == want
                && v["status"] == "STOP"
                && v["history"].as_array().is_some_and(|h| h.len() >= 2);
            settled.then_some(v)
        },
    );
    assert_eq!(v["lag"], 8, "{v:#}");

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
