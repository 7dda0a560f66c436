//! The connection layer without Kafka: a test plays the client on one
//! in-memory stream and a fake broker on the other, with raw frames, and
//! [`run`] proxies between them.
//!
//! Every test runs on the current-thread runtime (the `#[tokio::test]`
//! default), so a task's poll is never interleaved with another's. The
//! [`GUARD`] timeouts only turn a hang into a failure; nothing waits on time.
//! This file is the harness; the tests are in `flow.rs` (order, pipelining,
//! split frames, half-close), `faults.rs` (brokers and clients that
//! misbehave), `drain.rs` (closing at a request boundary on SIGTERM),
//! `sasl.rs` (the frame cap while a client authenticates) and `large.rs`
//! (the memory bound of large inspected requests).

mod drain;
mod faults;
mod flow;
mod large;
mod peers;
mod sasl;

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable};
use tokio::io::{
    duplex, split, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadHalf,
    WriteHalf,
};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::timeout;

use super::{run, ConnError, Env};
use crate::cluster::{ClusterView, Routes, TopicIds};
use crate::codec::FrameError;
use crate::config::{BrokerPorts, LeaderEndpoints, LimitsConfig, UpstreamConfig};
use crate::io::{BoxRead, BoxWrite, Io};
use crate::offload::Offload;
use crate::pipeline::TraceIndex;
use crate::policy::produce::Work;
use crate::policy::{Enforcer, PolicyStore};
use crate::response::{classify, proxy_range, ResponseEnv};
use crate::upstream::Dialer;

/// Hang guard only: every wait in these tests ends long before it.
const GUARD: Duration = Duration::from_secs(10);
/// Capacity of each in-memory pipe: more than any test writes unread.
const PIPE: usize = 64 * 1024;

/// Apis whose responses stream byte for byte (no decode): (key, version).
const DESCRIBE_CONFIGS: (i16, i16) = (32, 4);
const JOIN_GROUP: (i16, i16) = (11, 5);
/// Decoded, clamped and re-encoded.
const API_VERSIONS: (i16, i16) = (18, 3);
/// Produce v7 streams too; with acks=0 it has no response.
const PRODUCE: (i16, i16) = (0, 7);

fn test_env(limits: LimitsConfig) -> Arc<Env> {
    // No proxy to drain it: the flag never turns.
    test_env_with_drain(limits, tokio::sync::watch::channel(false).1)
}

fn test_env_with_drain(
    limits: LimitsConfig,
    drain: tokio::sync::watch::Receiver<bool>,
) -> Arc<Env> {
    crate::metrics::install();
    let upstream = UpstreamConfig {
        bootstrap: vec!["127.0.0.1:9".into()],
        connect_timeout_ms: 1_000,
        tls: None,
        sasl: None,
        leader_endpoints: LeaderEndpoints::Clamp,
    };
    let dialer = Dialer::new(&upstream, limits.max_frame_bytes).expect("dialer");
    let (cluster, mut binds) = ClusterView::new(
        dialer,
        Routes::new("127.0.0.1", BrokerPorts::Ephemeral),
        TopicIds::new(100),
    );
    // The listener manager: every new broker gets a (pretend) port.
    tokio::spawn(async move {
        while let Some(b) = binds.recv().await {
            let _ = b.reply.send(u16::try_from(40_000 + b.node_id).ok());
        }
    });
    let cluster = Arc::new(cluster);
    let offload = Offload::new(2);
    Arc::new(Env {
        tap: None,
        enforcer: Enforcer {
            store: Arc::new(PolicyStore::open(None, 100).expect("empty policy store")),
            cluster: cluster.clone(),
            offload: offload.clone(),
            work: Work::capped(limits.max_decompressed_bytes),
        },
        responses: ResponseEnv {
            cluster: cluster.clone(),
            traces: Arc::new(TraceIndex::new(100)),
            leader_endpoints: LeaderEndpoints::Clamp,
            offload,
            large: None,
            cap: limits.max_decompressed_bytes,
        },
        cluster,
        limits,
        drain,
    })
}

fn small_buffers() -> LimitsConfig {
    LimitsConfig {
        buffer_bytes: 16,
        ..LimitsConfig::default()
    }
}

// ---- frames ----

/// A request frame: length, api key, version, correlation id, client id, body.
fn request((api_key, version): (i16, i16), correlation_id: i32, body: &[u8]) -> Vec<u8> {
    let client_id = b"conn-test";
    let len = 2 + 2 + 4 + 2 + client_id.len() + body.len();
    let mut f = Vec::with_capacity(4 + len);
    f.extend_from_slice(&i32::try_from(len).unwrap().to_be_bytes());
    f.extend_from_slice(&api_key.to_be_bytes());
    f.extend_from_slice(&version.to_be_bytes());
    f.extend_from_slice(&correlation_id.to_be_bytes());
    f.extend_from_slice(&i16::try_from(client_id.len()).unwrap().to_be_bytes());
    f.extend_from_slice(client_id);
    f.extend_from_slice(body);
    f
}

/// A response frame: length, correlation id, body.
fn response(correlation_id: i32, body: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(8 + body.len());
    f.extend_from_slice(&i32::try_from(4 + body.len()).unwrap().to_be_bytes());
    f.extend_from_slice(&correlation_id.to_be_bytes());
    f.extend_from_slice(body);
    f
}

/// Arbitrary body bytes (they include values that would read as lengths).
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// A Produce v7 body with the given acks (the rest is never read by Strait).
fn produce_body(acks: i16) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&(-1i16).to_be_bytes()); // transactional_id: null
    b.extend_from_slice(&acks.to_be_bytes());
    b.extend_from_slice(&30_000i32.to_be_bytes()); // timeout_ms
    b.extend_from_slice(&0i32.to_be_bytes()); // no topics
    b
}

/// An ApiVersions v3 response frame (header v0).
fn api_versions_response(correlation_id: i32, resp: &ApiVersionsResponse) -> Vec<u8> {
    let mut b = BytesMut::new();
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut b, 0)
        .unwrap();
    resp.encode(&mut b, API_VERSIONS.1).unwrap();
    response_of(&b)
}

/// Prefixes a frame body with its length.
fn response_of(body: &[u8]) -> Vec<u8> {
    let mut f = i32::try_from(body.len()).unwrap().to_be_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

fn version(api_key: i16, min: i16, max: i16) -> ApiVersion {
    ApiVersion::default()
        .with_api_key(api_key)
        .with_min_version(min)
        .with_max_version(max)
}

/// An ApiVersions response the clamp leaves unchanged, so even this decoded
/// response comes back byte for byte.
fn unclamped_api_versions() -> ApiVersionsResponse {
    let (min, max) = proxy_range(18, LeaderEndpoints::Clamp).expect("ApiVersions is clamped");
    ApiVersionsResponse::default().with_api_keys(vec![
        version(18, min, max),
        version(DESCRIBE_CONFIGS.0, 0, 4),
        version(JOIN_GROUP.0, 0, 9),
    ])
}

// ---- the connection under test ----

fn boxed<S: AsyncRead + AsyncWrite + Send + 'static>(s: S) -> Io {
    let (r, w) = split(s);
    (Box::new(r), Box::new(w))
}

/// A connection over in-memory pipes: the test holds the client's and the
/// broker's ends, `run` the middle.
struct Conn {
    client_r: ReadHalf<DuplexStream>,
    client_w: WriteHalf<DuplexStream>,
    broker_r: ReadHalf<DuplexStream>,
    broker_w: WriteHalf<DuplexStream>,
    proxy: JoinHandle<Result<(), ConnError>>,
}

fn start(env: &Arc<Env>) -> Conn {
    start_wrapped(env, |r| r)
}

/// Like [`start`], with Strait's client read half wrapped by `wrap`.
fn start_wrapped(env: &Arc<Env>, wrap: impl FnOnce(BoxRead) -> BoxRead) -> Conn {
    let (client_end, proxy_client) = duplex(PIPE);
    let (proxy_upstream, broker_end) = duplex(PIPE);
    let (r, w) = boxed(proxy_client);
    let proxy = tokio::spawn(run(env.clone(), (wrap(r), w), boxed(proxy_upstream)));
    let (client_r, client_w) = split(client_end);
    let (broker_r, broker_w) = split(broker_end);
    Conn {
        client_r,
        client_w,
        broker_r,
        broker_w,
        proxy,
    }
}

/// A reader that hands out what it is sent one chunk per read (never two
/// chunks in one read), so a test decides where Strait's reads split the
/// stream. End of stream once the sender is dropped.
struct Chunks {
    rx: mpsc::UnboundedReceiver<Vec<u8>>,
    chunk: Vec<u8>,
    at: usize,
}

impl AsyncRead for Chunks {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        while this.at == this.chunk.len() {
            match ready!(this.rx.poll_recv(cx)) {
                Some(c) => {
                    this.chunk = c;
                    this.at = 0;
                }
                None => return Poll::Ready(Ok(())),
            }
        }
        assert!(
            buf.remaining() > 0,
            "a read with no room would look like EOF"
        );
        let n = (this.chunk.len() - this.at).min(buf.remaining());
        buf.put_slice(&this.chunk[this.at..this.at + n]);
        this.at += n;
        Poll::Ready(Ok(()))
    }
}

/// A connection whose two inbound directions are [`Chunks`]: the client and
/// the broker send chunks; each is one read for Strait.
struct ChunkedConn {
    client_tx: mpsc::UnboundedSender<Vec<u8>>,
    client_r: DuplexStream,
    broker_tx: mpsc::UnboundedSender<Vec<u8>>,
    broker_r: DuplexStream,
    proxy: JoinHandle<Result<(), ConnError>>,
}

fn start_chunked(env: &Arc<Env>) -> ChunkedConn {
    let chunks = |rx| -> BoxRead {
        Box::new(Chunks {
            rx,
            chunk: Vec::new(),
            at: 0,
        })
    };
    let (client_tx, client_rx) = mpsc::unbounded_channel();
    let (broker_tx, broker_rx) = mpsc::unbounded_channel();
    let (client_r, to_client) = duplex(PIPE);
    let (broker_r, to_broker) = duplex(PIPE);
    let client: Io = (chunks(client_rx), Box::new(to_client) as BoxWrite);
    let upstream: Io = (chunks(broker_rx), Box::new(to_broker) as BoxWrite);
    ChunkedConn {
        client_tx,
        client_r,
        broker_tx,
        broker_r,
        proxy: tokio::spawn(run(env.clone(), client, upstream)),
    }
}

/// Wraps a reader and says (once) when it returned end of stream.
struct NotifyEof {
    inner: BoxRead,
    eof: Option<oneshot::Sender<()>>,
}

impl AsyncRead for NotifyEof {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        if buf.filled().len() == before && buf.remaining() > 0 {
            if let Some(tx) = this.eof.take() {
                let _ = tx.send(());
            }
        }
        Poll::Ready(Ok(()))
    }
}

// ---- guarded I/O ----

async fn write<W: AsyncWrite + Unpin>(w: &mut W, bytes: &[u8]) {
    timeout(GUARD, w.write_all(bytes))
        .await
        .expect("write hangs")
        .expect("write");
}

async fn read_n<R: AsyncRead + Unpin>(r: &mut R, n: usize) -> Vec<u8> {
    let mut b = vec![0; n];
    timeout(GUARD, r.read_exact(&mut b))
        .await
        .expect("read hangs")
        .expect("read");
    b
}

async fn read_to_eof<R: AsyncRead + Unpin>(r: &mut R) -> Vec<u8> {
    let mut b = Vec::new();
    timeout(GUARD, r.read_to_end(&mut b))
        .await
        .expect("no end of stream")
        .expect("read");
    b
}

/// Polls `r` once without waiting: `None` when it would wait (the peer is
/// open and has sent nothing), `Some(n)` when it is ready (0: end of stream).
async fn poll_once<R: AsyncRead + Unpin>(r: &mut R) -> Option<usize> {
    poll_fn(|cx| {
        let mut b = [0u8; 64];
        let mut rb = tokio::io::ReadBuf::new(&mut b);
        Poll::Ready(match Pin::new(&mut *r).poll_read(cx, &mut rb) {
            Poll::Pending => None,
            Poll::Ready(res) => {
                res.expect("read");
                Some(rb.filled().len())
            }
        })
    })
    .await
}

async fn finish(proxy: JoinHandle<Result<(), ConnError>>) -> Result<(), ConnError> {
    timeout(GUARD, proxy)
        .await
        .expect("run does not end")
        .expect("run panicked")
}
