//! The mirror (`[policy.mirror]`): the records of every topic a mirroring
//! policy covers, copied to a Kafka topic and/or rotating JSONL files,
//! sampled and held to a byte rate, the drops counted.
//!
//! It reads the topics' logs with the debug client, as the live tail does
//! (read_committed, from the latest offset when a topic's reader starts),
//! so the client data path never sees it: nothing is copied, queued or
//! waited for on a produce or a fetch, whatever the sinks do. The cost is
//! one more reader of each mirrored topic for the brokers, and records
//! reach the mirror after they are committed, not as Strait forwards them.
//! A manager reconciles the readers with the policies and the cluster's
//! topics every two seconds and on every policy reload: one reader per
//! covered topic, stopped when its topic is no longer covered, restarted
//! (from the latest offset) when its policy's mirror settings change.

mod jsonl;
pub mod rate;
mod reader;
mod sink;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use strait_policies::MirrorRules;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};

pub use rate::sampled;
use reader::{ReadStats, Setup};
use sink::{Sink, SinkCounts, SinkStats};

use crate::kafka_client::KafkaClient;
use crate::offload::Offload;
use crate::policy::PolicyStore;

const RECONCILE_EVERY: Duration = Duration::from_secs(2);
const LOG_EVERY: Duration = Duration::from_secs(60);

/// Builds a client of another cluster (`mirror.bootstrap`), with the
/// settings of `[upstream]` but those brokers.
pub type Connect = Arc<dyn Fn(&[String]) -> anyhow::Result<Arc<KafkaClient>> + Send + Sync>;

/// One running reader and what `/debug/mirror` shows of it.
struct Running {
    policy: String,
    rules: MirrorRules,
    values: bool,
    read: Arc<ReadStats>,
    sinks: Vec<Arc<SinkStats>>,
    task: JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        // The sinks end when the reader's queue senders are gone.
        self.task.abort();
    }
}

/// The mirror's readers, by topic.
#[derive(Default)]
pub struct Board {
    running: Mutex<BTreeMap<String, Running>>,
}

/// One mirrored topic, as `/debug/mirror` shows it.
#[derive(Debug, Serialize)]
pub struct TopicCounts {
    pub policy: String,
    pub topic: String,
    pub sample: f64,
    pub max_bytes_per_sec: u64,
    pub values: bool,
    /// The reader has its start offsets: what is written from now on is
    /// mirrored.
    pub reading: bool,
    pub read: u64,
    pub sampled_out: u64,
    pub dropped_rate: u64,
    pub sinks: Vec<SinkCounts>,
}

impl Board {
    pub fn snapshot(&self) -> Vec<TopicCounts> {
        let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        running
            .iter()
            .map(|(topic, r)| TopicCounts {
                policy: r.policy.clone(),
                topic: topic.clone(),
                sample: r.rules.sample,
                max_bytes_per_sec: r.rules.max_bytes_per_sec,
                values: r.values,
                reading: r.read.reading.load(Ordering::Acquire),
                read: r.read.read.load(Ordering::Relaxed),
                sampled_out: r.read.sampled_out.load(Ordering::Relaxed),
                dropped_rate: r.read.dropped_rate.load(Ordering::Relaxed),
                sinks: r.sinks.iter().map(|s| s.snapshot()).collect(),
            })
            .collect()
    }
}

/// What the manager needs.
pub struct Manager {
    pub board: Arc<Board>,
    pub client: Arc<KafkaClient>,
    pub offload: Offload,
    pub policies: Arc<PolicyStore>,
    pub connect: Connect,
}

/// What a topic's policy asks of the mirror.
struct Wanted {
    policy: String,
    rules: MirrorRules,
    values: bool,
}

impl Manager {
    /// Reconciles until `shutdown`.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut reloads = self.policies.subscribe();
        let mut buckets: HashMap<String, (u64, Arc<Mutex<rate::Bucket>>)> = HashMap::new();
        let mut clients: HashMap<Vec<String>, Arc<KafkaClient>> = HashMap::new();
        let mut logged: Option<tokio::time::Instant> = None;
        loop {
            if let Err(e) = self.reconcile(&mut buckets, &mut clients).await {
                let now = tokio::time::Instant::now();
                if logged.is_none_or(|at| now >= at + LOG_EVERY) {
                    logged = Some(now);
                    warn!(error = %e, "mirror: listing the cluster's topics failed; readers left as they are (logged once a minute)");
                }
            }
            tokio::select! {
                _ = shutdown.changed() => break,
                _ = reloads.changed() => {}
                _ = tokio::time::sleep(RECONCILE_EVERY) => {}
            }
        }
        self.board
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    async fn reconcile(
        &self,
        buckets: &mut HashMap<String, (u64, Arc<Mutex<rate::Bucket>>)>,
        clients: &mut HashMap<Vec<String>, Arc<KafkaClient>>,
    ) -> Result<(), String> {
        let mirroring = self
            .policies
            .get()
            .set()
            .policies()
            .iter()
            .any(|p| p.mirror.is_some());
        let mut wanted: BTreeMap<String, Wanted> = BTreeMap::new();
        if mirroring {
            let topics = self.client.topic_ids().await.map_err(|e| e.to_string())?;
            let compiled = self.policies.get();
            // Internal topics (`__consumer_offsets`, ...) are never mirrored.
            for (_, topic) in topics.into_iter().filter(|(_, t)| !t.starts_with("__")) {
                let Some(plan) = compiled.plan(&topic) else {
                    continue;
                };
                if let Some(rules) = &plan.policy.mirror {
                    wanted.insert(
                        topic,
                        Wanted {
                            policy: plan.policy.name.clone(),
                            rules: rules.clone(),
                            values: plan.policy.debug_values,
                        },
                    );
                }
            }
        }
        let mut running = self.board.running.lock().unwrap_or_else(|p| p.into_inner());
        running.retain(|topic, r| {
            let keep = wanted.get(topic).is_some_and(|w| {
                w.policy == r.policy && w.rules == r.rules && w.values == r.values
            });
            if !keep {
                info!(topic = %topic, policy = %r.policy, "mirror: reader stopped");
            }
            keep
        });
        buckets.retain(|policy, _| wanted.values().any(|w| &w.policy == policy));
        for (topic, w) in wanted {
            if running.contains_key(&topic) {
                continue;
            }
            let rate = w.rules.max_bytes_per_sec;
            let bucket = buckets
                .entry(w.policy.clone())
                .and_modify(|b| {
                    if b.0 != rate {
                        *b = new_bucket(rate);
                    }
                })
                .or_insert_with(|| new_bucket(rate))
                .1
                .clone();
            let sinks = self.sinks(&topic, &w, clients);
            let setup = Setup {
                topic: topic.clone(),
                sample: w.rules.sample,
                values: w.values,
                bucket,
            };
            let read = Arc::new(ReadStats::default());
            let stats = sinks.iter().map(|s| s.stats.clone()).collect();
            let task = tokio::spawn(reader::run(
                self.client.clone(),
                self.offload.clone(),
                setup,
                sinks,
                read.clone(),
            ));
            info!(topic = %topic, policy = %w.policy, sample = w.rules.sample, "mirror: reader started");
            running.insert(
                topic,
                Running {
                    policy: w.policy,
                    rules: w.rules,
                    values: w.values,
                    read,
                    sinks: stats,
                    task,
                },
            );
        }
        Ok(())
    }

    /// Starts a topic's sink tasks; they end when the returned queues'
    /// senders are dropped.
    fn sinks(
        &self,
        topic: &str,
        w: &Wanted,
        clients: &mut HashMap<Vec<String>, Arc<KafkaClient>>,
    ) -> Vec<Sink> {
        let mut out = Vec::new();
        if let Some(j) = &w.rules.jsonl {
            let (tx, rx) = mpsc::channel(sink::QUEUE);
            let stats = Arc::new(SinkStats::new(&w.policy, "jsonl"));
            let writer = jsonl::Writer::new(j, topic);
            tokio::spawn(sink::jsonl(rx, writer, stats.clone()));
            out.push(Sink { tx, stats });
        }
        if let Some(t) = &w.rules.topic {
            let client = match &t.bootstrap {
                None => Some(self.client.clone()),
                Some(b) => match clients.get(b) {
                    Some(c) => Some(c.clone()),
                    None => match (self.connect)(b) {
                        Ok(c) => Some(clients.entry(b.clone()).or_insert(c).clone()),
                        Err(e) => {
                            warn!(policy = %w.policy, bootstrap = ?b, error = %format!("{e:#}"),
                                  "mirror: no client for the mirror cluster; its topic sink is off");
                            None
                        }
                    },
                },
            };
            if let Some(client) = client {
                let (tx, rx) = mpsc::channel(sink::QUEUE);
                let stats = Arc::new(SinkStats::new(&w.policy, "topic"));
                tokio::spawn(sink::topic(rx, client, t.name.clone(), stats.clone()));
                out.push(Sink { tx, stats });
            }
        }
        out
    }
}

fn new_bucket(rate: u64) -> (u64, Arc<Mutex<rate::Bucket>>) {
    let b = rate::Bucket::new(rate, std::time::Instant::now());
    (rate, Arc::new(Mutex::new(b)))
}
