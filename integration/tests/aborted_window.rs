//! A fetch window that holds only aborted data never stalls a consumer
//! Strait forces to read_committed. A 2 MiB transaction is aborted, one
//! record is committed after it; every client stack reads through Strait
//! with a partition fetch limit of 1 MiB (read_uncommitted, forced to
//! read_committed by the policy). The broker's answer to the first fetch
//! holds only the aborted batch (the abort marker lies past the limit);
//! Strait answers it with an abort marker over the same offsets, so the
//! client steps past it and reads the committed record, and never the
//! aborted one.

use std::process::Command;

use strait_integration::franz_go::franz;
use strait_integration::kafka_python::kafka_python;
use strait_integration::kafkajs::node;
use strait_integration::large::{consumed, driver, produced, Stack};
use strait_integration::tempdir::Dir;
use strait_integration::{cluster, create_topic, run, unique, Strait};

const MIB: u64 = 1 << 20;

/// Strait forcing `rc.` topics to read_committed, and a topic whose
/// partition holds an aborted 2 MiB transaction at offset 0 (its marker at
/// 1), then a committed record at 2 (its marker at 3), written straight to
/// the broker.
fn setup() -> (Strait, Dir, String) {
    let upstream = cluster(1);
    let dir = Dir::new("aborted-window");
    std::fs::write(
        dir.path().join("rc.toml"),
        "[[policy]]\nname = \"rc\"\ntopics = { prefix = \"rc.\" }\n\
         [policy.fetch]\nread_committed = true\n",
    )
    .unwrap();
    let strait = Strait::with_policies(&upstream, dir.path());
    let topic = unique("rc.window");
    create_topic(&upstream, &topic, 1, 1);
    let size = (2 * MIB).to_string();
    let out = run(&mut driver(
        Stack::Java,
        "produce",
        &[
            "--bootstrap",
            &upstream,
            "--topic",
            &topic,
            "--count",
            "2",
            "--size",
            &size,
            "--transactional-id",
            &unique("tx"),
            "--abort-indices",
            "0",
        ],
    ));
    out.assert_ok("an aborted and a committed transaction");
    let offsets: Vec<(i64, bool)> = produced(&out)
        .iter()
        .map(|p| (p.offset, p.aborted))
        .collect();
    assert_eq!(offsets, vec![(0, true), (2, false)], "{}", out.stdout);
    (strait, dir, topic)
}

/// The (offset, value size) of each record line of a read driver.
fn records(out: &strait_integration::Output) -> Vec<(i64, usize)> {
    out.json_lines()
        .iter()
        .filter(|l| l["type"] == "record")
        .map(|l| {
            let size = l["size"]
                .as_u64()
                .map(|s| s as usize)
                .or_else(|| l["value"].as_str().map(|v| v.chars().count()))
                .unwrap_or(0);
            (l["offset"].as_i64().unwrap(), size)
        })
        .collect()
}

fn reads_the_committed_record(stack: &str, mut cmd: Command) {
    let out = run(&mut cmd);
    out.assert_ok(&format!(
        "{stack} reads past the aborted window through Strait"
    ));
    let got = records(&out);
    assert_eq!(
        got.iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![2],
        "{stack}: only the committed record, never the aborted one: {got:?}"
    );
}

/// Java or librdkafka (the large-records drivers, which read the values'
/// index header) through Strait with a 1 MiB partition fetch limit.
fn large_driver_reads_the_committed_record(stack: Stack) {
    let (strait, _dir, topic) = setup();
    let limit = format!("max.partition.fetch.bytes={MIB}");
    let out = run(&mut driver(
        stack,
        "consume",
        &[
            "--bootstrap",
            &strait.bootstrap,
            "--topic",
            &topic,
            "--expect",
            "1",
            "--timeout-s",
            "60",
            "--config",
            &limit,
        ],
    ));
    out.assert_ok(&format!(
        "{stack:?} reads past the aborted window through Strait"
    ));
    let got: Vec<(i64, Option<u64>)> = consumed(&out).iter().map(|c| (c.offset, c.index)).collect();
    assert_eq!(
        got,
        vec![(2, Some(1))],
        "{stack:?}: only the committed record"
    );
}

#[test]
fn java_steps_past_an_aborted_window() {
    large_driver_reads_the_committed_record(Stack::Java);
}

#[test]
fn librdkafka_steps_past_an_aborted_window() {
    large_driver_reads_the_committed_record(Stack::Librdkafka);
}

#[test]
fn franz_go_steps_past_an_aborted_window() {
    let (strait, _dir, topic) = setup();
    let limit = MIB.to_string();
    reads_the_committed_record(
        "franz-go",
        franz(
            "read",
            &[
                "--bootstrap",
                &strait.bootstrap,
                "--topic",
                &topic,
                "--isolation",
                "read_uncommitted",
                "--follow",
                "--expect",
                "1",
                "--max-partition-fetch-bytes",
                &limit,
            ],
        ),
    );
}

#[test]
fn kafkajs_steps_past_an_aborted_window() {
    let (strait, _dir, topic) = setup();
    let limit = MIB.to_string();
    reads_the_committed_record(
        "kafkajs",
        node(
            "read.js",
            &[
                "--bootstrap",
                &strait.bootstrap,
                "--topic",
                &topic,
                "--read-uncommitted",
                "--expect",
                "1",
                "--max-bytes-per-partition",
                &limit,
                "--timeout-ms",
                "60000",
            ],
        ),
    );
}

#[test]
fn kafka_python_steps_past_an_aborted_window() {
    let (strait, _dir, topic) = setup();
    let limit = MIB.to_string();
    reads_the_committed_record(
        "kafka-python",
        kafka_python(
            "read_topic.py",
            &[
                "--bootstrap",
                &strait.bootstrap,
                "--topic",
                &topic,
                "--isolation",
                "read_uncommitted",
                "--follow",
                "--expect",
                "1",
                "--max-partition-fetch-bytes",
                &limit,
            ],
        ),
    );
}
