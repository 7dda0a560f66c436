//! `strait large-records gc` against a real cluster and a real store: it
//! lists exactly the claim-check objects no record references that are older
//! than their topic's retention (or the default age guard for topics that no
//! longer exist), deletes them only with `--delete`, and never touches an
//! object a record references.

use std::process::Command;
use std::time::{Duration, SystemTime};

use strait_integration::large::{
    assert_round_trip, consumed, driver, produced, strait_with_dir, Stack,
};
use strait_integration::{cluster, create_topic_with_configs, run, strait_bin, unique};

fn orphan(dir: &std::path::Path, topic: &str, fill: char, age: Duration) -> String {
    let key = format!("strait/{topic}/{}", fill.to_string().repeat(64));
    let path = dir.join(&key);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, b"an object no record references").unwrap();
    let f = std::fs::File::options().write(true).open(&path).unwrap();
    f.set_modified(SystemTime::now() - age).unwrap();
    key
}

#[test]
fn gc_lists_then_deletes_only_unreferenced_objects_older_than_retention() {
    let upstream = cluster(1);
    let (strait, objects, config_dir) = strait_with_dir(&upstream, "gc.", &["claim-check"]);
    let topic = unique("gc.t");
    create_topic_with_configs(&upstream, &topic, 1, 1, &[("retention.ms", "3600000")]);
    let p = run(&mut driver(
        Stack::Librdkafka,
        "produce",
        &[
            "--bootstrap",
            &strait.bootstrap,
            "--topic",
            &topic,
            "--count",
            "2",
            "--size",
            "1500000",
        ],
    ));
    p.assert_ok("produce two claim-checked values");
    let hour = Duration::from_secs(3600);
    let old = orphan(objects.path(), &topic, 'a', 2 * hour);
    let young = orphan(objects.path(), &topic, 'b', Duration::ZERO);
    let gone = orphan(objects.path(), &unique("gc.deleted"), 'c', 8 * 24 * hour);
    let config = config_dir.path().join("strait.toml");
    let gc = |delete: bool| {
        let mut cmd = Command::new(strait_bin());
        cmd.args(["large-records", "gc", "--config", config.to_str().unwrap()]);
        if delete {
            cmd.arg("--delete");
        }
        let out = run(&mut cmd);
        out.assert_ok("strait large-records gc");
        out.stdout
    };
    let listed = gc(false);
    let garbage: Vec<&str> = listed
        .lines()
        .filter(|l| l.starts_with("garbage "))
        .collect();
    assert_eq!(garbage.len(), 2, "{listed}");
    assert!(garbage.iter().any(|l| l.contains(&old)), "{listed}");
    assert!(garbage.iter().any(|l| l.contains(&gone)), "{listed}");
    assert!(
        listed.contains("5 objects: 2 referenced, 1 unreferenced but younger than their topic's retention, 2 garbage (dry run"),
        "{listed}"
    );
    assert!(
        objects.path().join(&old).exists(),
        "a dry run deletes nothing"
    );

    let deleted = gc(true);
    assert!(deleted.contains("2 garbage (2 deleted)"), "{deleted}");
    assert!(!objects.path().join(&old).exists());
    assert!(!objects.path().join(&gone).exists());
    assert!(objects.path().join(&young).exists(), "too young to collect");
    // The referenced values still come back whole.
    let c = run(&mut driver(
        Stack::Java,
        "consume",
        &[
            "--bootstrap",
            &strait.bootstrap,
            "--topic",
            &topic,
            "--expect",
            "2",
        ],
    ));
    c.assert_ok("consume after gc");
    assert_round_trip(&produced(&p), &consumed(&c), "");
}
