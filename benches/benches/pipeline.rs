//! Record-pipeline benchmarks: what a produce policy costs per batch. Decoding
//! and re-encoding a batch (the floor of every rewrite), compressing an
//! uncompressed batch in each codec, re-compressing a client-compressed batch
//! to zstd, and injecting trace headers (per record). Throughput is the
//! uncompressed batch size, so criterion reports MB/s per core.

use std::time::Duration;

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use strait_policies::PolicySet;
use strait_proxy::codec::batch::{batches, Batch};
use strait_proxy::codec::build::{build_batch, HeaderSpec, Producer, RecordSpec};
use strait_proxy::codec::edit::BatchEdit;
use strait_proxy::pipeline::{Context, Pipeline, Traced};

const CAP: usize = 1 << 24;

/// splitmix64, for deterministic "random" content.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A JSON-ish event of exactly `len` bytes: repeated field names, varying
/// ids, numbers and hex, so it compresses moderately (as real events do).
fn json_value(i: u64, len: usize) -> Vec<u8> {
    const STATUS: [&str; 4] = ["created", "paid", "shipped", "cancelled"];
    const CITIES: [&str; 6] = ["Lisbon", "Osaka", "Denver", "Nairobi", "Tromsø", "Quito"];
    let mut s = String::with_capacity(len + 256);
    let mut n = 0u64;
    s.push('{');
    while s.len() < len {
        let r = mix(i.wrapping_mul(1_000_003).wrapping_add(n));
        s.push_str(&format!(
            "\"order_{n}\":{{\"id\":\"{:016x}\",\"customer\":{},\"status\":\"{}\",\"city\":\"{}\",\"amount\":{}.{:02},\"ts\":{}}},",
            r,
            r % 100_000,
            STATUS[(r >> 20) as usize % STATUS.len()],
            CITIES[(r >> 24) as usize % CITIES.len()],
            (r >> 32) % 10_000,
            (r >> 8) % 100,
            1_700_000_000_000u64 + (r >> 40) % 86_400_000,
        ));
        n += 1;
    }
    s.truncate(len - 1);
    let mut v = s.into_bytes();
    v.push(b'}');
    v
}

/// An idempotent batch of `n` records with `len`-byte JSON-ish values, a key
/// and two headers each.
fn sample(n: usize, len: usize) -> Bytes {
    let keys: Vec<Vec<u8>> = (0..n)
        .map(|i| format!("customer-{:06}", mix(i as u64) % 1_000_000).into_bytes())
        .collect();
    let values: Vec<Vec<u8>> = (0..n).map(|i| json_value(i as u64, len)).collect();
    let ids: Vec<Vec<u8>> = (0..n)
        .map(|i| format!("{:032x}", mix(!(i as u64))).into_bytes())
        .collect();
    let headers: Vec<[HeaderSpec<'_>; 2]> = ids
        .iter()
        .map(|id| {
            [
                (&b"event-id"[..], Some(&id[..])),
                (&b"content-type"[..], Some(&b"application/json"[..])),
            ]
        })
        .collect();
    let recs: Vec<RecordSpec<'_>> = (0..n)
        .map(|i| (Some(&keys[i][..]), Some(&values[i][..]), &headers[i][..]))
        .collect();
    let producer = Producer {
        id: 4242,
        epoch: 3,
        base_sequence: 1000,
        transactional: false,
    };
    build_batch(producer, 1_700_000_000_000, &recs)
}

fn policy(body: &str) -> PolicySet {
    PolicySet::parse(&[(
        "p.toml".into(),
        format!("[[policy]]\nname = \"p\"\ntopics = {{ exact = \"t\" }}\n{body}"),
    )])
    .expect("bench policy parses")
}

/// Runs the policy's pipeline over a partition's batches.
fn rewrite(pipeline: &Pipeline, input: &[Batch], traced: &mut Vec<Traced>) -> Option<Bytes> {
    traced.clear();
    let mut cx = Context {
        topic: "t",
        partition: 0,
        client_id: Some("bench-client"),
        api_version: 9,
        received_at_ms: 1_700_000_000_123,
        traced,
        records_before: 0,
        large: None,
    };
    pipeline.run(input, CAP, &mut cx).expect("pipeline runs")
}

/// The pipeline the proxy compiles for the policy of topic `t`.
fn pipeline_of(set: &PolicySet) -> Pipeline {
    Pipeline::for_policy(set.resolve("t").expect("policy for t"))
}

/// Times the pipeline of `set` over `input` (built once, as the proxy does
/// when it loads the policies).
fn bench_policy(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    set: &PolicySet,
    input: &Bytes,
) {
    let set = &pipeline_of(set);
    let split = batches(input.clone()).expect("valid batch");
    let mut traced = Vec::new();
    let out = rewrite(set, &split, &mut traced).expect("the pipeline rewrites the batch");
    eprintln!("{name}: {} -> {} bytes", input.len(), out.len());
    g.bench_function(name, |b| {
        b.iter(|| rewrite(set, black_box(&split), &mut traced))
    });
}

fn bench(c: &mut Criterion) {
    let batch = sample(100, 1024);
    let plain_len = batch.len() as u64;

    let mut g = c.benchmark_group("batch");
    g.throughput(Throughput::Bytes(plain_len));
    g.bench_function("decode+encode/none", |b| {
        b.iter(|| {
            let b = batches(black_box(batch.clone())).unwrap().remove(0);
            let mut e = BatchEdit::new(b, CAP).unwrap();
            e.records().unwrap();
            e.finish().unwrap()
        })
    });
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        let set = policy(&format!("[policy.compress]\ncodec = \"{codec}\"\n"));
        bench_policy(&mut g, &format!("compress/{codec}"), &set, &batch);
    }
    let to_zstd = policy("[policy.compress]\ncodec = \"zstd\"\nrecompress = true\n");
    for from in ["lz4", "gzip", "snappy"] {
        let set = policy(&format!("[policy.compress]\ncodec = \"{from}\"\n"));
        let packed = rewrite(
            &pipeline_of(&set),
            &batches(batch.clone()).unwrap(),
            &mut Vec::new(),
        )
        .expect("compresses");
        bench_policy(
            &mut g,
            &format!("decompress+recompress/{from}->zstd"),
            &to_zstd,
            &packed,
        );
    }
    g.finish();

    // Per record: criterion's "elements" time is the cost of one record.
    let trace = policy("[policy.trace]\n");
    let mut g = c.benchmark_group("trace");
    for (n, len) in [(100, 1024), (1000, 100)] {
        let input = sample(n, len);
        g.throughput(Throughput::Elements(n as u64));
        bench_policy(&mut g, &format!("inject/{n}x{len}B"), &trace, &input);
    }
    g.finish();
}

// Short runs: CI machines have two cores and this is eight benchmarks.
criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
