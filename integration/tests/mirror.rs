//! The mirror (`[policy.mirror]`): records produced through Strait reach
//! the JSONL files and the mirror topic exactly, sampled deterministically,
//! never with a value a policy hides; a sink that cannot write, or a byte
//! rate too small, drops and counts while produce goes on as before.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use strait_integration::tempdir::Dir;
use strait_integration::{
    cluster, create_topic, eventually, kcat_produce, run, unique, values_on_broker, Strait,
};
use strait_proxy::debug::mirror::sampled;

const N: usize = 40;
const WAIT: Duration = Duration::from_secs(60);

fn records(prefix: &str) -> Vec<(String, String)> {
    (0..N)
        .map(|i| (format!("k-{i}"), format!("{prefix}-value-{i}")))
        .collect()
}

/// Every line of a topic's mirror files in `dir`, in file order.
fn jsonl_lines(dir: &Path, topic: &str) -> Vec<Value> {
    let prefix = format!("mirror-{topic}-");
    let mut files: Vec<(u64, std::path::PathBuf)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| {
                let p = e.ok()?.path();
                let n = p
                    .file_name()?
                    .to_str()?
                    .strip_prefix(&prefix)?
                    .strip_suffix(".jsonl")?
                    .parse()
                    .ok()?;
                Some((n, p))
            })
            .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
        .iter()
        .flat_map(|(_, p)| {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).expect("a JSON line"))
                .collect::<Vec<Value>>()
        })
        .collect()
}

/// The mirror's entry for `topic` in `/debug/mirror`.
fn entry(s: &Strait, topic: &str) -> Option<Value> {
    let (code, body) = s.admin_get("/debug/mirror");
    assert_eq!(code, 200, "{body}");
    let all: Vec<Value> = serde_json::from_str(&body).expect("JSON");
    all.into_iter().find(|e| e["topic"] == topic)
}

fn sink<'a>(e: &'a Value, kind: &str) -> &'a Value {
    e["sinks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["sink"] == kind)
        .unwrap_or_else(|| panic!("no {kind} sink in {e}"))
}

fn wait_reading(s: &Strait, topic: &str) {
    eventually(&format!("the mirror reading {topic}"), WAIT, || {
        entry(s, topic).filter(|e| e["reading"] == true)
    });
}

/// `(key, value)` of every record of a topic, read from the broker.
fn keyed_on_broker(bootstrap: &str, topic: &str) -> Vec<(String, Value)> {
    let out = run(Command::new("kcat").args([
        "-C",
        "-b",
        bootstrap,
        "-t",
        topic,
        "-o",
        "beginning",
        "-e",
        "-q",
        "-f",
        "%k\\t%s\\n",
    ]));
    out.assert_ok("kcat consume the mirror topic");
    out.stdout
        .lines()
        .map(|l| {
            let (k, v) = l.split_once('\t').expect("key<TAB>value");
            (
                k.to_string(),
                serde_json::from_str(v).expect("a JSON value"),
            )
        })
        .collect()
}

#[test]
fn the_mirror_writes_sampled_records_hides_hidden_values_and_counts_its_drops() {
    let broker = cluster(1);
    let policies = Dir::new("mirror-policies");
    let out = Dir::new("mirror-out");
    let [full, half, secret, broken, slow, other, down] = [
        "mir-full",
        "mir-half",
        "mir-secret",
        "mir-broken",
        "mir-slow",
        "mir-other",
        "mir-down",
    ]
    .map(unique);
    let sources = [&full, &half, &secret, &broken, &slow, &other, &down];
    let (mirror_full, mirror_secret, mirror_other) = (
        unique("mirror-of-full"),
        unique("mirror-of-secret"),
        unique("mirror-of-other"),
    );
    for t in sources
        .iter()
        .copied()
        .chain([&mirror_full, &mirror_secret, &mirror_other])
    {
        create_topic(&broker, t, 1, 1);
    }
    let a_file = out.path().join("a-file");
    std::fs::write(&a_file, b"").unwrap();
    let dir = |name: &str| out.path().join(name).display().to_string();
    let policy = |name: &str, topic: &str, body: &str| {
        format!("[[policy]]\nname = \"{name}\"\ntopics = {{ exact = \"{topic}\" }}\n{body}\n")
    };
    let text = [
        policy(
            "full",
            &full,
            &format!("[policy.mirror]\njsonl_dir = \"{}\"\ntopic = \"{mirror_full}\"", dir("full")),
        ),
        policy(
            "half",
            &half,
            &format!("[policy.mirror]\nsample = 0.5\njsonl_dir = \"{}\"", dir("half")),
        ),
        policy(
            "secret",
            &secret,
            &format!(
                "[policy.debug]\nvalues = false\n[policy.mirror]\njsonl_dir = \"{}\"\ntopic = \"{mirror_secret}\"",
                dir("secret")
            ),
        ),
        policy(
            "broken",
            &broken,
            &format!("[policy.mirror]\njsonl_dir = \"{}\"", a_file.join("under").display()),
        ),
        policy(
            "slow",
            &slow,
            &format!("[policy.mirror]\nmax_bytes_per_sec = 1\njsonl_dir = \"{}\"", dir("slow")),
        ),
        // "Another cluster" (the same brokers, through a client of its own).
        policy(
            "other",
            &other,
            &format!("[policy.mirror]\ntopic = \"{mirror_other}\"\nbootstrap = [\"{broker}\"]"),
        ),
        // A mirror cluster nobody serves: the sink is down.
        policy(
            "down",
            &down,
            "[policy.mirror]\ntopic = \"anywhere\"\nbootstrap = [\"127.0.0.1:1\"]",
        ),
    ]
    .concat();
    std::fs::write(policies.path().join("mirror.toml"), &text).unwrap();
    let s = Strait::with_policies(&broker, policies.path());
    for t in sources {
        wait_reading(&s, t);
    }
    for t in sources {
        kcat_produce(&s.bootstrap, t, 0, &records(t));
    }

    // Sample 1: the JSONL file and the mirror topic hold exactly the
    // records produced, keyed by their keys.
    let expected = records(&full);
    let lines = eventually("all records in the JSONL files", WAIT, || {
        let l = jsonl_lines(&out.path().join("full"), &full);
        (l.len() >= N).then_some(l)
    });
    let got: Vec<(String, String)> = lines
        .iter()
        .map(|l| {
            assert_eq!(
                (&l["topic"], &l["partition"]),
                (&Value::from(full.clone()), &Value::from(0)),
                "{l}"
            );
            (
                l["key"]["text"].as_str().unwrap().to_string(),
                l["value"]["text"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(got, expected);
    let offsets: Vec<i64> = lines
        .iter()
        .map(|l| l["offset"].as_i64().unwrap())
        .collect();
    assert_eq!(offsets, (0..N as i64).collect::<Vec<_>>());
    let mirrored = eventually("all records in the mirror topic", WAIT, || {
        let m = keyed_on_broker(&broker, &mirror_full);
        (m.len() >= N).then_some(m)
    });
    let got: Vec<(String, String)> = mirrored
        .iter()
        .map(|(k, v)| (k.clone(), v["value"]["text"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(got, expected);
    let e = entry(&s, &full).unwrap();
    assert_eq!(
        (e["read"].as_u64(), e["policy"].as_str()),
        (Some(N as u64), Some("full"))
    );

    // Sample 0.5: exactly the records the hash picks; the rest counted.
    let picked: Vec<usize> = (0..N)
        .filter(|&o| sampled(&half, 0, o as i64, 0.5))
        .collect();
    assert!(!picked.is_empty() && picked.len() < N, "{picked:?}");
    let e = eventually("the half-sampled topic read", WAIT, || {
        entry(&s, &half).filter(|e| {
            e["read"] == N && sink(e, "jsonl")["written"].as_u64() == Some(picked.len() as u64)
        })
    });
    assert_eq!(sink(&e, "jsonl")["sampled_out"], N - picked.len());
    assert_eq!(e["sampled_out"], N - picked.len());
    let offsets: Vec<usize> = jsonl_lines(&out.path().join("half"), &half)
        .iter()
        .map(|l| l["offset"].as_u64().unwrap() as usize)
        .collect();
    assert_eq!(offsets, picked);

    // Hidden values: keys everywhere, values nowhere.
    let lines = eventually("the hidden topic's JSONL lines", WAIT, || {
        let l = jsonl_lines(&out.path().join("secret"), &secret);
        (l.len() >= N).then_some(l)
    });
    let on_topic = eventually("the hidden topic's mirror records", WAIT, || {
        let m = values_on_broker(&broker, &mirror_secret);
        (m.len() >= N).then_some(m)
    });
    for text in lines.iter().map(Value::to_string).chain(on_topic) {
        assert!(!text.contains("value-"), "a hidden value shows: {text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert!(v.get("value").is_none() && v["value_hidden"] == true, "{v}");
        assert!(v["key"]["text"].as_str().unwrap().starts_with("k-"), "{v}");
    }

    // The mirror topic on another cluster.
    let mirrored = eventually(
        "all records on the other cluster's mirror topic",
        WAIT,
        || {
            let m = keyed_on_broker(&broker, &mirror_other);
            (m.len() >= N).then_some(m)
        },
    );
    let got: Vec<(String, String)> = mirrored
        .iter()
        .map(|(k, v)| (k.clone(), v["value"]["text"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(got, records(&other));

    // A sink that is down, one that cannot write and a byte rate too
    // small: every record dropped and counted, and produce went on as
    // before.
    let e = eventually("the stopped sink's drops", WAIT, || {
        entry(&s, &down).filter(|e| {
            let t = sink(e, "topic");
            t["dropped_error"].as_u64().unwrap() + t["dropped_full"].as_u64().unwrap() == N as u64
        })
    });
    assert_eq!(sink(&e, "topic")["written"], 0);
    let e = eventually("the unwritable sink's drops", WAIT, || {
        entry(&s, &broken).filter(|e| sink(e, "jsonl")["dropped_error"] == N)
    });
    assert_eq!(sink(&e, "jsonl")["written"], 0);
    let e = eventually("the byte rate's drops", WAIT, || {
        entry(&s, &slow).filter(|e| e["dropped_rate"] == N)
    });
    assert_eq!(sink(&e, "jsonl")["dropped_rate"], N);
    assert!(jsonl_lines(&out.path().join("slow"), &slow).is_empty());
    for t in [&broken, &slow, &down] {
        let values = values_on_broker(&broker, t);
        let want: Vec<String> = records(t).into_iter().map(|r| r.1).collect();
        assert_eq!(values, want, "{t} on the broker");
    }
    assert!(
        s.warnings()
            .iter()
            .any(|w| strait_integration::message(w).contains("cannot write the JSONL file")),
        "the sink's failure is logged"
    );
    assert!(
        s.warnings()
            .iter()
            .any(|w| strait_integration::message(w).contains("cannot produce to the mirror topic")),
        "the stopped sink is logged"
    );
    let (_, metrics) = s.admin_get("/metrics");
    for (policy, outcome) in [
        ("full", "written"),
        ("half", "sampled_out"),
        ("broken", "dropped_error"),
        ("slow", "dropped_rate"),
    ] {
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("strait_mirror_records_total")
                    && l.contains(&format!("policy=\"{policy}\""))
                    && l.contains(&format!("outcome=\"{outcome}\""))
                    && !l.ends_with(" 0")),
            "{policy} {outcome}:\n{metrics}"
        );
    }

    // A reload that no longer mirrors a topic stops its reader.
    let slow_mirror = format!(
        "[policy.mirror]\nmax_bytes_per_sec = 1\njsonl_dir = \"{}\"",
        dir("slow")
    );
    let without_slow = text.replace(&slow_mirror, "");
    assert_ne!(without_slow, text);
    std::fs::write(policies.path().join("mirror.toml"), without_slow).unwrap();
    eventually("the slow topic's reader to stop", WAIT, || {
        entry(&s, &slow).is_none().then_some(())
    });
    assert!(entry(&s, &full).is_some());
}
