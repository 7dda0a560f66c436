//! What happened to each indexed record after it was produced: which
//! clients fetched it and which groups committed past it, for an event's
//! route (`/debug/route/{trace_id}`).
//!
//! Kept per partition, by offset, for exactly the records the trace index
//! holds (they enter and leave with it), so it is bounded by the same
//! `limits.trace_index_entries` and, per record, by [`MAX_HOPS`]. The
//! observation tap reports a consumer's position moving from one offset to
//! another, and a group's commit moving likewise; every indexed record in
//! between gets a hop. A partition with no indexed record costs one map
//! probe per observation.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use serde::Serialize;

/// Hops kept per record: the first fetch by each client and the first
/// commit by each group, up to this many.
pub const MAX_HOPS: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HopKind {
    /// A consumer's position moved past the record: it was delivered.
    Fetch,
    /// A group committed an offset past the record.
    Commit,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    pub kind: HopKind,
    pub at_ms: u64,
    pub client: Option<Arc<str>>,
    pub group: Option<Arc<str>>,
}

type Partition = (Arc<str>, i32);

#[derive(Default)]
pub struct Hops {
    by_partition: Mutex<HashMap<Partition, BTreeMap<i64, Vec<Hop>>>>,
}

impl Hops {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Partition, BTreeMap<i64, Vec<Hop>>>> {
        self.by_partition.lock().expect("route hops lock")
    }

    /// Starts following the record at `offset` (it entered the trace index).
    pub(super) fn follow(&self, topic: &Arc<str>, partition: i32, offset: i64) {
        self.lock()
            .entry((topic.clone(), partition))
            .or_default()
            .entry(offset)
            .or_default();
    }

    /// Stops following it (it left the trace index).
    pub(super) fn forget(&self, topic: &Arc<str>, partition: i32, offset: i64) {
        let mut m = self.lock();
        let key = (topic.clone(), partition);
        if let Some(offsets) = m.get_mut(&key) {
            offsets.remove(&offset);
            if offsets.is_empty() {
                m.remove(&key);
            }
        }
    }

    /// A position (a consumer's fetch offset, or a group's committed
    /// offset) moved from `from` (None: not seen before) to `to`: every
    /// followed record in `[from, to)` gets `hop`, once per client (fetch)
    /// or group (commit).
    pub fn passed(&self, topic: &str, partition: i32, from: Option<i64>, to: i64, hop: &Hop) {
        let mut m = self.lock();
        let Some(offsets) = m.get_mut(&(Arc::<str>::from(topic), partition)) else {
            return;
        };
        let from = from.unwrap_or(i64::MIN);
        if from >= to {
            return;
        }
        for (_, hops) in offsets.range_mut(from..to) {
            let seen = hops.iter().any(|h| {
                h.kind == hop.kind
                    && match hop.kind {
                        HopKind::Fetch => h.client == hop.client,
                        HopKind::Commit => h.group == hop.group,
                    }
            });
            if !seen && hops.len() < MAX_HOPS {
                hops.push(hop.clone());
            }
        }
    }

    /// The hops of one record, in the order they happened.
    pub fn of(&self, topic: &str, partition: i32, offset: i64) -> Vec<Hop> {
        self.lock()
            .get(&(Arc::<str>::from(topic), partition))
            .and_then(|o| o.get(&offset))
            .cloned()
            .unwrap_or_default()
    }

    /// Records followed (for tests and the memory bound).
    pub fn followed(&self) -> usize {
        self.lock().values().map(BTreeMap::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(kind: HopKind, at: u64, client: &str, group: Option<&str>) -> Hop {
        Hop {
            kind,
            at_ms: at,
            client: Some(client.into()),
            group: group.map(Into::into),
        }
    }

    #[test]
    fn hops_land_on_followed_records_in_the_passed_range_once() {
        let h = Hops::default();
        let t: Arc<str> = "orders".into();
        for o in [5, 9, 12] {
            h.follow(&t, 0, o);
        }
        h.passed(
            "orders",
            0,
            Some(0),
            10,
            &hop(HopKind::Fetch, 1, "c1", None),
        );
        // The same client moving on again does not add a second fetch to 5 or 9.
        h.passed(
            "orders",
            0,
            Some(3),
            13,
            &hop(HopKind::Fetch, 2, "c1", None),
        );
        h.passed(
            "orders",
            0,
            None,
            10,
            &hop(HopKind::Commit, 3, "c1", Some("g")),
        );
        h.passed(
            "orders",
            1,
            Some(0),
            100,
            &hop(HopKind::Fetch, 4, "c2", None),
        );
        let five = h.of("orders", 0, 5);
        assert_eq!(five.len(), 2, "{five:?}");
        assert_eq!((five[0].kind, five[0].at_ms), (HopKind::Fetch, 1));
        assert_eq!((five[1].kind, five[1].at_ms), (HopKind::Commit, 3));
        let twelve = h.of("orders", 0, 12);
        assert_eq!(twelve.len(), 1, "fetched at 13, not committed: {twelve:?}");
        assert_eq!(twelve[0].at_ms, 2);
        assert!(h.of("orders", 1, 5).is_empty());
        // A position that does not move (or moves back) adds nothing.
        h.passed(
            "orders",
            0,
            Some(12),
            12,
            &hop(HopKind::Fetch, 5, "c3", None),
        );
        h.passed(
            "orders",
            0,
            Some(13),
            2,
            &hop(HopKind::Fetch, 5, "c3", None),
        );
        assert_eq!(h.of("orders", 0, 12).len(), 1);
        h.forget(&t, 0, 5);
        assert!(h.of("orders", 0, 5).is_empty());
        assert_eq!(h.followed(), 2);
    }

    #[test]
    fn hops_per_record_are_bounded() {
        let h = Hops::default();
        let t: Arc<str> = "t".into();
        h.follow(&t, 0, 0);
        for c in 0..100 {
            let client = format!("c{c}");
            h.passed("t", 0, Some(0), 1, &hop(HopKind::Fetch, c, &client, None));
        }
        assert_eq!(h.of("t", 0, 0).len(), MAX_HOPS);
    }
}
