//! An event's route: every produce, fetch and commit of the records that
//! carry one trace id, across topics, in time order. Produces come from the
//! trace index (where the broker put each traced record, and who sent it);
//! fetches and commits from the observation tap's hops on those records.

use serde::Serialize;

use crate::pipeline::route::HopKind;
use crate::pipeline::TraceIndex;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Produce,
    Fetch,
    Commit,
}

#[derive(Debug, Clone, Serialize)]
pub struct RouteEvent {
    pub at_ms: u64,
    pub kind: Kind,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub client_id: Option<String>,
    /// The consuming group (fetches by a client Strait has seen join or
    /// commit in one; every commit).
    pub group: Option<String>,
    /// The value's size when it went to the object store or a chunk topic.
    pub offloaded_bytes: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct Route {
    pub trace_id: String,
    pub events: Vec<RouteEvent>,
}

/// The route of a trace, or None when the index holds none of its records.
pub fn route(traces: &TraceIndex, trace_id: u128) -> Option<Route> {
    let located = traces.lookup(trace_id);
    if located.is_empty() {
        return None;
    }
    let mut events = Vec::new();
    for l in located {
        let at = |at_ms, kind, client: Option<&str>, group: Option<&str>| RouteEvent {
            at_ms,
            kind,
            topic: l.topic.to_string(),
            partition: l.partition,
            offset: l.offset,
            client_id: client.map(str::to_string),
            group: group.map(str::to_string),
            offloaded_bytes: None,
        };
        events.push(RouteEvent {
            offloaded_bytes: l.original_size,
            ..at(l.at_ms, Kind::Produce, l.client.as_deref(), None)
        });
        for h in traces.hops().of(&l.topic, l.partition, l.offset) {
            let kind = match h.kind {
                HopKind::Fetch => Kind::Fetch,
                HopKind::Commit => Kind::Commit,
            };
            // A fetch can be answered in the instant its produce is
            // acknowledged (acks=all: both wait for the high watermark), and
            // the two answers reach Strait on different connections: a hop
            // is never shown before its record was produced.
            let at_ms = h.at_ms.max(l.at_ms);
            events.push(at(at_ms, kind, h.client.as_deref(), h.group.as_deref()));
        }
    }
    // Time order; within a millisecond, a record is produced before it is
    // fetched, and fetched before it is committed.
    events.sort_by_key(|e| (e.at_ms, e.kind));
    Some(Route {
        trace_id: format!("{trace_id:032x}"),
        events,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::pipeline::route::Hop;
    use crate::pipeline::Traced;

    #[test]
    fn a_route_is_its_produces_and_hops_in_time_order() {
        let ix = TraceIndex::new(100);
        let id = 0xabcu128;
        let traced = |rel| Traced {
            relative_offset: rel,
            trace_id: id,
            original_size: None,
        };
        ix.record("a", 0, 10, Some("producer"), &[traced(0)]);
        ix.record("b", 1, 3, Some("fwd"), &[traced(0)]);
        let hop = |kind, at_ms, client: &str, group: Option<&str>| Hop {
            kind,
            at_ms,
            client: Some(Arc::from(client)),
            group: group.map(Arc::from),
        };
        let t0 = crate::metrics::now_ms() + 1_000;
        ix.hops().passed(
            "a",
            0,
            Some(10),
            11,
            &hop(HopKind::Fetch, t0, "svc", Some("g1")),
        );
        ix.hops().passed(
            "a",
            0,
            None,
            11,
            &hop(HopKind::Commit, t0 + 5, "svc", Some("g1")),
        );
        ix.hops().passed(
            "b",
            1,
            Some(0),
            4,
            &hop(HopKind::Fetch, t0 + 2, "sink", None),
        );
        let r = route(&ix, id).expect("indexed");
        assert_eq!(r.trace_id, format!("{id:032x}"));
        let seen: Vec<(Kind, &str, i64)> = r
            .events
            .iter()
            .map(|e| (e.kind, e.topic.as_str(), e.offset))
            .collect();
        assert_eq!(
            seen,
            [
                (Kind::Produce, "a", 10),
                (Kind::Produce, "b", 3),
                (Kind::Fetch, "a", 10),
                (Kind::Fetch, "b", 3),
                (Kind::Commit, "a", 10),
            ]
        );
        assert_eq!(r.events[4].group.as_deref(), Some("g1"));
        assert!(route(&ix, 0xdef).is_none());
    }
}
