//! Client-facing TLS and mTLS (rustls) in front of a plaintext broker, with a
//! real Java client. Certificates are generated per test with rcgen.

use strait_integration::pki::Pki;

use strait_integration::tempdir::Dir;
use strait_integration::{cluster, field, java, message, run, unique, Strait};

fn start(pki: &Pki, mtls: bool) -> (Strait, Dir) {
    let upstream = cluster(1);
    let toml = pki.listener_toml(&upstream, mtls);
    let (strait, dir) = Strait::with_config(&toml);
    strait.wait_ready();
    (strait, dir)
}

fn tls_client(
    strait: &Strait,
    pki: &Pki,
    cert: Option<&str>,
    expect_failure: bool,
) -> strait_integration::Output {
    let topic = unique("tls");
    let ca = pki.path("ca.crt");
    let mut args = vec![
        "--bootstrap".to_string(),
        strait.bootstrap.clone(),
        "--topic".into(),
        topic,
        "--records".into(),
        "200".into(),
        "--ca-pem".into(),
        ca.display().to_string(),
        "--timeout-ms".into(),
        "30000".into(),
    ];
    if let Some(name) = cert {
        args.extend([
            "--cert-pem".into(),
            pki.path(&format!("{name}.crt")).display().to_string(),
            "--key-pem".into(),
            pki.path(&format!("{name}.key")).display().to_string(),
        ]);
    }
    if expect_failure {
        args.push("--expect-failure".into());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run(&mut java("TlsClient", &args))
}

#[test]
fn java_client_over_tls() {
    let pki = Pki::new();
    let (strait, _config) = start(&pki, false);
    let out = tls_client(&strait, &pki, None, false);
    out.assert_ok("TlsClient over TLS");
    assert_eq!(out.summary()["ok"], true);
}

#[test]
fn mtls_accepts_a_valid_client_certificate_and_refuses_the_rest() {
    let pki = Pki::new();
    let (mut strait, _config) = start(&pki, true);
    let out = tls_client(&strait, &pki, Some("client"), false);
    out.assert_ok("TlsClient with a client certificate");
    assert_eq!(out.summary()["ok"], true);

    let out = tls_client(&strait, &pki, None, true);
    out.assert_ok("TlsClient without a client certificate is refused");
    let line = strait.wait_log("a TLS refusal log line", |l| {
        message(l) == "TLS handshake failed; connection refused"
    });
    assert!(field(&line, "client").starts_with("127.0.0.1:"), "{line}");
    assert!(!field(&line, "error").is_empty(), "{line}");

    let out = tls_client(&strait, &pki, Some("intruder"), true);
    out.assert_ok("TlsClient with a certificate from another CA is refused");
}

/// librdkafka (confluent-kafka) as an mTLS client: a full produce / consume
/// round trip with the client certificate; kcat with a certificate from
/// another CA is refused.
#[test]
fn librdkafka_over_mtls() {
    let pki = Pki::new();
    let (strait, _config) = start(&pki, true);
    let props = [
        "security.protocol=ssl".to_string(),
        format!("ssl.ca.location={}", pki.path("ca.crt").display()),
        format!(
            "ssl.certificate.location={}",
            pki.path("client.crt").display()
        ),
        format!("ssl.key.location={}", pki.path("client.key").display()),
    ];
    let topic = unique("rdtls");
    let mut args = vec![
        "--bootstrap",
        &strait.bootstrap,
        "--topic",
        &topic,
        "--records",
        "300",
        "--timeout-ms",
        "60000",
    ];
    for p in &props {
        for kind in ["--producer-prop", "--consumer-prop", "--admin-prop"] {
            args.extend([kind, p.as_str()]);
        }
    }
    let out = run(&mut strait_integration::python("produce_consume.py", &args));
    out.assert_ok("confluent-kafka over mTLS through Strait");
    assert_eq!(out.summary()["verified"], 300);

    let kcat = |cert: &str| {
        run(std::process::Command::new("kcat").args([
            "-L",
            "-b",
            &strait.bootstrap,
            "-m",
            "10",
            "-X",
            "security.protocol=ssl",
            "-X",
            &format!("ssl.ca.location={}", pki.path("ca.crt").display()),
            "-X",
            &format!(
                "ssl.certificate.location={}",
                pki.path(&format!("{cert}.crt")).display()
            ),
            "-X",
            &format!(
                "ssl.key.location={}",
                pki.path(&format!("{cert}.key")).display()
            ),
        ]))
    };
    kcat("client").assert_ok("kcat with the client certificate");
    let refused = kcat("intruder");
    assert!(
        !refused.ok,
        "a certificate from another CA is refused:\n{}",
        refused.stdout
    );
}

/// TLS to the brokers (`[upstream.tls]`). The suite's brokers speak plaintext,
/// so a second Strait with client-facing TLS is the TLS endpoint in front of
/// them: client -> Strait B (plaintext in, TLS out) -> Strait A (TLS in) -> broker.
#[test]
fn upstream_tls_with_a_ca_file() {
    let pki = Pki::new();
    let (front, _config) = start(&pki, false);
    let toml = format!(
        "[listen]\nbootstrap = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n\
         [upstream]\nbootstrap = [\"{}\"]\n[upstream.tls]\nca_file = \"{}\"\n",
        front.bootstrap,
        pki.path("ca.crt").display(),
    );
    let (edge, _dir) = Strait::with_config(&toml);
    edge.wait_ready();
    let out = run(&mut strait_integration::python(
        "produce_consume.py",
        &[
            "--bootstrap",
            &edge.bootstrap,
            "--topic",
            &unique("uptls"),
            "--records",
            "500",
        ],
    ));
    out.assert_ok("confluent-kafka through two Straits, TLS between them");
    assert_eq!(out.summary()["ok"], true);

    // The wrong CA: the upstream handshake fails, and the log says so.
    let toml = format!(
        "[listen]\nbootstrap = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n\
         [upstream]\nbootstrap = [\"{}\"]\n[upstream.tls]\nca_file = \"{}\"\n",
        front.bootstrap,
        pki.path("stranger-ca.crt").display(),
    );
    let (mut edge, _dir) = Strait::with_config(&toml);
    let line = edge.wait_log("discovery failing on the TLS handshake", |l| {
        message(l).starts_with("cluster discovery failed")
            && field(l, "error").contains("TLS handshake")
    });
    assert!(field(&line, "error").contains(&front.bootstrap), "{line}");
    assert_eq!(edge.admin_get("/readyz").0, 503);
}
