//! Throwaway certificate authorities for the TLS tests.

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

/// A self-signed CA named `name`, with its key.
pub fn ca(name: &str) -> (rcgen::Certificate, KeyPair) {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(rcgen::DnType::CommonName, name);
    let key = KeyPair::generate().unwrap();
    (p.self_signed(&key).unwrap(), key)
}
