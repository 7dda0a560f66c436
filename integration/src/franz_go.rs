//! The franz-go conformance driver (`conformance/go`, built into
//! `conformance/go/bin/strait-franz`) and the TLS material its tests use.

pub use crate::pki::Pki;
use std::process::Command;
use std::sync::Once;

use crate::{repo, run};

/// `strait-franz COMMAND ARGS`, built first (`conformance/go/build
/// --if-stale`, once per test process) when a source is newer than the binary.
pub fn franz(command: &str, args: &[&str]) -> Command {
    static BUILD: Once = Once::new();
    BUILD.call_once(|| {
        run(Command::new(repo().join("conformance/go/build")).arg("--if-stale"))
            .assert_ok("conformance/go/build (run scripts/install-deps for Go and the modules)");
    });
    let mut c = Command::new(repo().join("conformance/go/bin/strait-franz"));
    c.arg(command).args(args);
    c
}

/// Creates `topic` on `bootstrap` with the driver (CreateTopics, then every
/// broker lists a leader per partition: no JVM started, unlike
/// [`crate::create_topic`]); returns the leader of each partition.
pub fn create_topic(bootstrap: &str, topic: &str, partitions: u32, rf: u32) -> Vec<u32> {
    let (p, r) = (partitions.to_string(), rf.to_string());
    let out = run(&mut franz(
        "create-topic",
        &[
            "--bootstrap",
            bootstrap,
            "--topic",
            topic,
            "--partitions",
            &p,
            "--replication-factor",
            &r,
        ],
    ));
    out.assert_ok(&format!("create topic {topic}"));
    let leaders = out.summary()["leaders"].clone();
    (0..partitions)
        .map(|i| {
            leaders[i.to_string()]
                .as_u64()
                .expect("a leader per partition") as u32
        })
        .collect()
}

/// The data batches of a partition as the broker stores them (control
/// batches left out), fetched raw from its leader by the driver's `batches`
/// command: codec, record count and size in the log, as
/// [`crate::dump_batches`] reads them from the segments.
pub fn stored_batches(bootstrap: &str, topic: &str, partition: u32) -> Vec<crate::StoredBatch> {
    let p = partition.to_string();
    let out = run(&mut franz(
        "batches",
        &[
            "--bootstrap",
            bootstrap,
            "--topic",
            topic,
            "--partition",
            &p,
        ],
    ));
    out.assert_ok(&format!("batches of {topic}-{partition}"));
    out.json_lines()
        .iter()
        .filter(|l| l["type"] == "batch" && l["control"] == false)
        .map(|l| crate::StoredBatch {
            codec: l["codec"].as_str().unwrap().to_string(),
            count: l["count"].as_u64().unwrap(),
            size: l["size"].as_u64().unwrap(),
        })
        .collect()
}
