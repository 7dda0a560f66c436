//! The running proxy: shared state, listeners (bootstrap + one per broker,
//! created on the fly), upstream connections and cluster discovery.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context};
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, MetadataRequest, RequestHeader};
use kafka_protocol::protocol::{Encodable, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Mutex};
use tracing::{error, info, warn};

use crate::config::{LeaderEndpoints, LimitsConfig, Validated};
use crate::connection::{self, BoxRead, BoxWrite};
use crate::metrics;
use crate::routing::rewrite::{Decoded, Rewrite, RewriteError};
use crate::routing::Router;
use crate::tls;

/// Which listener a client connected to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Bootstrap,
    Node(i32),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Bootstrap => f.write_str("bootstrap"),
            Target::Node(id) => write!(f, "broker-{id}"),
        }
    }
}

/// State shared by every connection.
pub struct Shared {
    pub limits: LimitsConfig,
    pub router: Router,
    pub policies: Arc<crate::policy::PolicyStore>,
    /// Where traced records landed (record pipeline, trace stage).
    pub traces: crate::pipeline::TraceIndex,
    topic_names: std::sync::RwLock<std::collections::HashMap<uuid::Uuid, String>>,
    pub ready: AtomicBool,
    leader_endpoints: LeaderEndpoints,
    bind_ip: IpAddr,
    bootstrap: Vec<String>,
    next_bootstrap: AtomicUsize,
    connect_timeout: Duration,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    upstream_tls: Option<tls::Upstream>,
    listener_lock: Mutex<()>,
    shutdown: watch::Receiver<bool>,
    self_ref: std::sync::Weak<Shared>,
}

type Io = (BoxRead, BoxWrite);

impl Shared {
    /// Opens the upstream connection for a client connection.
    pub async fn connect_for(&self, target: Target) -> anyhow::Result<(Io, String)> {
        match target {
            Target::Bootstrap => self.connect_bootstrap().await,
            Target::Node(id) => {
                let addr = match self.router.upstream_of(id) {
                    Some(a) => a,
                    None => {
                        self.discover().await?;
                        self.router.upstream_of(id).ok_or_else(|| {
                            anyhow!("broker node {id} is not in the cluster's metadata")
                        })?
                    }
                };
                let io = self.connect(&addr).await?;
                Ok((io, addr))
            }
        }
    }

    async fn connect_bootstrap(&self) -> anyhow::Result<(Io, String)> {
        let n = self.bootstrap.len();
        let start = self.next_bootstrap.fetch_add(1, Ordering::Relaxed);
        let mut errors = Vec::new();
        for i in 0..n {
            let addr = &self.bootstrap[(start + i) % n];
            match self.connect(addr).await {
                Ok(io) => return Ok((io, addr.clone())),
                Err(e) => errors.push(format!("{e:#}")),
            }
        }
        Err(anyhow!(
            "no bootstrap broker reachable: {}",
            errors.join("; ")
        ))
    }

    /// Connects to a broker, with the configured timeout and TLS.
    pub async fn connect(&self, addr: &str) -> anyhow::Result<Io> {
        let tcp = tokio::time::timeout(self.connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| {
                anyhow!(
                    "connecting to broker {addr}: timed out after {:?}",
                    self.connect_timeout
                )
            })?
            .with_context(|| format!("connecting to broker {addr}"))?;
        tcp.set_nodelay(true).ok();
        match &self.upstream_tls {
            None => {
                let (r, w) = tcp.into_split();
                Ok((Box::new(r), Box::new(w)))
            }
            Some(t) => {
                let name = match &t.server_name {
                    Some(n) => n.clone(),
                    None => tls::name_for(addr)?,
                };
                let stream =
                    tokio::time::timeout(self.connect_timeout, t.connector.connect(name, tcp))
                        .await
                        .map_err(|_| anyhow!("TLS handshake with broker {addr}: timed out"))?
                        .with_context(|| format!("TLS handshake with broker {addr}"))?;
                let (r, w) = tokio::io::split(stream);
                Ok((Box::new(r), Box::new(w)))
            }
        }
    }

    /// Decodes a response, gives new brokers a listener, and rewrites it.
    pub async fn rewrite(
        &self,
        kind: Rewrite,
        api_key: i16,
        version: i16,
        frame: Bytes,
        patch: Option<&crate::policy::enforce::Patch>,
    ) -> Result<BytesMut, RewriteError> {
        let mut decoded = Decoded::decode(kind, api_key, version, frame)?;
        if kind == Rewrite::Metadata {
            let ids = decoded.topic_ids();
            if !ids.is_empty() {
                self.topic_names
                    .write()
                    .expect("topic names lock")
                    .extend(ids);
            }
        }
        if let Some(p) = patch {
            for t in &p.traces {
                if let Some(base) =
                    decoded.produce_base_offset(t.name.as_ref(), &t.topic_id, t.partition)
                {
                    self.traces
                        .record(&t.topic, t.partition, base, t.client.as_deref(), &t.traced);
                }
            }
            decoded.apply_patch(p);
        }
        let endpoints = decoded.endpoints();
        if !endpoints.is_empty() {
            self.ensure_listeners(&endpoints).await?;
        }
        decoded.rewrite(&self.router, self.leader_endpoints)?;
        decoded.encode()
    }

    async fn ensure_listeners(
        &self,
        endpoints: &[crate::routing::rewrite::Endpoint],
    ) -> Result<(), RewriteError> {
        let _guard = self.listener_lock.lock().await;
        let learned = self.router.learn(endpoints)?;
        for (node_id, port) in learned.need_listener {
            let addr = SocketAddr::new(self.bind_ip, port);
            match TcpListener::bind(addr).await {
                Ok(listener) => {
                    let bound = listener.local_addr().map(|a| a.port()).unwrap_or(port);
                    self.router.bound(node_id, bound);
                    info!(node_id, listen = %SocketAddr::new(self.bind_ip, bound), upstream = ?self.router.upstream_of(node_id), "broker listener started");
                    if let Some(shared) = self.self_ref.upgrade() {
                        tokio::spawn(boxed_accept_loop(shared, listener, Target::Node(node_id)));
                    }
                }
                Err(e) => {
                    self.router.forget(node_id);
                    error!(node_id, listen = %addr, error = %e, "cannot bind broker listener");
                    return Err(RewriteError::NoListener(node_id));
                }
            }
        }
        Ok(())
    }

    /// Reads the cluster's brokers from a bootstrap broker and binds their listeners.
    pub async fn discover(&self) -> anyhow::Result<usize> {
        let ((mut r, mut w), addr) = self.connect_bootstrap().await?;
        const VERSION: i16 = 9;
        let mut req = BytesMut::new();
        req.put_i32(0);
        RequestHeader::default()
            .with_request_api_key(ApiKey::Metadata as i16)
            .with_request_api_version(VERSION)
            .with_correlation_id(1)
            .with_client_id(Some(StrBytes::from_static_str("strait-discovery")))
            .encode(&mut req, ApiKey::Metadata.request_header_version(VERSION))?;
        MetadataRequest::default()
            .with_topics(Some(vec![]))
            .encode(&mut req, VERSION)?;
        let len = (req.len() - 4) as i32;
        req[..4].copy_from_slice(&len.to_be_bytes());
        let io = async {
            w.write_all(&req).await?;
            let len = r.read_i32().await?;
            if len < 0 || len as usize > self.limits.max_frame_bytes {
                return Err(anyhow!("bad length prefix {len}"));
            }
            let mut body = vec![0u8; len as usize];
            r.read_exact(&mut body).await?;
            Ok(Bytes::from(body))
        };
        let body = tokio::time::timeout(self.connect_timeout, io)
            .await
            .map_err(|_| anyhow!("metadata from {addr}: timed out"))?
            .with_context(|| format!("metadata from {addr}"))?;
        let mut decoded =
            Decoded::decode(Rewrite::Metadata, ApiKey::Metadata as i16, VERSION, body)?;
        let endpoints = decoded.endpoints();
        self.ensure_listeners(&endpoints).await?;
        self.ready.store(true, Ordering::Release);
        Ok(endpoints.len())
    }
}

/// Broker listeners are started from inside a connection (a Metadata response
/// names a new broker), so the accept loop is boxed to break the type cycle.
fn boxed_accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    target: Target,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
    Box::pin(accept_loop(shared, listener, target))
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener, target: Target) {
    let mut shutdown = shared.shutdown.clone();
    let name: &'static str = if target == Target::Bootstrap {
        "bootstrap"
    } else {
        "broker"
    };
    loop {
        let accepted = tokio::select! {
            _ = shutdown.changed() => return,
            a = listener.accept() => a,
        };
        let (sock, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                warn!(listener = %target, error = %e, "accept failed");
                metrics::error("client", "accept");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        sock.set_nodelay(true).ok();
        let shared = shared.clone();
        tokio::spawn(async move {
            let gauge = metrics::connections(name);
            metrics::connections_total(name).increment(1);
            gauge.increment(1.0);
            let io: (BoxRead, BoxWrite) = match &shared.acceptor {
                None => {
                    let (r, w) = sock.into_split();
                    (Box::new(r), Box::new(w))
                }
                Some(acceptor) => {
                    match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(sock)).await
                    {
                        Ok(Ok(stream)) => {
                            let (r, w) = tokio::io::split(stream);
                            (Box::new(r), Box::new(w))
                        }
                        Ok(Err(e)) => {
                            metrics::error("client", "tls_handshake");
                            warn!(client = %peer, listener = %target, error = %e, "TLS handshake failed; connection refused");
                            gauge.decrement(1.0);
                            return;
                        }
                        Err(_) => {
                            metrics::error("client", "tls_handshake");
                            warn!(client = %peer, listener = %target, "TLS handshake timed out; connection refused");
                            gauge.decrement(1.0);
                            return;
                        }
                    }
                }
            };
            connection::serve(shared, io, peer, target).await;
            gauge.decrement(1.0);
        });
    }
}

/// A started proxy.
pub struct Proxy {
    pub bootstrap_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub shared: Arc<Shared>,
    shutdown_tx: watch::Sender<bool>,
}

impl Proxy {
    /// Binds every listener and starts serving; returns once bound.
    pub async fn start(cfg: Validated) -> anyhow::Result<Proxy> {
        let handle = metrics::install();
        let acceptor = cfg
            .config
            .tls
            .as_ref()
            .map(tls::acceptor)
            .transpose()
            .context("client TLS")?;
        let upstream_tls = cfg
            .config
            .upstream
            .tls
            .as_ref()
            .map(tls::connector)
            .transpose()
            .context("upstream TLS")?;
        let (shutdown_tx, shutdown) = watch::channel(false);
        let listener = TcpListener::bind(cfg.bootstrap_listen)
            .await
            .with_context(|| format!("binding bootstrap listener {}", cfg.bootstrap_listen))?;
        let bootstrap_addr = listener.local_addr()?;
        let admin = TcpListener::bind(cfg.admin_listen)
            .await
            .with_context(|| format!("binding admin listener {}", cfg.admin_listen))?;
        let admin_addr = admin.local_addr()?;
        let policies = Arc::new(
            crate::policy::PolicyStore::open(cfg.config.policies.dir.as_deref())
                .context("policies")?,
        );
        tokio::spawn(policies.clone().watch(shutdown.clone()));
        let shared = Arc::new_cyclic(|me| Shared {
            limits: cfg.config.limits.clone(),
            traces: crate::pipeline::TraceIndex::new(cfg.config.limits.trace_index_entries),
            policies,
            topic_names: Default::default(),
            router: Router::new(&cfg.advertised_host, cfg.broker_ports),
            ready: AtomicBool::new(false),
            leader_endpoints: cfg.config.upstream.leader_endpoints,
            bind_ip: cfg.bootstrap_listen.ip(),
            bootstrap: cfg.config.upstream.bootstrap.clone(),
            next_bootstrap: AtomicUsize::new(0),
            connect_timeout: Duration::from_millis(cfg.config.upstream.connect_timeout_ms),
            acceptor,
            upstream_tls,
            listener_lock: Mutex::new(()),
            shutdown: shutdown.clone(),
            self_ref: me.clone(),
        });
        tokio::spawn(accept_loop(shared.clone(), listener, Target::Bootstrap));
        tokio::spawn(crate::admin::serve(
            admin,
            handle,
            shared.clone(),
            shutdown.clone(),
        ));
        tokio::spawn(discovery_loop(shared.clone()));
        info!(bootstrap = %bootstrap_addr, advertised_host = %cfg.advertised_host, admin = %admin_addr,
              upstream = ?cfg.config.upstream.bootstrap, tls = cfg.config.tls.is_some(), "strait listening");
        Ok(Proxy {
            bootstrap_addr,
            admin_addr,
            shared,
            shutdown_tx,
        })
    }

    /// Stops accepting connections.
    pub fn shutdown(&self) {
        let _ = self.shutdown_tx.send(true);
    }
}

/// Learns the cluster at start-up, retrying with backoff while brokers are unreachable.
async fn discovery_loop(shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.clone();
    let mut delay = Duration::from_millis(200);
    loop {
        match shared.discover().await {
            Ok(n) => {
                info!(brokers = n, "cluster discovered");
                return;
            }
            Err(e) => {
                warn!(error = %format!("{e:#}"), retry_in = ?delay, "cluster discovery failed; not ready");
            }
        }
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(10));
    }
}

impl crate::policy::enforce::TopicNames for Shared {
    fn name_of(&self, id: &uuid::Uuid) -> Option<String> {
        self.topic_names
            .read()
            .expect("topic names lock")
            .get(id)
            .cloned()
    }
}
