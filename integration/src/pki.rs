//! Throwaway certificate authorities and the TLS material the TLS tests of
//! every client stack share.

use std::path::PathBuf;

use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyPair};

use crate::tempdir::Dir;

/// A self-signed CA named `name`, with its key.
pub fn ca(name: &str) -> (rcgen::Certificate, KeyPair) {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(rcgen::DnType::CommonName, name);
    let key = KeyPair::generate().unwrap();
    (p.self_signed(&key).unwrap(), key)
}

/// A CA, a server certificate for 127.0.0.1 / localhost, a client
/// certificate from that CA (`client`) and one from a stranger CA
/// (`intruder`), as PEM files in a directory of their own: `ca.crt`,
/// `stranger-ca.crt`, `NAME.crt` and `NAME.key`.
pub struct Pki {
    dir: Dir,
}

impl Pki {
    pub fn new() -> Pki {
        let dir = Dir::new("strait-pki");
        let root = ca("strait-test-ca");
        let stranger = ca("stranger-ca");
        std::fs::write(dir.path().join("ca.crt"), root.0.pem()).unwrap();
        std::fs::write(dir.path().join("stranger-ca.crt"), stranger.0.pem()).unwrap();
        let leaves = [
            (
                "server",
                &["127.0.0.1", "localhost"][..],
                ExtendedKeyUsagePurpose::ServerAuth,
                &root,
            ),
            (
                "client",
                &["client"],
                ExtendedKeyUsagePurpose::ClientAuth,
                &root,
            ),
            (
                "intruder",
                &["intruder"],
                ExtendedKeyUsagePurpose::ClientAuth,
                &stranger,
            ),
        ];
        for (name, sans, usage, issuer) in leaves {
            let mut p =
                CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                    .unwrap();
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

    /// `strait.toml` text for Strait on `upstream` with a TLS listener
    /// (`[tls]`; with `mtls`, client certificates from the CA are required).
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
