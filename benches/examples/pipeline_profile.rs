//! A fixed workload for profilers (callgrind counts instructions, so the
//! numbers hold on a busy shared machine): one pipeline policy run over the
//! same 100-record idempotent batch N times.
//!
//! cargo build --release -p strait-benches --example pipeline_profile
//! valgrind --tool=callgrind target/release/examples/pipeline_profile trace 200
//! (policies: trace, zstd, trace+zstd, decode)

use bytes::Bytes;
use strait_policies::PolicySet;
use strait_proxy::codec::batch::batches;
use strait_proxy::codec::build::{build_batch, Producer, RecordSpec};
use strait_proxy::codec::edit::BatchEdit;
use strait_proxy::pipeline::{Context, Pipeline};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let which = args.get(1).map_or("trace", String::as_str);
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(200);
    let values: Vec<Vec<u8>> = (0..100)
        .map(|i| {
            format!(
                "{{\"order\":{i},\"status\":\"paid\",\"city\":\"Lisbon\",\"amount\":{}}}",
                i * 37
            )
            .repeat(16)
            .into_bytes()
        })
        .collect();
    let recs: Vec<RecordSpec<'_>> = values
        .iter()
        .map(|v| (Some(&b"customer-000042"[..]), Some(&v[..]), &[][..]))
        .collect();
    let producer = Producer {
        id: 4242,
        epoch: 3,
        base_sequence: 1000,
        transactional: false,
    };
    let batch: Bytes = build_batch(producer, 1_700_000_000_000, &recs);
    let body = match which {
        "trace" => "[policy.trace]\n",
        "zstd" => "[policy.compress]\ncodec = \"zstd\"\n",
        "trace+zstd" => "[policy.trace]\n[policy.compress]\ncodec = \"zstd\"\n",
        "decode" => "",
        other => panic!("unknown workload {other}"),
    };
    let set = PolicySet::parse(&[(
        "p.toml".into(),
        format!("[[policy]]\nname = \"p\"\ntopics = {{ exact = \"t\" }}\n{body}"),
    )])
    .expect("policy");
    let pipeline = Pipeline::for_policy(set.resolve("t").expect("resolves"));
    let split = batches(batch.clone()).expect("batch");
    let mut out = 0usize;
    for _ in 0..n {
        if which == "decode" {
            let mut e = BatchEdit::new(split[0].clone(), 1 << 24).expect("edit");
            e.records().expect("records");
            out += e.finish().expect("finish").len();
            continue;
        }
        let mut traced = Vec::new();
        let mut cx = Context {
            topic: "t",
            partition: 0,
            client_id: Some("client"),
            api_version: 9,
            received_at_ms: 1_700_000_000_000,
            traced: &mut traced,
            records_before: 0,
            large: None,
        };
        out += pipeline
            .run(&split, 1 << 24, &mut cx)
            .expect("run")
            .map_or(0, |b| b.len());
    }
    println!(
        "{which}: {n} runs of a {}-byte batch, {out} bytes out",
        batch.len()
    );
}
