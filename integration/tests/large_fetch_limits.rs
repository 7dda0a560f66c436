//! Large records at the limits of the fetch path, with real clients (Java
//! kafka-clients, librdkafka) and raw Kafka requests against a real broker:
//! a seek into a run of chunked values, a consumer killed in the middle of
//! one and restarted in its group, a default-sized consumer reading 150 MiB
//! of claim-checks through cut responses, Strait's memory with 20 concurrent
//! 50 MiB records against its configured bound, a tampered object that never
//! reaches a consumer, and the reserved header refused on produce.

use std::collections::BTreeSet;
use std::sync::Barrier;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, FetchRequest, FetchResponse, ProduceResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::RecordBatchDecoder;
use sha2::{Digest, Sha256};
use strait_integration::large::{
    assert_round_trip, consumed, driver, metric, policy, produce_errors, produced, strait_with_dir,
    strait_with_large_config, strait_with_store, Consumed, Produced, Stack, StoreKind,
};
use strait_integration::wire::{
    api_versions_request, decode, partition_error, produce_request_with_batch, Wire,
};
use strait_integration::{
    cluster, create_topic, eventually, field, message, run, tempdir, unique, values_on_broker,
    Strait,
};
use strait_proxy::codec::build::{build_batch, HeaderSpec, Producer};

const MIB: u64 = 1 << 20;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Produces `count` values of `size` bytes to partition 0 of `topic` through
/// Strait with the librdkafka driver; every one acknowledged.
fn produce(strait: &Strait, topic: &str, count: u32, size: u64) -> Vec<Produced> {
    let (count_s, size_s) = (count.to_string(), size.to_string());
    let out = run(&mut driver(
        Stack::Librdkafka,
        "produce",
        &[
            "--bootstrap",
            &strait.bootstrap,
            "--topic",
            topic,
            "--count",
            &count_s,
            "--size",
            &size_s,
            "--partition",
            "0",
        ],
    ));
    out.assert_ok(&format!("librdkafka produces {count} x {size} bytes"));
    assert!(
        produce_errors(&out).is_empty(),
        "{:?}",
        produce_errors(&out)
    );
    let mut p = produced(&out);
    assert_eq!(p.len(), count as usize, "every record acknowledged");
    p.sort_by_key(|r| r.offset);
    p
}

/// The consumer's records are exactly `expected`, in offset order, each once
/// and byte-identical.
fn assert_exactly(expected: &[Produced], got: &[Consumed]) {
    let want: Vec<(i64, u64)> = expected.iter().map(|p| (p.offset, p.index)).collect();
    let read: Vec<(i64, u64)> = got
        .iter()
        .map(|c| (c.offset, c.index.unwrap_or(u64::MAX)))
        .collect();
    assert_eq!(read, want, "(offset, index) of the records read, in order");
    assert_round_trip(expected, got, "");
}

/// 1. A consumer that seeks into a run of chunked values gets the values
///    from that offset on, once each, whole.
#[test]
fn chunked_values_read_from_a_seek_offset_arrive_once_and_whole() {
    let upstream = cluster(1);
    let (strait, _objects, _dir) = strait_with_dir(&upstream, "lfl-seek.", &["chunk"]);
    let topic = unique("lfl-seek.t");
    create_topic(&upstream, &topic, 1, 1);
    let all = produce(&strait, &topic, 6, 3 * MIB);
    let from = all.iter().position(|p| p.index == 3).unwrap();
    let seek = format!("0:{}", all[from].offset);
    for stack in Stack::BOTH {
        let c = run(&mut driver(
            stack,
            "consume",
            &[
                "--bootstrap",
                &strait.bootstrap,
                "--topic",
                &topic,
                "--expect",
                "3",
                "--seek",
                &seek,
            ],
        ));
        c.assert_ok(&format!("{stack:?} consumes from {seek}"));
        assert_exactly(&all[from..], &consumed(&c));
    }
}

/// 2. A consumer in a group halts (no close, no LeaveGroup) after two of five
///    chunked values; the same static member restarted reads the rest: every
///    value once, whole, in offset order.
fn consumer_killed_in_a_run_of_chunked_values(stack: Stack) {
    let upstream = cluster(1);
    let (strait, _objects, _dir) = strait_with_dir(&upstream, "lfl-kill.", &["chunk"]);
    let topic = unique("lfl-kill.t");
    create_topic(&upstream, &topic, 1, 1);
    let all = produce(&strait, &topic, 5, 3 * MIB);
    let group = unique("lfl-kill-group");
    // Static membership: the restarted consumer takes the halted one's place
    // at once instead of waiting out its session.
    let instance = format!("group.instance.id={}", unique("lfl-kill-member"));
    let consume = |expect: &str, stop_after: Option<&str>| {
        let mut args = vec![
            "--bootstrap",
            &strait.bootstrap,
            "--topic",
            &topic,
            "--expect",
            expect,
            "--group",
            &group,
            "--config",
            &instance,
        ];
        if let Some(k) = stop_after {
            args.extend(["--stop-after", k]);
        }
        run(&mut driver(stack, "consume", &args))
    };
    let first = consume("5", Some("2"));
    first.assert_ok(&format!("{stack:?} consumes 2 and halts"));
    assert_eq!(first.summary()["halted"], true, "{}", first.stdout);
    let before = consumed(&first);
    assert_exactly(&all[..2], &before);
    let second = consume("3", None);
    second.assert_ok(&format!("{stack:?} restarted in the group"));
    let after = consumed(&second);
    assert_exactly(&all[2..], &after);
    let together: Vec<Consumed> = before.into_iter().chain(after).collect();
    assert_exactly(&all, &together);
}

#[test]
fn java_consumer_killed_in_a_run_of_chunked_values_resumes_exactly_once() {
    consumer_killed_in_a_run_of_chunked_values(Stack::Java);
}

#[test]
fn librdkafka_consumer_killed_in_a_run_of_chunked_values_resumes_exactly_once() {
    consumer_killed_in_a_run_of_chunked_values(Stack::Librdkafka);
}

/// 3. librdkafka with its default fetch and receive limits reads 30
///    consecutive 5 MiB claim-checked values (150 MiB restored): Strait cuts
///    each restored response at a batch boundary near the client's limits,
///    so no response is too large and the rest comes with the next fetch.
#[test]
fn default_librdkafka_consumer_reads_150_mib_of_claim_checks_through_cut_responses() {
    const COUNT: u32 = 30;
    let upstream = cluster(1);
    let (strait, _objects, _dir) = strait_with_dir(&upstream, "lfl-grow.", &["claim-check"]);
    let topic = unique("lfl-grow.t");
    create_topic(&upstream, &topic, 1, 1);
    let all = produce(&strait, &topic, COUNT, 5 * MIB);
    let cut_before = metric(
        &strait,
        "strait_large_restore_partitions_total",
        &["outcome=\"cut\""],
    );
    let restored_before = metric(
        &strait,
        "strait_large_record_bytes_total",
        &["direction=\"restored\""],
    );
    let expect = COUNT.to_string();
    let c = run(&mut driver(
        Stack::Librdkafka,
        "consume",
        &[
            "--bootstrap",
            &strait.bootstrap,
            "--topic",
            &topic,
            "--expect",
            &expect,
        ],
    ));
    c.assert_ok("librdkafka with default limits consumes 30 x 5 MiB");
    assert!(
        !c.stderr.contains("consumer error"),
        "the consumer reported errors:\n{}",
        c.stderr
    );
    assert_exactly(&all, &consumed(&c));
    let cut = metric(
        &strait,
        "strait_large_restore_partitions_total",
        &["outcome=\"cut\""],
    ) - cut_before;
    let restored = metric(
        &strait,
        "strait_large_record_bytes_total",
        &["direction=\"restored\""],
    ) - restored_before;
    println!(
        "30 x 5 MiB claim-checks: {cut} restored partitions cut, {restored} value bytes restored"
    );
    assert!(
        cut > 0.0,
        "no restored response was cut: the restore step never left batches for the next fetch"
    );
    assert!(
        restored >= f64::from(COUNT) * (5 * MIB) as f64,
        "restored {restored} bytes"
    );
}

/// Strait with claim-checks on `prefix` topics, the large-record memory
/// bound `memory_bytes`, a 64 MiB object cache, 64 MiB frames and `more`
/// `[large_records]` keys.
fn strait_with_memory_bound(
    upstream: &str,
    prefix: &str,
    objects: &tempdir::Dir,
    memory_bytes: u64,
    more: &str,
) -> (Strait, tempdir::Dir) {
    strait_with_large_config(
        upstream,
        &policy(prefix, &["claim-check"], ""),
        StoreKind::Dir(objects.path()),
        &format!("[limits]\nmax_frame_bytes = {MAX_FRAME_BYTES}\n"),
        &format!(
            "memory_bytes = {memory_bytes}\nconnection_memory_bytes = {CONNECTION_MEMORY_BYTES}\n\
             cache_bytes = {CACHE_BYTES}\n{more}"
        ),
    )
}

const VALUE: usize = 50 << 20;
const CONNECTION_MEMORY_BYTES: u64 = 64 * MIB;
const CACHE_BYTES: u64 = 64 * MIB;
const MAX_FRAME_BYTES: u64 = 64 * MIB;

/// Produce frames (v9, acks=-1, correlation id 1000 + i) of one 50 MiB
/// record each for partition 0 of `topic`, with key `mem-<i>` and header
/// `n = <i>`, and the SHA-256 of each value. The values are distinct and
/// incompressible: rotations of one pseudo-random MiB.
fn fifty_mib_frames(topic: &str, count: usize) -> (Vec<Bytes>, Vec<String>) {
    let base: Vec<u8> = (0..(MIB / 32))
        .flat_map(|k| Sha256::digest(k.to_be_bytes()))
        .collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut frames = Vec::new();
    let mut sums = Vec::new();
    for i in 0..count {
        let mut value = Vec::with_capacity(VALUE);
        for k in 0..VALUE / base.len() {
            let at = ((i * 50 + k) * 4099 + 17) % base.len();
            value.extend_from_slice(&base[at..]);
            value.extend_from_slice(&base[..at]);
        }
        sums.push(hex(&Sha256::digest(&value)));
        let (key, n) = (format!("mem-{i}"), i.to_string());
        let headers: [HeaderSpec<'_>; 1] = [(b"n", Some(n.as_bytes()))];
        let batch = build_batch(
            Producer::NONE,
            now,
            &[(Some(key.as_bytes()), Some(&value), &headers)],
        );
        drop(value);
        let request = produce_request_with_batch(topic, -1, batch);
        frames.push(Wire::frame(ApiKey::Produce, 9, 1000 + i as i32, &request));
    }
    assert_eq!(
        sums.iter().collect::<BTreeSet<_>>().len(),
        count,
        "distinct values"
    );
    (frames, sums)
}

/// A connection to Strait that has had one round trip, with a read timeout
/// long enough for a wait on the memory bound.
fn patient_connection(strait: &Strait) -> Wire {
    let mut w = Wire::connect(&strait.bootstrap);
    w.stream
        .set_read_timeout(Some(Duration::from_secs(300)))
        .unwrap();
    let _: ApiVersionsResponse = w.call(ApiKey::ApiVersions, 3, &api_versions_request());
    w
}

/// Sends every frame at once, each from its own connection, and returns the
/// connections (left open, as a producer's are) and the offsets written.
fn produce_concurrently(strait: &Strait, frames: &[Bytes]) -> (Vec<Wire>, Vec<i64>) {
    let barrier = Barrier::new(frames.len());
    let (wires, offsets): (Vec<Wire>, Vec<i64>) = std::thread::scope(|s| {
        let handles: Vec<_> = frames
            .iter()
            .enumerate()
            .map(|(i, frame)| {
                let barrier = &barrier;
                s.spawn(move || {
                    let mut w = patient_connection(strait);
                    barrier.wait();
                    w.send_raw(frame);
                    let raw = w
                        .read_frame()
                        .unwrap_or_else(|e| panic!("producer {i}: no response: {e}"));
                    let resp: ProduceResponse = decode_answer(ApiKey::Produce, 9, 1000 + i, raw);
                    let (code, msg) = partition_error(&resp);
                    assert_eq!(code, 0, "producer {i}: {msg}");
                    (w, resp.responses[0].partition_responses[0].base_offset)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).unzip()
    });
    assert_eq!(
        offsets.iter().collect::<BTreeSet<_>>().len(),
        frames.len(),
        "{offsets:?}"
    );
    (wires, offsets)
}

/// Decodes a response frame after checking its correlation id.
fn decode_answer<R: kafka_protocol::protocol::Decodable>(
    key: ApiKey,
    version: i16,
    correlation_id: usize,
    raw: Bytes,
) -> R {
    assert_eq!(
        i32::from_be_bytes(raw[..4].try_into().unwrap()),
        correlation_id as i32,
        "{key:?} correlation id"
    );
    decode(key, version, raw)
}

/// A Fetch (v12) of partition 0 of `topic` from `offset`, asking for up to
/// 64 MiB: one restored 50 MiB record per response.
fn fetch_request(topic: &str, offset: i64) -> FetchRequest {
    FetchRequest::default()
        .with_max_wait_ms(500)
        .with_min_bytes(1)
        .with_max_bytes(64 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(64 << 20)])])
}

/// A restored record as a consumer reads it.
struct Fetched {
    key: Option<Bytes>,
    headers: Vec<(String, Option<Vec<u8>>)>,
    size: usize,
    sha256: String,
}

/// The record at `offset` in a Fetch response, or the partition's error.
fn fetched(resp: &FetchResponse, offset: i64) -> Result<Fetched, i16> {
    let p = &resp.responses[0].partitions[0];
    if p.error_code != 0 {
        return Err(p.error_code);
    }
    let mut records = p.records.clone().unwrap_or_default();
    // Every batch whole and its CRC right (the decoder checks it).
    let sets = RecordBatchDecoder::decode_all(&mut records)
        .unwrap_or_else(|e| panic!("offset {offset}: the restored batches do not decode: {e}"));
    let r = sets
        .iter()
        .flat_map(|s| &s.records)
        .find(|r| r.offset == offset)
        .unwrap_or_else(|| panic!("offset {offset} is not in the response"));
    let value = r.value.clone().expect("a value");
    Ok(Fetched {
        key: r.key.clone(),
        headers: r
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_ref().map(|v| v.to_vec())))
            .collect(),
        size: value.len(),
        sha256: hex(&Sha256::digest(&value)),
    })
}

/// Record `i` as the producer sent it: key, header, size and bytes.
fn assert_fetched(i: usize, got: &Fetched, sha256: &str) {
    assert_eq!(
        got.key.as_deref(),
        Some(format!("mem-{i}").as_bytes()),
        "record {i}: key"
    );
    assert_eq!(
        got.headers,
        vec![("n".to_string(), Some(i.to_string().into_bytes()))],
        "record {i}: the marker is gone, the client's header stays"
    );
    assert_eq!(got.size, VALUE, "record {i}: size");
    assert_eq!(got.sha256, sha256, "record {i}: bytes differ");
}

/// 4. Memory: 20 producers send one 50 MiB record each at the same time
///    (raw Produce requests, one connection each, kept open as a producer
///    keeps its connection), then 20 consumers fetch them back at the same
///    time (raw Fetch requests, read as they come). Strait's peak RSS stays
///    under its configured large-record bound plus the object cache plus a
///    fixed baseline.
#[test]
fn twenty_concurrent_50_mib_records_keep_strait_under_its_memory_bound() {
    const RECORDS: usize = 20;
    const MEMORY_BYTES: u64 = 192 * MIB;
    // What the bound does not cover: the binary, the runtime, thread stacks,
    // the buffers of ~40 connections, allocator slack. An idle Strait is
    // ~25 MiB (debug build).
    const BASELINE: u64 = 128 * MIB;
    const BOUND_KIB: u64 = (MEMORY_BYTES + CACHE_BYTES + BASELINE) / 1024;

    let upstream = cluster(1);
    let objects = tempdir::Dir::new("objects");
    let (strait, _dir) =
        strait_with_memory_bound(&upstream, "lfl-mem.", &objects, MEMORY_BYTES, "");
    let topic = unique("lfl-mem.t");
    create_topic(&upstream, &topic, 1, 1);
    let (_, idle_kib) = strait.rss_kib();

    let (frames, sums) = fifty_mib_frames(&topic, RECORDS);
    let (producers, offsets) = produce_concurrently(&strait, &frames);
    drop(frames);
    let (_, after_produce_kib) = strait.rss_kib();
    assert_eq!(
        metric(&strait, "strait_large_objects_total", &["op=\"written\""]),
        RECORDS as f64,
        "one object per value"
    );

    // Fetch: 20 consumers, each asks for its record at the same time;
    // restores wait for memory, and a retriable error is retried.
    let barrier = Barrier::new(RECORDS);
    let retries: Vec<u32> = std::thread::scope(|s| {
        let handles: Vec<_> = offsets
            .iter()
            .zip(&sums)
            .enumerate()
            .map(|(i, (&offset, sum))| {
                let (barrier, strait, topic) = (&barrier, &strait, &topic);
                s.spawn(move || {
                    let mut w = patient_connection(strait);
                    barrier.wait();
                    let mut retries = 0;
                    let got = eventually(
                        &format!("consumer {i}: record at offset {offset}"),
                        Duration::from_secs(300),
                        || {
                            let resp: FetchResponse =
                                w.call(ApiKey::Fetch, 12, &fetch_request(topic, offset));
                            match fetched(&resp, offset) {
                                Ok(v) => Some(v),
                                Err(code) => {
                                    assert_eq!(
                                        code, 56,
                                        "consumer {i}: only KAFKA_STORAGE_ERROR is retried"
                                    );
                                    retries += 1;
                                    None
                                }
                            }
                        },
                    );
                    assert_fetched(i, &got, sum);
                    retries
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let (now_kib, peak_kib) = strait.rss_kib();
    let read = metric(&strait, "strait_large_objects_total", &["op=\"read\""]);
    println!(
        "memory: memory_bytes {} MiB + cache_bytes {} MiB + baseline {} MiB = bound {BOUND_KIB} KiB; \
         Strait RSS idle {idle_kib} KiB, peak after producing {after_produce_kib} KiB, \
         peak {peak_kib} KiB, now {now_kib} KiB ({RECORDS} x {} MiB records produced and fetched \
         concurrently; objects read {read}; fetch retries {retries:?})",
        MEMORY_BYTES / MIB,
        CACHE_BYTES / MIB,
        BASELINE / MIB,
        VALUE >> 20,
    );
    assert!(
        peak_kib < BOUND_KIB,
        "Strait's peak RSS {peak_kib} KiB exceeds memory_bytes + cache_bytes + baseline = {BOUND_KIB} KiB \
         (after producing: {after_produce_kib} KiB)"
    );
    drop(producers);
}

/// 5. An object changed in the store (same size, other bytes) never reaches
///    a consumer: the partition gets a retriable error, Strait warns naming
///    the object and the offset, and counts a hash mismatch.
#[test]
fn a_tampered_object_never_reaches_a_consumer() {
    let upstream = cluster(1);
    let objects = tempdir::Dir::new("objects");
    let (mut strait, _dir) = strait_with_store(
        &upstream,
        &policy("lfl-tamper.", &["claim-check"], ""),
        StoreKind::Dir(objects.path()),
        "",
    );
    let topic = unique("lfl-tamper.t");
    create_topic(&upstream, &topic, 1, 1);
    let record = produce(&strait, &topic, 1, 2 * MIB).remove(0);
    // The object, before any fetch has cached its value.
    let key = format!("strait/{topic}/{}", record.sha256);
    let path = objects.path().join(&key);
    let mut bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(bytes.len() as u64, record.size);
    for b in &mut bytes[..4096] {
        *b ^= 0x5a;
    }
    std::fs::write(&path, &bytes).unwrap();

    let c = run(&mut driver(
        Stack::Librdkafka,
        "consume",
        &[
            "--bootstrap",
            &strait.bootstrap,
            "--topic",
            &topic,
            "--expect",
            "1",
            "--timeout-s",
            "10",
        ],
    ));
    let got = consumed(&c);
    assert!(
        got.is_empty(),
        "the consumer read {got:?}\n--- stderr\n{}",
        c.stderr
    );
    assert_eq!(c.summary()["count"], 0, "{}", c.stdout);
    let offset = format!("offset {}", record.offset);
    let warning = strait.wait_log("a warning naming the object and the offset", |l| {
        field(l, "topic") == topic
            && message(l).contains("cannot restore")
            && field(l, "error").contains(&key)
            && field(l, "error").contains(&offset)
    });
    println!(
        "tampered object: {}: {}",
        message(&warning),
        field(&warning, "error")
    );
    assert_eq!(warning["level"], "WARN", "{warning}");
    assert!(
        field(&warning, "error").contains("does not match"),
        "{warning}"
    );
    assert!(
        metric(
            &strait,
            "strait_large_objects_total",
            &["op=\"hash_mismatch\""]
        ) > 0.0
    );
}

/// 6. A client's record with a header in Strait's reserved namespace is
///    refused with INVALID_RECORD naming the rule; nothing reaches the broker.
#[test]
fn a_client_header_named_strait_large_record_is_refused() {
    let upstream = cluster(1);
    let (strait, _objects, _dir) = strait_with_dir(&upstream, "lfl-reserved.", &["claim-check"]);
    let topic = unique("lfl-reserved.t");
    create_topic(&upstream, &topic, 1, 1);
    let mut w = Wire::connect(&strait.bootstrap);
    let forged: [HeaderSpec<'_>; 1] = [(b"strait.large-record", Some(b"claim-check"))];
    let batch = build_batch(Producer::NONE, 0, &[(Some(b"k"), Some(b"forged"), &forged)]);
    let resp: ProduceResponse = w.call(
        ApiKey::Produce,
        9,
        &produce_request_with_batch(&topic, -1, batch),
    );
    let (code, msg) = partition_error(&resp);
    assert_eq!(code, 87, "INVALID_RECORD: {msg}");
    assert!(
        msg.contains("large_records.reserved_headers"),
        "the message names the rule: {msg}"
    );
    let record_errors: Vec<i32> = resp.responses[0].partition_responses[0]
        .record_errors
        .iter()
        .map(|e| e.batch_index)
        .collect();
    assert_eq!(record_errors, vec![0], "the record is named");
    // The same record without the header is written, at offset 0: the
    // refused one never reached the broker.
    let batch = build_batch(Producer::NONE, 0, &[(Some(b"k"), Some(b"plain"), &[])]);
    let resp: ProduceResponse = w.call(
        ApiKey::Produce,
        9,
        &produce_request_with_batch(&topic, -1, batch),
    );
    assert_eq!(partition_error(&resp).0, 0, "{resp:?}");
    assert_eq!(resp.responses[0].partition_responses[0].base_offset, 0);
    assert_eq!(values_on_broker(&upstream, &topic), vec!["plain"]);
}

/// 4b. Consumers slower than Strait: twelve 50 MiB records fetched on twelve
///     connections whose clients read nothing until every one of them has
///     an answer waiting. A restored response waiting for its client still
///     takes memory: it must count against the bound (a restore over it
///     waits, then gets a retriable error), not pile up beside it.
#[test]
fn restored_responses_waiting_for_slow_consumers_stay_under_the_memory_bound() {
    const RECORDS: usize = 12;
    const MEMORY_BYTES: u64 = 192 * MIB;
    const BASELINE: u64 = 128 * MIB;
    const BOUND_KIB: u64 = (MEMORY_BYTES + CACHE_BYTES + BASELINE) / 1024;

    let upstream = cluster(1);
    let objects = tempdir::Dir::new("objects");
    let (strait, _dir) = strait_with_memory_bound(
        &upstream,
        "lfl-slow.",
        &objects,
        MEMORY_BYTES,
        "memory_wait_ms = 2000\n",
    );
    let topic = unique("lfl-slow.t");
    create_topic(&upstream, &topic, 1, 1);
    let (frames, sums) = fifty_mib_frames(&topic, RECORDS);
    let (producers, offsets) = produce_concurrently(&strait, &frames);
    drop((frames, producers));

    let mut consumers: Vec<Wire> = (0..RECORDS).map(|_| patient_connection(&strait)).collect();
    for (i, w) in consumers.iter_mut().enumerate() {
        w.send_raw(&Wire::frame(
            ApiKey::Fetch,
            12,
            2000 + i as i32,
            &fetch_request(&topic, offsets[i]),
        ));
    }
    // Every answer is on its way (restored, or a retriable error), none read.
    eventually(
        "an answer waiting on every consumer connection",
        Duration::from_secs(120),
        || {
            consumers
                .iter_mut()
                .all(|w| matches!(w.peek_ready(), Ok(Some(n)) if n > 0))
                .then_some(())
        },
    );
    let (waiting_kib, _) = strait.rss_kib();
    let held = metric(&strait, "strait_large_record_memory_bytes", &[]);
    // Read every answer first (an unread one may hold memory a retry
    // needs), then fetch again what got a retriable error.
    let answers: Vec<Result<Fetched, i16>> = consumers
        .iter_mut()
        .enumerate()
        .map(|(i, w)| {
            let raw = w.read_frame().unwrap();
            let resp: FetchResponse = decode_answer(ApiKey::Fetch, 12, 2000 + i, raw);
            fetched(&resp, offsets[i])
        })
        .collect();
    let mut retried = 0;
    for (i, (w, answer)) in consumers.iter_mut().zip(answers).enumerate() {
        let got = match answer {
            Ok(got) => got,
            Err(code) => {
                assert_eq!(
                    code, 56,
                    "consumer {i}: only KAFKA_STORAGE_ERROR is retried"
                );
                retried += 1;
                eventually(
                    &format!("consumer {i}: its record"),
                    Duration::from_secs(120),
                    || {
                        let resp: FetchResponse =
                            w.call(ApiKey::Fetch, 12, &fetch_request(&topic, offsets[i]));
                        fetched(&resp, offsets[i]).ok()
                    },
                )
            }
        };
        assert_fetched(i, &got, &sums[i]);
    }
    let (_, peak_kib) = strait.rss_kib();
    println!(
        "slow consumers: bound {BOUND_KIB} KiB; with {RECORDS} answers waiting unread Strait's RSS \
         was {waiting_kib} KiB while the large-record budget said {held} bytes held; peak {peak_kib} \
         KiB; {retried} consumers got a retriable error first"
    );
    assert!(
        peak_kib < BOUND_KIB,
        "Strait's peak RSS {peak_kib} KiB exceeds memory_bytes + cache_bytes + baseline = \
         {BOUND_KIB} KiB with restored responses waiting for slow consumers"
    );
}
