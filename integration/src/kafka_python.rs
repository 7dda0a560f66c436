//! The kafka-python drivers (`conformance/python/kafka_python/`) and what
//! their tests share: the command for a driver, Strait with a record
//! pipeline on some topics, and a throwaway PKI for TLS.

pub use crate::pki::Pki;
use std::path::PathBuf;
use std::process::Command;

use crate::{cluster_name, python, repo, run, tempdir, StoredBatch, Strait};

/// A kafka-python driver (`conformance/python/kafka_python/SCRIPT ARGS`) in
/// the suite's virtualenv.
pub fn kafka_python(script: &str, args: &[&str]) -> Command {
    python(&format!("kafka_python/{script}"), args)
}

/// Strait with, for each `(topic, codec)`, a policy that re-seals the
/// topic's batches in `codec` (`recompress`: batches the client compressed
/// in another codec too, when that makes them smaller) and adds a
/// traceparent (and the producing client's id as `strait-client-id`) to
/// every record that has none.
pub fn pipeline_strait(upstream: &str, topics: &[(&str, &str)]) -> (Strait, tempdir::Dir) {
    let dir = tempdir::Dir::new("policies");
    for (i, (topic, codec)) in topics.iter().enumerate() {
        std::fs::write(
            dir.path().join(format!("p{i}.toml")),
            format!(
                "[[policy]]\nname = \"{topic}-pipeline\"\ntopics = {{ exact = \"{topic}\" }}\n\
                 [policy.compress]\ncodec = \"{codec}\"\nrecompress = true\n[policy.trace]\nclient_id_header = \"strait-client-id\"\n"
            ),
        )
        .unwrap();
    }
    let strait = Strait::with_policies(upstream, dir.path());
    (strait, dir)
}

/// Creates `topics` (`partitions` each, replication factor 1) directly on a
/// one-broker cluster with kafka-python's admin client, and waits until
/// every partition has a leader: one Python process, not a JVM per topic.
pub fn create_topics(bootstrap: &str, partitions: u32, topics: &[&str]) {
    let partitions = partitions.to_string();
    let mut args = vec![
        "--bootstrap",
        bootstrap,
        "--action",
        "create",
        "--partitions",
        &partitions,
        "--replication-factor",
        "1",
        "--wait",
    ];
    for t in topics {
        args.extend(["--topic", t]);
    }
    run(&mut kafka_python("policy_admin.py", &args)).assert_ok("create topics");
}

/// The data batches of a partition as the broker stored them, read straight
/// from the log segments of a harness cluster (record batch v2 headers; the
/// same view as [`crate::dump_batches`] without a JVM): codec, record count
/// and size on disk; control batches left out.
pub fn stored(brokers: u32, topic: &str, partition: u32) -> Vec<StoredBatch> {
    let run_dir = repo().join("integration/.run").join(cluster_name(brokers));
    let part = format!("{topic}-{partition}");
    let dir = std::fs::read_dir(&run_dir)
        .unwrap_or_else(|e| panic!("{}: {e}", run_dir.display()))
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("data").join(&part))
        .find(|d| d.is_dir())
        .unwrap_or_else(|| panic!("no broker of {} stores {part}", run_dir.display()));
    let mut segments: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    segments.sort();
    let mut out = Vec::new();
    for segment in segments {
        let bytes = std::fs::read(&segment).unwrap();
        let mut at = 0;
        // baseOffset i64, batchLength i32, leaderEpoch i32, magic i8, crc u32,
        // attributes i16, ... recordCount i32 at byte 57 of the batch.
        while at + 61 <= bytes.len() {
            let int = |from: usize| i32::from_be_bytes(bytes[from..from + 4].try_into().unwrap());
            let length = int(at + 8);
            if length <= 0 {
                break; // the unwritten tail of a segment
            }
            let size = 12 + length as usize;
            assert_eq!(
                bytes[at + 16],
                2,
                "{}: a batch of magic 2",
                segment.display()
            );
            let attributes = u16::from_be_bytes([bytes[at + 21], bytes[at + 22]]);
            if attributes & 0x20 == 0 {
                let codec = ["none", "gzip", "snappy", "lz4", "zstd"]
                    .get(usize::from(attributes & 0x07))
                    .unwrap_or_else(|| panic!("codec {} in {}", attributes & 7, segment.display()));
                out.push(StoredBatch {
                    codec: codec.to_string(),
                    count: int(at + 57) as u64,
                    size: size as u64,
                });
            }
            at += size;
        }
    }
    out
}
