//! Several Strait instances in front of one cluster, clients split between
//! them: each instance's lag view shows every group (from the cluster), and,
//! with `debug.share_observations`, what the other instance's tap saw: top
//! keys of records produced only through the other one, merged through the
//! compacted observations topic.

use std::time::Duration;

use serde_json::Value;
use strait_integration::{
    cluster, create_topic, eventually, http_get, java, kcat_produce, run, unique, Strait,
};

fn instance(broker: &str, id: &str, topic: &str) -> (Strait, strait_integration::tempdir::Dir) {
    let (s, dir) = Strait::with_config(&format!(
        "[listen]\nbootstrap = '127.0.0.1:0'\n[upstream]\nbootstrap = ['{broker}']\n\
         [admin]\nlisten = '127.0.0.1:0'\n[debug]\nlag_interval_ms = 500\nlag_window = 4\n\
         share_observations = true\nobservations_topic = '{topic}'\ninstance_id = '{id}'\n"
    ));
    s.wait_ready();
    (s, dir)
}

fn get(s: &Strait, path: &str) -> Option<Value> {
    let (code, body) = http_get(&s.admin, path);
    (code == 200).then(|| serde_json::from_str(&body).ok())?
}

fn top_key(v: &Value, partition: i64) -> Option<(String, u64)> {
    let p = v["partitions"]
        .as_array()?
        .iter()
        .find(|p| p["partition"] == partition)?;
    let k = &p["top_keys"]["keys"][0];
    Some((k["key"].as_str()?.to_string(), k["count"].as_u64()?))
}

#[test]
fn each_instance_shows_every_group_and_the_others_observations() {
    let broker = cluster(1);
    let shared = unique("strait-observations");
    let (a, _da) = instance(&broker, "strait-a", &shared);
    let (b, _db) = instance(&broker, "strait-b", &shared);
    let topic = unique("instances");
    create_topic(&broker, &topic, 2, 1);
    // Producers split: partition 0 through A, partition 1 through B.
    let records = |key: &str, n: usize| -> Vec<(String, String)> {
        (0..n)
            .map(|i| (key.to_string(), format!("{{\"i\":{i}}}")))
            .collect()
    };
    kcat_produce(&a.bootstrap, &topic, 0, &records("key-via-a", 5));
    kcat_produce(&b.bootstrap, &topic, 1, &records("key-via-b", 7));
    // Consumers split: one group through each instance.
    let (ga, gb) = (unique("g-via-a"), unique("g-via-b"));
    for (s, g) in [(&a, &ga), (&b, &gb)] {
        let args = [
            "--bootstrap",
            s.bootstrap.as_str(),
            "--topic",
            topic.as_str(),
            "--group",
            g.as_str(),
            "--records",
            "12",
        ];
        run(&mut java("GroupConsume", &args)).assert_ok(&format!("GroupConsume {g}"));
    }
    for (s, me, other) in [(&a, "strait-a", "strait-b"), (&b, "strait-b", "strait-a")] {
        let groups = eventually(
            &format!("{me} to list both groups and both instances"),
            Duration::from_secs(30),
            || {
                let v = get(s, "/debug/groups")?;
                let names: Vec<&str> = v["groups"]
                    .as_array()?
                    .iter()
                    .filter_map(|g| g["group"].as_str())
                    .collect();
                let both = names.contains(&ga.as_str()) && names.contains(&gb.as_str());
                let instances = v["instances"] == serde_json::json!([me, other]);
                (both && instances).then_some(v)
            },
        );
        println!("{me}: {}", groups["instances"]);
        for g in [&ga, &gb] {
            // Each partition's top key, whichever instance its producer used.
            let v = eventually(
                &format!("{me}'s view of {g} to show both instances' top keys"),
                Duration::from_secs(30),
                || {
                    let v = get(s, &format!("/debug/lag/{g}"))?;
                    let want = [
                        Some(("key-via-a".to_string(), 5)),
                        Some(("key-via-b".to_string(), 7)),
                    ];
                    ([top_key(&v, 0), top_key(&v, 1)] == want).then_some(v)
                },
            );
            for p in v["partitions"].as_array().unwrap() {
                assert_eq!(p["lag"], 0, "{me} {g}: {p}");
                assert_eq!(p["top_keys"]["keys"][0]["error"], 0, "{me} {g}: {p}");
            }
        }
    }
}
