//! The S3 test server (s3s-fs, `S3Server`) against the client the proxy
//! uses, `object_store`'s `AmazonS3`: the operations the large-records
//! claim check relies on (put, multipart put, head, get, create-only put),
//! what a client sees while the server is hung or down, and that objects
//! survive a restart. No Kafka needed. Run with `--nocapture` to see the
//! errors and latencies observed.

use std::time::{Duration, Instant};

use object_store::aws::{AmazonS3Builder, S3ConditionalPut};
use object_store::path::Path;
use object_store::{
    BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload,
    RetryConfig, UpdateVersion,
};
use strait_integration::S3Server;

const MIB: usize = 1024 * 1024;

/// A client for the server's bucket: path-style requests over plain HTTP,
/// and at most two retries within five seconds.
fn builder(s3: &S3Server) -> AmazonS3Builder {
    AmazonS3Builder::new()
        .with_endpoint(&s3.endpoint)
        .with_allow_http(true)
        .with_virtual_hosted_style_request(false)
        .with_region(&s3.region)
        .with_access_key_id(&s3.access_key)
        .with_secret_access_key(&s3.secret_key)
        .with_bucket_name(&s3.bucket)
        .with_retry(RetryConfig {
            max_retries: 2,
            retry_timeout: Duration::from_secs(5),
            backoff: BackoffConfig::default(),
        })
}

fn create() -> PutOptions {
    PutOptions {
        mode: PutMode::Create,
        ..Default::default()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

/// Deterministic, non-repeating-looking bytes.
fn payload(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn put_multipart_head_get() {
    let rt = runtime();
    let s3 = S3Server::start("claims");
    let store = builder(&s3).build().unwrap();
    let small = Path::from("records/small");
    let big = Path::from("records/big");
    let big_bytes = bytes::Bytes::from(payload(20 * MIB));
    rt.block_on(async {
        let put = store
            .put(&small, PutPayload::from_static(b"hello"))
            .await
            .expect("put small");
        assert!(put.e_tag.is_some(), "put returns an ETag: {put:?}");
        assert_eq!(store.head(&small).await.expect("head small").size, 5);
        let got = store.get(&small).await.unwrap().bytes().await;
        assert_eq!(got.unwrap().as_ref(), b"hello");

        // Multipart: 20 MiB in four 5 MiB parts.
        let mut upload = store.put_multipart(&big).await.expect("start multipart");
        for part in big_bytes.chunks(5 * MIB) {
            upload
                .put_part(PutPayload::from(big_bytes.slice_ref(part)))
                .await
                .expect("put part");
        }
        let done = upload.complete().await.expect("complete multipart");
        eprintln!("multipart put: {done:?}");
        assert_eq!(
            store.head(&big).await.expect("head big").size,
            20 * MIB as u64
        );
        let got = store.get(&big).await.unwrap().bytes().await;
        assert!(got.unwrap() == big_bytes, "multipart object read back");
        let range = store.get_range(&big, 7..1_000_007).await.unwrap();
        assert_eq!(range, big_bytes.slice(7..1_000_007));
    });
    // Each object is a file of the bucket's directory.
    assert_eq!(s3.objects(), ["records/big", "records/small"]);
    assert_eq!(
        std::fs::read(s3.object_path("records/small")).unwrap(),
        b"hello"
    );
    assert_eq!(
        std::fs::read(s3.object_path("records/big")).unwrap(),
        big_bytes
    );
}

#[test]
fn conditional_puts() {
    let rt = runtime();
    let s3 = S3Server::start("claims");
    let default_store = builder(&s3).build().unwrap();
    let etag_store = builder(&s3)
        .with_conditional_put(S3ConditionalPut::ETagMatch)
        .build()
        .unwrap();
    let disabled_store = builder(&s3)
        .with_conditional_put(S3ConditionalPut::Disabled)
        .build()
        .unwrap();
    let key = Path::from("records/once");
    rt.block_on(async {
        // Create-only put of a new key succeeds; of an existing key, s3s-fs
        // answers If-None-Match: * with 412, which object_store reports as
        // AlreadyExists, and the object stays as it was. ETagMatch is
        // object_store's default.
        default_store
            .put_opts(&key, PutPayload::from_static(b"first"), create())
            .await
            .expect("create-only put of a new key");
        for (name, s) in [("default", &default_store), ("ETagMatch", &etag_store)] {
            let r = s
                .put_opts(&key, PutPayload::from_static(b"other"), create())
                .await;
            eprintln!("PutMode::Create of an existing key ({name}): {r:?}");
            assert!(
                matches!(r, Err(object_store::Error::AlreadyExists { .. })),
                "{name}: {r:?}"
            );
        }
        let got = default_store.get(&key).await.unwrap().bytes().await;
        assert_eq!(got.unwrap().as_ref(), b"first", "not overwritten");

        // With conditional put disabled the client refuses before sending.
        let r = disabled_store
            .put_opts(&key, PutPayload::from_static(b"x"), create())
            .await;
        eprintln!("PutMode::Create with S3ConditionalPut::Disabled: {r:?}");
        assert!(matches!(r, Err(object_store::Error::NotImplemented { .. })));

        // Compare-and-swap on the ETag: a stale ETag is refused (412,
        // Precondition), the current one accepted.
        let e_tag = default_store.head(&key).await.unwrap().e_tag;
        let stale = UpdateVersion {
            e_tag: Some("\"0123456789abcdef0123456789abcdef\"".to_string()),
            version: None,
        };
        let r = default_store
            .put_opts(
                &key,
                PutPayload::from_static(b"y"),
                PutMode::Update(stale).into(),
            )
            .await;
        eprintln!("PutMode::Update with a stale ETag: {r:?}");
        assert!(matches!(r, Err(object_store::Error::Precondition { .. })));
        let current = UpdateVersion {
            e_tag,
            version: None,
        };
        default_store
            .put_opts(
                &key,
                PutPayload::from_static(b"z"),
                PutMode::Update(current).into(),
            )
            .await
            .expect("PutMode::Update with the current ETag");
    });
}

#[test]
fn hung_then_down_then_restarted() {
    let rt = runtime();
    let mut s3 = S3Server::start("claims");
    let store = builder(&s3).build().unwrap();
    // A per-request timeout of one second. `with_client_options` replaces
    // every client option set before it, `allow_http` included.
    let impatient_store = builder(&s3)
        .with_client_options(
            ClientOptions::new()
                .with_allow_http(true)
                .with_timeout(Duration::from_secs(1)),
        )
        .build()
        .unwrap();
    let kept = Path::from("records/kept");
    rt.block_on(store.put(&kept, PutPayload::from_static(b"kept")))
        .expect("put before the outage");

    // Hung (SIGSTOP): connections are accepted, nothing answers; each
    // attempt ends at the request timeout. (With object_store's default
    // 30 s timeout the first attempt outlives the 5 s retry_timeout, so the
    // put fails after 30 s without a retry.)
    s3.pause();
    let hung = Path::from("records/while-hung");
    let started = Instant::now();
    let r = rt.block_on(impatient_store.put(&hung, PutPayload::from_static(b"late")));
    let took = started.elapsed();
    eprintln!("put while the server is hung, after {took:?}: {r:?}");
    assert!(
        matches!(r, Err(object_store::Error::Generic { .. })),
        "{r:?}"
    );
    assert!(
        took >= Duration::from_secs(3),
        "three attempts of 1 s: {took:?}"
    );
    assert!(took < Duration::from_secs(10), "{took:?}");
    s3.resume();

    // Down (killed): connections are refused, the retries come quickly.
    s3.stop();
    assert!(!s3.is_running());
    let down = Path::from("records/while-down");
    let started = Instant::now();
    let r = rt.block_on(store.put(&down, PutPayload::from_static(b"lost")));
    let took = started.elapsed();
    eprintln!("put while the server is down, after {took:?}: {r:?}");
    if let Err(e) = &r {
        eprintln!("  display: {e}");
    }
    assert!(
        matches!(r, Err(object_store::Error::Generic { .. })),
        "{r:?}"
    );
    assert!(
        took < Duration::from_secs(5),
        "bounded by the retry config: {took:?}"
    );

    // Restarted: same endpoint, same data; the same client works again.
    s3.restart();
    rt.block_on(async {
        let got = store.get(&kept).await.unwrap().bytes().await;
        assert_eq!(got.unwrap().as_ref(), b"kept", "survives a restart");
        let r = store.head(&down).await;
        assert!(
            matches!(r, Err(object_store::Error::NotFound { .. })),
            "{r:?}"
        );
        store
            .put(&down, PutPayload::from_static(b"now"))
            .await
            .expect("put after the restart");
    });
    // The put that timed out is not asserted on: s3s-fs drops requests whose
    // client has gone, but a real store may complete one after the client
    // gave up, so a failed put can leave an object behind.
    let objects = s3.objects();
    let objects: Vec<_> = objects
        .iter()
        .filter(|k| *k != "records/while-hung")
        .collect();
    assert_eq!(objects, ["records/kept", "records/while-down"]);
}
