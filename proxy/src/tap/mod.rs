//! The observation tap: what the debug tooling learns from the traffic
//! itself, beside what it asks the brokers.
//!
//! The request pump offers the tap a copy of each small request it reads
//! (fetch, offset commit, and group membership of both protocols: JoinGroup,
//! SyncGroup, Heartbeat, LeaveGroup, ConsumerGroupHeartbeat), at most
//! [`MAX_OBSERVED_FRAME`] bytes, with the connection it came on. The offer
//! is a non-blocking send into one bounded queue: a full queue drops the
//! observation and counts it (`strait_tap_dropped_total`), so observers
//! never slow the data path. One thread, not the async reactor, decodes
//! what it receives and keeps [`Observed`]: each connection's fetch
//! positions, each group's commits, which client is in which group. Produce
//! and fetch answers are not copied: produced offsets come from the trace
//! index (filled from produce answers Strait already decodes for a trace
//! policy), and the records a consumer received are inferred from its next
//! fetch position, so responses keep streaming. See ARCHITECTURE.md,
//! "Observation tap".

mod decode;
pub mod keys;
mod observed;
mod produce;
mod wire;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use crate::cluster::ClusterView;
use crate::metrics;
use crate::pipeline::TraceIndex;

pub use observed::Observed;

/// Requests larger than this are not observed (counted as dropped): the
/// requests the tap reads are a few hundred bytes; a fetch naming
/// thousands of partitions is the exception.
pub const MAX_OBSERVED_FRAME: usize = 64 * 1024;

/// Produce requests larger than this are not sampled for their keys, so a
/// sample never holds a large request's copy (topics of large records have
/// their keys sampled from their smaller requests only).
pub const MAX_SAMPLED_FRAME: usize = 64 * 1024;

/// One client connection, as the tap names it.
#[derive(Debug)]
pub struct ConnTag {
    pub id: u64,
    pub peer: Option<SocketAddr>,
}

enum Offer {
    /// A request's frame body.
    Request {
        conn: Arc<ConnTag>,
        at_ms: u64,
        body: Bytes,
    },
    /// A produce request sampled for its keys.
    Produce { body: Bytes },
    /// The broker's answer to an observed fetch began to arrive.
    Answered {
        conn: Arc<ConnTag>,
        correlation_id: i32,
        at_ms: u64,
    },
}

/// How the tap is sized (from `[debug]`).
#[derive(Debug, Clone, Copy)]
pub struct TapConfig {
    /// Observations queued for the tap's thread at most.
    pub queue: usize,
    /// Produce request bytes copied for their keys per second at most (0:
    /// no top keys).
    pub key_sample_bytes_per_sec: u64,
    /// What the top-keys sketches may weigh in all.
    pub top_keys_bytes: u64,
}

pub struct Tap {
    tx: SyncSender<Offer>,
    next_conn: AtomicU64,
    dropped: AtomicU64,
    sampling: Budget,
    pub observed: Arc<Observed>,
}

/// A byte budget per second, shared by every connection without a lock:
/// the window restarts at the first take after a second has passed.
struct Budget {
    per_sec: u64,
    start: Instant,
    /// The window's second (since `start`) and the bytes taken in it.
    window: AtomicU64,
    used: AtomicU64,
}

impl Budget {
    fn take(&self, n: u64) -> bool {
        if self.per_sec == 0 || n > self.per_sec {
            return false;
        }
        let now = self.start.elapsed().as_secs();
        if self.window.load(Ordering::Relaxed) != now {
            self.window.store(now, Ordering::Relaxed);
            self.used.store(0, Ordering::Relaxed);
        }
        let before = self.used.fetch_add(n, Ordering::Relaxed);
        before + n <= self.per_sec
    }
}

impl Tap {
    /// Starts the tap's thread, with a queue of `queue` observations.
    pub fn start(
        cfg: TapConfig,
        traces: Arc<TraceIndex>,
        cluster: Arc<ClusterView>,
    ) -> std::io::Result<Arc<Tap>> {
        let (tx, rx) = sync_channel::<Offer>(cfg.queue);
        let observed = Arc::new(Observed::new(cfg.top_keys_bytes));
        let state = observed.clone();
        std::thread::Builder::new()
            .name("strait-tap".into())
            .spawn(move || {
                // Ends when the last sender (the tap) is dropped.
                for o in rx {
                    match o {
                        Offer::Request { conn, at_ms, body } => {
                            let topic_of = |id: &uuid::Uuid| cluster.topic_ids.name_of(id);
                            state.apply(&conn, at_ms, &body, &traces, &topic_of)
                        }
                        Offer::Produce { body } => {
                            let topic_of = |id: &uuid::Uuid| cluster.topic_ids.name_of(id);
                            state.sampled_produce(&body, &topic_of)
                        }
                        Offer::Answered {
                            conn,
                            correlation_id,
                            at_ms,
                        } => state.answered(&conn, correlation_id, at_ms),
                    }
                }
            })?;
        Ok(Arc::new(Tap {
            tx,
            next_conn: AtomicU64::new(1),
            dropped: AtomicU64::new(0),
            sampling: Budget {
                per_sec: cfg.key_sample_bytes_per_sec,
                start: Instant::now(),
                window: AtomicU64::new(0),
                used: AtomicU64::new(0),
            },
            observed,
        }))
    }

    /// A name for a new client connection.
    pub fn conn(&self, peer: Option<SocketAddr>) -> Arc<ConnTag> {
        Arc::new(ConnTag {
            id: self.next_conn.fetch_add(1, Ordering::Relaxed),
            peer,
        })
    }

    /// Whether the tap reads requests of this api key (whatever their size:
    /// one over [`MAX_OBSERVED_FRAME`] is dropped and counted by [`Tap::offer`]).
    pub fn observes(api_key: i16) -> bool {
        decode::observed(api_key)
    }

    /// Offers a request's frame body (after the length prefix) of `len`
    /// bytes; `body` is all of it unless `len` is over [`MAX_OBSERVED_FRAME`].
    /// Never waits.
    pub fn offer(&self, conn: &Arc<ConnTag>, len: usize, body: &[u8]) {
        if len > MAX_OBSERVED_FRAME || body.len() < len {
            return self.drop_one("too_large");
        }
        self.send(Offer::Request {
            conn: conn.clone(),
            at_ms: metrics::now_ms(),
            body: Bytes::copy_from_slice(body),
        });
    }

    /// Whether a produce request of `len` bytes is sampled for its keys now
    /// (within the per-second byte budget). The caller then offers it whole
    /// with [`Tap::sample_produce`].
    pub fn samples_produce(&self, len: usize) -> bool {
        len <= MAX_SAMPLED_FRAME && self.sampling.take(len as u64)
    }

    /// Offers a produce request's frame body for its keys. Never waits.
    pub fn sample_produce(&self, body: &[u8]) {
        self.send(Offer::Produce {
            body: Bytes::copy_from_slice(body),
        });
    }

    /// Whether the tap wants to know when requests of this api key are
    /// answered (fetches: their records are delivered then).
    pub fn times_answer(api_key: i16) -> bool {
        api_key == decode::FETCH
    }

    /// The answer to an observed request began to arrive. Never waits.
    pub fn answered(&self, conn: Arc<ConnTag>, correlation_id: i32) {
        self.send(Offer::Answered {
            conn,
            correlation_id,
            at_ms: metrics::now_ms(),
        });
    }

    fn send(&self, offer: Offer) {
        match self.tx.try_send(offer) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => self.drop_one("full"),
            Err(TrySendError::Disconnected(_)) => self.drop_one("stopped"),
        }
    }

    fn drop_one(&self, why: &'static str) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
        metrics::tap_dropped(why);
    }

    /// Observations dropped so far (queue full, too large, or unreadable).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed) + self.observed.unreadable()
    }
}
