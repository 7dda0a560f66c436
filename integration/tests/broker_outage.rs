//! Every broker down for 30 s and back: the suite's 1-broker cluster is
//! stopped (SIGKILL) while a librdkafka producer and Kafka's
//! VerifiableConsumer run through Strait. `/readyz` turns 503 while no
//! broker answers and 200 once one does; both clients finish without
//! operator action and every acknowledged record is consumed.
//!
//! Alone in its file: it stops the cluster the other tests of a binary
//! would share (test binaries run one after another).

use std::collections::HashSet;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use strait_integration::{
    cluster, create_topic, eventually, harness, python, spawn_lines, unique, KilledNode, Strait,
};

/// The outage the issue asks for: how long the broker stays down. An
/// outage length under test, not a wait for something to happen.
const OUTAGE: Duration = Duration::from_secs(30);
const RECORDS: usize = 40_000;

#[test]
fn clients_recover_through_strait_when_every_broker_is_down_for_30_seconds() {
    let upstream = cluster(1);
    let strait = Strait::quick(&upstream);
    strait.wait_ready();
    let topic = unique("outage");
    create_topic(&upstream, &topic, 1, 1);

    let (mut producer, produced) = spawn_lines(&mut python(
        "verifiable_producer.py",
        &[
            "--bootstrap-server",
            &strait.bootstrap,
            "--topic",
            &topic,
            "--max-messages",
            &RECORDS.to_string(),
            "--throughput",
            "1000",
            // Records queued during the outage wait for the broker.
            "--message-timeout-ms",
            "120000",
        ],
    ));
    let (mut consumer, consumed) = spawn_lines(&mut harness(&[
        "tool",
        "org.apache.kafka.tools.VerifiableConsumer",
        "--bootstrap-server",
        &strait.bootstrap,
        "--topic",
        &topic,
        "--group-id",
        &unique("outage"),
        "--verbose",
        "--reset-policy",
        "earliest",
    ]));

    let mut acked: HashSet<String> = HashSet::new();
    let mut failed: Vec<String> = Vec::new();
    let mut producer_done = false;
    let drain_producer =
        |acked: &mut HashSet<String>, failed: &mut Vec<String>, wait: Duration| -> bool {
            match produced.recv_timeout(wait) {
                Ok(ev) => {
                    match ev["name"].as_str() {
                        Some("producer_send_success") => {
                            acked.insert(ev["value"].as_str().unwrap().to_string());
                        }
                        Some("producer_send_error") => {
                            failed.push(ev["exception"].as_str().unwrap_or("?").to_string())
                        }
                        _ => {}
                    }
                    true
                }
                Err(mpsc::RecvTimeoutError::Timeout) => true,
                Err(mpsc::RecvTimeoutError::Disconnected) => false,
            }
        };
    // Progress first: the producer has records acknowledged through Strait.
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.len() < 2_000 {
        assert!(Instant::now() < deadline, "no progress before the outage");
        assert!(
            drain_producer(&mut acked, &mut failed, Duration::from_secs(1)),
            "the producer ended early"
        );
    }

    let down = KilledNode::kill_in(1, 1);
    let killed = Instant::now();
    let acked_before = acked.len();
    eventually("/readyz 503 with the broker down", OUTAGE, || {
        (strait.admin_get("/readyz").0 == 503).then_some(())
    });
    let unready_after = killed.elapsed();
    // Keep the broker down for the whole outage (the clients keep running:
    // their events queue in the channels meanwhile).
    std::thread::sleep(OUTAGE.saturating_sub(killed.elapsed()));
    assert_eq!(
        strait.admin_get("/readyz").0,
        503,
        "still not ready at the end of the outage"
    );
    down.restart();
    let restarted = Instant::now();
    eventually(
        "/readyz 200 with the broker back",
        Duration::from_secs(60),
        || (strait.admin_get("/readyz").0 == 200).then_some(()),
    );
    let ready_after = restarted.elapsed();

    // The producer finishes on its own.
    let deadline = Instant::now() + Duration::from_secs(150);
    while !producer_done {
        assert!(
            Instant::now() < deadline,
            "the producer did not finish: {} acked",
            acked.len()
        );
        producer_done = !drain_producer(&mut acked, &mut failed, Duration::from_secs(1));
    }
    let status = producer.wait().unwrap();
    assert!(status.success(), "the producer exited with {status}");

    // The consumer, running throughout, reads every acknowledged record.
    let mut seen: HashSet<String> = HashSet::new();
    let mut missing = acked.len();
    let deadline = Instant::now() + Duration::from_secs(90);
    while missing > 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(ev) = consumed.recv_timeout(left) else {
            break;
        };
        if ev["name"] == "record_data" {
            let v = ev["value"].as_str().unwrap_or_default().to_string();
            if acked.contains(&v) && seen.insert(v) {
                missing -= 1;
            }
        }
    }
    let _ = consumer.kill();
    let _ = consumer.wait();
    println!(
        "broker down {OUTAGE:?}: /readyz 503 after {unready_after:?}, 200 {ready_after:?} after the \
         restart; produced {RECORDS}, acknowledged {} ({acked_before} before the outage), \
         failed {} {:?}, acknowledged but not consumed {missing}",
        acked.len(),
        failed.len(),
        failed.iter().collect::<std::collections::BTreeSet<_>>()
    );
    assert_eq!(missing, 0, "acknowledged records were not consumed");
    assert_eq!(
        acked.len(),
        RECORDS,
        "every record acknowledged once the broker was back: {failed:?}"
    );
}
