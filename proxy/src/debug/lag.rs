//! Consumer lag per partition per group, evaluated on a timer from what
//! the cluster itself says: every consumer group of both protocols
//! (ListGroups on every broker), its members and their partitions
//! (DescribeGroups, or ConsumerGroupDescribe for KIP-848 groups), its
//! committed offsets (OffsetFetch) and each partition's log start, high
//! watermark and last stable offset (ListOffsets). Groups whose consumers
//! never connect through Strait are in it the same way.
//!
//! Where the usual tools are wrong, this view is not: the lag runs to the
//! last stable offset (records of an open transaction are not consumable
//! yet by a read_committed consumer), transaction markers and aborted
//! records are not counted ([`super::scan`]), a committed offset below the
//! log start counts from the log start (the records before it are gone,
//! not waiting) and is an error, and every group is evaluated every
//! interval, not only when it commits. `lag_kafka` is the high watermark
//! minus the committed offset, as `kafka-consumer-groups` shows it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;

use super::scan;
use super::status::{self, Facts, Sample, Status};
use crate::config::DebugConfig;
use crate::kafka_client::{KafkaClient, KafkaError, ListedGroup, OffsetSpec};

/// Partitions whose log is read (batch headers) per evaluation at most;
/// past it, lag counts by offsets and says it is not exact.
const SCANS_PER_EVALUATION: usize = 1_000;

/// One partition of one group, as last evaluated.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionLag {
    pub topic: String,
    pub partition: i32,
    pub committed: i64,
    pub log_start: i64,
    /// The high watermark.
    pub end_offset: i64,
    /// The last stable offset.
    pub stable_offset: i64,
    /// Records the group still has to consume.
    pub lag: i64,
    /// The log between the committed offset and the end was read whole
    /// (else its unread rest counts by offsets).
    pub lag_exact: bool,
    /// `end_offset - committed`, as `kafka-consumer-groups` shows it.
    pub lag_kafka: i64,
    /// Age of the first record still to consume (its batch's timestamp).
    pub lag_ms: Option<u64>,
    /// Records per second, over the window.
    pub produce_rate: f64,
    pub consume_rate: f64,
    pub member_id: Option<String>,
    pub client_id: Option<String>,
    pub host: Option<String>,
    /// When Strait saw the committed offset move last (ms since the epoch):
    /// the commit request itself when it came through this Strait (the
    /// tap), else the evaluation that first saw it.
    pub last_commit_ms: Option<u64>,
    /// When the owning client's fetch position last moved through this
    /// Strait (the tap); None for consumers that bypass it.
    pub last_consume_ms: Option<u64>,
    /// Its most produced keys, from the tap's sample (with error bounds).
    pub top_keys: Option<crate::tap::keys::TopKeys>,
    pub status: Status,
    pub reason: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct MemberView {
    pub member_id: String,
    pub client_id: String,
    pub host: String,
    pub partitions: usize,
}

/// A group, as last evaluated.
#[derive(Debug, Clone, Serialize)]
pub struct GroupLag {
    pub group: String,
    /// `classic` or `consumer` (KIP-848).
    pub protocol: String,
    pub state: String,
    pub members: Vec<MemberView>,
    pub partitions: Vec<PartitionLag>,
    /// Sum over the partitions.
    pub lag: i64,
    /// The worst partition's.
    pub status: Status,
    pub evaluated_at_ms: u64,
    /// Why this evaluation of the group failed (the rest is the last good one).
    pub error: Option<String>,
    /// Total lag and consume rate at the last `lag_window` evaluations.
    pub history: Vec<super::history::Point>,
}

/// The list of groups.
#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    pub evaluated_at_ms: u64,
    pub interval_ms: u64,
    pub window: usize,
    /// Why the last evaluation failed as a whole, if it did.
    pub error: Option<String>,
    pub groups_not_followed: usize,
    pub partitions_not_followed: usize,
    pub groups: Vec<GroupSummary>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GroupSummary {
    pub group: String,
    pub protocol: String,
    pub state: String,
    pub members: usize,
    pub partitions: usize,
    pub lag: i64,
    pub status: Status,
}

/// The lag of every followed group; read by the admin listener, written by
/// [`LagBoard::run`].
pub struct LagBoard {
    cfg: DebugConfig,
    inner: Mutex<Board>,
}

#[derive(Default)]
struct Board {
    evaluated_at_ms: u64,
    error: Option<String>,
    groups_not_followed: usize,
    partitions_not_followed: usize,
    groups: BTreeMap<String, GroupLag>,
    /// (group, topic, partition) → the window and when the offset moved.
    tracks: HashMap<(String, String, i32), Track>,
}

#[derive(Default)]
struct Track {
    samples: VecDeque<Sample>,
    last_moved_ms: Option<u64>,
}

pub use crate::metrics::now_ms;

/// A group's evaluation before it is merged into the board.
struct Fresh {
    listed: ListedGroup,
    state: String,
    members: Vec<crate::kafka_client::GroupMember>,
    committed: Vec<((String, i32), i64)>,
}

impl LagBoard {
    pub fn new(cfg: DebugConfig) -> LagBoard {
        LagBoard {
            cfg,
            inner: Mutex::new(Board::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Board> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn overview(&self) -> Overview {
        let b = self.lock();
        Overview {
            evaluated_at_ms: b.evaluated_at_ms,
            interval_ms: self.cfg.lag_interval_ms,
            window: self.cfg.lag_window,
            error: b.error.clone(),
            groups_not_followed: b.groups_not_followed,
            partitions_not_followed: b.partitions_not_followed,
            groups: b
                .groups
                .values()
                .map(|g| GroupSummary {
                    group: g.group.clone(),
                    protocol: g.protocol.clone(),
                    state: g.state.clone(),
                    members: g.members.len(),
                    partitions: g.partitions.len(),
                    lag: g.lag,
                    status: g.status,
                })
                .collect(),
        }
    }

    pub fn group(&self, group: &str) -> Option<GroupLag> {
        self.lock().groups.get(group).cloned()
    }

    /// Evaluates every `lag_interval_ms` until `shutdown`.
    pub async fn run(
        self: Arc<Self>,
        client: Arc<KafkaClient>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut every = tokio::time::interval(Duration::from_millis(self.cfg.lag_interval_ms));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = every.tick() => {}
            }
            if let Err(e) = self.evaluate(&client).await {
                tracing::debug!(error = %e, "consumer lag evaluation failed");
                let mut b = self.lock();
                b.error = Some(e.to_string());
                b.evaluated_at_ms = now_ms();
            }
        }
    }

    /// One evaluation of every group.
    pub async fn evaluate(&self, client: &KafkaClient) -> Result<(), KafkaError> {
        let listed: Vec<ListedGroup> = client
            .list_groups()
            .await?
            .into_iter()
            .filter(|g| g.protocol_type == "consumer" || g.group_type == "consumer")
            .collect();
        let groups_not_followed = listed.len().saturating_sub(self.cfg.max_groups);
        let mut fresh = Vec::new();
        let mut failed: Vec<(String, String)> = Vec::new();
        let mut budget = self.cfg.max_partitions;
        let mut partitions_not_followed = 0;
        for g in listed.into_iter().take(self.cfg.max_groups) {
            let kip848 = g.group_type == "consumer";
            let described = client.describe_group(&g.group_id, kip848).await;
            let committed = client.committed_offsets(&g.group_id).await;
            match (described, committed) {
                (Ok(d), Ok(c)) => {
                    let mut committed: Vec<_> = c.into_iter().collect();
                    committed.sort();
                    if committed.len() > budget {
                        partitions_not_followed += committed.len() - budget;
                        committed.truncate(budget);
                    }
                    budget -= committed.len();
                    fresh.push(Fresh {
                        listed: g,
                        state: d.state,
                        members: d.members,
                        committed,
                    });
                }
                (Err(e), _) | (_, Err(e)) => failed.push((g.group_id, e.to_string())),
            }
        }
        let mut parts: Vec<(String, i32)> = fresh
            .iter()
            .flat_map(|f| f.committed.iter().map(|(tp, _)| tp.clone()))
            .collect();
        parts.sort();
        parts.dedup();
        let start = client.offsets(&parts, OffsetSpec::Earliest).await?;
        let high = client.offsets(&parts, OffsetSpec::Latest).await?;
        let stable = client.offsets(&parts, OffsetSpec::LastStable).await?;
        let now = now_ms();
        let mut scans = SCANS_PER_EVALUATION;
        let mut counted: HashMap<(String, i32, i64), scan::Count> = HashMap::new();
        for f in &fresh {
            for ((t, p), committed) in &f.committed {
                let key = (t.clone(), *p);
                let (Some(&s), Some(&h)) = (start.get(&key), high.get(&key)) else {
                    continue;
                };
                let end = stable.get(&key).copied().filter(|l| *l >= 0).unwrap_or(h);
                let from = (*committed).max(s);
                if from >= end || counted.contains_key(&(t.clone(), *p, from)) {
                    continue;
                }
                let c = if scans > 0 {
                    scans -= 1;
                    match client.fetch_committed(t, *p, from, scan::SCAN_BYTES).await {
                        Ok(got) => scan::count(got.records, &got.aborted, from, end),
                        Err(_) => by_offsets(from, end),
                    }
                } else {
                    by_offsets(from, end)
                };
                counted.insert((t.clone(), *p, from), c);
            }
        }
        let mut b = self.lock();
        let window = self.cfg.lag_window;
        let mut groups = BTreeMap::new();
        let mut tracks = HashMap::new();
        for f in fresh {
            let owners: HashMap<(&str, i32), &crate::kafka_client::GroupMember> = f
                .members
                .iter()
                .flat_map(|m| m.assignment.iter().map(move |(t, p)| ((t.as_str(), *p), m)))
                .collect();
            let mut partitions = Vec::new();
            for ((t, p), committed) in &f.committed {
                let key = (t.clone(), *p);
                let (Some(&s), Some(&h)) = (start.get(&key), high.get(&key)) else {
                    continue;
                };
                let end = stable.get(&key).copied().filter(|l| *l >= 0).unwrap_or(h);
                let from = (*committed).max(s);
                let c = counted
                    .get(&(t.clone(), *p, from))
                    .copied()
                    .unwrap_or(scan::Count {
                        records: 0,
                        exact: true,
                        first_timestamp: None,
                    });
                let track_key = (f.listed.group_id.clone(), t.clone(), *p);
                let mut track = b.tracks.remove(&track_key).unwrap_or_default();
                if track
                    .samples
                    .back()
                    .is_some_and(|l| l.committed != *committed)
                {
                    track.last_moved_ms = Some(now);
                }
                track.samples.push_back(Sample {
                    at_ms: now,
                    committed: *committed,
                    end,
                    lag: c.records,
                });
                while track.samples.len() > window {
                    track.samples.pop_front();
                }
                let owner = owners.get(&(t.as_str(), *p));
                let facts = Facts {
                    owned: owner.is_some(),
                    out_of_range: *committed < s || *committed > h,
                };
                let (status, reason) = status::evaluate(&track.samples, window, facts);
                let (first, last) = (track.samples.front(), track.samples.back());
                let rate = |f: fn(&Sample) -> i64| match (first, last) {
                    (Some(a), Some(z)) if z.at_ms > a.at_ms => {
                        (f(z) - f(a)) as f64 * 1000.0 / (z.at_ms - a.at_ms) as f64
                    }
                    _ => 0.0,
                };
                partitions.push(PartitionLag {
                    topic: t.clone(),
                    partition: *p,
                    committed: *committed,
                    log_start: s,
                    end_offset: h,
                    stable_offset: end,
                    lag: c.records,
                    lag_exact: c.exact,
                    lag_kafka: (h - committed).max(0),
                    lag_ms: match c.first_timestamp {
                        _ if c.records == 0 => Some(0),
                        Some(ts) => Some(now.saturating_sub(u64::try_from(ts).unwrap_or(0))),
                        None => None,
                    },
                    produce_rate: rate(|s| s.end),
                    consume_rate: rate(|s| s.committed),
                    member_id: owner.map(|m| m.member_id.clone()),
                    client_id: owner.map(|m| m.client_id.clone()),
                    host: owner.map(|m| m.client_host.clone()),
                    last_commit_ms: track.last_moved_ms,
                    last_consume_ms: None,
                    top_keys: None,
                    status,
                    reason,
                });
                tracks.insert(track_key, track);
            }
            let members = f
                .members
                .iter()
                .map(|m| MemberView {
                    member_id: m.member_id.clone(),
                    client_id: m.client_id.clone(),
                    host: m.client_host.clone(),
                    partitions: m.assignment.len(),
                })
                .collect();
            let last = b.groups.get(&f.listed.group_id).map(|g| &g.history[..]);
            let history = super::history::next(last.unwrap_or(&[]), now, &partitions, window);
            groups.insert(
                f.listed.group_id.clone(),
                GroupLag {
                    group: f.listed.group_id.clone(),
                    protocol: if f.listed.group_type.is_empty() {
                        "classic".into()
                    } else {
                        f.listed.group_type.clone()
                    },
                    state: f.state,
                    members,
                    lag: partitions.iter().map(|p| p.lag).sum(),
                    status: partitions
                        .iter()
                        .map(|p| p.status)
                        .max()
                        .unwrap_or(Status::Ok),
                    partitions,
                    evaluated_at_ms: now,
                    error: None,
                    history,
                },
            );
        }
        // A group that failed this time keeps its last evaluation, marked.
        for (group, error) in failed {
            if let Some(mut last) = b.groups.remove(&group) {
                last.error = Some(error);
                let prefix = |k: &(String, String, i32)| k.0 == group;
                let kept: Vec<_> = b.tracks.keys().filter(|k| prefix(k)).cloned().collect();
                for k in kept {
                    if let Some(t) = b.tracks.remove(&k) {
                        tracks.insert(k, t);
                    }
                }
                groups.insert(group, last);
            }
        }
        b.groups = groups;
        b.tracks = tracks;
        b.evaluated_at_ms = now;
        b.error = None;
        b.groups_not_followed = groups_not_followed;
        b.partitions_not_followed = partitions_not_followed;
        Ok(())
    }
}

fn by_offsets(from: i64, end: i64) -> scan::Count {
    scan::Count {
        records: end - from,
        exact: false,
        first_timestamp: None,
    }
}
