//! The franz-go conformance driver (`conformance/go`, built into
//! `conformance/go/bin/strait-franz`) and the TLS material its tests use.

use crate::pki::ca;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Once;

use rcgen::{CertificateParams, ExtendedKeyUsagePurpose, KeyPair};

use crate::{repo, run, tempdir::Dir};

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

/// A CA, a server certificate for 127.0.0.1 / localhost, a client
/// certificate from that CA (`client`) and one from a stranger CA
/// (`intruder`), as PEM files `NAME.crt` / `NAME.key` (and `ca.crt`).
pub struct Pki {
    dir: Dir,
}

impl Pki {
    pub fn new() -> Pki {
        let dir = Dir::new("strait-fg-pki");
        let root = ca("strait-fg-ca");
        let stranger = ca("stranger-ca");
        std::fs::write(dir.path().join("ca.crt"), root.0.pem()).unwrap();
        let server = ["127.0.0.1", "localhost"];
        leaf(
            dir.path(),
            "server",
            &server,
            ExtendedKeyUsagePurpose::ServerAuth,
            &root,
        );
        leaf(
            dir.path(),
            "client",
            &["client"],
            ExtendedKeyUsagePurpose::ClientAuth,
            &root,
        );
        leaf(
            dir.path(),
            "intruder",
            &["intruder"],
            ExtendedKeyUsagePurpose::ClientAuth,
            &stranger,
        );
        Pki { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `strait.toml` text for a TLS listener (`[tls]`; with `mtls`, client
    /// certificates from the CA are required).
    pub fn listener_toml(&self, upstream: &str, mtls: bool) -> String {
        let mut toml = format!(
            "[listen]\nbootstrap = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n\
             [upstream]\nbootstrap = [\"{}\"]\n[tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
            upstream.split(',').next().unwrap(),
            self.path("server.crt").display(),
            self.path("server.key").display(),
        );
        if mtls {
            toml.push_str(&format!(
                "client_ca_file = \"{}\"\n",
                self.path("ca.crt").display()
            ));
        }
        toml
    }
}

impl Default for Pki {
    fn default() -> Pki {
        Pki::new()
    }
}

fn leaf(
    dir: &Path,
    name: &str,
    sans: &[&str],
    usage: ExtendedKeyUsagePurpose,
    issuer: &(rcgen::Certificate, KeyPair),
) {
    let mut p =
        CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name.push(rcgen::DnType::CommonName, name);
    p.extended_key_usages = vec![usage];
    let key = KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, &issuer.0, &issuer.1).unwrap();
    std::fs::write(dir.join(format!("{name}.crt")), cert.pem()).unwrap();
    std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
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
