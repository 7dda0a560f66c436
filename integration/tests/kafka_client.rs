//! Strait's internal Kafka client and large-record chunking against a real
//! broker: topics created and described, a 5 MiB value written in 512 KiB
//! chunks and read back byte for byte, every refusal with a clear error, and
//! chunk writes that ride out the partition leader's crash (three brokers).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sha2::{Digest, Sha256};
use strait_integration::{cluster, leader_of, unique, KilledNode};
use strait_proxy::config::{LeaderEndpoints, UpstreamConfig};
use strait_proxy::kafka_client::{KafkaClient, KafkaError};
use strait_proxy::large::chunks::{
    ensure_chunk_topic, max_batch_bytes, read_chunks, write_chunks, ChunkError,
};
use strait_proxy::upstream::Dialer;

const CHUNK: u32 = 512 << 10;

fn client() -> KafkaClient {
    client_of(&cluster(1), Duration::from_secs(30))
}

fn client_of(bootstrap: &str, timeout: Duration) -> KafkaClient {
    let cfg = UpstreamConfig {
        bootstrap: bootstrap.split(',').map(str::to_string).collect(),
        connect_timeout_ms: 10_000,
        tls: None,
        sasl: None,
        leader_endpoints: LeaderEndpoints::Clamp,
    };
    let dialer = Dialer::new(&cfg, 64 << 20).expect("dialer");
    KafkaClient::new(Arc::new(dialer), timeout)
}

fn value(len: usize) -> Bytes {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

fn get<'a>(c: &'a HashMap<String, String>, k: &str) -> &'a str {
    c.get(k).map_or("<unset>", String::as_str)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_round_trip_through_a_real_broker() {
    let c = client();
    let source = unique("kc-source");
    let chunk_topic = format!("{source}.strait-chunks");
    assert_eq!(
        c.partitions(&source).await.unwrap(),
        None,
        "no such topic yet"
    );
    c.create_topic(&source, 2, &[("retention.ms", "3600000".into())])
        .await
        .unwrap();
    c.create_topic(&source, 2, &[])
        .await
        .expect("exists is fine");
    assert_eq!(c.partitions(&source).await.unwrap(), Some(2));

    ensure_chunk_topic(&c, &source, &chunk_topic, CHUNK, false)
        .await
        .unwrap();
    assert_eq!(c.partitions(&chunk_topic).await.unwrap(), Some(2));
    let cfg = c.topic_configs(&chunk_topic).await.unwrap();
    assert_eq!(get(&cfg, "cleanup.policy"), "delete");
    assert_eq!(get(&cfg, "retention.ms"), "3600000");
    assert_eq!(get(&cfg, "retention.bytes"), "-1");
    let max_message: u64 = get(&cfg, "max.message.bytes").parse().unwrap();
    assert!(max_message >= max_batch_bytes(CHUNK), "{max_message}");
    // Ensuring again checks the existing topic and accepts it.
    ensure_chunk_topic(&c, &source, &chunk_topic, CHUNK, false)
        .await
        .unwrap();

    let v = value(5 << 20);
    let sha256: [u8; 32] = Sha256::digest(&v).into();
    let m = write_chunks(&c, &chunk_topic, 1, v.clone(), CHUNK, sha256)
        .await
        .unwrap();
    assert_eq!((m.chunks, m.size, m.partition), (10, 5 << 20, 1));
    assert_eq!(m.ranges.iter().map(|r| r.1).sum::<u32>(), 10);
    let back = read_chunks(&c, &m, 8 << 20).await.unwrap();
    assert!(back == v, "the value comes back byte for byte");

    // A manifest with another hash: the chunks are not this value's.
    let mut wrong = m.clone();
    wrong.sha256[0] ^= 0xff;
    let e = read_chunks(&c, &wrong, 8 << 20).await.unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, ChunkError::Mismatch { .. }), "{text}");
    let first = m.ranges[0].0;
    assert!(
        text.contains(&format!("{chunk_topic}/1 at offset {first}")),
        "{text}"
    );

    // Chunks written under a hash that is not the value's: every record
    // passes, the whole value does not, and the error names the offsets.
    let m2 = write_chunks(&c, &chunk_topic, 0, v.slice(..600 << 10), CHUNK, sha256)
        .await
        .unwrap();
    let e = read_chunks(&c, &m2, 8 << 20).await.unwrap_err().to_string();
    let (b, n) = m2.ranges[0];
    assert!(
        e.contains(&format!(
            "{chunk_topic}/0 at offsets {b}..={}",
            b + i64::from(n) - 1
        )) && e.contains("hash mismatch"),
        "{e}"
    );

    let e = read_chunks(&c, &m, 1 << 20).await.unwrap_err();
    assert!(matches!(e, ChunkError::TooLarge { .. }), "{e}");

    let mut past = m.clone();
    past.ranges = vec![(1_000_000, 10)];
    let e = read_chunks(&c, &past, 8 << 20).await.unwrap_err();
    assert!(
        matches!(
            e,
            ChunkError::Missing {
                offset: 1_000_000,
                ..
            }
        ),
        "{e}"
    );

    let e = c
        .fetch(&chunk_topic, 1, 1_000_000, 1 << 20)
        .await
        .unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, KafkaError::OffsetOutOfRange { .. }), "{text}");
    assert!(!e.retriable());
    assert!(
        text.contains(&format!("{chunk_topic}/1 at offset 1000000"))
            && text.contains("OFFSET_OUT_OF_RANGE"),
        "{text}"
    );
    let end = c.fetch(&chunk_topic, 1, 0, 1 << 20).await.unwrap();
    assert_eq!(end.high_watermark, 10);
    assert_eq!(end.log_start_offset, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compacted_and_misfit_topics_are_refused_with_clear_errors() {
    let c = client();
    let compacted = unique("kc-compacted");
    c.create_topic(&compacted, 1, &[("cleanup.policy", "compact".into())])
        .await
        .unwrap();
    let chunk_topic = format!("{compacted}.strait-chunks");
    let e = ensure_chunk_topic(&c, &compacted, &chunk_topic, CHUNK, false)
        .await
        .unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, ChunkError::Compacted { .. }), "{text}");
    assert!(
        text.contains(&format!("topic {compacted} has cleanup.policy=compact"))
            && text.contains("allow_compacted"),
        "{text}"
    );
    assert_eq!(c.partitions(&chunk_topic).await.unwrap(), None);
    ensure_chunk_topic(&c, &compacted, &chunk_topic, CHUNK, true)
        .await
        .unwrap();
    let cfg = c.topic_configs(&chunk_topic).await.unwrap();
    assert_eq!(get(&cfg, "retention.ms"), "-1", "chunks kept forever");
    assert_eq!(get(&cfg, "cleanup.policy"), "delete");

    // An existing chunk topic with fewer partitions than its source.
    let source = unique("kc-wide");
    c.create_topic(&source, 3, &[]).await.unwrap();
    let narrow = format!("{source}.strait-chunks");
    c.create_topic(&narrow, 1, &[]).await.unwrap();
    let e = ensure_chunk_topic(&c, &source, &narrow, CHUNK, false)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&format!("chunk topic {narrow}: has 1 partition(s)")),
        "{e}"
    );

    let e = ensure_chunk_topic(&c, &unique("kc-none"), "x.strait-chunks", CHUNK, false)
        .await
        .unwrap_err();
    assert!(matches!(e, ChunkError::NoSource { .. }), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunk_writes_ride_out_a_leader_crash() {
    let bootstrap = cluster(3);
    let c = client_of(&bootstrap, Duration::from_secs(90));
    let source = unique("kc-crash");
    let chunk_topic = format!("{source}.strait-chunks");
    c.create_topic(&source, 1, &[]).await.unwrap();
    ensure_chunk_topic(&c, &source, &chunk_topic, 64 << 10, false)
        .await
        .unwrap();
    let v = value(300 << 10);
    let sha256: [u8; 32] = Sha256::digest(&v).into();
    let before = write_chunks(&c, &chunk_topic, 0, v.clone(), 64 << 10, sha256)
        .await
        .unwrap();

    let killed = KilledNode::kill(leader_of(&bootstrap, &chunk_topic));
    // The client's leader and its connection are gone: the write retries,
    // reads the metadata again and lands on the new leader.
    let after = write_chunks(&c, &chunk_topic, 0, v.clone(), 64 << 10, sha256)
        .await
        .unwrap();
    assert!(after.ranges[0].0 >= before.ranges[0].0 + 5);
    assert!(read_chunks(&c, &before, 1 << 20).await.unwrap() == v);
    assert!(read_chunks(&c, &after, 1 << 20).await.unwrap() == v);
    drop(killed);
}
