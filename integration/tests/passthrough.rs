//! Invariants 1 and 2: every request gets exactly one response, in order, and
//! bytes no policy touches pass through unchanged in both directions.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::{ApiKey, DescribeConfigsRequest, ListGroupsRequest};
use kafka_protocol::protocol::StrBytes;
use strait_integration::wire::{api_versions_request, produce_request, Wire};
use strait_integration::{cluster, create_topic, eventually, unique, Strait};

/// Bytes seen by a recording relay, per connection and direction.
#[derive(Default)]
struct Recorded {
    to_broker: Vec<u8>,
    to_client: Vec<u8>,
}

/// A byte-recording TCP relay in front of the real broker: the observation
/// point for "what the broker received" (it forwards, never alters).
type Connections = Arc<Mutex<Vec<Arc<Mutex<Recorded>>>>>;

fn recording_relay(broker: String) -> (String, Connections) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let conns: Connections = Arc::default();
    let all = conns.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(client) = conn else { continue };
            let rec = Arc::new(Mutex::new(Recorded::default()));
            all.lock().unwrap().push(rec.clone());
            let broker = TcpStream::connect(&broker).unwrap();
            pipe(
                client.try_clone().unwrap(),
                broker.try_clone().unwrap(),
                rec.clone(),
                true,
            );
            pipe(broker, client, rec, false);
        }
    });
    (addr, conns)
}

fn pipe(mut from: TcpStream, mut to: TcpStream, rec: Arc<Mutex<Recorded>>, to_broker: bool) {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            {
                let mut r = rec.lock().unwrap();
                let side = if to_broker {
                    &mut r.to_broker
                } else {
                    &mut r.to_client
                };
                side.extend_from_slice(&buf[..n]);
            }
            if to.write_all(&buf[..n]).is_err() {
                return;
            }
        }
    });
}

fn with_prefix(frame: &Bytes) -> Vec<u8> {
    let mut v = (frame.len() as i32).to_be_bytes().to_vec();
    v.extend_from_slice(frame);
    v
}

#[test]
fn untouched_api_bytes_are_identical_both_ways() {
    let upstream = cluster(1);
    let (relay, conns) = recording_relay(upstream.split(',').next().unwrap().to_string());
    let strait = Strait::quick(&relay);
    strait.wait_ready();
    let before = conns.lock().unwrap().len();
    let mut w = Wire::connect(&strait.bootstrap);
    let topic = unique("bytes");
    create_topic(&upstream, &topic, 1, 1);

    let requests = [
        Wire::frame(ApiKey::ListGroups, 4, 101, &ListGroupsRequest::default()),
        Wire::frame(
            ApiKey::DescribeConfigs,
            4,
            102,
            &DescribeConfigsRequest::default().with_resources(vec![
                DescribeConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(StrBytes::from_string(topic.clone())),
            ]),
        ),
        // A second version of the same api, also forwarded raw.
        Wire::frame(ApiKey::ListGroups, 5, 103, &ListGroupsRequest::default()),
    ];
    let mut sent = Vec::new();
    let mut received = Vec::new();
    for req in &requests {
        w.send_raw(req);
        sent.extend_from_slice(req);
        let resp = w.read_frame().expect("a response");
        received.extend_from_slice(&with_prefix(&resp));
    }
    let rec = eventually(
        "the client's upstream connection in the relay",
        Duration::from_secs(10),
        || {
            conns
                .lock()
                .unwrap()
                .iter()
                .skip(before)
                .find(|c| !c.lock().unwrap().to_broker.is_empty())
                .cloned()
        },
    );
    let rec = rec.lock().unwrap();
    assert_eq!(
        rec.to_broker, sent,
        "the broker received exactly the client's bytes"
    );
    assert_eq!(
        rec.to_client, received,
        "the client received exactly the broker's bytes"
    );
}

#[test]
fn acks_zero_gets_no_response_and_order_is_kept() {
    let upstream = cluster(1);
    let strait = Strait::quick(&upstream);
    strait.wait_ready();
    let topic = unique("acks0");
    create_topic(&upstream, &topic, 1, 1);
    // Produce goes to the partition leader: find its Strait port.
    let port = strait.broker_ports()[0];
    let mut w = Wire::connect(&format!("127.0.0.1:{port}"));
    // Pipelined: acks=0, acks=1, ApiVersions, acks=0, ApiVersions.
    let frames = [
        (
            Wire::frame(
                ApiKey::Produce,
                9,
                1,
                &produce_request(&topic, 0, b"zero-a"),
            ),
            false,
        ),
        (
            Wire::frame(ApiKey::Produce, 9, 2, &produce_request(&topic, 1, b"one")),
            true,
        ),
        (
            Wire::frame(ApiKey::ApiVersions, 3, 3, &api_versions_request()),
            true,
        ),
        (
            Wire::frame(
                ApiKey::Produce,
                3,
                4,
                &produce_request(&topic, 0, b"zero-b"),
            ),
            false,
        ),
        (
            Wire::frame(ApiKey::ApiVersions, 3, 5, &api_versions_request()),
            true,
        ),
    ];
    let all: Vec<u8> = frames.iter().flat_map(|(f, _)| f.to_vec()).collect();
    w.send_raw(&all);
    let expected: Vec<i32> = frames
        .iter()
        .enumerate()
        .filter(|(_, (_, answered))| *answered)
        .map(|(i, _)| i as i32 + 1)
        .collect();
    let got: Vec<i32> = expected
        .iter()
        .map(|_| {
            let f = w.read_frame().expect("response");
            i32::from_be_bytes(f[..4].try_into().unwrap())
        })
        .collect();
    assert_eq!(got, expected, "one response per acked request, in order");
    // Nothing more arrives: the acks=0 requests were not answered.
    w.stream
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut b = [0u8; 1];
    assert!(
        w.stream.read(&mut b).is_err(),
        "no stray response (and no close)"
    );
    // All three records reached the broker.
    let values = strait_integration::values_on_broker(&upstream, &topic);
    assert_eq!(values, ["zero-a", "one", "zero-b"]);
}
