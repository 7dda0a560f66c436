//! Topic id → name, learned from Metadata responses, for the requests that
//! name topics by id only (Produce v13, Fetch v13+) so per-topic policy
//! still applies. Bounded (`limits.topic_ids`): a cluster with more topics
//! than that forgets the least used ids, and a request naming a forgotten id
//! is treated as Strait treats an unknown one (UNKNOWN_TOPIC_ID on produce,
//! the safe side on fetch) until the client's next Metadata refresh.

use std::sync::Arc;

use moka::sync::Cache;
use uuid::Uuid;

pub struct TopicIds {
    names: Cache<Uuid, Arc<str>>,
}

impl TopicIds {
    pub fn new(capacity: usize) -> TopicIds {
        TopicIds {
            names: Cache::new(capacity as u64),
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
}
