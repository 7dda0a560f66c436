//! Invariant 3 under a broker crash: Kafka's VerifiableProducer (acks=all,
//! idempotent by default) and VerifiableConsumer through Strait against three
//! brokers; the partition leader is killed (SIGKILL) and restarted mid-run.
//! Every acknowledged record must be consumed, none twice.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use strait_integration::{cluster, cluster_name, harness, run, unique, Strait};

const RECORDS: u32 = 100_000;

fn spawn_lines(cmd: &mut Command) -> (Child, mpsc::Receiver<Value>) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                if tx.send(v).is_err() {
                    return;
                }
            }
        }
    });
    (child, rx)
}

fn leader_of(bootstrap: &str, topic: &str) -> u32 {
    let out = run(&mut harness(&[
        "topics",
        "--bootstrap-server",
        bootstrap,
        "--describe",
        "--topic",
        topic,
    ]));
    out.assert_ok("describe topic");
    out.stdout
        .split_whitespace()
        .skip_while(|w| *w != "Leader:")
        .nth(1)
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no leader in:\n{}", out.stdout))
}

fn node(cmd: &str, id: u32) {
    let name = cluster_name(3);
    run(&mut harness(&[
        cmd,
        "--name",
        &name,
        "--node",
        &id.to_string(),
    ]))
    .assert_ok(cmd);
}

#[test]
fn no_acknowledged_record_is_lost_when_the_leader_dies() {
    let upstream = cluster(3);
    let strait = Strait::quick(&upstream);
    strait.wait_ready();
    let topic = unique("failover");
    strait_integration::create_topic(&upstream, &topic, 1, 3);
    let leader = leader_of(&upstream, &topic);

    let (mut producer, events) = spawn_lines(&mut harness(&[
        "tool",
        "org.apache.kafka.tools.VerifiableProducer",
        "--bootstrap-server",
        &strait.bootstrap,
        "--topic",
        &topic,
        "--max-messages",
        &RECORDS.to_string(),
        "--throughput",
        "10000",
        "--acks",
        "-1",
    ]));
    let mut acked: HashSet<String> = HashSet::new();
    let mut send_errors = 0u64;
    let (mut killed, mut restarted) = (false, false);
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let Ok(ev) = events.recv_timeout(remaining) else {
            break;
        };
        match ev["name"].as_str() {
            Some("producer_send_success") => {
                acked.insert(ev["value"].as_str().unwrap().to_string());
            }
            Some("producer_send_error") => send_errors += 1,
            _ => {}
        }
        if !killed && acked.len() >= 20_000 {
            eprintln!("killing leader node {leader} after {} acks", acked.len());
            node("kill-node", leader);
            killed = true;
        }
        if killed && !restarted && acked.len() >= 50_000 {
            eprintln!("restarting node {leader} after {} acks", acked.len());
            node("start-node", leader);
            restarted = true;
        }
    }
    let status = producer.wait().unwrap();
    if !restarted {
        node("start-node", leader);
    }
    assert!(
        killed,
        "the leader was killed mid-run ({} acks)",
        acked.len()
    );
    assert!(status.success(), "VerifiableProducer exited with {status}");

    let group = unique("verify");
    let (mut consumer, records) = spawn_lines(&mut harness(&[
        "tool",
        "org.apache.kafka.tools.VerifiableConsumer",
        "--bootstrap-server",
        &strait.bootstrap,
        "--topic",
        &topic,
        "--group-id",
        &group,
        "--verbose",
        "--reset-policy",
        "earliest",
    ]));
    let mut seen: HashMap<String, u32> = HashMap::new();
    let mut missing = acked.len();
    let deadline = Instant::now() + Duration::from_secs(180);
    while missing > 0 {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let Ok(ev) = records.recv_timeout(remaining) else {
            break;
        };
        if ev["name"] == "record_data" {
            let v = ev["value"].as_str().unwrap().to_string();
            let n = seen.entry(v.clone()).or_insert(0);
            *n += 1;
            if *n == 1 && acked.contains(&v) {
                missing -= 1;
            }
        }
    }
    let _ = consumer.kill();
    let _ = consumer.wait();
    let duplicates: u32 = seen.values().map(|n| n - 1).sum();
    println!(
        "failover: produced {RECORDS}, acknowledged {}, send errors {send_errors}, consumed {} distinct, \
         acknowledged but not consumed {missing}, duplicates {duplicates} (leader node {leader} killed and restarted)",
        acked.len(),
        seen.len()
    );
    assert_eq!(missing, 0, "acknowledged records were lost");
    assert_eq!(duplicates, 0, "an idempotent producer wrote duplicates");
}
