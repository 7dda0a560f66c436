//! The trace index: where each traced record landed (topic, partition,
//! offset) and which client produced it, for the trace-route view. Bounded:
//! the oldest entries go first. Filled from produce responses, once the
//! broker has assigned offsets; one lock per produce response.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use super::Traced;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceLocation {
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
    pub client: Option<Arc<str>>,
}

pub struct TraceIndex {
    entries: Mutex<VecDeque<(u128, TraceLocation)>>,
    cap: usize,
}

impl TraceIndex {
    pub fn new(cap: usize) -> TraceIndex {
        TraceIndex {
            entries: Mutex::new(VecDeque::new()),
            cap,
        }
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
        if self.cap == 0 || traced.is_empty() {
            return;
        }
        let topic: Arc<str> = Arc::from(topic);
        let client: Option<Arc<str>> = client.map(Arc::from);
        let mut e = self.entries.lock().expect("trace index lock");
        for t in traced.iter().skip(traced.len().saturating_sub(self.cap)) {
            if e.len() == self.cap {
                e.pop_front();
            }
            e.push_back((
                t.trace_id,
                TraceLocation {
                    topic: topic.clone(),
                    partition,
                    offset: base_offset + t.relative_offset,
                    client: client.clone(),
                },
            ));
        }
    }

    /// Every indexed record of a trace, oldest first.
    pub fn lookup(&self, trace_id: u128) -> Vec<TraceLocation> {
        let e = self.entries.lock().expect("trace index lock");
        e.iter()
            .filter(|(id, _)| *id == trace_id)
            .map(|(_, l)| l.clone())
            .collect()
    }

    pub fn len(&self) -> usize {
        self.entries.lock().expect("trace index lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_oldest_first_out() {
        let ix = TraceIndex::new(3);
        let t = |id: u128, rel: i64| Traced {
            relative_offset: rel,
            trace_id: id,
        };
        ix.record("a", 0, 100, Some("c1"), &[t(1, 0), t(2, 1)]);
        ix.record("b", 2, 7, None, &[t(3, 0), t(1, 1)]);
        assert_eq!(ix.len(), 3);
        assert!(ix.lookup(2).len() == 1);
        let one = ix.lookup(1);
        assert_eq!(one.len(), 1, "the oldest entry of trace 1 was evicted");
        assert_eq!(
            (&*one[0].topic, one[0].partition, one[0].offset),
            ("b", 2, 8)
        );
        assert!(ix.lookup(9).is_empty());
    }
}
