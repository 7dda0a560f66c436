//! Passthrough fetches stream: a consumer fetching ~50 MB responses through
//! Strait gets every byte intact while Strait's memory stays far below the
//! response size.

use strait_integration::{cluster, java, run, unique, Strait};

/// What Strait's peak RSS may grow by over its RSS once ready, in KiB. A
/// 50 MB response buffered whole would alone be three times this; streaming
/// costs one 64 KiB buffer per direction. (Measured from the ready process,
/// not as an absolute figure, so the binary's own size does not count.)
const PEAK_GROWTH_BOUND_KIB: u64 = 16 * 1024;

#[test]
fn fifty_megabyte_fetch_responses_stream_through_a_bounded_buffer() {
    let upstream = cluster(1);
    let strait = Strait::quick(&upstream);
    strait.wait_ready();
    let (ready_rss, _) = strait.rss_kib();
    let topic = unique("large");
    let out = run(&mut java(
        "LargeFetch",
        &[
            "--bootstrap-produce",
            &upstream,
            "--bootstrap-consume",
            &strait.bootstrap,
            "--topic",
            &topic,
            "--records",
            "110",
            "--record-bytes",
            "1000000",
            "--quiet-records",
            "--timeout-ms",
            "120000",
        ],
    ));
    out.assert_ok("LargeFetch through Strait");
    let summary = out.summary();
    assert_eq!(summary["ok"], true, "{summary}");
    let largest = summary["max_poll_bytes"].as_u64().unwrap_or(0);
    let (rss, peak) = strait.rss_kib();
    println!(
        "LargeFetch: {summary}; largest poll {largest} bytes; strait RSS when ready {ready_rss} KiB, \
         after {rss} KiB, peak {peak} KiB"
    );
    assert!(
        largest >= 40_000_000,
        "responses approached 50 MB (largest poll {largest} bytes)"
    );
    assert!(
        peak.saturating_sub(ready_rss) < PEAK_GROWTH_BOUND_KIB,
        "strait peak RSS {peak} KiB grew more than {PEAK_GROWTH_BOUND_KIB} KiB over {ready_rss} KiB when ready"
    );
}

/// Connections that are open but quiet cost little: each has done an
/// ApiVersions and a Metadata round trip, then sits idle.
#[test]
fn idle_connections_cost_under_50_kib_each() {
    use kafka_protocol::messages::{
        ApiKey, ApiVersionsResponse, MetadataRequest, MetadataResponse,
    };
    use strait_integration::wire::{api_versions_request, Wire};
    const CONNECTIONS: usize = 400;
    const BOUND_KIB: u64 = 50;
    let strait = Strait::quick(&cluster(1));
    strait.wait_ready();
    let open = |n: usize| -> Vec<Wire> {
        (0..n)
            .map(|_| {
                let mut w = Wire::connect(&strait.bootstrap);
                let _: ApiVersionsResponse =
                    w.call(ApiKey::ApiVersions, 3, &api_versions_request());
                let _: MetadataResponse = w.call(
                    ApiKey::Metadata,
                    12,
                    &MetadataRequest::default().with_topics(None),
                );
                w
            })
            .collect()
    };
    let warm = open(20);
    let (before, _) = strait.rss_kib();
    let idle = open(CONNECTIONS);
    let (after, _) = strait.rss_kib();
    let per = (after.saturating_sub(before)) * 1024 / CONNECTIONS as u64;
    println!("idle connections: RSS {before} KiB -> {after} KiB for {CONNECTIONS} connections = {per} bytes each");
    assert!(
        per <= BOUND_KIB * 1024,
        "{per} bytes per idle connection exceeds {BOUND_KIB} KiB"
    );
    drop((warm, idle));
}
