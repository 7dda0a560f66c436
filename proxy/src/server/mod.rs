//! The running proxy, the top of the module tree: builds the shared parts
//! (policy store, cluster view, trace index, blocking pool), starts the
//! listener manager, the bootstrap and admin listeners, discovery (which
//! goes on probing the brokers for readiness) and the policy watcher, and
//! drains and stops them. Nothing below imports it.

mod drain;
mod listeners;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::cluster::{self, ClusterView, Routes, Target, TopicIds};
use crate::config::Validated;
use crate::connection::Env;
use crate::kafka_client::KafkaClient;
use crate::large::LargeRecords;
use crate::offload::Offload;
use crate::pipeline::TraceIndex;
use crate::policy::produce::Work;
use crate::policy::{Enforcer, PolicyStore};
use crate::response::ResponseEnv;
use crate::tap::{Tap, TapConfig};
use crate::upstream::Dialer;
use crate::{admin, debug, kafka_client, metrics, tls};

pub use drain::DrainReport;

/// How often discovery probes the brokers once the cluster is known.
const PROBE_EVERY: Duration = Duration::from_secs(2);
/// How long one probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// Failed probes in a row after which the proxy is not ready.
const UNREADY_AFTER: u32 = 2;
/// Deadline of one call of the debug tooling's internal client.
const DEBUG_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// A started proxy.
pub struct Proxy {
    pub bootstrap_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub env: Arc<Env>,
    drain: Arc<drain::Drain>,
    drain_timeout: Duration,
    /// Stops the admin listener, which serves (`/readyz` 503) while the
    /// proxy drains.
    admin_tx: watch::Sender<bool>,
}

impl Proxy {
    /// Binds every listener and starts serving; returns once bound.
    pub async fn start(cfg: Validated) -> anyhow::Result<Proxy> {
        let handle = metrics::install();
        crate::fdlimit::raise();
        let limits = cfg.config.limits.clone();
        let tls = cfg
            .config
            .tls
            .as_ref()
            .map(tls::acceptor)
            .transpose()
            .context("client TLS")?;
        let dialer = Dialer::new(&cfg.config.upstream, limits.max_frame_bytes)?;
        let drain = drain::Drain::new();
        // The drain flag stops the listeners, discovery and the policy watcher.
        let shutdown = drain.flag();
        let (admin_tx, admin_stop) = watch::channel(false);
        let listener = TcpListener::bind(cfg.bootstrap_listen)
            .await
            .with_context(|| format!("binding bootstrap listener {}", cfg.bootstrap_listen))?;
        let bootstrap_addr = listener.local_addr()?;
        let admin = TcpListener::bind(cfg.admin_listen)
            .await
            .with_context(|| format!("binding admin listener {}", cfg.admin_listen))?;
        let admin_addr = admin.local_addr()?;
        let store = Arc::new(
            PolicyStore::open(
                cfg.config.policies.dir.as_deref(),
                limits.policy_cache_topics,
            )
            .context("policies")?,
        );
        tokio::spawn(store.clone().watch(shutdown.clone()));
        let (cluster, binds) = ClusterView::new(
            dialer,
            Routes::new(&cfg.advertised_host, cfg.broker_ports),
            TopicIds::new(limits.topic_ids),
        );
        let cluster = Arc::new(cluster);
        let offload = Offload::new(limits.batch_workers);
        // Strait's own producer and consumer (chunk topics) dial the brokers
        // with the same settings as every upstream connection.
        let internal = Arc::new(KafkaClient::new(
            Arc::new(Dialer::new(&cfg.config.upstream, limits.max_frame_bytes)?),
            Duration::from_millis(cfg.config.large_records.store_timeout_ms),
        ));
        let large = Arc::new(
            LargeRecords::new(&cfg.config.large_records, internal).context("large_records")?,
        );
        let traces = Arc::new(TraceIndex::new(limits.trace_index_entries));
        let tap = if cfg.config.debug.tap {
            let d = &cfg.config.debug;
            let sizes = TapConfig {
                queue: d.tap_queue,
                key_sample_bytes_per_sec: d.key_sample_bytes_per_sec,
                top_keys_bytes: d.top_keys_bytes,
            };
            Some(Tap::start(sizes, traces.clone(), cluster.clone()).context("starting the tap")?)
        } else {
            None
        };
        let seen = (traces.clone(), tap.clone());
        let debug = debug_tools(
            &cfg,
            &store,
            &offload,
            &large,
            seen,
            (bootstrap_addr, admin_addr),
        )?;
        tokio::spawn(
            debug
                .lag
                .clone()
                .run(debug.stuck.client.clone(), shutdown.clone()),
        );
        if let (Some(shared), Some(tap)) = (&debug.shared, &tap) {
            let every = Duration::from_millis(cfg.config.debug.lag_interval_ms);
            let client = debug.stuck.client.clone();
            tokio::spawn(
                shared
                    .clone()
                    .run(client, tap.clone(), every, shutdown.clone()),
            );
        }
        let mirror = debug::mirror::Manager {
            board: debug.mirror.clone(),
            client: debug.stuck.client.clone(),
            offload: debug.stuck.offload.clone(),
            policies: debug.stuck.policies.clone(),
            connect: mirror_clients(&cfg),
        };
        tokio::spawn(mirror.run(shutdown.clone()));
        let env = Arc::new(Env {
            enforcer: Enforcer {
                store,
                cluster: cluster.clone(),
                offload: offload.clone(),
                work: Work {
                    cap: limits.max_decompressed_bytes,
                    large: Some(large.clone()),
                    refusals: None,
                },
            },
            responses: ResponseEnv {
                cluster: cluster.clone(),
                traces: traces.clone(),
                leader_endpoints: cfg.config.upstream.leader_endpoints,
                offload,
                large: Some(large),
                cap: limits.max_decompressed_bytes,
            },
            cluster: cluster.clone(),
            limits,
            drain: shutdown.clone(),
            tap,
        });
        let accept = listeners::Accept {
            env: env.clone(),
            tls,
            shutdown: shutdown.clone(),
            drain: drain.clone(),
        };
        tokio::spawn(listeners::manage(
            binds,
            cfg.bootstrap_listen.ip(),
            accept.clone(),
        ));
        tokio::spawn(listeners::accept_loop(accept, listener, Target::Bootstrap));
        tokio::spawn(admin::serve(
            admin,
            admin::AdminState {
                metrics: handle,
                cluster: cluster.clone(),
                traces,
                draining: shutdown.clone(),
                debug,
            },
            admin_stop,
        ));
        tokio::spawn(discovery_loop(cluster, shutdown));
        info!(bootstrap = %bootstrap_addr, advertised_host = %cfg.advertised_host, admin = %admin_addr,
              upstream = ?cfg.config.upstream.bootstrap, tls = cfg.config.tls.is_some(), "strait listening");
        Ok(Proxy {
            bootstrap_addr,
            admin_addr,
            env,
            drain,
            drain_timeout: Duration::from_millis(cfg.config.shutdown.drain_timeout_ms),
            admin_tx,
        })
    }

    /// Drains: readiness false and listeners closed at once; each connection
    /// gets the responses to the requests it sent and closes at a request
    /// boundary. Returns when the last one has closed or at the configured
    /// drain timeout, whichever comes first.
    pub async fn drain(&self) -> DrainReport {
        self.drain.run(self.drain_timeout).await
    }

    /// Client connections open now.
    pub fn open_connections(&self) -> usize {
        self.drain.open()
    }

    /// Stops the admin listener (after the drain).
    pub fn stop(&self) {
        let _ = self.admin_tx.send(true);
    }
}

/// The debug tooling: its own internal client (a debug read never queues
/// behind chunk writes), the lag board and who may read them.
fn debug_tools(
    cfg: &Validated,
    store: &Arc<PolicyStore>,
    offload: &Offload,
    large: &Arc<LargeRecords>,
    (traces, tap): (Arc<TraceIndex>, Option<Arc<Tap>>),
    (bootstrap, admin): (SocketAddr, SocketAddr),
) -> anyhow::Result<debug::Debug> {
    let limits = &cfg.config.limits;
    let mut opts = kafka_client::Options::new(DEBUG_CALL_TIMEOUT);
    opts.client_id = "strait-debug";
    opts.max_frame_bytes = limits.max_frame_bytes;
    let client = Arc::new(KafkaClient::with_options(
        Arc::new(Dialer::new(&cfg.config.upstream, limits.max_frame_bytes)?),
        opts,
    ));
    let token = cfg.config.debug.token()?;
    Ok(debug::Debug {
        lag: Arc::new(debug::LagBoard::new(cfg.config.debug.clone())),
        stuck: debug::Reader {
            client,
            offload: offload.clone(),
            policies: store.clone(),
            large: Some(large.clone()),
            bootstrap: format!("{}:{}", cfg.advertised_host, bootstrap.port()),
        },
        access: debug::Access::new(token, admin.ip().is_loopback()),
        viewers: Arc::default(),
        shared: (tap.is_some() && cfg.config.debug.share_observations).then(|| {
            let instance = cfg
                .config
                .debug
                .instance_id
                .clone()
                .unwrap_or_else(|| format!("{}:{}", cfg.advertised_host, bootstrap.port()));
            let topic = cfg.config.debug.observations_topic.clone();
            Arc::new(debug::share::Shared::new(instance, topic))
        }),
        traces,
        tap,
        mirror: Arc::default(),
    })
}

/// Clients of the clusters mirror topics live on (`mirror.bootstrap`):
/// `[upstream]`'s settings (TLS, SASL, timeouts) with those brokers.
fn mirror_clients(cfg: &Validated) -> debug::mirror::Connect {
    let upstream = cfg.config.upstream.clone();
    let max_frame = cfg.config.limits.max_frame_bytes;
    Arc::new(move |bootstrap: &[String]| {
        let mut config = upstream.clone();
        config.bootstrap = bootstrap.to_vec();
        let mut opts = kafka_client::Options::new(DEBUG_CALL_TIMEOUT);
        opts.client_id = "strait-mirror";
        opts.max_frame_bytes = max_frame;
        let dialer = Dialer::new(&config, max_frame)?;
        Ok(Arc::new(KafkaClient::with_options(Arc::new(dialer), opts)))
    })
}

/// Learns the cluster at start-up, retrying with backoff while brokers are
/// unreachable; then probes the brokers so readiness follows them.
async fn discovery_loop(cluster: Arc<ClusterView>, mut shutdown: watch::Receiver<bool>) {
    let mut delay = Duration::from_millis(200);
    loop {
        match cluster::discover(&cluster).await {
            Ok(n) => {
                info!(brokers = n, "cluster discovered");
                return probe_loop(cluster, shutdown).await;
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

/// Every [`PROBE_EVERY`], one Metadata request to a bootstrap broker (which
/// also learns brokers added since). After [`UNREADY_AFTER`] failures in a
/// row the proxy is not ready (no broker answers, so clients are better
/// sent elsewhere); the next success makes it ready again.
async fn probe_loop(cluster: Arc<ClusterView>, mut shutdown: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(PROBE_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.tick().await;
    let mut failures = 0u32;
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = every.tick() => {}
        }
        let error = match tokio::time::timeout(PROBE_TIMEOUT, cluster::discover(&cluster)).await {
            Ok(Ok(n)) => {
                if failures >= UNREADY_AFTER {
                    info!(brokers = n, "brokers answer again; ready");
                }
                failures = 0;
                continue;
            }
            Ok(Err(e)) => format!("{e:#}"),
            Err(_) => format!("no answer within {PROBE_TIMEOUT:?}"),
        };
        failures += 1;
        if failures == UNREADY_AFTER {
            cluster.set_unready();
            warn!(error = %error, failed_probes = failures, "no broker answers; not ready");
        }
    }
}
