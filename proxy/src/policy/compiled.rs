//! Policies compiled at load: for each policy, the facts the wire path asks
//! of it (does it inspect produce? does it need the records? which stages?),
//! computed once per reload instead of per request, and, for sets with many
//! glob and regex selectors, a bounded cache of topic → plan, so those run
//! once per topic per reload, not per request.
//!
//! The cache is a `moka` lookup, which costs about what checking a handful of
//! selectors does (`policy_request` benchmark: an unpoliced topic against an
//! exact, a prefix, a glob and a regex selector resolves in ~120 ns directly
//! and ~200 ns through the cache), so sets with fewer than
//! [`CACHE_FROM_PATTERNS`] glob or regex selectors resolve directly.

use std::sync::Arc;

use moka::sync::Cache;
use strait_policies::{Policy, PolicySet};

use crate::pipeline::Pipeline;

/// What the wire path does for one policy's topics.
pub struct TopicPlan {
    pub policy: Arc<Policy>,
    /// The record pipeline's stages (empty: the policy rewrites nothing).
    pub pipeline: Pipeline,
    /// Produce requests to these topics are decoded (rules or stages).
    pub inspects_produce: bool,
    /// Produce checks need batch headers (acks alone does not).
    pub needs_batches: bool,
    /// Produce checks need the records themselves.
    pub needs_records: bool,
    /// Fetches of these topics are forced to read_committed.
    pub read_committed: bool,
    /// Fetched records of these topics may carry values to restore.
    pub restores: bool,
}

impl TopicPlan {
    fn new(policy: &Arc<Policy>) -> TopicPlan {
        let rules = policy.produce.as_ref();
        TopicPlan {
            policy: policy.clone(),
            pipeline: Pipeline::for_policy(policy),
            inspects_produce: policy.inspects_produce(),
            needs_batches: policy.rewrites_records() || rules.is_some_and(|r| r.needs_batches()),
            needs_records: strait_policies::decide::needs_records(policy),
            read_committed: strait_policies::decide::forces_read_committed(policy),
            restores: policy.restores_records(),
        }
    }

    /// Produce work that reads or rewrites records (decompression,
    /// compression, re-sealing): it runs on the blocking pool.
    pub fn record_work(&self) -> bool {
        self.needs_records || !self.pipeline.is_empty()
    }
}

/// Glob and regex selectors from which resolving through the topic cache
/// is cheaper than matching them.
pub const CACHE_FROM_PATTERNS: usize = 8;

/// A loaded policy set with its plans.
pub struct Compiled {
    set: PolicySet,
    /// One per policy, in the set's order.
    plans: Vec<TopicPlan>,
    /// Topics resolved through pattern selectors to a plan's index (None: no
    /// policy), when the set has enough of them to be worth a cache.
    by_topic: Option<Cache<String, Option<usize>>>,
    /// Some plan restores fetched records.
    restores: bool,
}

impl Compiled {
    /// Compiles `set`, caching at most `cache_topics` pattern-resolved topics.
    pub fn new(set: PolicySet, cache_topics: usize) -> Compiled {
        let plans: Vec<TopicPlan> = set.policies().iter().map(TopicPlan::new).collect();
        let restores = plans.iter().any(|p| p.restores);
        let by_topic = (set.pattern_selectors() >= CACHE_FROM_PATTERNS)
            .then(|| Cache::new(cache_topics as u64));
        Compiled {
            set,
            plans,
            by_topic,
            restores,
        }
    }

    pub fn set(&self) -> &PolicySet {
        &self.set
    }

    /// The plan for `topic`, if a policy selects it.
    pub fn plan(&self, topic: &str) -> Option<&TopicPlan> {
        self.plan_index(topic).map(|i| &self.plans[i])
    }

    /// The index of `topic`'s plan, to look it up again without resolving
    /// ([`Compiled::plan_at`]).
    pub fn plan_index(&self, topic: &str) -> Option<usize> {
        let Some(cache) = &self.by_topic else {
            return self.set.resolve_index(topic);
        };
        if let Some(i) = self.set.exact_index(topic) {
            return Some(i);
        }
        if let Some(hit) = cache.get(topic) {
            return hit;
        }
        let i = self.set.resolve_index(topic);
        cache.insert(topic.to_string(), i);
        i
    }

    /// The plan at an index [`Compiled::plan_index`] gave.
    pub fn plan_at(&self, index: usize) -> &TopicPlan {
        &self.plans[index]
    }

    /// Topics held in the pattern cache (after pending evictions).
    pub fn cached_topics(&self) -> u64 {
        self.by_topic.as_ref().map_or(0, |c| {
            c.run_pending_tasks();
            c.entry_count()
        })
    }

    pub fn has_produce_rules(&self) -> bool {
        self.set.has_produce_rules()
    }

    pub fn has_fetch_rules(&self) -> bool {
        self.set.has_fetch_rules()
    }

    /// Some policy restores fetched records (large records).
    pub fn has_restores(&self) -> bool {
        self.restores
    }

    pub fn has_admin_rules(&self) -> bool {
        self.set.has_admin_rules()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compiled(cache: usize) -> Compiled {
        let mut text = "[[policy]]\nname = \"exact\"\ntopics = { exact = \"orders\" }\n[policy.trace]\n\
                    [[policy]]\nname = \"rx\"\ntopics = { regex = \"ev-[0-9]+\" }\n[policy.produce]\nrequire_idempotent = true\n"
            .to_string();
        // Enough pattern selectors for the cache to be used.
        for i in 1..CACHE_FROM_PATTERNS {
            text += &format!(
                "[[policy]]\nname = \"g{i}\"\ntopics = {{ glob = \"g{i}-*-?\" }}\n[policy.produce]\nrequire_idempotent = true\n"
            );
        }
        Compiled::new(PolicySet::parse(&[("p.toml".into(), text)]).unwrap(), cache)
    }

    #[test]
    fn plans_are_built_once_and_pattern_topics_cached_within_a_bound() {
        let c = compiled(50);
        let a = c.plan("orders").unwrap();
        assert!(
            std::ptr::eq(a, c.plan("orders").unwrap()),
            "one plan per policy"
        );
        assert_eq!(a.pipeline.names(), ["trace"]);
        assert!(a.record_work());
        let rx = c.plan("ev-1").unwrap();
        assert_eq!(rx.policy.name, "rx");
        assert!(!rx.record_work(), "batch headers only");
        assert!(c.plan("other").is_none());
        for i in 0..1000 {
            c.plan(&format!("ev-{i}"));
            c.plan(&format!("none-{i}"));
        }
        assert!(c.cached_topics() <= 50, "{} cached", c.cached_topics());
        assert!(c.cached_topics() > 0, "the cache is in use");
        assert_eq!(
            c.plan("ev-999").unwrap().policy.name,
            "rx",
            "still right after eviction"
        );
    }
}
