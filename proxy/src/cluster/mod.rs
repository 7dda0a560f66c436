//! The cluster as Strait sees it: broker routes (port-per-broker), the
//! topic-id map, and whether the cluster has been discovered. Shared by
//! every connection; it asks the listener manager (by channel) for a
//! listener when a response names a broker it has not seen.

mod discovery;
mod routes;
mod topic_ids;

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::anyhow;
use tokio::sync::{mpsc, oneshot, Mutex};

use crate::io::Io;
use crate::upstream::Dialer;

pub use discovery::discover;
pub use routes::{Endpoint, Learned, Node, Routes};
pub use topic_ids::TopicIds;

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

/// A broker Strait cannot give a listener (outside the port range, or the
/// port could not be bound).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no proxy listener for broker node {0}")]
pub struct NoListener(pub i32);

/// A request to the listener manager: bind a listener for `node_id` on
/// `port` (0: any) and answer with the bound port.
pub struct Bind {
    pub node_id: i32,
    pub port: u16,
    pub reply: oneshot::Sender<Option<u16>>,
}

pub struct ClusterView {
    dialer: Dialer,
    routes: Routes,
    pub topic_ids: TopicIds,
    listeners: mpsc::Sender<Bind>,
    /// One binding round at a time, so two responses naming the same new
    /// broker bind it once.
    binding: Mutex<()>,
    ready: AtomicBool,
}

impl ClusterView {
    /// A view whose new brokers are bound by whoever holds the receiver.
    pub fn new(
        dialer: Dialer,
        routes: Routes,
        topic_ids: TopicIds,
    ) -> (ClusterView, mpsc::Receiver<Bind>) {
        let (tx, rx) = mpsc::channel(16);
        let view = ClusterView {
            dialer,
            routes,
            topic_ids,
            listeners: tx,
            binding: Mutex::new(()),
            ready: AtomicBool::new(false),
        };
        (view, rx)
    }

    pub fn routes(&self) -> &Routes {
        &self.routes
    }

    pub fn dialer(&self) -> &Dialer {
        &self.dialer
    }

    /// Whether the cluster's brokers are known and answer (the readiness probe).
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    /// No broker answers (the server's probe): not ready until the next
    /// discovery succeeds.
    pub fn set_unready(&self) {
        self.ready.store(false, Ordering::Release);
    }

    /// Records the brokers a response (or discovery) names and waits until
    /// each new one has a listener.
    pub async fn learn(&self, endpoints: &[Endpoint]) -> Result<(), NoListener> {
        let _one_at_a_time = self.binding.lock().await;
        let learned = self.routes.learn(endpoints)?;
        for (node_id, port) in learned.need_listener {
            let (reply, bound) = oneshot::channel();
            let asked = self
                .listeners
                .send(Bind {
                    node_id,
                    port,
                    reply,
                })
                .await;
            match (asked, bound.await) {
                (Ok(()), Ok(Some(port))) => self.routes.bound(node_id, port),
                _ => {
                    self.routes.forget(node_id);
                    return Err(NoListener(node_id));
                }
            }
        }
        Ok(())
    }

    /// Opens the upstream connection for a client of `target`'s listener.
    pub async fn connect(&self, target: Target) -> anyhow::Result<(Io, String)> {
        match target {
            Target::Bootstrap => self.dialer.connect_bootstrap().await,
            Target::Node(id) => {
                let addr = match self.routes.upstream_of(id) {
                    Some(a) => a,
                    None => {
                        discover(self).await?;
                        self.routes.upstream_of(id).ok_or_else(|| {
                            anyhow!("broker node {id} is not in the cluster's metadata")
                        })?
                    }
                };
                let io = self.dialer.connect(&addr).await?;
                Ok((io, addr))
            }
        }
    }
}
