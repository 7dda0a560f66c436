//! What the observation tap adds to a group's lag view: when each
//! partition's owner last consumed through this Strait, when its commit
//! came through, and its top keys.

use super::lag::GroupLag;
use crate::tap::Observed;

/// `g` (the lag of `group`) with the tap's observations filled in.
pub fn with_observed(mut g: GroupLag, observed: Option<&Observed>) -> GroupLag {
    let Some(seen) = observed else {
        return g;
    };
    for p in &mut g.partitions {
        if let Some((_, at)) = seen.last_commit(&g.group, &p.topic, p.partition) {
            p.last_commit_ms = p.last_commit_ms.max(Some(at));
        }
        p.last_consume_ms = p
            .client_id
            .as_deref()
            .and_then(|c| seen.last_consumed(c, &p.topic, p.partition))
            .map(|(at, _)| at);
        p.top_keys = seen.top_keys(&p.topic, p.partition);
    }
    g
}
