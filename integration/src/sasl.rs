//! What the tests in front of the SASL cluster share (`integration/kafka up
//! --sasl --tls --reauth-ms 10000`, exported by ./test as STRAIT_KAFKA_SASL,
//! STRAIT_KAFKA_SASL_TLS and STRAIT_KAFKA_SASL_CA): the users, the two
//! transports, and Strait configured with its own `[upstream.sasl]`.

use std::path::PathBuf;

use crate::tempdir::Dir;
use crate::{message, Strait};

/// The password of the cluster's users (integration/kafka_harness.py).
pub const ALICE: (&str, &str) = ("alice", "alice-secret");
pub const STRAIT_USER: (&str, &str) = ("strait", "strait-secret");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// SASL_PLAINTEXT: clients to Strait and Strait to the brokers in the clear.
    Plaintext,
    /// SASL_SSL: clients to Strait over TLS (Strait's [tls]), Strait to the
    /// brokers over TLS ([upstream.tls]).
    Tls,
}

pub const PLAIN: &str = "PLAIN";
pub const SCRAM: &str = "SCRAM-SHA-512";

pub fn env(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!(
            "{var} is not set: run the suite with ./test (it starts the SASL cluster with \
             integration/kafka up --sasl --tls --reauth-ms 10000 --name itsasl and exports \
             STRAIT_KAFKA_SASL, STRAIT_KAFKA_SASL_TLS and STRAIT_KAFKA_SASL_CA)"
        )
    })
}

/// The cluster's bootstrap for `t`.
pub fn upstream(t: Transport) -> String {
    match t {
        Transport::Plaintext => env("STRAIT_KAFKA_SASL"),
        Transport::Tls => env("STRAIT_KAFKA_SASL_TLS"),
    }
}

/// The harness's CA; the broker certificate (localhost, 127.0.0.1) next to
/// it serves as Strait's client-facing certificate too.
pub fn ca() -> PathBuf {
    PathBuf::from(env("STRAIT_KAFKA_SASL_CA"))
}

pub fn tls_file(name: &str) -> String {
    ca().parent().unwrap().join(name).display().to_string()
}

/// How Strait authenticates itself.
pub enum Own<'a> {
    /// From an environment variable.
    Env(&'a str, (&'a str, &'a str)),
    /// From a file.
    File(&'a str, (&'a str, &'a str)),
}

/// Strait in front of the SASL cluster over `t`, with its own credentials
/// and `extra` TOML; not yet waited for.
pub fn strait(t: Transport, own: Own<'_>, extra: &str) -> (Strait, Dir) {
    strait_with_env(t, own, extra, &[])
}

/// [`strait`] with extra environment variables (e.g. `RUST_LOG`).
pub fn strait_with_env(
    t: Transport,
    own: Own<'_>,
    extra: &str,
    env: &[(&str, String)],
) -> (Strait, Dir) {
    let dir = Dir::new("strait-sasl");
    let brokers: Vec<String> = upstream(t).split(',').map(|b| format!("{b:?}")).collect();
    let mut toml = format!(
        "[listen]\nbootstrap = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n\
         [upstream]\nbootstrap = [{}]\n",
        brokers.join(", ")
    );
    let mut envs = env.to_vec();
    let (mechanism, user, source) = match own {
        Own::Env(m, (u, p)) => {
            envs.push(("STRAIT_TEST_SASL_PASSWORD", p.to_string()));
            (
                m,
                u,
                "password_env = \"STRAIT_TEST_SASL_PASSWORD\"".to_string(),
            )
        }
        Own::File(m, (u, p)) => {
            let file = dir.path().join("password");
            std::fs::write(&file, format!("{p}\n")).unwrap();
            (
                m,
                u,
                format!("password_file = {:?}", file.display().to_string()),
            )
        }
    };
    toml += &format!("[upstream.sasl]\nmechanism = {mechanism:?}\nusername = {user:?}\n{source}\n");
    if t == Transport::Tls {
        toml += &format!(
            "[upstream.tls]\nca_file = {:?}\n[tls]\ncert_file = {:?}\nkey_file = {:?}\n",
            ca().display().to_string(),
            tls_file("server.crt"),
            tls_file("server.key")
        );
    }
    toml += extra;
    let path = dir.path().join("strait.toml");
    std::fs::write(&path, toml).unwrap();
    let s = Strait::start_with_env(&["run", "--config", path.to_str().unwrap()], &envs);
    (s, dir)
}

/// The WARN lines saying a client's authentication failed.
pub fn client_auth_failures(strait: &Strait) -> Vec<serde_json::Value> {
    strait
        .warnings()
        .into_iter()
        .filter(|l| message(l) == "client authentication failed")
        .collect()
}

/// Strait logged at least `at_least` refused client authentications with
/// `mechanism` at WARN, each with the client's address and the broker's
/// reason and never the wrong password `secret`, and counted them in
/// `strait_sasl_authentication_failures_total`. (At least: a client
/// retries until it gives up, and a previous round's last refusal can be
/// logged after this one began.)
pub fn assert_client_auth_failures(
    strait: &Strait,
    mechanism: &str,
    at_least: usize,
    secret: &str,
) {
    let lines = crate::eventually("the WARN lines", std::time::Duration::from_secs(10), || {
        let l: Vec<_> = client_auth_failures(strait)
            .into_iter()
            .filter(|l| crate::field(l, "mechanism") == mechanism)
            .collect();
        (l.len() >= at_least).then_some(l)
    });
    for l in &lines {
        assert!(crate::field(l, "client").starts_with("127.0.0.1:"), "{l}");
        assert!(
            crate::field(l, "error").contains("Authentication failed"),
            "{l}"
        );
        assert!(!l.to_string().contains(secret), "{l}");
    }
    let counted = crate::large::metric(
        strait,
        "strait_sasl_authentication_failures_total",
        &["side=\"client\"", &format!("mechanism=\"{mechanism}\"")],
    );
    assert!(counted >= at_least as f64, "{mechanism}: counted {counted}");
}

/// `--FLAG k=v` for each property.
pub fn flags(flag: &str, props: &[String]) -> Vec<String> {
    props
        .iter()
        .flat_map(|p| [flag.to_string(), p.clone()])
        .collect()
}

pub fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}
