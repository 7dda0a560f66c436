//! Invariant 7: bad input gets a clear log line (who, where, why) and is
//! contained to its own connection; the process and other connections carry on.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use kafka_protocol::messages::{ApiKey, ApiVersionsResponse, MetadataRequest};
use serde_json::Value;
use strait_integration::wire::Wire;
use strait_integration::{cluster, field, message, run, strait_bin, Strait};

fn healthy(strait: &Strait) {
    let mut w = Wire::connect(&strait.bootstrap);
    let r: ApiVersionsResponse = w.call(
        ApiKey::ApiVersions,
        3,
        &strait_integration::wire::api_versions_request(),
    );
    assert_eq!(r.error_code, 0, "a fresh connection still works");
}

fn closing_line(strait: &mut Strait, needle: &str) -> Value {
    strait.wait_log(needle, |l| {
        message(l) == "closing connection" && field(l, "error").contains(needle)
    })
}

#[test]
fn malformed_length_prefixes_close_only_their_connection() {
    let mut strait = Strait::quick(&cluster(1));
    strait.wait_ready();
    let bystander = Wire::connect(&strait.bootstrap);
    let cases: [(&str, Vec<u8>); 3] = [
        ("negative length prefix", (-7i32).to_be_bytes().to_vec()),
        (
            "exceeds the configured maximum",
            (i32::MAX).to_be_bytes().to_vec(),
        ),
        (
            "too short for a request header",
            [&3i32.to_be_bytes()[..], &[0, 18, 0]].concat(),
        ),
    ];
    for (needle, bytes) in cases {
        let mut w = Wire::connect(&strait.bootstrap);
        w.send_raw(&bytes);
        assert!(w.is_closed(), "{needle}: connection closed");
        let line = closing_line(&mut strait, needle);
        assert_eq!(field(&line, "side"), "client");
        assert!(
            field(&line, "client").starts_with("127.0.0.1:"),
            "who: {line}"
        );
        assert!(!field(&line, "upstream").is_empty(), "where: {line}");
        healthy(&strait);
    }
    // The connection opened before the bad ones is untouched.
    let mut bystander = bystander;
    let r: ApiVersionsResponse = bystander.call(
        ApiKey::ApiVersions,
        3,
        &strait_integration::wire::api_versions_request(),
    );
    assert_eq!(r.error_code, 0);
}

#[test]
fn configured_frame_limit_is_enforced() {
    let upstream = cluster(1);
    let toml = format!(
        "[listen]\nbootstrap = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n\
         [upstream]\nbootstrap = [\"{}\"]\n[limits]\nmax_frame_bytes = 4096\n",
        upstream.split(',').next().unwrap()
    );
    let (mut strait, _dir) = Strait::with_config(&toml);
    strait.wait_ready();
    let mut w = Wire::connect(&strait.bootstrap);
    let mut frame = 5000i32.to_be_bytes().to_vec();
    frame.extend_from_slice(&[0u8; 64]);
    w.send_raw(&frame);
    assert!(w.is_closed());
    closing_line(
        &mut strait,
        "length prefix 5000 exceeds the configured maximum of 4096",
    );
    healthy(&strait);
}

#[test]
fn truncated_frame_then_disconnect_is_logged() {
    let mut strait = Strait::quick(&cluster(1));
    strait.wait_ready();
    let mut s = TcpStream::connect(&strait.bootstrap).unwrap();
    let full = Wire::frame(
        ApiKey::Metadata,
        12,
        9,
        &MetadataRequest::default().with_topics(None),
    );
    s.write_all(&full[..full.len() - 3]).unwrap();
    drop(s);
    let line = closing_line(&mut strait, "client disconnected mid-request");
    assert!(
        field(&line, "error").contains("3 bytes of the frame still expected"),
        "{line}"
    );
    healthy(&strait);
}

/// A client that closes with a request unanswered and SO_LINGER 0 sends a
/// TCP reset: what clients do when they drop a connection they no longer
/// need. It is counted and logged at INFO with the client's address; it is
/// not a warning, and other connections carry on.
#[test]
fn a_client_reset_is_counted_and_logged_but_not_a_warning() {
    let mut strait = Strait::quick(&cluster(1));
    strait.wait_ready();
    let s = TcpStream::connect(&strait.bootstrap).unwrap();
    let me = s.local_addr().unwrap().to_string();
    let mut s = s;
    s.write_all(&Wire::frame(
        ApiKey::Metadata,
        12,
        9,
        &MetadataRequest::default().with_topics(None),
    ))
    .unwrap();
    let s = socket2::Socket::from(s);
    s.set_linger(Some(std::time::Duration::ZERO)).unwrap();
    drop(s);
    let line = strait.wait_log("the reset's log line", |l| {
        message(l) == "client reset the connection" && field(l, "client") == me
    });
    assert_eq!(line["level"], "INFO", "{line}");
    assert!(
        field(&line, "error").contains("reset") || field(&line, "error").contains("pipe"),
        "why: {line}"
    );
    assert!(
        strait_integration::large::metric(
            &strait,
            "strait_errors_total",
            &["side=\"client\"", "kind=\"reset\""]
        ) >= 1.0
    );
    healthy(&strait);
    let warnings = strait.warnings();
    assert!(warnings.is_empty(), "{warnings:#?}");
}

#[test]
fn unsupported_versions_get_a_clear_answer() {
    let mut strait = Strait::quick(&cluster(1));
    strait.wait_ready();
    // ApiVersions from the future: the broker answers UNSUPPORTED_VERSION in
    // v0 layout and Strait forwards that (clamped), so the client retries lower.
    let mut w = Wire::connect(&strait.bootstrap);
    w.send_raw(
        &Wire::frame(
            ApiKey::ApiVersions,
            3,
            77,
            &strait_integration::wire::api_versions_request(),
        )[..],
    );
    let _ = w.read_frame().unwrap();
    let mut future = Wire::frame(
        ApiKey::ApiVersions,
        3,
        78,
        &strait_integration::wire::api_versions_request(),
    )
    .to_vec();
    future[6..8].copy_from_slice(&99i16.to_be_bytes());
    w.send_raw(&future);
    let mut resp = w.read_frame().unwrap();
    assert_eq!(&resp[..4], &78i32.to_be_bytes());
    let _ = bytes::Buf::get_i32(&mut resp);
    let body =
        <ApiVersionsResponse as kafka_protocol::protocol::Decodable>::decode(&mut resp, 0).unwrap();
    assert_eq!(body.error_code, 35, "UNSUPPORTED_VERSION");
    // The broker lists the ApiVersions range so the client can retry lower.
    assert!(
        body.api_keys
            .iter()
            .any(|k| k.api_key == 18 && k.max_version <= 4),
        "{body:?}"
    );

    // A Metadata version Strait cannot rewrite: refused with a log line, never forwarded.
    let mut w = Wire::connect(&strait.bootstrap);
    let mut frame = Wire::frame(
        ApiKey::Metadata,
        12,
        5,
        &MetadataRequest::default().with_topics(None),
    )
    .to_vec();
    frame[6..8].copy_from_slice(&14i16.to_be_bytes());
    w.send_raw(&frame);
    assert!(w.is_closed());
    closing_line(&mut strait, "api key 3 v14, which Strait cannot serve");
    healthy(&strait);
}

#[test]
fn unknown_api_key_is_forwarded_and_the_brokers_close_is_reported() {
    let mut strait = Strait::quick(&cluster(1));
    strait.wait_ready();
    let mut w = Wire::connect(&strait.bootstrap);
    let mut frame = Wire::frame(
        ApiKey::ApiVersions,
        0,
        5,
        &strait_integration::wire::api_versions_request(),
    )
    .to_vec();
    frame[4..6].copy_from_slice(&999i16.to_be_bytes());
    w.send_raw(&frame);
    // The broker rejects an unknown api key by closing; the client sees the close.
    assert!(w.is_closed());
    closing_line(
        &mut strait,
        "broker closed the connection with 1 request(s) awaiting a response",
    );
    healthy(&strait);
}

#[test]
fn unreachable_broker_is_reported_and_not_ready() {
    // A privileged port nothing listens on. (A port that was free a moment
    // ago can be handed to another test's listener in between: a flake.)
    let dead = "127.0.0.1:1".to_string();
    let mut strait = Strait::quick(&dead);
    let mut w = Wire::connect(&strait.bootstrap);
    w.send_raw(&Wire::frame(
        ApiKey::ApiVersions,
        3,
        1,
        &strait_integration::wire::api_versions_request(),
    ));
    assert!(w.is_closed(), "the client is not left hanging");
    let line = strait.wait_log("cannot reach broker", |l| {
        message(l) == "cannot reach broker; closing client connection"
    });
    assert!(
        field(&line, "error").contains(&dead),
        "names the broker: {line}"
    );
    strait.wait_log("discovery failure", |l| {
        message(l).starts_with("cluster discovery failed")
    });
    assert_eq!(strait.admin_get("/readyz").0, 503);
    assert_eq!(strait.admin_get("/healthz").0, 200);
}

/// A broker that dies with a request in flight. A real broker cannot be made to
/// die between reading a request and answering it on demand, so this test puts
/// a relay in the broker's place that reads the request and hangs up: the one
/// fault stand-in in this file.
#[test]
fn broker_dying_mid_request_closes_the_client_with_a_log_line() {
    let relay = TcpListener::bind("127.0.0.1:0").unwrap();
    let relay_addr = relay.local_addr().unwrap().to_string();
    let upstream = cluster(1);
    let real = upstream.split(',').next().unwrap().to_string();
    // Until Strait is ready every connection is forwarded faithfully (its
    // discovery, its probes and its debug client's, in whatever order they
    // come); after that, a new connection dies with its request unanswered.
    let armed = Arc::new(AtomicBool::new(false));
    let arm = armed.clone();
    std::thread::spawn(move || {
        for conn in relay.incoming() {
            let Ok(mut client) = conn else { continue };
            let real = real.clone();
            let die = arm.load(Ordering::SeqCst);
            std::thread::spawn(move || {
                if !die {
                    let mut broker = TcpStream::connect(real).unwrap();
                    let mut c2 = client.try_clone().unwrap();
                    let mut b2 = broker.try_clone().unwrap();
                    std::thread::spawn(move || std::io::copy(&mut b2, &mut c2));
                    let _ = std::io::copy(&mut client, &mut broker);
                } else {
                    let mut buf = [0u8; 512];
                    let _ = client.read(&mut buf);
                    // Die with the request unanswered.
                }
            });
        }
    });
    let mut strait = Strait::quick(&relay_addr);
    strait.wait_ready();
    armed.store(true, Ordering::SeqCst);
    let mut w = Wire::connect(&strait.bootstrap);
    w.send_raw(&Wire::frame(
        ApiKey::ApiVersions,
        3,
        1,
        &strait_integration::wire::api_versions_request(),
    ));
    assert!(
        w.is_closed(),
        "the client sees the close instead of waiting forever"
    );
    let line = closing_line(
        &mut strait,
        "broker closed the connection with 1 request(s)",
    );
    assert_eq!(field(&line, "side"), "upstream");
}

#[test]
fn bad_config_is_rejected_with_every_problem() {
    let dir = strait_integration::tempdir::Dir::new("badcfg");
    let path = dir.path().join("strait.toml");
    std::fs::write(
        &path,
        "[listen]\nbootstrap = \"nope\"\nbroker_ports = \"5-2\"\n[upstream]\nbootstrap = [\"no-port\"]\n\
         [limits]\nmax_frame_bytes = 1\n",
    )
    .unwrap();
    let out = run(std::process::Command::new(strait_bin()).args([
        "check",
        "--config",
        path.to_str().unwrap(),
    ]));
    assert!(!out.ok);
    for needle in [
        "listen.bootstrap",
        "listen.broker_ports",
        "upstream.bootstrap",
        "limits.max_frame_bytes",
    ] {
        assert!(
            out.stderr.contains(needle),
            "{needle} missing from:\n{}",
            out.stderr
        );
    }
    std::fs::write(
        &path,
        "[listen]\nbootstrap = \"127.0.0.1:0\"\nport = 3\n[upstream]\nbootstrap = [\"a:1\"]\n",
    )
    .unwrap();
    let out = run(std::process::Command::new(strait_bin()).args([
        "run",
        "--config",
        path.to_str().unwrap(),
    ]));
    assert!(!out.ok);
    assert!(
        out.stderr.contains("unknown field `port`"),
        "{}",
        out.stderr
    );
}
