//! The kafkajs conformance drivers (`conformance/js/*.js`, run with the
//! machine's `node`; `scripts/install-deps` installs their pinned packages
//! with `npm ci`), and a per-test PKI for the kafkajs TLS checks.

pub use crate::pki::Pki;
use std::process::Command;

use crate::repo;

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
