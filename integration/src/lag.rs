//! The lag view (`/debug/lag/{group}`) against Kafka's own
//! `kafka-consumer-groups --describe`, for the tests of every client stack.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::{eventually, harness, http_get, run, Strait};

/// `kafka-consumer-groups --describe`: partition → (current offset, log
/// end offset, lag) of `topic`.
pub fn kafka_describe(bootstrap: &str, group: &str, topic: &str) -> BTreeMap<i32, (i64, i64, i64)> {
    let out = run(&mut harness(&[
        "consumer-groups",
        "--bootstrap-server",
        bootstrap,
        "--describe",
        "--group",
        group,
    ]));
    out.assert_ok("kafka-consumer-groups --describe");
    out.stdout
        .lines()
        .filter_map(|l| {
            let c: Vec<&str> = l.split_whitespace().collect();
            if c.len() < 6 || c[0] != group || c[1] != topic {
                return None;
            }
            Some((
                c[2].parse().ok()?,
                (c[3].parse().ok()?, c[4].parse().ok()?, c[5].parse().ok()?),
            ))
        })
        .collect()
}

/// An admin GET as JSON (a string when the body is none).
pub fn get(s: &Strait, path: &str) -> (u16, Value) {
    let (code, body) = http_get(&s.admin, path);
    (
        code,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

/// The view of `group` once its partitions show the given committed
/// offsets (within 30 s: a few of Strait's lag evaluations).
pub fn view_with_commits(s: &Strait, group: &str, want: &BTreeMap<i32, i64>) -> Value {
    eventually(
        &format!("the lag view of {group} to show {want:?}"),
        Duration::from_secs(30),
        || {
            let (code, v) = get(s, &format!("/debug/lag/{group}"));
            if code != 200 {
                return None;
            }
            let got: BTreeMap<i32, i64> = v["partitions"]
                .as_array()?
                .iter()
                .map(|p| {
                    (
                        p["partition"].as_i64().unwrap() as i32,
                        p["committed"].as_i64().unwrap(),
                    )
                })
                .collect();
            (got == *want).then_some(v)
        },
    )
}

/// Partition `p` of a lag view.
pub fn partition(v: &Value, p: i32) -> &Value {
    v["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["partition"] == p)
        .unwrap_or_else(|| panic!("partition {p} in {v:#}"))
}

/// Strait's lag view of `group` on `topic` (no transactions) equals what
/// `kafka-consumer-groups --describe` says on `broker`, partition by
/// partition: committed offset, end offset and lag. Returns the view.
pub fn assert_lag_as_kafka_says(s: &Strait, broker: &str, group: &str, topic: &str) -> Value {
    let kafka = kafka_describe(broker, group, topic);
    assert!(!kafka.is_empty(), "kafka-consumer-groups shows {group}");
    let want: BTreeMap<i32, i64> = kafka.iter().map(|(p, (c, _, _))| (*p, *c)).collect();
    let v = view_with_commits(s, group, &want);
    for (p, (_, end, lag)) in &kafka {
        let ours = partition(&v, *p);
        assert_eq!(ours["end_offset"], *end, "{group}/{p}: {ours}");
        assert_eq!(ours["lag_kafka"], *lag, "{group}/{p}: {ours}");
        assert_eq!(
            ours["lag"], *lag,
            "{group}/{p}: the same lag as Kafka's tool"
        );
    }
    v
}
