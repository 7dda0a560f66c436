//! Restarts without loss: on SIGTERM Strait drains (readiness false and
//! listeners closed at once, the responses to requests already read are
//! delivered, connections close at a request boundary or are cut at
//! `[shutdown] drain_timeout_ms`, then exit 0), and idempotent producers
//! (Kafka's VerifiableProducer and librdkafka) at full speed through three
//! restarts on the same ports (SIGTERM, SIGKILL, SIGTERM) lose nothing and
//! duplicate nothing.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, FetchRequest, FetchResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use serde_json::Value;
use strait_integration::tempdir::Dir;
use strait_integration::wire::{api_versions_request, decode, Wire};
use strait_integration::{
    cluster, create_topic, eventually, field, harness, idempotent_producer_config, message, python,
    unique, values_on_broker, Strait,
};

/// The open-connection gauge of the bootstrap listener.
const BOOTSTRAP_CONNECTIONS: &str = "strait_client_connections{listener=\"bootstrap\"} ";

/// Acknowledgements each producer must have had through each Strait (the
/// first and each restarted one) before the next restart, and through the
/// last before the producers are stopped: every restart happens under load.
const PER_STRAIT: usize = 10_000;

/// A config file for Strait on `cluster` with `[shutdown] drain_timeout_ms`
/// and, for restarts on the same ports, a fixed bootstrap port and broker
/// port range (`None`: any free ports).
fn config(dir: &Dir, upstream: &str, drain_ms: u64, ports: Option<u16>) -> String {
    let (bootstrap, brokers) = match ports {
        Some(base) => (base, format!("{}-{}", base + 1, base + 9)),
        None => (0, "0".to_string()),
    };
    let bootstrap_list = upstream
        .split(',')
        .map(|b| format!("{b:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let toml = format!(
        "[listen]\nbootstrap = \"127.0.0.1:{bootstrap}\"\nbroker_ports = \"{brokers}\"\n\
         [upstream]\nbootstrap = [{bootstrap_list}]\n\
         [admin]\nlisten = \"127.0.0.1:0\"\n\
         [shutdown]\ndrain_timeout_ms = {drain_ms}\n"
    );
    let path = dir.path().join("strait.toml");
    std::fs::write(&path, toml).unwrap();
    path.to_str().unwrap().to_string()
}

fn start(config: &str) -> Strait {
    Strait::start(&["run", "--config", config])
}

fn free_ports() -> u16 {
    strait_integration::free_port_block()
}

/// A Fetch (v12) of partition 0 of `topic` past its end: the broker holds
/// it for `max_wait_ms` before answering with no records.
fn long_fetch(topic: &str, max_wait_ms: i32) -> FetchRequest {
    FetchRequest::default()
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1 << 20)])])
}

/// The next response frame (without its length prefix), or `None` when the
/// proxy closed the connection cleanly (a FIN) at a frame boundary; panics
/// on a reset or a frame cut short.
fn read_whole(stream: &mut TcpStream) -> Option<bytes::Bytes> {
    let mut first = [0u8; 1];
    match stream.read(&mut first) {
        Ok(0) => return None,
        Ok(_) => {}
        Err(e) => panic!("the connection was reset instead of closed: {e}"),
    }
    let mut rest = [0u8; 3];
    stream.read_exact(&mut rest).expect("a whole length prefix");
    let len = i32::from_be_bytes([first[0], rest[0], rest[1], rest[2]]) as usize;
    let mut body = vec![0u8; len];
    stream
        .read_exact(&mut body)
        .expect("a whole response frame");
    Some(body.into())
}

/// The value of a `/metrics` series (0 when absent).
fn metric(strait: &Strait, series: &str) -> u64 {
    let (_, body) = strait.admin_get("/metrics");
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// SIGTERM with a Fetch in flight, a client sending ApiVersions requests in
/// a loop, and one stuck halfway through a request: `/readyz` turns 503 and
/// new connections are refused at once; the Fetch gets its response; the
/// looping client is closed at a request boundary (every frame it read is
/// whole); the stuck one is cut at the drain deadline; exit 0.
#[test]
fn sigterm_drains_in_flight_requests_then_exits_zero() {
    let upstream = cluster(1);
    let topic = unique("drain");
    create_topic(&upstream, &topic, 1, 1);
    let dir = Dir::new("drain");
    let drain_ms = 6_000;
    let mut strait = start(&config(&dir, &upstream, drain_ms, None));
    strait.wait_ready();

    let mut fetching = Wire::connect(&strait.bootstrap);
    let fetch = long_fetch(&topic, 2_500);
    fetching.send_raw(&Wire::frame(ApiKey::Fetch, 12, 77, &fetch));
    let mut looping = Wire::connect(&strait.bootstrap);
    let _: ApiVersionsResponse = looping.call(ApiKey::ApiVersions, 3, &api_versions_request());
    let mut stuck = Wire::connect(&strait.bootstrap);
    let half = Wire::frame(ApiKey::ApiVersions, 3, 9, &api_versions_request());
    stuck.send_raw(&half[..half.len() / 2]);
    // The Fetch has been read and forwarded (counted when admitted), and
    // all three connections accepted.
    eventually("the Fetch in flight", Duration::from_secs(10), || {
        (metric(&strait, "strait_requests_total{api=\"Fetch\"} ") >= 1
            && metric(&strait, BOOTSTRAP_CONNECTIONS) == 3)
            .then_some(())
    });

    // The looping client: a request, its response, again, until closed.
    let (tx, closed) = mpsc::channel();
    let (serving_tx, serving) = mpsc::channel();
    let looper = std::thread::spawn(move || {
        let mut answered = 0u32;
        let mut id = 1000;
        loop {
            id += 1;
            let frame = Wire::frame(ApiKey::ApiVersions, 3, id, &api_versions_request());
            if std::io::Write::write_all(&mut looping.stream, &frame).is_err() {
                break;
            }
            match read_whole(&mut looping.stream) {
                Some(resp) => {
                    // A whole response to this request, never half of one.
                    let corr = i32::from_be_bytes(resp[..4].try_into().unwrap());
                    assert_eq!(corr, id, "response to the request sent");
                    let _: ApiVersionsResponse = decode(ApiKey::ApiVersions, 3, resp);
                    answered += 1;
                    if answered == 3 {
                        serving_tx.send(()).unwrap();
                    }
                }
                None => break,
            }
        }
        tx.send(Instant::now()).unwrap();
        answered
    });

    serving
        .recv_timeout(Duration::from_secs(10))
        .expect("the looping client served before SIGTERM");
    let signalled = Instant::now();
    strait.signal("TERM");
    eventually("/readyz 503 after SIGTERM", Duration::from_secs(2), || {
        (strait.admin_get("/readyz").0 == 503).then_some(())
    });
    let (_, why) = strait.admin_get("/readyz");
    assert!(why.contains("draining"), "{why}");
    eventually(
        "the bootstrap listener closed",
        Duration::from_secs(2),
        || TcpStream::connect(&strait.bootstrap).is_err().then_some(()),
    );
    let not_ready_after = signalled.elapsed();

    // The Fetch read before SIGTERM gets its (whole) response, then the
    // connection closes.
    let resp = fetching
        .read_frame()
        .expect("the in-flight Fetch is answered during the drain");
    assert_eq!(i32::from_be_bytes(resp[..4].try_into().unwrap()), 77);
    let fetched: FetchResponse = decode(ApiKey::Fetch, 12, resp);
    assert_eq!(fetched.responses[0].partitions[0].error_code, 0);
    assert!(fetching.is_closed(), "closed after its last response");

    let looped_until = closed
        .recv_timeout(Duration::from_millis(drain_ms))
        .expect("the looping client is closed before the deadline");
    let answered = looper.join().unwrap();
    assert!(
        answered >= 1,
        "the looping client was served before the drain"
    );

    let status = strait.wait_exit(Duration::from_millis(drain_ms) + Duration::from_secs(10));
    let exited = signalled.elapsed();
    assert!(status.success(), "strait exited with {status}");
    assert!(
        exited >= Duration::from_millis(drain_ms),
        "the stuck connection kept the drain going until the deadline: exited after {exited:?}"
    );
    assert!(stuck.is_closed(), "the stuck connection was cut");
    let logs = strait.logs();
    let started = logs
        .iter()
        .find(|l| message(l).starts_with("drain started"))
        .expect("a 'drain started' line");
    assert_eq!(field(started, "connections"), "3", "{started}");
    let finished = logs
        .iter()
        .find(|l| message(l) == "drain finished")
        .expect("a 'drain finished' line");
    assert_eq!(field(finished, "closed_cleanly"), "2", "{finished}");
    assert_eq!(field(finished, "cut_at_deadline"), "1", "{finished}");
    println!(
        "drain: /readyz 503 and listener closed within {not_ready_after:?}, looping client closed \
         {:?} after SIGTERM ({answered} requests answered), exit 0 after {exited:?} (deadline {drain_ms} ms)",
        looped_until - signalled
    );
}

/// A second SIGTERM during the drain exits at once.
#[test]
fn a_second_signal_ends_the_drain_at_once() {
    let upstream = cluster(1);
    let dir = Dir::new("drain2");
    let mut strait = start(&config(&dir, &upstream, 600_000, None));
    strait.wait_ready();
    let mut stuck = Wire::connect(&strait.bootstrap);
    stuck.send_raw(&[0, 0]); // half a length prefix: never a request boundary
    eventually("the connection accepted", Duration::from_secs(10), || {
        (metric(&strait, BOOTSTRAP_CONNECTIONS) == 1).then_some(())
    });
    strait.signal("TERM");
    strait.wait_log("drain started", |l| message(l).starts_with("drain started"));
    strait.signal("INT");
    let status = strait.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "strait exited with {status}");
    assert!(
        strait
            .logs()
            .iter()
            .any(|l| message(l).starts_with("second signal during the drain")),
        "the log says why it did not wait"
    );
    assert!(stuck.is_closed());
}

/// The drain closes the Kafka listeners at once: a new Strait on the same
/// bootstrap port and broker port range comes up and serves while the old
/// one still drains (kept draining by a connection stuck mid-request).
/// Only the admin listener, which answers `/readyz` until exit, needs a
/// port of its own (0 here).
#[test]
fn a_new_strait_binds_the_same_ports_while_the_old_one_drains() {
    let upstream = cluster(1);
    let dir = Dir::new("drain-rebind");
    let cfg = config(&dir, &upstream, 20_000, Some(free_ports()));
    let mut old = start(&cfg);
    old.wait_ready();
    let mut stuck = Wire::connect(&old.bootstrap);
    stuck.send_raw(&[0, 0]); // half a length prefix: never a request boundary
    eventually("the connection accepted", Duration::from_secs(10), || {
        (metric(&old, BOOTSTRAP_CONNECTIONS) == 1).then_some(())
    });
    old.signal("TERM");
    old.wait_log("drain started", |l| message(l).starts_with("drain started"));

    let new = start(&cfg);
    assert_eq!(new.bootstrap, old.bootstrap, "the same bootstrap port");
    // Ready means discovery bound the broker's port-per-broker listener.
    new.wait_ready();
    let mut w = Wire::connect(&new.bootstrap);
    let _: ApiVersionsResponse = w.call(ApiKey::ApiVersions, 3, &api_versions_request());
    assert_eq!(old.admin_get("/readyz").0, 503, "the old one still drains");
    assert!(
        !old.logs().iter().any(|l| message(l) == "drain finished"),
        "the old one still drains"
    );
    old.signal("TERM");
    assert!(old.wait_exit(Duration::from_secs(10)).success());
    assert!(stuck.is_closed());
    let _: ApiVersionsResponse = w.call(ApiKey::ApiVersions, 3, &api_versions_request());
}

/// A producer's JSON lines on stdout (VerifiableProducer's format) and its
/// stderr in a file, to search for idempotence errors afterwards.
struct Producer {
    child: Child,
    stderr: std::path::PathBuf,
}

fn spawn_producer(
    name: &'static str,
    cmd: &mut Command,
    stderr: &Path,
    events: mpsc::Sender<(&'static str, Instant, Value)>,
) -> Producer {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(File::create(stderr).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                let _ = events.send((name, Instant::now(), v));
            }
        }
        let _ = events.send((name, Instant::now(), Value::from("eof")));
    });
    Producer {
        child,
        stderr: stderr.to_path_buf(),
    }
}

/// What one producer saw.
#[derive(Default)]
struct Seen {
    acked: HashSet<String>,
    errors: Vec<String>,
    /// Sends failed by the producer's own close after it was stopped.
    stop_errors: Vec<String>,
    /// What the producer said it sent (its summary line).
    sent: Option<usize>,
    done: bool,
}

/// One restart: how it was done and what the clients saw.
struct Restart {
    how: &'static str,
    /// What the drain log said (SIGTERM).
    drained: String,
    signalled: Instant,
    /// Signal to the old process' exit.
    drain: Duration,
    /// Signal to the new process listening.
    down: Duration,
    /// Signal to each producer's first acknowledgement read after the new
    /// process was listening: how long the restart left it without service.
    first_ack: HashMap<&'static str, Duration>,
}

/// Java's VerifiableProducer and a librdkafka producer, both idempotent,
/// at full speed with no record limit to topics of their own through
/// Strait, which is restarted on the same ports three times (SIGTERM,
/// SIGKILL, SIGTERM), each time once both have had [`PER_STRAIT`]
/// acknowledgements from the Strait running; after both have had as many
/// from the last one, the producers are stopped (SIGTERM: they flush and
/// report). Every record sent is acknowledged, every acknowledged record
/// is on the broker exactly once, no idempotence error.
#[test]
fn idempotent_producers_lose_and_duplicate_nothing_across_three_restarts() {
    let upstream = cluster(1);
    let dir = Dir::new("restarts");
    let cfg = config(&dir, &upstream, 10_000, Some(free_ports()));
    let mut strait = start(&cfg);
    strait.wait_ready();
    let java_topic = unique("restart-java");
    let rdkafka_topic = unique("restart-rdkafka");
    create_topic(&upstream, &java_topic, 3, 1);
    create_topic(&upstream, &rdkafka_topic, 3, 1);
    let props = idempotent_producer_config(dir.path());

    let (tx, events) = mpsc::channel();
    let mut java = spawn_producer(
        "java",
        &mut harness(&[
            "tool",
            "org.apache.kafka.tools.VerifiableProducer",
            "--bootstrap-server",
            &strait.bootstrap,
            "--topic",
            &java_topic,
            "--max-messages",
            "-1",
            "--throughput",
            "-1",
            "--acks",
            "-1",
            "--producer.config",
            props.to_str().unwrap(),
        ]),
        &dir.path().join("java.stderr"),
        tx.clone(),
    );
    let mut rdkafka = spawn_producer(
        "librdkafka",
        &mut python(
            "verifiable_producer.py",
            &[
                "--bootstrap-server",
                &strait.bootstrap,
                "--topic",
                &rdkafka_topic,
                "--max-messages",
                "-1",
                "--throughput",
                "10000000",
            ],
        ),
        &dir.path().join("librdkafka.stderr"),
        tx,
    );

    let plan = ["TERM", "KILL", "TERM"];
    let mut restarts: Vec<Restart> = Vec::new();
    let mut seen: HashMap<&'static str, Seen> = HashMap::new();
    // Acknowledgements each producer has had from the Strait now running
    // (read after it was listening).
    let mut since_start: HashMap<&'static str, usize> = HashMap::new();
    let mut serving_since = Instant::now();
    let mut stopped = false;
    let deadline = Instant::now() + Duration::from_secs(150);
    while !(seen.get("java").is_some_and(|s| s.done)
        && seen.get("librdkafka").is_some_and(|s| s.done))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        let (name, at, ev) = events.recv_timeout(left).unwrap_or_else(|_| {
            panic!(
                "no progress within the deadline: {} restarts, acknowledgements through the \
                 Strait running {since_start:?}, stopped {stopped}",
                restarts.len()
            )
        });
        let s = seen.entry(name).or_default();
        match ev["name"].as_str() {
            Some("producer_send_success") => {
                s.acked.insert(ev["value"].as_str().unwrap().to_string());
                if at >= serving_since {
                    *since_start.entry(name).or_default() += 1;
                }
                if let Some(r) = restarts.last().filter(|r| at >= r.signalled + r.down) {
                    let gap = at - r.signalled;
                    restarts
                        .last_mut()
                        .unwrap()
                        .first_ack
                        .entry(name)
                        .or_insert(gap);
                }
            }
            Some("producer_send_error") => {
                let error = format!(
                    "{}: {}",
                    ev["exception"].as_str().unwrap_or("?"),
                    ev["message"].as_str().unwrap_or("")
                );
                // Once stopped, VerifiableProducer's shutdown hook closes
                // the producer while its main thread may be sending: that
                // send fails ("Producer closed while send in progress", or
                // IllegalStateException "... after producer has been
                // closed"). The test's doing, not a restart's.
                if stopped && error.contains("closed") {
                    s.stop_errors.push(error);
                } else {
                    s.errors.push(error);
                }
            }
            // VerifiableProducer's summary after its shutdown hook flushed,
            // and the librdkafka driver's.
            Some("tool_data" | "shutdown_complete") if ev["sent"].is_u64() => {
                s.sent = ev["sent"].as_u64().map(|n| n as usize);
            }
            _ if ev == "eof" => {
                s.done = true;
                assert!(
                    stopped,
                    "{name} ended before it was stopped:\n{}",
                    std::fs::read_to_string(dir.path().join(format!("{name}.stderr")))
                        .unwrap_or_default()
                );
            }
            _ => {}
        }
        let progressed = ["java", "librdkafka"]
            .iter()
            .all(|p| since_start.get(p).copied().unwrap_or(0) >= PER_STRAIT);
        if !progressed || stopped {
            continue;
        }
        if restarts.len() == plan.len() {
            // Both served by the last Strait too: stop them; they flush.
            for p in [&java, &rdkafka] {
                strait_integration::run(
                    Command::new("kill").args(["-TERM", &p.child.id().to_string()]),
                );
            }
            stopped = true;
            continue;
        }
        let how = plan[restarts.len()];
        let signalled = Instant::now();
        strait.signal(how);
        let status = strait.wait_exit(Duration::from_secs(30));
        let drain = signalled.elapsed();
        let mut drained = String::from("-");
        if how == "TERM" {
            assert!(status.success(), "SIGTERM: strait exited with {status}");
            let logs = strait.logs();
            let finished = logs
                .iter()
                .find(|l| message(l) == "drain finished")
                .expect("SIGTERM drained");
            // At full speed every connection still reaches a request
            // boundary long before the deadline.
            assert_eq!(field(finished, "cut_at_deadline"), "0", "{finished}");
            drained = format!(
                "{} connections closed cleanly in {} ms",
                field(finished, "closed_cleanly"),
                field(finished, "elapsed_ms")
            );
        }
        strait = start(&cfg);
        restarts.push(Restart {
            how,
            drained,
            signalled,
            drain,
            down: signalled.elapsed(),
            first_ack: HashMap::new(),
        });
        since_start.clear();
        serving_since = Instant::now();
    }
    let java_status = java.child.wait().unwrap();
    let rdkafka_status = rdkafka.child.wait().unwrap();
    let java_err = std::fs::read_to_string(&java.stderr).unwrap();
    let rdkafka_err = std::fs::read_to_string(&rdkafka.stderr).unwrap();

    let mut failures = Vec::new();
    for (name, topic) in [("java", &java_topic), ("librdkafka", &rdkafka_topic)] {
        let s = &seen[name];
        let mut counts: HashMap<String, u32> = HashMap::new();
        for v in values_on_broker(&upstream, topic) {
            *counts.entry(v).or_default() += 1;
        }
        let lost = s.acked.iter().filter(|v| !counts.contains_key(*v)).count();
        let duplicated: u32 = counts.values().map(|n| n - 1).sum();
        println!(
            "{name}: sent {:?}, acknowledged {}, send errors {}, on the broker {} distinct, \
             lost {lost}, duplicated {duplicated}",
            s.sent,
            s.acked.len(),
            s.errors.len(),
            counts.len()
        );
        if lost > 0 || duplicated > 0 {
            failures.push(format!("{name}: lost {lost}, duplicated {duplicated}"));
        }
        let idempotence: Vec<&String> = s
            .errors
            .iter()
            .filter(|e| {
                e.contains("OutOfOrderSequence")
                    || e.contains("OUT_OF_ORDER")
                    || e.contains("FATAL")
            })
            .collect();
        if !idempotence.is_empty() {
            failures.push(format!("{name}: idempotence errors {idempotence:?}"));
        }
    }
    for r in &restarts {
        println!(
            "restart by SIG{}: drain: {}; old process gone after {:?}, new one listening \
             after {:?}, first acknowledgement through it after {:?}",
            r.how, r.drained, r.drain, r.down, r.first_ack
        );
    }
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(restarts.len(), 3, "restarted three times");
    // The JVM exits 143 after its shutdown hook (VerifiableProducer's
    // flush and summary) has run on SIGTERM.
    assert!(
        java_status.success() || java_status.code() == Some(143),
        "VerifiableProducer exited with {java_status}"
    );
    assert!(
        rdkafka_status.success(),
        "the librdkafka producer exited with {rdkafka_status}"
    );
    for (name, err) in [("java", &java_err), ("librdkafka", &rdkafka_err)] {
        assert!(
            !err.contains("OutOfOrderSequence") && !err.contains("OUT_OF_ORDER"),
            "{name} reported an idempotence error:\n{err}"
        );
    }
    for (name, s) in &seen {
        assert!(s.errors.is_empty(), "{name}: send errors {:?}", s.errors);
        assert!(s.stop_errors.len() <= 1, "{name}: {:?}", s.stop_errors);
        assert_eq!(
            Some(s.acked.len() + s.stop_errors.len()),
            s.sent,
            "{name}: every record sent acknowledged"
        );
        assert!(s.acked.len() >= 4 * PER_STRAIT);
    }
}
