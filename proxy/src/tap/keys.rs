//! Top keys per partition: a Space-Saving sketch (Metwally, Agrawal and
//! El Abbadi, 2005) of [`COUNTERS`] counters per partition, fed with the
//! keys of sampled produce requests.
//!
//! Space-Saving keeps the keys it counts; a new key takes the place of the
//! least counted one and inherits its count as its possible overcount
//! (`error`). So every key counted more than `seen / COUNTERS` times is in
//! the table, each count is at most `error` too high, and the true count of
//! a key lies in `[count - error, count]`: the view shows both. The sketches
//! live in one `moka` cache weighed in bytes, so however many partitions and
//! distinct keys pass, the memory is bounded by `debug.top_keys_bytes`
//! (least recently fed partitions out first).

use std::sync::{Arc, Mutex};

use moka::sync::Cache;
use serde::Serialize;

/// Counters per partition.
pub const COUNTERS: usize = 10;
/// Key bytes kept per counter: longer keys are counted by this prefix.
pub const KEY_BYTES: usize = 64;
/// What one partition's sketch is charged against the bound: its counters
/// with full-length keys, the cache entry and the locks, rounded up (the
/// memory test in `proxy/tests/tap_memory.rs` checks it is not less than
/// what the allocator really holds).
pub const SKETCH_WEIGHT: u32 = 2_048;

/// A counter, its key inline: replacing one allocates nothing.
#[derive(Debug, Clone)]
struct Counter {
    key: [u8; KEY_BYTES],
    len: u8,
    count: u64,
    error: u64,
}

impl Counter {
    fn new(key: &[u8], count: u64, error: u64) -> Counter {
        let mut c = Counter {
            key: [0; KEY_BYTES],
            len: key.len() as u8,
            count,
            error,
        };
        c.key[..key.len()].copy_from_slice(key);
        c
    }

    fn key(&self) -> &[u8] {
        &self.key[..usize::from(self.len)]
    }
}

#[derive(Debug, Default)]
pub struct Sketch {
    counters: Vec<Counter>,
    seen: u64,
    /// When keys were last added (ms since the epoch).
    updated_ms: u64,
}

impl Sketch {
    pub fn add(&mut self, key: &[u8]) {
        self.seen += 1;
        let key = &key[..key.len().min(KEY_BYTES)];
        if let Some(c) = self.counters.iter_mut().find(|c| c.key() == key) {
            c.count += 1;
            return;
        }
        if self.counters.len() < COUNTERS {
            if self.counters.capacity() == 0 {
                self.counters.reserve_exact(COUNTERS);
            }
            self.counters.push(Counter::new(key, 1, 0));
            return;
        }
        let min = (0..self.counters.len())
            .min_by_key(|&i| self.counters[i].count)
            .expect("full");
        let floor = self.counters[min].count;
        self.counters[min] = Counter::new(key, floor + 1, floor);
    }

    pub fn view(&self) -> TopKeys {
        let mut keys: Vec<TopKey> = self
            .counters
            .iter()
            .map(|c| TopKey {
                key: String::from_utf8_lossy(c.key()).into_owned(),
                count: c.count,
                error: c.error,
            })
            .collect();
        keys.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
        TopKeys {
            sampled: self.seen,
            max_error: self.seen / COUNTERS as u64,
            keys,
        }
    }
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct TopKey {
    /// The key as text (lossy UTF-8; at most [`KEY_BYTES`] bytes of it).
    pub key: String,
    /// Records with this key in the sample, at most `error` too many.
    pub count: u64,
    pub error: u64,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct TopKeys {
    /// Keyed records of this partition in the sample.
    pub sampled: u64,
    /// No key missing from `keys` was sampled more than this often.
    pub max_error: u64,
    pub keys: Vec<TopKey>,
}

impl TopKeys {
    /// Several instances' sketches of one partition as one: a key's count is
    /// the sum of its counts, where a sketch that lacks it adds what it may
    /// have missed (its smallest count when full: a key it dropped was
    /// counted at most that often) to both the count and the error.
    pub fn merge(all: &[TopKeys]) -> Option<TopKeys> {
        if all.len() <= 1 {
            return all.first().cloned();
        }
        let floor = |t: &TopKeys| {
            if t.keys.len() < COUNTERS {
                0
            } else {
                t.keys.iter().map(|k| k.count).min().unwrap_or(0)
            }
        };
        let mut names: Vec<&str> = all
            .iter()
            .flat_map(|t| t.keys.iter().map(|k| k.key.as_str()))
            .collect();
        names.sort_unstable();
        names.dedup();
        let mut keys: Vec<TopKey> = names
            .into_iter()
            .map(|name| {
                let (mut count, mut error) = (0, 0);
                for t in all {
                    match t.keys.iter().find(|k| k.key == name) {
                        Some(k) => {
                            count += k.count;
                            error += k.error;
                        }
                        None => {
                            count += floor(t);
                            error += floor(t);
                        }
                    }
                }
                TopKey {
                    key: name.to_string(),
                    count,
                    error,
                }
            })
            .collect();
        keys.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
        keys.truncate(COUNTERS);
        Some(TopKeys {
            sampled: all.iter().map(|t| t.sampled).sum(),
            max_error: all.iter().map(|t| t.max_error).sum(),
            keys,
        })
    }
}

type Partition = (Arc<str>, i32);

pub struct KeyCounts {
    sketches: Cache<Partition, Arc<Mutex<Sketch>>>,
}

impl KeyCounts {
    /// Sketches weighing at most `bound_bytes` in all.
    pub fn new(bound_bytes: u64) -> KeyCounts {
        KeyCounts {
            sketches: Cache::builder()
                .max_capacity(bound_bytes)
                .weigher(|_, _| SKETCH_WEIGHT)
                .build(),
        }
    }

    pub fn add(&self, topic: &Arc<str>, partition: i32, keys: &[&[u8]]) {
        if keys.is_empty() {
            return;
        }
        let sketch = self
            .sketches
            .get_with((topic.clone(), partition), Arc::default);
        let mut s = sketch.lock().expect("key sketch lock");
        for k in keys {
            s.add(k);
        }
        s.updated_ms = crate::metrics::now_ms();
    }

    /// The top keys of every partition fed since `ms`.
    pub fn updated_since(&self, ms: u64) -> Vec<(Arc<str>, i32, TopKeys)> {
        self.sketches
            .iter()
            .filter_map(|(k, s)| {
                let s = s.lock().expect("key sketch lock");
                (s.updated_ms > ms).then(|| (k.0.clone(), k.1, s.view()))
            })
            .collect()
    }

    pub fn top(&self, topic: &str, partition: i32) -> Option<TopKeys> {
        let s = self.sketches.get(&(Arc::from(topic), partition))?;
        let v = s.lock().expect("key sketch lock").view();
        Some(v)
    }

    /// Bytes charged now (after the cache's pending evictions).
    pub fn weight(&self) -> u64 {
        self.sketches.run_pending_tasks();
        self.sketches.weighted_size()
    }

    /// Partitions with a sketch now.
    pub fn partitions(&self) -> u64 {
        self.sketches.run_pending_tasks();
        self.sketches.entry_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frequent_keys_are_found_with_their_error_bound() {
        let mut s = Sketch::default();
        // 3 heavy keys among 10,000 distinct light ones.
        for i in 0..10_000u32 {
            s.add(format!("light-{i}").as_bytes());
            if i % 2 == 0 {
                s.add(b"heavy-a");
            }
            if i % 4 == 0 {
                s.add(b"heavy-b");
            }
            if i % 5 == 0 {
                s.add(b"heavy-c");
            }
        }
        let v = s.view();
        assert_eq!(v.sampled, 10_000 + 5_000 + 2_500 + 2_000);
        assert_eq!(v.max_error, v.sampled / COUNTERS as u64);
        // Space-Saving's guarantee: every key seen more than sampled / 10
        // times is in the table, its true count within [count - error, count].
        let find = |k: &str| v.keys.iter().find(|x| x.key == k).cloned();
        for (k, truth) in [("heavy-a", 5_000), ("heavy-b", 2_500), ("heavy-c", 2_000)] {
            assert!(truth > v.max_error, "{k} is over the guarantee's threshold");
            let got = find(k).unwrap_or_else(|| panic!("{k} in {v:?}"));
            assert!(
                got.count >= truth && got.count - got.error <= truth,
                "{k}: true {truth} within [{}, {}]",
                got.count - got.error,
                got.count
            );
        }
        assert_eq!(v.keys[0].key, "heavy-a");
        assert_eq!(v.keys.len(), COUNTERS);
    }

    #[test]
    fn long_keys_count_by_their_prefix() {
        let mut s = Sketch::default();
        let long = vec![b'x'; 1_000];
        s.add(&long);
        s.add(&long[..KEY_BYTES]);
        assert_eq!(s.view().keys[0].count, 2);
        assert_eq!(s.view().keys[0].key.len(), KEY_BYTES);
    }

    #[test]
    fn merged_sketches_add_up_and_widen_the_error_for_a_key_one_lacks() {
        let mut a = Sketch::default();
        let mut b = Sketch::default();
        for _ in 0..5 {
            a.add(b"x");
        }
        for _ in 0..7 {
            b.add(b"x");
            b.add(b"y");
        }
        let m = TopKeys::merge(&[a.view(), b.view()]).unwrap();
        assert_eq!(m.sampled, 19);
        assert_eq!(
            (m.keys[0].key.as_str(), m.keys[0].count, m.keys[0].error),
            ("x", 12, 0)
        );
        // a is not full: it saw every key it was given, so y's count is exact.
        assert_eq!(
            (m.keys[1].key.as_str(), m.keys[1].count, m.keys[1].error),
            ("y", 7, 0)
        );
        let mut full = Sketch::default();
        for i in 0..COUNTERS {
            for _ in 0..3 {
                full.add(format!("k{i}").as_bytes());
            }
        }
        let m = TopKeys::merge(&[full.view(), b.view()]).unwrap();
        let y = m.keys.iter().find(|k| k.key == "y").unwrap();
        assert_eq!(
            (y.count, y.error),
            (10, 3),
            "full sketch may have dropped y 3 times"
        );
    }

    #[test]
    fn the_cache_keeps_within_its_bound() {
        let k = KeyCounts::new(100 * u64::from(SKETCH_WEIGHT));
        let t: Arc<str> = "t".into();
        for p in 0..1_000 {
            k.add(&t, p, &[b"a", b"b"]);
        }
        assert!(
            k.weight() <= 100 * u64::from(SKETCH_WEIGHT),
            "{}",
            k.weight()
        );
        assert!(k.partitions() <= 100);
    }
}
