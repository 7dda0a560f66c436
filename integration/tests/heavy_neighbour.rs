//! A heavy neighbour does not stall other connections: while connections
//! send ~16 MiB uncompressed batches to a topic whose policy compresses with
//! gzip level 9, another connection's round trips (ApiVersions, and Produce
//! to a topic no policy touches) complete; the heavy batches are then
//! acknowledged and stored gzip-compressed.

use std::time::{Duration, Instant};

use kafka_protocol::messages::{ApiKey, ApiVersionsResponse, ProduceResponse};
use strait_integration::tempdir::Dir;
use strait_integration::wire::{
    api_versions_request, decode, partition_error, produce_request, produce_request_with_batch,
    word_batch, Wire,
};
use strait_integration::{
    cluster, create_topic, create_topic_with_configs, eventually, stored_batches, unique, Strait,
};

/// Size of each heavy batch's records (uncompressed).
const HEAVY_BYTES: usize = 16 << 20;
/// Size of one heavy record's value.
const HEAVY_VALUE: usize = 1000;
/// Round trips of each kind the light connection makes while the heavy
/// batches are in flight.
const ROUND_TRIPS: usize = 20;
/// The light connection's record value.
static LIGHT_VALUE: [u8; 1024] = [b'v'; 1024];

/// Heavy connections: one per core (at least two, at most eight). Strait's
/// runtime has one reactor (worker) thread per core, so if Strait compressed
/// on the reactor, these would occupy every one of them at once. (With more
/// than eight cores some workers stay free and the test no longer tells the
/// two designs apart; it still checks that the heavy batches are handled.)
fn heavy_connections() -> usize {
    std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(2, 8)
}

/// Uncompressed bytes Strait's compression stage has finished with
/// (`strait_pipeline_compress_bytes_total{direction="in"}`; 0 before any).
fn compressed_bytes_in(strait: &Strait) -> u64 {
    let (status, body) = strait.admin_get("/metrics");
    assert_eq!(status, 200, "/metrics: {body}");
    body.lines()
        .filter(|l| {
            l.starts_with("strait_pipeline_compress_bytes_total{") && l.contains("direction=\"in\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// The light connection's round trips finish while gzip-9 compressions of
/// ~16 MiB batches on other connections are still running.
///
/// This is an ordering check, not a timer. Compressing a 16 MiB batch with
/// gzip 9 takes far longer than a few dozen small round trips, but how much
/// longer depends on the machine, the build profile and the load, so no
/// duration is asserted anywhere. Instead the test asserts what must come
/// first: all of connection B's round trips (each waiting for its answer)
/// complete *before* any heavy compression has finished. Two observations
/// witness "no heavy compression has finished yet" at that moment:
///
/// - no byte of any heavy connection's response is readable (a non-blocking
///   peek): the answer can only come after the compressed batch went to the
///   broker;
/// - Strait's own counter of bytes its compression stage has finished with,
///   `strait_pipeline_compress_bytes_total{direction="in"}`, is still 0. This
///   is the sharper witness: the counter moves the moment a compression ends,
///   while the response lags behind by the broker's work on the batch (so
///   against an inline build the responses are often not readable yet when
///   B finishes, but the counter has moved).
///
/// Why this fails when Strait compresses inline on its async runtime: the
/// runtime has one worker thread per core, and there is one heavy connection
/// per core (at least two; on this suite's 2-core machines, two). All heavy
/// frames are completed at the same moment (every byte but the last is sent
/// first, then the last bytes back to back), so their compressions start
/// together and each one holds a worker thread until it is done. With every
/// worker busy nothing else runs: not B's requests, not their responses,
/// not the admin listener. B's next round trip therefore completes only
/// after a compression has finished, and by then the counter has moved (and
/// soon after, the first heavy response arrives): the assertion fails,
/// however fast or slow compression, broker and machine are. With compression
/// on a separate blocking pool, the workers stay free and B's round trips, and
/// the metrics read, come back while the compressions are still running.
///
/// Then every heavy produce is acknowledged (error 0) and the broker stores
/// each heavy batch gzip-compressed with all its records.
#[test]
fn light_round_trips_complete_while_gzip9_compresses_heavy_batches() {
    let upstream = cluster(1);
    let heavy_topic = unique("heavy");
    let light_topic = unique("light");
    // Room for the batch even if it were stored uncompressed (then the codec
    // check below names the problem, rather than a size error).
    create_topic_with_configs(
        &upstream,
        &heavy_topic,
        1,
        1,
        &[("max.message.bytes", "67108864")],
    );
    create_topic(&upstream, &light_topic, 1, 1);
    let dir = Dir::new("policies");
    std::fs::write(
        dir.path().join("heavy.toml"),
        format!(
            "[[policy]]\nname = \"heavy-gzip9\"\ntopics = {{ exact = \"{heavy_topic}\" }}\n\
             [policy.compress]\ncodec = \"gzip\"\nlevel = 9\n"
        ),
    )
    .unwrap();
    let strait = Strait::with_policies(&upstream, dir.path());

    let heavy_n = heavy_connections();
    let (batch, records) = word_batch(HEAVY_BYTES, HEAVY_VALUE);
    let request = produce_request_with_batch(&heavy_topic, -1, batch.clone());
    const HEAVY_ID: i32 = 4242;
    let frame = Wire::frame(ApiKey::Produce, 9, HEAVY_ID, &request);

    // Every connection is open and has done a round trip (accepted, upstream
    // connected) before the heavy frames go out.
    let mut light = Wire::connect(&strait.bootstrap);
    // B's answers are what is being ordered; never let a socket timeout stand
    // in for the ordering check.
    light
        .stream
        .set_read_timeout(Some(Duration::from_secs(600)))
        .unwrap();
    let _: ApiVersionsResponse = light.call(ApiKey::ApiVersions, 3, &api_versions_request());
    let warm: ProduceResponse = light.call(
        ApiKey::Produce,
        9,
        &produce_request(&light_topic, -1, &LIGHT_VALUE),
    );
    assert_eq!(partition_error(&warm).0, 0, "{warm:?}");
    let mut heavy: Vec<Wire> = (0..heavy_n)
        .map(|_| {
            let mut w = Wire::connect(&strait.bootstrap);
            let _: ApiVersionsResponse = w.call(ApiKey::ApiVersions, 3, &api_versions_request());
            w
        })
        .collect();
    assert_eq!(
        compressed_bytes_in(&strait),
        0,
        "nothing compressed before the heavy frames"
    );

    // The heavy frames, all but their last byte; then the last bytes back to
    // back, so Strait can start on every heavy request at the same moment.
    let (body, last) = frame.split_at(frame.len() - 1);
    for w in heavy.iter_mut() {
        w.send_raw(body);
    }
    let sent = Instant::now();
    for w in heavy.iter_mut() {
        w.send_raw(last);
    }

    for i in 0..ROUND_TRIPS {
        let v: ApiVersionsResponse = light.call(ApiKey::ApiVersions, 3, &api_versions_request());
        assert_eq!(v.error_code, 0, "ApiVersions {i}");
        let p: ProduceResponse = light.call(
            ApiKey::Produce,
            9,
            &produce_request(&light_topic, -1, &LIGHT_VALUE),
        );
        assert_eq!(partition_error(&p).0, 0, "light produce {i}: {p:?}");
    }
    let light_done = sent.elapsed();

    // The ordering check.
    let answered: Vec<(usize, usize)> = heavy
        .iter_mut()
        .enumerate()
        .filter_map(|(i, w)| match w.peek_ready() {
            Ok(None) => None,
            Ok(Some(n)) => Some((i, n)),
            Err(e) => panic!("heavy connection {i}: {e}"),
        })
        .collect();
    let compressed = compressed_bytes_in(&strait);
    println!(
        "{heavy_n} heavy connections x {} bytes ({records} records), gzip 9: the light connection's \
         {ROUND_TRIPS} ApiVersions + {ROUND_TRIPS} Produce round trips took {light_done:?}; then \
         heavy responses readable: {answered:?}, bytes compressed so far: {compressed}",
        batch.len()
    );
    assert!(
        answered.is_empty() && compressed == 0,
        "the light connection's {} round trips completed only after a heavy compression had \
         finished (compressed bytes so far: {compressed}; heavy connections with a response \
         already readable, as (connection, bytes): {answered:?}): the heavy requests held up the \
         other connection",
        2 * ROUND_TRIPS
    );

    // Then every heavy produce is answered, successfully.
    for (i, w) in heavy.iter_mut().enumerate() {
        eventually(
            &format!("heavy connection {i}'s produce response"),
            Duration::from_secs(600),
            || w.peek_ready().unwrap().map(|_| ()),
        );
        let resp = w
            .read_frame()
            .unwrap_or_else(|e| panic!("heavy connection {i}: no response: {e}"));
        let id = i32::from_be_bytes(resp[..4].try_into().unwrap());
        assert_eq!(id, HEAVY_ID, "heavy connection {i}: correlation id");
        let resp: ProduceResponse = decode(ApiKey::Produce, 9, resp);
        let (code, msg) = partition_error(&resp);
        assert_eq!(code, 0, "heavy connection {i}: {msg}");
    }
    println!(
        "all {heavy_n} heavy produces acknowledged after {:?}",
        sent.elapsed()
    );

    // The witness counter saw every heavy batch (so its 0 above meant "not yet").
    let compressed = compressed_bytes_in(&strait);
    assert!(
        compressed >= (heavy_n * (batch.len() - 61)) as u64,
        "compress counter after the heavy batches: {compressed}"
    );
    let stored = stored_batches(1, &heavy_topic, 0);
    assert_eq!(
        stored,
        vec![("gzip".to_string(), records as u64); heavy_n],
        "the broker stores every heavy batch gzip-compressed"
    );
}
