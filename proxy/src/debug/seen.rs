//! What the observation tap adds to a group's lag view: when each
//! partition's owner last consumed through this Strait, when its commit
//! came through, and its top keys.

use super::lag::GroupLag;
use super::share::Shared;
use crate::tap::keys::TopKeys;
use crate::tap::Observed;

/// `g` (the lag of `group`) with the tap's observations filled in, this
/// instance's and (`shared`) the other instances'.
pub fn with_observed(
    mut g: GroupLag,
    observed: Option<&Observed>,
    shared: Option<&Shared>,
) -> GroupLag {
    let Some(seen) = observed else {
        return g;
    };
    for p in &mut g.partitions {
        let (topic, partition) = (p.topic.as_str(), p.partition);
        let commit = seen.last_commit(&g.group, topic, partition).map(|c| c.1);
        let others = shared.and_then(|s| s.last_commit(&g.group, topic, partition));
        p.last_commit_ms = p.last_commit_ms.max(commit).max(others);
        p.last_consume_ms = p.client_id.as_deref().and_then(|c| {
            let here = seen.last_consumed(c, topic, partition).map(|c| c.0);
            let there = shared.and_then(|s| s.last_consumed(c, topic, partition));
            here.max(there)
        });
        let mut keys: Vec<TopKeys> = shared
            .map(|s| s.top_keys(topic, partition))
            .unwrap_or_default();
        keys.extend(seen.top_keys(topic, partition));
        p.top_keys = TopKeys::merge(&keys);
    }
    g
}
