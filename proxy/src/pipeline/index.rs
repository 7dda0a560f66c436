//! The trace index: where each traced record landed (topic, partition,
//! offset) and which client produced it, for the trace-route view. Filled
//! from produce responses, once the broker has assigned offsets.
//!
//! Keyed by trace id, so a lookup is one hash probe. Bounded by
//! `limits.trace_index_entries` records, oldest first out: the index is a
//! log of recent events, not a cache (what is read is not kept longer, which
//! is why it is not a `moka` cache, whose eviction follows use). Sharded by
//! trace id, so producers recording and operators looking up rarely contend;
//! each shard holds an equal part of the bound and drops its own oldest.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use super::route::Hops;
use super::Traced;

const SHARDS: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceLocation {
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
    pub client: Option<Arc<str>>,
    /// The value's size when it went to the object store or a chunk topic.
    pub original_size: Option<u64>,
    /// When the broker acknowledged it (ms since the epoch).
    pub at_ms: u64,
}

#[derive(Default)]
struct Shard {
    /// Every indexed record of a trace, oldest first.
    by_id: HashMap<u128, VecDeque<TraceLocation>>,
    /// Trace ids in the order their records were indexed, for eviction.
    order: VecDeque<u128>,
}

pub struct TraceIndex {
    shards: Vec<Mutex<Shard>>,
    /// Records each shard holds at most (shards × this ≤ the configured cap).
    per_shard: usize,
    /// Who fetched and committed each indexed record since.
    hops: Hops,
}

impl TraceIndex {
    /// An index of at most `cap` records (0 turns it off).
    pub fn new(cap: usize) -> TraceIndex {
        let shards = cap.clamp(1, SHARDS);
        TraceIndex {
            shards: (0..shards).map(|_| Mutex::default()).collect(),
            per_shard: cap / shards,
            hops: Hops::default(),
        }
    }

    fn shard(&self, trace_id: u128) -> &Mutex<Shard> {
        // Trace ids are random: their low bits spread evenly.
        &self.shards[(trace_id % self.shards.len() as u128) as usize]
    }

    /// Records a partition's traced records once its base offset is known.
    pub fn record(
        &self,
        topic: &str,
        partition: i32,
        base_offset: i64,
        client: Option<&str>,
        traced: &[Traced],
    ) {
        if self.per_shard == 0 || traced.is_empty() {
            return;
        }
        let topic: Arc<str> = Arc::from(topic);
        let client: Option<Arc<str>> = client.map(Arc::from);
        let at_ms = crate::metrics::now_ms();
        for t in traced {
            let mut s = self.shard(t.trace_id).lock().expect("trace index lock");
            if s.order.len() == self.per_shard {
                let oldest = s.order.pop_front().expect("full");
                if let Some(locs) = s.by_id.get_mut(&oldest) {
                    if let Some(gone) = locs.pop_front() {
                        self.hops.forget(&gone.topic, gone.partition, gone.offset);
                    }
                    if locs.is_empty() {
                        s.by_id.remove(&oldest);
                    }
                }
            }
            s.order.push_back(t.trace_id);
            let offset = base_offset + t.relative_offset;
            self.hops.follow(&topic, partition, offset);
            s.by_id
                .entry(t.trace_id)
                .or_default()
                .push_back(TraceLocation {
                    topic: topic.clone(),
                    partition,
                    offset,
                    client: client.clone(),
                    original_size: t.original_size,
                    at_ms,
                });
        }
    }

    /// Every indexed record of a trace, oldest first.
    pub fn lookup(&self, trace_id: u128) -> Vec<TraceLocation> {
        let s = self.shard(trace_id).lock().expect("trace index lock");
        s.by_id
            .get(&trace_id)
            .map(|l| l.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Who fetched and committed the indexed records.
    pub fn hops(&self) -> &Hops {
        &self.hops
    }

    /// Records indexed.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().expect("trace index lock").order.len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most records the index holds (never more than configured).
    pub fn capacity(&self) -> usize {
        self.per_shard * self.shards.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(id: u128, rel: i64) -> Traced {
        Traced {
            relative_offset: rel,
            trace_id: id,
            original_size: None,
        }
    }

    #[test]
    fn oldest_first_out_per_trace() {
        // One shard's worth: ids that share a shard (same residue mod 16).
        let ix = TraceIndex::new(3 * SHARDS);
        let id = |n: u128| n * SHARDS as u128 + 5;
        ix.record("a", 0, 100, Some("c1"), &[t(id(1), 0), t(id(2), 1)]);
        ix.record("b", 2, 7, None, &[t(id(3), 0), t(id(1), 1)]);
        assert_eq!(ix.len(), 3);
        assert_eq!(ix.lookup(id(2)).len(), 1);
        let one = ix.lookup(id(1));
        assert_eq!(one.len(), 1, "the oldest entry of trace 1 was evicted");
        assert_eq!(
            (&*one[0].topic, one[0].partition, one[0].offset),
            ("b", 2, 8)
        );
        assert!(ix.lookup(id(9)).is_empty());
    }

    #[test]
    fn bounded_by_its_configured_size() {
        let ix = TraceIndex::new(1000);
        let traced: Vec<Traced> = (0..50_000u128)
            .map(|i| {
                t(
                    i.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835),
                    i as i64,
                )
            })
            .collect();
        ix.record("t", 0, 0, None, &traced);
        assert!(ix.len() <= ix.capacity());
        assert!(ix.capacity() <= 1000, "{}", ix.capacity());
        let tiny = TraceIndex::new(3);
        tiny.record("t", 0, 0, None, &traced);
        assert!(tiny.len() <= 3, "{} records for a cap of 3", tiny.len());
        let last = traced.last().unwrap();
        assert_eq!(ix.lookup(last.trace_id)[0].offset, 49_999, "newest kept");
        assert!(ix.lookup(traced[0].trace_id).is_empty(), "oldest gone");
        let off = TraceIndex::new(0);
        off.record("t", 0, 0, None, &traced);
        assert!(off.is_empty(), "0 turns it off");
    }
}
