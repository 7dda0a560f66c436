//! The kafka-python drivers (`conformance/python/kafka_python/`) and what
//! their tests share: the command for a driver, Strait with a record
//! pipeline on some topics, and a throwaway PKI for TLS.

use std::path::PathBuf;
use std::process::Command;

use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyPair};

use crate::{python, tempdir, Strait};

/// A kafka-python driver (`conformance/python/kafka_python/SCRIPT ARGS`) in
/// the suite's virtualenv.
pub fn kafka_python(script: &str, args: &[&str]) -> Command {
    python(&format!("kafka_python/{script}"), args)
}

/// Strait with, for each `(topic, codec)`, a policy that re-seals the
/// topic's batches in `codec` and adds a traceparent (and the producing
/// client's id as `strait-client-id`) to every record that has none.
pub fn pipeline_strait(upstream: &str, topics: &[(&str, &str)]) -> (Strait, tempdir::Dir) {
    let dir = tempdir::Dir::new("policies");
    for (i, (topic, codec)) in topics.iter().enumerate() {
        std::fs::write(
            dir.path().join(format!("p{i}.toml")),
            format!(
                "[[policy]]\nname = \"{topic}-pipeline\"\ntopics = {{ exact = \"{topic}\" }}\n\
                 [policy.compress]\ncodec = \"{codec}\"\n[policy.trace]\nclient_id_header = \"strait-client-id\"\n"
            ),
        )
        .unwrap();
    }
    let strait = Strait::with_policies(upstream, dir.path());
    (strait, dir)
}

/// A CA, a server certificate for 127.0.0.1 / localhost, a client
/// certificate from the same CA, and one ("intruder") from a stranger CA,
/// as `NAME.crt` / `NAME.key` PEM files (`ca.crt`, `stranger-ca.crt`).
pub struct Pki {
    dir: tempdir::Dir,
}

impl Pki {
    pub fn new() -> Pki {
        let dir = tempdir::Dir::new("strait-kp-pki");
        let root = ca("strait-kp-ca");
        let stranger = ca("stranger-ca");
        std::fs::write(dir.path().join("ca.crt"), root.0.pem()).unwrap();
        std::fs::write(dir.path().join("stranger-ca.crt"), stranger.0.pem()).unwrap();
        let leaves = [
            (
                "server",
                "127.0.0.1",
                ExtendedKeyUsagePurpose::ServerAuth,
                &root,
            ),
            (
                "client",
                "client",
                ExtendedKeyUsagePurpose::ClientAuth,
                &root,
            ),
            (
                "intruder",
                "intruder",
                ExtendedKeyUsagePurpose::ClientAuth,
                &stranger,
            ),
        ];
        for (name, san, usage, issuer) in leaves {
            let mut sans = vec![san.to_string()];
            if name == "server" {
                sans.push("localhost".into());
            }
            let mut p = CertificateParams::new(sans).unwrap();
            p.distinguished_name.push(rcgen::DnType::CommonName, name);
            p.extended_key_usages = vec![usage];
            let key = KeyPair::generate().unwrap();
            let cert = p.signed_by(&key, &issuer.0, &issuer.1).unwrap();
            std::fs::write(dir.path().join(format!("{name}.crt")), cert.pem()).unwrap();
            std::fs::write(dir.path().join(format!("{name}.key")), key.serialize_pem()).unwrap();
        }
        Pki { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Default for Pki {
    fn default() -> Self {
        Pki::new()
    }
}

fn ca(name: &str) -> (rcgen::Certificate, KeyPair) {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(rcgen::DnType::CommonName, name);
    let key = KeyPair::generate().unwrap();
    (p.self_signed(&key).unwrap(), key)
}
