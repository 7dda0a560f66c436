//! Per-request policy cost of a Produce request, as the request pump pays it:
//! `request::inspects` (is the request buffered and inspected at all?), the
//! scan of its topic names against the compiled policies, and for a policed
//! topic `produce::produce` over the whole frame (decode, rules, pipeline,
//! in-place patch or re-encode). The hand-off to the blocking pool that
//! record work gets in the proxy is not included. Every case is one Produce v9 request, one partition, one
//! uncompressed batch of 10 records with 100-byte values, so criterion's time
//! is the cost of one request.
//!
//! The policy set is the same for every case: produce rules for other topics
//! through an exact, a prefix, a glob and a regex selector (so resolving a
//! name walks every kind of selector), plus one exact-selected topic per
//! policed case:
//! - `unpoliced`: a topic no policy selects (the fast path: scan, forward).
//! - `policed_acks`: `acks = "upgrade"` only, acks=1 request (patched in place).
//! - `policed_checks`: `require_idempotent`, `max_record_bytes` and
//!   `required_headers` (batch and record checks, forwarded unchanged).
//! - `policed_trace`: `[policy.trace]` (traceparent on every record, request
//!   re-encoded, trace ids handed to the response).
//!
//! The Prometheus recorder is installed as in the proxy, so the
//! `strait_policy_decisions_total` counter of every decision costs what it
//! costs in production (without a recorder it is a no-op).

use std::time::Duration;

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use strait_policies::PolicySet;
use strait_proxy::cluster::TopicIds;
use strait_proxy::codec::build::{build_batch, produce_frame, HeaderSpec, Producer, RecordSpec};
use strait_proxy::policy::produce;
use strait_proxy::policy::request::inspects;
use strait_proxy::policy::{Compiled, Outcome};
use strait_proxy::response::Step;

/// `limits.max_decompressed_bytes` default (64 MiB).
const CAP: usize = 64 << 20;
const VERSION: i16 = 9;
const RECORDS: usize = 10;
const VALUE_BYTES: usize = 100;

/// The policy directory: four produce policies for other topics (one per
/// selector kind) and one exact-selected topic per policed case.
const POLICIES: &str = r#"
[[policy]]
name = "ledger"
topics = { exact = "billing.ledger" }

[policy.produce]
acks = "require-all"

[[policy]]
name = "orders"
topics = { prefix = "orders." }

[policy.produce]
acks = "require-all"
require_transactional = true

[[policy]]
name = "events"
topics = { glob = "events-*" }

[policy.produce]
acks = "upgrade"
require_idempotent = true
required_headers = ["event-id", "revision"]

[[policy]]
name = "audit"
topics = { regex = "audit(-[a-z]+)?\\.v[0-9]+" }

[policy.produce]
acks = "require-all"
require_idempotent = true

[[policy]]
name = "bench-acks"
topics = { exact = "bench.acks" }

[policy.produce]
acks = "upgrade"

[[policy]]
name = "bench-checks"
topics = { exact = "bench.checks" }

[policy.produce]
require_idempotent = true
max_record_bytes = 1048576
required_headers = ["event-id"]

[[policy]]
name = "bench-trace"
topics = { exact = "bench.trace" }

[policy.trace]
"#;

/// splitmix64, for deterministic content.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A `len`-byte printable value.
fn value(i: u64, len: usize) -> Vec<u8> {
    (0..len as u64)
        .map(|j| b'a' + (mix(i.wrapping_mul(7919).wrapping_add(j)) % 26) as u8)
        .collect()
}

/// One uncompressed batch of `RECORDS` records with `VALUE_BYTES`-byte values
/// and no key. `idempotent`: a producer id and an `event-id` header on every
/// record (as an idempotent producer stamping event ids would send).
fn batch(idempotent: bool) -> Bytes {
    let values: Vec<Vec<u8>> = (0..RECORDS).map(|i| value(i as u64, VALUE_BYTES)).collect();
    let ids: Vec<Vec<u8>> = (0..RECORDS)
        .map(|i| format!("{:032x}", mix(!(i as u64))).into_bytes())
        .collect();
    let headers: Vec<[HeaderSpec<'_>; 1]> = ids
        .iter()
        .map(|id| [(&b"event-id"[..], Some(&id[..]))])
        .collect();
    let recs: Vec<RecordSpec<'_>> = (0..RECORDS)
        .map(|i| {
            let hs: &[HeaderSpec<'_>] = if idempotent { &headers[i][..] } else { &[] };
            (None, Some(&values[i][..]), hs)
        })
        .collect();
    let producer = if idempotent {
        Producer {
            id: 4242,
            epoch: 3,
            base_sequence: 1000,
            transactional: false,
        }
    } else {
        Producer::NONE
    };
    build_batch(producer, 1_700_000_000_000, &recs)
}

/// What the pump does with a produce request once peeked.
fn per_request(set: &Compiled, ids: &TopicIds, frame: &Bytes, acks_at: usize) -> Option<Outcome> {
    if !inspects(set, 0) {
        return None;
    }
    Some(
        produce::scan_and_produce(
            set,
            ids,
            VERSION,
            acks_at,
            &produce::Work::capped(CAP),
            frame.clone(),
        )
        .expect("enforces"),
    )
}

fn forward(o: Option<Outcome>) -> (Bytes, Vec<Step>) {
    match o.expect("produce is inspected") {
        Outcome::Forward { frame, steps } => (frame, steps),
        Outcome::Close(why) => panic!("closed: {why}"),
    }
}

fn bench(c: &mut Criterion) {
    let _ = strait_proxy::metrics::install();
    let set =
        PolicySet::parse(&[("bench.toml".into(), POLICIES.into())]).expect("bench policies parse");
    // Compiled as a policy load does; 10,000 topics as `limits.policy_cache_topics`.
    let set = Compiled::new(set, 10_000);
    let ids = TopicIds::new(100_000);
    let plain = batch(false);
    let idempotent = batch(true);

    let cases: [(&str, &str, &Bytes, i16); 4] = [
        ("unpoliced", "metrics.cpu", &plain, -1),
        ("policed_acks", "bench.acks", &plain, 1),
        ("policed_checks", "bench.checks", &idempotent, -1),
        ("policed_trace", "bench.trace", &plain, -1),
    ];

    let mut g = c.benchmark_group("policy_request/produce_v9_1x10x100B");
    g.throughput(Throughput::Elements(1));
    for (name, topic, records, acks) in cases {
        let (frame, acks_at) = produce_frame(VERSION, acks, &[(topic, Some(records.clone()))]);
        // Each case takes the path it is named for.
        let (out, steps) = forward(per_request(&set, &ids, &frame, acks_at));
        match name {
            "unpoliced" | "policed_checks" => {
                assert_eq!(out, frame, "{name}: forwarded byte for byte");
                assert!(steps.is_empty(), "{name}: nothing for the response");
            }
            "policed_acks" => {
                assert_eq!(out.len(), frame.len());
                assert_eq!(&out[acks_at..acks_at + 2], &(-1i16).to_be_bytes());
                assert!(steps.is_empty());
            }
            "policed_trace" => {
                let [Step::IndexTraces(traces)] = &steps[..] else {
                    panic!("trace ids wait for the response: {steps:?}")
                };
                assert_eq!(traces.len(), 1);
                assert_eq!(traces[0].traced.len(), RECORDS);
                assert!(out.len() > frame.len(), "traceparent headers added");
            }
            _ => unreachable!(),
        }
        eprintln!(
            "{name}: topic {topic}, {} -> {} bytes",
            frame.len(),
            out.len()
        );
        g.bench_function(name, |b| {
            b.iter(|| per_request(&set, &ids, black_box(&frame), acks_at))
        });
    }
    g.finish();
}

// Defaults for a short run; `-- --warm-up-time S --measurement-time S` override.
criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
