//! The policy decision path: topic resolution per selector kind and the
//! batch- and record-level checks, per call.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use strait_policies::decide::{decide_acks, decide_batch, decide_records, BatchFacts, RecordFacts};
use strait_policies::{Codec, PolicySet};

const POLICIES: &str = r#"
[[policy]]
name = "exact"
topics = { exact = "payments" }
[policy.produce]
require_idempotent = true
allowed_compression = ["zstd", "lz4", "none"]

[[policy]]
name = "prefix"
topics = { prefix = "orders." }
[policy.produce]
acks = "require-all"

[[policy]]
name = "glob"
topics = { glob = "events-*-v?" }
[policy.produce]
required_headers = ["event-id", "revision"]
max_record_bytes = 1048576

[[policy]]
name = "regex"
topics = { regex = "audit(-[a-z]+)?\\.v[0-9]+" }
[policy.produce]
require_idempotent = true
"#;

struct Rec(usize);
impl RecordFacts for &Rec {
    fn size(&self) -> usize {
        self.0
    }
    fn has_header(&self, _key: &[u8]) -> bool {
        true
    }
    fn has_header_prefix(&self, _prefix: &[u8]) -> bool {
        false
    }
}

fn bench(c: &mut Criterion) {
    let set = PolicySet::parse(&[("bench.toml".into(), POLICIES.into())]).unwrap();
    let mut g = c.benchmark_group("resolve");
    for topic in [
        "payments",
        "orders.eu",
        "events-billing-v2",
        "audit-login.v3",
        "unpoliced-topic",
    ] {
        g.bench_function(topic, |b| {
            b.iter(|| set.resolve(black_box(topic)).is_some())
        });
    }
    g.finish();

    let exact = set.resolve("payments").unwrap();
    let glob = set.resolve("events-billing-v2").unwrap();
    let facts = BatchFacts {
        producer_id: 42,
        transactional: false,
        compression: Codec::Zstd,
        magic: 2,
    };
    let mut g = c.benchmark_group("decide");
    g.throughput(Throughput::Elements(1));
    g.bench_function("acks", |b| {
        b.iter(|| decide_acks(black_box(exact), black_box(-1)))
    });
    g.bench_function("batch_headers", |b| {
        b.iter(|| decide_batch(black_box(exact), false, black_box(&facts)))
    });
    let records: Vec<Rec> = (0..100).map(|i| Rec(100 + i)).collect();
    g.throughput(Throughput::Elements(records.len() as u64));
    g.bench_function("records_x100", |b| {
        b.iter(|| decide_records(black_box(glob), records.iter()))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
