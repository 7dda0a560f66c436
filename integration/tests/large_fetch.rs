//! Passthrough fetches stream: a consumer fetching ~50 MB responses through
//! Strait gets every byte intact while Strait's memory stays far below the
//! response size.

use strait_integration::{cluster, java, run, unique, Strait};

/// Strait's peak RSS bound for this test, in KiB. A 50 MB response buffered
/// whole would alone exceed it; streaming costs one 64 KiB buffer per direction.
const PEAK_RSS_BOUND_KIB: u64 = 32 * 1024;

#[test]
fn fifty_megabyte_fetch_responses_stream_through_a_bounded_buffer() {
    let upstream = cluster(1);
    let strait = Strait::quick(&upstream);
    strait.wait_ready();
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
    println!("LargeFetch: {summary}; largest poll {largest} bytes; strait RSS {rss} KiB, peak {peak} KiB");
    assert!(
        largest >= 40_000_000,
        "responses approached 50 MB (largest poll {largest} bytes)"
    );
    assert!(
        peak < PEAK_RSS_BOUND_KIB,
        "strait peak RSS {peak} KiB exceeds {PEAK_RSS_BOUND_KIB} KiB"
    );
}
