//! The running proxy, the top of the module tree: builds the shared parts
//! (policy store, cluster view, trace index, blocking pool), starts the
//! listener manager, the bootstrap and admin listeners, discovery and the
//! policy watcher, and stops them. Nothing below imports it.

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
use crate::upstream::Dialer;
use crate::{admin, metrics, tls};

/// A started proxy.
pub struct Proxy {
    pub bootstrap_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub env: Arc<Env>,
    shutdown_tx: watch::Sender<bool>,
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
        let (shutdown_tx, shutdown) = watch::channel(false);
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
        });
        let accept = listeners::Accept {
            env: env.clone(),
            tls,
            shutdown: shutdown.clone(),
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
            },
            shutdown.clone(),
        ));
        tokio::spawn(discovery_loop(cluster, shutdown));
        info!(bootstrap = %bootstrap_addr, advertised_host = %cfg.advertised_host, admin = %admin_addr,
              upstream = ?cfg.config.upstream.bootstrap, tls = cfg.config.tls.is_some(), "strait listening");
        Ok(Proxy {
            bootstrap_addr,
            admin_addr,
            env,
            shutdown_tx,
        })
    }

    /// Stops accepting connections.
    pub fn shutdown(&self) {
        let _ = self.shutdown_tx.send(true);
    }
}

/// Learns the cluster at start-up, retrying with backoff while brokers are unreachable.
async fn discovery_loop(cluster: Arc<ClusterView>, mut shutdown: watch::Receiver<bool>) {
    let mut delay = Duration::from_millis(200);
    loop {
        match cluster::discover(&cluster).await {
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
