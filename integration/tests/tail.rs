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
