//! The kafkajs conformance drivers (`conformance/js/*.js`, run with the
//! machine's `node`; `scripts/install-deps` installs their pinned packages
//! with `npm ci`), and a per-test PKI for the kafkajs TLS checks.

use crate::pki::ca;
use std::path::PathBuf;
use std::process::Command;

use rcgen::{CertificateParams, ExtendedKeyUsagePurpose, KeyPair};

use crate::{repo, tempdir};

/// `node conformance/js/SCRIPT ARGS`; panics with the fix when the packages
/// are not installed.
pub fn node(script: &str, args: &[&str]) -> Command {
    let dir = repo().join("conformance/js");
    assert!(
        dir.join("node_modules/kafkajs").is_dir(),
        "{} has no node_modules/kafkajs: run scripts/install-deps (npm ci in conformance/js)",
        dir.display()
    );
    let mut c = Command::new("node");
    c.arg(dir.join(script)).args(args);
    c
}

/// A CA, a server certificate for 127.0.0.1 / localhost, a client
/// certificate from the same CA (`client`), and one from a stranger CA
/// (`intruder`), as PEM files: `ca.crt`, `NAME.crt`, `NAME.key`.
pub struct Pki {
    dir: tempdir::Dir,
}

impl Pki {
    pub fn new() -> Pki {
        let dir = tempdir::Dir::new("kafkajs-pki");
        let root = ca("strait-kafkajs-ca");
        let stranger = ca("stranger-ca");
        std::fs::write(dir.path().join("ca.crt"), root.0.pem()).unwrap();
        let leaf = |name: &str, sans: &[&str], usage, issuer: &(rcgen::Certificate, KeyPair)| {
            let mut p =
                CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                    .unwrap();
            p.distinguished_name.push(rcgen::DnType::CommonName, name);
            p.extended_key_usages = vec![usage];
            let key = KeyPair::generate().unwrap();
            let cert = p.signed_by(&key, &issuer.0, &issuer.1).unwrap();
            std::fs::write(dir.path().join(format!("{name}.crt")), cert.pem()).unwrap();
            std::fs::write(dir.path().join(format!("{name}.key")), key.serialize_pem()).unwrap();
        };
        leaf(
            "server",
            &["127.0.0.1", "localhost"],
            ExtendedKeyUsagePurpose::ServerAuth,
            &root,
        );
        leaf(
            "client",
            &["client"],
            ExtendedKeyUsagePurpose::ClientAuth,
            &root,
        );
        leaf(
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
}

impl Default for Pki {
    fn default() -> Self {
        Pki::new()
    }
}
