//! Connection storms, slow peers and malformed broker responses, against the
//! real `strait` binary:
//!
//! 1. 5,000 concurrent client connections, each after an ApiVersions round
//!    trip (so each has its upstream connection to the real broker), are all
//!    held while a normal client is served; Strait's memory per connection
//!    is printed and bounded.
//! 2. Slow-loris clients (one byte a second) and clients that never read
//!    their responses are dropped after their configured timeouts with a
//!    WARN naming them, Strait's memory stays bounded while they are
//!    connected, and other connections' produce+fetch throughput is within
//!    10 % of rounds without them (same run; the ratio is printed).
//! 3. A broker that answers with malformed responses: each time the client
//!    gets a clean disconnect, Strait logs a WARN and serves the next
//!    connection. A real broker cannot be made to send a malformed response,
//!    so this case uses a tiny fake broker (a TCP listener in this file):
//!    the one stand-in for a real component in this suite.

use std::collections::HashSet;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::metadata_response::MetadataResponseBroker;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, BrokerId, FetchRequest, FetchResponse, MetadataRequest,
    MetadataResponse, ProduceResponse, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use serde_json::Value;
use strait_integration::wire::{
    api_versions_request, partition_error, produce_request, produce_request_with_batch, word_batch,
    Wire,
};
use strait_integration::{cluster, create_topic, eventually, field, message, unique, Strait};

/// The tests in this file run one at a time: the storm would skew the
/// slow-peer test's rates, and each needs the machine's descriptors.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Raises this process's open-file limit to the hard limit, which must
/// allow `need` descriptors.
fn raise_fd_limit(need: u64) {
    let now = rlimit::increase_nofile_limit(u64::MAX).expect("raise RLIMIT_NOFILE");
    assert!(
        now >= need,
        "this test needs {need} open files but the hard limit is {now}: raise it (ulimit -Hn)"
    );
}

/// The sum of a metric's samples whose line starts with `prefix` (name and
/// labels), from Strait's `/metrics`.
fn metric(strait: &Strait, prefix: &str) -> f64 {
    let (status, body) = strait.admin_get("/metrics");
    assert_eq!(status, 200, "/metrics: {body}");
    body.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn bootstrap_connections(strait: &Strait) -> usize {
    metric(strait, "strait_client_connections{listener=\"bootstrap\"}") as usize
}

/// A `strait.toml` for `upstream` with extra `[limits]` lines.
fn config(upstream: &str, limits: &str) -> String {
    format!(
        "[listen]\nbootstrap = \"127.0.0.1:0\"\n\
         [upstream]\nbootstrap = [\"{upstream}\"]\n\
         [admin]\nlisten = \"127.0.0.1:0\"\n\
         [limits]\n{limits}\n"
    )
}

fn api_versions_round_trip(w: &mut Wire) {
    let r: ApiVersionsResponse = w.call(ApiKey::ApiVersions, 3, &api_versions_request());
    assert_eq!(r.error_code, 0, "ApiVersions through Strait");
}

/// A Metadata round trip on a new connection: the brokers point at Strait.
fn metadata_through(strait: &Strait) -> MetadataResponse {
    let mut w = Wire::connect(&strait.bootstrap);
    let md: MetadataResponse = w.call(
        ApiKey::Metadata,
        12,
        &MetadataRequest::default().with_topics(Some(vec![])),
    );
    let ports = strait.broker_ports();
    assert!(!md.brokers.is_empty(), "Metadata names the brokers");
    for b in &md.brokers {
        assert!(
            ports.contains(&(b.port as u16)),
            "broker {} at port {} is not one of Strait's listeners {ports:?}",
            b.node_id.0,
            b.port
        );
    }
    md
}

// ---- 1. a storm of connections ----

const STORM: usize = 5_000;
/// Threads that open the storm's connections.
const OPENERS: usize = 8;

/// 5,000 connections, each having done a round trip through Strait (so
/// each has its upstream connection), are held at once: none refused or
/// dropped, each still answers, and a normal client is served meanwhile.
/// Strait's RSS growth per connection is printed and bounded (the target is
/// 50 KiB, counting the client socket and the upstream connection).
#[test]
fn five_thousand_connections_are_held() {
    let _serial = serial();
    // Strait holds two sockets per connection (it inherits this limit and
    // raises its own soft limit to the same hard limit); plus slack.
    raise_fd_limit(2 * STORM as u64 + 1_000);
    let mut strait = Strait::quick(&cluster(1));
    strait.wait_ready();
    // Strait raised its own open-file limit (or found it at the hard limit).
    let limit = strait.wait_log("the open-file limit line", |l| {
        message(l).contains("open-file limit (soft RLIMIT_NOFILE)")
    });
    let soft: u64 = [field(&limit, "to"), field(&limit, "limit")]
        .iter()
        .find_map(|v| v.parse().ok())
        .expect("the limit in the log line");
    assert!(soft > 2 * STORM as u64, "{limit}");
    let mut warm = Wire::connect(&strait.bootstrap);
    api_versions_round_trip(&mut warm);
    let (before, _) = strait.rss_kib();

    let started = Instant::now();
    let mut conns: Vec<Wire> = thread::scope(|s| {
        let opened: Vec<_> = (0..OPENERS)
            .map(|_| {
                s.spawn(|| {
                    (0..STORM / OPENERS)
                        .map(|_| {
                            let mut w = Wire::connect(&strait.bootstrap);
                            api_versions_round_trip(&mut w);
                            w
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        opened
            .into_iter()
            .flat_map(|h| h.join().expect("opener"))
            .collect()
    });
    let opened_in = started.elapsed();
    assert_eq!(conns.len(), STORM);
    assert_eq!(
        bootstrap_connections(&strait),
        STORM + 1,
        "Strait holds every connection (and the warm-up one)"
    );

    // A normal client is served while the storm is held.
    metadata_through(&strait);

    let (after, peak) = strait.rss_kib();
    let per = after.saturating_sub(before) as f64 / STORM as f64;
    println!(
        "storm: {STORM} connections opened (each with an ApiVersions round trip) in {opened_in:.1?}; \
         Strait RSS {before} KiB before, {after} KiB with them held (peak {peak} KiB): \
         {per:.1} KiB per connection (client socket + upstream connection)"
    );
    assert!(
        per < 50.0,
        "{per:.1} KiB of Strait's memory per idle connection (target: 50 KiB)"
    );

    // None was dropped, and every one is still served.
    for (i, w) in conns.iter_mut().enumerate() {
        assert_eq!(
            w.peek_ready().expect("peek"),
            None,
            "connection {i} was closed or got bytes it did not ask for"
        );
        if i % 50 == 0 {
            api_versions_round_trip(w);
        }
    }
    let warnings = strait.warnings();
    assert!(warnings.is_empty(), "{warnings:#?}");
    drop(conns);
    eventually(
        "the storm's connections to close",
        Duration::from_secs(60),
        || (bootstrap_connections(&strait) == 1).then_some(()),
    );
}

// ---- 2. slow and stalled peers ----

/// Both timeouts in the slow-peer test, ms.
const PEER_TIMEOUT_MS: u64 = 1_000;
/// Connections carrying the measured workload.
const WORKERS: usize = 3;
/// Pairs of rounds, one without the slow peers and one with them.
const PAIRS: usize = 16;
/// One round's length: longer than the peers' timeouts, so the slow peers
/// connect, stall and are dropped during each round with them.
const ROUND: Duration = Duration::from_millis(1_500);
const LORIS: usize = 4;
const NEVER_READERS: usize = 2;
/// Fetches a never-reading client asks for at once (1 MiB each): more than
/// its small receive buffer and Strait's socket and read buffers hold.
const NEVER_READ_FETCHES: usize = 8;

fn fetch_request(topic: &str, offset: i64, max_bytes: i32) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(max_bytes)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(offset)
                .with_log_start_offset(-1)
                .with_current_leader_epoch(-1)
                .with_partition_max_bytes(max_bytes)])])
}

/// One produce (acks=1) and a fetch of what it wrote.
fn produce_and_fetch(w: &mut Wire, topic: &str) {
    static VALUE: [u8; 1024] = [b'w'; 1024];
    let r: ProduceResponse = w.call(ApiKey::Produce, 7, &produce_request(topic, 1, &VALUE));
    assert_eq!(
        partition_error(&r).0,
        0,
        "produce: {:?}",
        partition_error(&r)
    );
    let offset = r.responses[0].partition_responses[0].base_offset;
    let f: FetchResponse = w.call(ApiKey::Fetch, 11, &fetch_request(topic, offset, 64 << 10));
    let p = &f.responses[0].partitions[0];
    assert_eq!(p.error_code, 0, "fetch");
    assert!(
        p.records.as_ref().is_some_and(|r| !r.is_empty()),
        "the fetch returns the record produced"
    );
}

/// Runs produce+fetch pairs on each worker connection at once for about
/// `length`; returns pairs per second over all of them.
fn workload_round(workers: &mut [Wire], topic: &str, length: Duration) -> f64 {
    let started = Instant::now();
    let deadline = started + length;
    let pairs: usize = thread::scope(|s| {
        let running: Vec<_> = workers
            .iter_mut()
            .map(|w| {
                s.spawn(move || {
                    let mut n = 0;
                    while Instant::now() < deadline {
                        produce_and_fetch(w, topic);
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        running.into_iter().map(|h| h.join().expect("worker")).sum()
    });
    pairs as f64 / started.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Misbehaving clients, each on a thread that reconnects whenever Strait
/// drops it, until stopped. Their local addresses are collected, so Strait's
/// log lines can be matched to them.
struct SlowPeers {
    stop: Vec<mpsc::Sender<()>>,
    threads: Vec<thread::JoinHandle<()>>,
    addrs: Arc<Mutex<HashSet<String>>>,
}

impl SlowPeers {
    fn start(bootstrap: &str, topic: &str, addrs: Arc<Mutex<HashSet<String>>>) -> SlowPeers {
        let mut peers = SlowPeers {
            stop: Vec::new(),
            threads: Vec::new(),
            addrs,
        };
        for i in 0..LORIS + NEVER_READERS {
            let (tx, rx) = mpsc::channel();
            let (bootstrap, topic, addrs) = (
                bootstrap.to_string(),
                topic.to_string(),
                peers.addrs.clone(),
            );
            peers.threads.push(thread::spawn(move || {
                if i < LORIS {
                    slow_loris(&bootstrap, &addrs, &rx)
                } else {
                    never_reader(&bootstrap, &topic, &addrs, &rx)
                }
            }));
            peers.stop.push(tx);
        }
        peers
    }

    fn stop(self) {
        drop(self.stop);
        for t in self.threads {
            t.join().expect("slow peer");
        }
    }
}

fn connect_peer(
    bootstrap: &str,
    addrs: &Mutex<HashSet<String>>,
    rcvbuf: Option<usize>,
) -> TcpStream {
    let addr: SocketAddr = bootstrap.parse().expect("bootstrap address");
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    if let Some(bytes) = rcvbuf {
        // Fixed before connecting: no receive-window autotuning.
        socket.set_recv_buffer_size(bytes).expect("SO_RCVBUF");
    }
    socket.connect(&addr.into()).expect("connect");
    let s: TcpStream = socket.into();
    addrs
        .lock()
        .unwrap()
        .insert(s.local_addr().unwrap().to_string());
    s
}

/// Sends a Metadata request one byte a second, reconnecting when dropped.
fn slow_loris(bootstrap: &str, addrs: &Mutex<HashSet<String>>, stop: &mpsc::Receiver<()>) {
    let frame = Wire::frame(
        ApiKey::Metadata,
        12,
        1,
        &MetadataRequest::default().with_topics(Some(vec![])),
    );
    loop {
        let mut s = connect_peer(bootstrap, addrs, None);
        for b in frame.iter() {
            if s.write_all(&[*b]).is_err() || closed(&mut s) {
                break;
            }
            // The pace of a slow loris, which ends early when stopped.
            match stop.recv_timeout(Duration::from_secs(1)) {
                Err(RecvTimeoutError::Timeout) => {}
                _ => return,
            }
        }
    }
}

/// True once the peer closed the connection.
fn closed(s: &mut TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let mut b = [0u8; 1];
    let gone = match s.peek(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != ErrorKind::WouldBlock,
    };
    s.set_nonblocking(false).unwrap();
    gone
}

/// Asks for megabytes of fetched records and never reads the answers, until
/// stopped (Strait drops it on the way; it does not come back, as each
/// attempt costs the broker and Strait megabytes of work).
fn never_reader(
    bootstrap: &str,
    topic: &str,
    addrs: &Mutex<HashSet<String>>,
    stop: &mpsc::Receiver<()>,
) {
    // A small receive buffer, so the kernel does not take in megabytes on
    // the client's behalf: the client really stops taking bytes.
    let mut s = connect_peer(bootstrap, addrs, Some(16 << 10));
    let mut frames = Vec::new();
    for i in 0..NEVER_READ_FETCHES {
        let f = fetch_request(topic, 0, 1 << 20);
        frames.extend_from_slice(&Wire::frame(ApiKey::Fetch, 11, i as i32, &f));
    }
    let _ = s.write_all(&frames);
    let _ = stop.recv();
}

/// Slow-loris clients and clients that never read are dropped after their
/// timeouts, with a WARN naming the client; Strait's memory stays bounded
/// while they are connected; and three other connections' produce+fetch
/// round trips run within 10 % of their rate without them.
///
/// The rate is compared in the same run: rounds without and with the slow
/// peers alternate in pairs (A B, B A, ...; so a drift or load from
/// elsewhere on the machine hits both kinds alike), and the median of the
/// pairs' ratios is asserted. Each round lasts
/// longer than the peers' timeouts, so the slow peers are connecting,
/// stalling and being dropped throughout the rounds with them.
#[test]
fn slow_and_stalled_clients_are_dropped_without_slowing_others() {
    let _serial = serial();
    let upstream = cluster(1);
    let topic = unique("st-slow");
    create_topic(&upstream, &topic, 1, 1);
    let limits = format!(
        "frame_read_timeout_ms = {PEER_TIMEOUT_MS}\nclient_write_timeout_ms = {PEER_TIMEOUT_MS}"
    );
    let (strait, _dir) = Strait::with_config(&config(&upstream, &limits));
    strait.wait_ready();

    // Records for the never-readers' fetches: batches of 1 MiB.
    let mut w = Wire::connect(&strait.bootstrap);
    for _ in 0..NEVER_READ_FETCHES {
        let (batch, _) = word_batch(1 << 20, 1000);
        let r: ProduceResponse = w.call(
            ApiKey::Produce,
            7,
            &produce_request_with_batch(&topic, 1, batch),
        );
        assert_eq!(partition_error(&r).0, 0, "{:?}", partition_error(&r));
    }
    drop(w);

    let mut workers: Vec<Wire> = (0..WORKERS)
        .map(|_| Wire::connect(&strait.bootstrap))
        .collect();
    workload_round(&mut workers, &topic, Duration::from_secs(2)); // warm-up
    let (rss_before, _) = strait.rss_kib();
    let idle = bootstrap_connections(&strait);

    let addrs = Arc::new(Mutex::new(HashSet::new()));
    let (mut without, mut with) = (Vec::new(), Vec::new());
    let mut rss_with = 0;
    for pair in 0..PAIRS {
        // A B, then B A: a drift over the run (the broker's JIT warming up,
        // load elsewhere coming and going) favours neither kind.
        for slow in [pair % 2 == 1, pair % 2 == 0] {
            if !slow {
                without.push(workload_round(&mut workers, &topic, ROUND));
                continue;
            }
            let peers = SlowPeers::start(&strait.bootstrap, &topic, addrs.clone());
            eventually("the slow peers to connect", Duration::from_secs(10), || {
                (bootstrap_connections(&strait) >= idle + LORIS + NEVER_READERS).then_some(())
            });
            with.push(workload_round(&mut workers, &topic, ROUND));
            rss_with = rss_with.max(strait.rss_kib().0);
            peers.stop();
        }
    }
    let ratios: Vec<f64> = with.iter().zip(&without).map(|(w, o)| w / o).collect();
    let ratio = median(ratios.clone());
    println!(
        "slow peers: {WORKERS} connections doing produce+fetch round trips, {PAIRS} pairs of \
         {ROUND:?} rounds; pairs/s without slow peers {without:.0?}, with {LORIS} slow-loris and \
         {NEVER_READERS} never-reading clients {with:.0?}; ratio with/without per pair \
         {ratios:.3?}, median {ratio:.3}; Strait RSS {rss_before} KiB before, at most \
         {rss_with} KiB with the slow peers connected"
    );

    // Every slow peer kind was dropped by its timeout, with a WARN naming
    // the client, what it had sent or was owed, and the timeout.
    let addrs = addrs.lock().unwrap().clone();
    let warn_of = |needle: &str| -> Vec<Value> {
        strait
            .warnings()
            .into_iter()
            .filter(|l| field(l, "error").contains(needle))
            .collect()
    };
    let loris = warn_of("limits.frame_read_timeout_ms");
    assert!(!loris.is_empty(), "no slow-loris client was dropped");
    for l in &loris {
        assert_eq!(message(l), "closing connection");
        assert!(addrs.contains(&field(l, "client")), "{l}");
        let error = field(l, "error");
        assert!(
            error.contains(&format!("not the rest within {PEER_TIMEOUT_MS} ms")),
            "{error}"
        );
    }
    let stalled = warn_of("limits.client_write_timeout_ms");
    assert!(!stalled.is_empty(), "no never-reading client was dropped");
    for l in &stalled {
        assert!(addrs.contains(&field(l, "client")), "{l}");
    }
    let drops = |kind: &str| {
        metric(
            &strait,
            &format!("strait_errors_total{{side=\"client\",kind=\"{kind}\"}}"),
        )
    };
    assert!(drops("frame_read_timeout") >= loris.len() as f64);
    assert!(drops("write_timeout") >= stalled.len() as f64);
    // Only the slow peers had trouble (stopping one mid-frame is logged too).
    for l in strait.warnings() {
        assert!(
            addrs.contains(&field(&l, "client")),
            "unexpected warning: {l}"
        );
    }

    // Memory: each slow peer holds at most its two read buffers (256 KiB
    // each) and its plans; 16 MiB covers them and the allocator's slack.
    let bound = 16 * 1024;
    assert!(
        rss_with.saturating_sub(rss_before) < bound,
        "Strait grew from {rss_before} KiB to {rss_with} KiB with the slow peers"
    );
    assert!(
        ratio >= 0.9,
        "other connections ran at {ratio:.3} of their rate without the slow peers"
    );
    eventually("the slow peers to be gone", Duration::from_secs(10), || {
        (bootstrap_connections(&strait) == idle).then_some(())
    });
}

// ---- 3. malformed broker responses ----

/// How the fake broker answers a Metadata request whose client id names it.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// The response's body cut in half (the length prefix says so).
    Truncated,
    /// A well-formed response for another correlation id.
    WrongCorrelation,
    /// A length prefix above Strait's `max_frame_bytes`.
    TooLarge,
    /// A brokers array that claims 2^32 - 2 entries in five bytes.
    HugeArray,
    /// Pseudo-random bytes after a correct response header.
    Garbage(u64),
    /// Half of a well-formed response, then the connection closes.
    CloseMidFrame,
}

impl Fault {
    fn client_id(self) -> String {
        format!("fault-{self:?}")
    }

    /// What Strait's WARN says.
    fn logged(self) -> &'static str {
        match self {
            Fault::Truncated | Fault::HugeArray | Fault::Garbage(_) => {
                "cannot decode Metadata response v12"
            }
            Fault::WrongCorrelation => {
                "broker answered correlation id 8 but the oldest request in flight is 7"
            }
            Fault::TooLarge => {
                "length prefix 2097152 exceeds the configured maximum of 1048576 bytes"
            }
            Fault::CloseMidFrame => {
                "broker closed the connection with 1 request(s) awaiting a response"
            }
        }
    }
}

const FAULTS: [Fault; 8] = [
    Fault::Truncated,
    Fault::WrongCorrelation,
    Fault::TooLarge,
    Fault::HugeArray,
    Fault::Garbage(1),
    Fault::Garbage(2),
    Fault::Garbage(3),
    Fault::CloseMidFrame,
];

/// A tiny fake broker (see the file's doc comment): answers ApiVersions and
/// Metadata (naming itself as broker 0) properly, and a Metadata request from
/// a client id that names a [`Fault`] with that fault.
fn fake_broker() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake broker");
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(s) = s else { return };
            thread::spawn(move || fake_connection(s, addr.port()));
        }
    });
    addr
}

fn fake_connection(mut s: TcpStream, port: u16) {
    loop {
        let mut len = [0u8; 4];
        if s.read_exact(&mut len).is_err() {
            return;
        }
        let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
        if s.read_exact(&mut body).is_err() {
            return;
        }
        let key = ApiKey::try_from(i16::from_be_bytes([body[0], body[1]])).expect("known api");
        let version = i16::from_be_bytes([body[2], body[3]]);
        let mut b = Bytes::from(body);
        let header = RequestHeader::decode(&mut b, key.request_header_version(version)).unwrap();
        let corr = header.correlation_id;
        let hv = key.response_header_version(version);
        let out = match key {
            ApiKey::ApiVersions => {
                let r = ApiVersionsResponse::default().with_api_keys(vec![
                    ApiVersion::default().with_api_key(18).with_max_version(3),
                    ApiVersion::default().with_api_key(3).with_max_version(12),
                ]);
                response(corr, 0, &r, version)
            }
            ApiKey::Metadata => {
                let md = MetadataResponse::default()
                    .with_brokers(vec![MetadataResponseBroker::default()
                        .with_node_id(BrokerId(0))
                        .with_host(StrBytes::from_static_str("127.0.0.1"))
                        .with_port(i32::from(port))])
                    .with_cluster_id(Some(StrBytes::from_static_str("fake")))
                    .with_controller_id(BrokerId(0));
                let good = response(corr, hv, &md, version);
                let client = header.client_id.map(|c| c.to_string()).unwrap_or_default();
                match FAULTS.iter().find(|f| f.client_id() == client) {
                    None => good,
                    Some(f) => {
                        faulty(&mut s, *f, corr, &good);
                        return;
                    }
                }
            }
            _ => return,
        };
        if s.write_all(&out).is_err() {
            return;
        }
    }
}

/// Sends the fault, then holds the connection until Strait closes it.
fn faulty(s: &mut TcpStream, fault: Fault, corr: i32, good: &[u8]) {
    let body = &good[4..];
    let framed = |b: &[u8]| {
        let mut f = (b.len() as i32).to_be_bytes().to_vec();
        f.extend_from_slice(b);
        f
    };
    // Correlation id and the (flexible) response header's empty tags.
    let mut header = corr.to_be_bytes().to_vec();
    header.push(0);
    let out = match fault {
        Fault::Truncated => framed(&body[..body.len() / 2]),
        Fault::WrongCorrelation => {
            let mut f = good.to_vec();
            f[4..8].copy_from_slice(&(corr + 1).to_be_bytes());
            f
        }
        Fault::TooLarge => {
            let mut f = (2i32 << 20).to_be_bytes().to_vec();
            f.extend_from_slice(&body[..16]);
            f
        }
        Fault::HugeArray => {
            // Throttle time, then a compact array length of 2^32 - 1.
            let mut b = header;
            b.extend_from_slice(&[0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f]);
            b.extend_from_slice(&[0; 32]);
            framed(&b)
        }
        Fault::Garbage(seed) => {
            let mut b = header;
            let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            for _ in 0..200 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                b.push(x as u8);
            }
            framed(&b)
        }
        Fault::CloseMidFrame => {
            let _ = s.write_all(&good[..good.len() / 2]);
            return;
        }
    };
    let _ = s.write_all(&out);
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
}

/// A response frame: length prefix, header, body.
fn response<T: Encodable>(corr: i32, header_version: i16, body: &T, version: i16) -> Vec<u8> {
    let mut b = BytesMut::new();
    b.put_i32(0);
    ResponseHeader::default()
        .with_correlation_id(corr)
        .encode(&mut b, header_version)
        .unwrap();
    body.encode(&mut b, version).unwrap();
    let len = (b.len() - 4) as i32;
    b[..4].copy_from_slice(&len.to_be_bytes());
    b.to_vec()
}

/// For each way a broker can answer with a malformed response, the client
/// gets a clean disconnect (end of stream, no frame, no hang), Strait logs a
/// WARN naming the client and the fault, and the next connection is served.
/// The fake broker is the one stand-in here (see the file's doc comment).
#[test]
fn malformed_broker_responses_disconnect_the_client_cleanly() {
    let _serial = serial();
    let broker = fake_broker();
    let (mut strait, _dir) =
        Strait::with_config(&config(&broker.to_string(), "max_frame_bytes = 1048576"));
    strait.wait_ready();
    metadata_through(&strait);
    for fault in FAULTS {
        let mut c = Wire::connect(&strait.bootstrap);
        c.stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let local = c.stream.local_addr().unwrap().to_string();
        let request = MetadataRequest::default().with_topics(Some(vec![]));
        c.send_raw(&Wire::frame_from(
            &fault.client_id(),
            ApiKey::Metadata,
            12,
            7,
            &request,
        ));
        match c.read_frame() {
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset
                ) => {}
            other => panic!("{fault:?}: the client got {other:?}, not a disconnect"),
        }
        let line = strait.wait_log(&format!("the WARN for {fault:?}"), |l| {
            field(l, "client") == local
        });
        assert_eq!(
            line.get("level").and_then(Value::as_str),
            Some("WARN"),
            "{fault:?}: {line}"
        );
        let error = field(&line, "error");
        assert!(error.contains(fault.logged()), "{fault:?}: {error}");
        // Strait carries on.
        metadata_through(&strait);
    }
    let malformed = metric(
        &strait,
        "strait_errors_total{side=\"upstream\",kind=\"malformed_response\"}",
    );
    assert_eq!(
        malformed, 5.0,
        "truncated, huge array, three garbage bodies"
    );
    assert!(
        !strait
            .logs()
            .iter()
            .any(|l| l.to_string().contains("panicked")),
        "no panic"
    );
}
