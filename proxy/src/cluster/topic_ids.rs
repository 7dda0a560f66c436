//! Topic id → name, learned from Metadata responses, for the requests that
//! name topics by id only (Produce v13, Fetch v13+) so per-topic policy
//! still applies. Bounded (`limits.topic_ids`): a cluster with more topics
//! than that forgets the least used ids, and a request naming a forgotten id
//! is treated as Strait treats an unknown one (UNKNOWN_TOPIC_ID on produce,
//! the safe side on fetch) until the client's next Metadata refresh. A fetch
//! naming ids Strait has not learned (a client's cached ids after Strait
//! restarted, or ids learned through another instance) looks them up first
//! ([`TopicIds::look_up`]): one look-up at a time, at most one a second.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::sync::Cache;
use uuid::Uuid;

/// Look-ups of unknown ids start at most this often.
const LOOK_UP_EVERY: Duration = Duration::from_secs(1);

pub struct TopicIds {
    names: Cache<Uuid, Arc<str>>,
    /// When the last look-up started; held while one runs.
    last_look_up: tokio::sync::Mutex<Option<Instant>>,
}

impl TopicIds {
    pub fn new(capacity: usize) -> TopicIds {
        TopicIds {
            names: Cache::new(capacity as u64),
            last_look_up: tokio::sync::Mutex::new(None),
        }
    }

    /// Learns the names of `ids` with `ask` (every topic's id and name from
    /// the cluster), unless another look-up meanwhile named them all or one
    /// started less than a second ago. A failed look-up is logged; the ids
    /// stay unknown and the caller takes the safe side.
    pub async fn look_up<F, Fut, E>(&self, ids: &[Uuid], ask: F)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<(Uuid, String)>, E>>,
        E: std::fmt::Display,
    {
        let mut last = self.last_look_up.lock().await;
        if ids.iter().all(|id| self.names.contains_key(id)) {
            return;
        }
        if last.is_some_and(|t| t.elapsed() < LOOK_UP_EVERY) {
            return;
        }
        *last = Some(Instant::now());
        match ask().await {
            Ok(pairs) => self.learn(pairs),
            Err(e) => {
                tracing::warn!(error = %e, "cannot look up topic ids a fetch names; treating them as policed")
            }
        }
    }

    /// Remembers the pairs a Metadata response named.
    pub fn learn(&self, pairs: Vec<(Uuid, String)>) {
        for (id, name) in pairs {
            if self.names.get(&id).as_deref() != Some(name.as_str()) {
                self.names.insert(id, Arc::from(name));
            }
        }
    }

    /// The topic's name, if Strait has seen the id in a Metadata response.
    pub fn name_of(&self, id: &Uuid) -> Option<Arc<str>> {
        self.names.get(id)
    }

    /// Ids remembered (after pending evictions are applied).
    pub fn len(&self) -> u64 {
        self.names.run_pending_tasks();
        self.names.entry_count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_names_and_stays_within_its_bound() {
        let ids = TopicIds::new(100);
        let pairs: Vec<(Uuid, String)> = (0..1000u128)
            .map(|i| (Uuid::from_u128(i + 1), format!("topic-{i}")))
            .collect();
        ids.learn(pairs[..10].to_vec());
        assert_eq!(ids.name_of(&Uuid::from_u128(3)).as_deref(), Some("topic-2"));
        assert_eq!(ids.name_of(&Uuid::from_u128(5000)), None);
        ids.learn(pairs);
        assert!(
            ids.len() <= 100,
            "{} ids kept for a bound of 100",
            ids.len()
        );
        assert!(!ids.is_empty());
    }

    #[tokio::test]
    async fn unknown_ids_are_looked_up_once_and_not_again_within_a_second() {
        let ids = TopicIds::new(100);
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let asked = std::sync::atomic::AtomicUsize::new(0);
        let ask = || async {
            asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok::<_, String>(vec![(a, "a".to_string())])
        };
        ids.look_up(&[a], ask).await;
        assert_eq!(ids.name_of(&a).as_deref(), Some("a"));
        // Known now: no second look-up.
        ids.look_up(&[a], ask).await;
        // Unknown to the cluster too: not asked again within the second.
        ids.look_up(&[b], ask).await;
        assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(ids.name_of(&b), None);
    }
}
