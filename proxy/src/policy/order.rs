//! Keeping an idempotent producer's batches in order when Strait, not the
//! broker, refuses one of them.
//!
//! A broker that refuses batch N of a producer also refuses N+1, N+2, ...
//! (OUT_OF_ORDER_SEQUENCE), so the client retries them in order. When the
//! large-record stage refuses batch N with a retriable error (the store or
//! chunk topic is down), the broker never sees it; if Strait then forwarded
//! N+1 (pipelined behind N on the same connection) once the store is back,
//! a broker with no state for that producer would take it, and the retry of
//! N would be out of order: a gap, then a lost or duplicated record. So,
//! per connection, a retriable refusal of a batch with a producer id is
//! remembered, and later batches of that producer and partition are refused
//! the same way, without offloading anything, until the refused batch comes
//! again (the client's in-order retry) and gets any other verdict (it goes
//! to the broker, or is refused for good), or the producer's epoch changes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use strait_policies::{Policy, Rule, Violation};

use crate::codec::batch::Batch;
use crate::pipeline::large::KAFKA_STORAGE_ERROR;

/// Entries one connection remembers (a connection carries one producer,
/// so this is partitions refused at once; past it nothing more is held back).
const MAX_ENTRIES: usize = 10_000;

type Key = (i64, Arc<str>, i32);

/// Per connection: (producer id, topic, partition) → (epoch, first refused
/// base sequence).
#[derive(Debug, Default)]
pub struct Refusals(Mutex<HashMap<Key, (i16, i32)>>);

impl Refusals {
    fn key(topic: &Arc<str>, partition: i32, b: &Batch) -> Option<Key> {
        (b.producer_id() >= 0 && b.base_sequence() >= 0)
            .then(|| (b.producer_id(), topic.clone(), partition))
    }

    /// The refused base sequence a batch must wait behind, if any.
    pub fn waits_behind(&self, topic: &Arc<str>, partition: i32, b: &Batch) -> Option<i32> {
        let key = Self::key(topic, partition, b)?;
        let mut map = self.0.lock().expect("refusals lock");
        let &(epoch, seq) = map.get(&key)?;
        if epoch != b.producer_epoch() {
            map.remove(&key); // a new epoch starts its sequences afresh
            return None;
        }
        (seq != b.base_sequence()).then_some(seq)
    }

    /// Strait refused `b` with a retriable error.
    pub fn refused(&self, topic: &Arc<str>, partition: i32, b: &Batch) {
        let Some(key) = Self::key(topic, partition, b) else {
            return;
        };
        let mut map = self.0.lock().expect("refusals lock");
        if map.len() < MAX_ENTRIES || map.contains_key(&key) {
            map.entry(key)
                .or_insert((b.producer_epoch(), b.base_sequence()));
        }
    }

    /// `b` got a verdict other than a retriable refusal: it goes to the
    /// broker, or is refused for good (a client does not send it again). If
    /// it is the batch the producer's later ones wait behind, they wait no
    /// more; a verdict on any other batch of that epoch changes nothing, as
    /// the retry they wait for has not come.
    pub fn settled(&self, topic: &Arc<str>, partition: i32, b: &Batch) {
        let Some(key) = Self::key(topic, partition, b) else {
            return;
        };
        let mut map = self.0.lock().expect("refusals lock");
        if map
            .get(&key)
            .is_some_and(|&(epoch, seq)| epoch != b.producer_epoch() || seq == b.base_sequence())
        {
            map.remove(&key);
        }
    }
}

/// A batch held back behind its producer's refused one (see `order`).
pub(super) fn waiting(policy: &Policy, seq: i32) -> Violation {
    Violation {
        rule: Rule::LargeRecords,
        error_code: KAFKA_STORAGE_ERROR,
        message: format!(
            "Strait policy {:?} rule large_records: an earlier batch of this producer (sequence {seq}) \
             could not be offloaded; this one waits for its retry (retriable: nothing was written)",
            policy.name
        ),
        record_errors: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::batch::batches;
    use crate::codec::build::{build_batch, Producer};

    fn batch(epoch: i16, seq: i32) -> Batch {
        let p = Producer {
            id: 5,
            epoch,
            base_sequence: seq,
            transactional: false,
        };
        batches(build_batch(p, 0, &[(None, Some(b"v"), &[])]))
            .unwrap()
            .remove(0)
    }

    #[test]
    fn later_batches_wait_behind_a_refused_one_until_it_comes_again() {
        let r = Refusals::default();
        let t: Arc<str> = Arc::from("t");
        assert_eq!(r.waits_behind(&t, 0, &batch(0, 0)), None);
        r.refused(&t, 0, &batch(0, 0));
        r.refused(&t, 0, &batch(0, 1)); // the first refusal is the one to wait for
        assert_eq!(r.waits_behind(&t, 0, &batch(0, 1)), Some(0));
        assert_eq!(
            r.waits_behind(&t, 1, &batch(0, 1)),
            None,
            "other partitions go on"
        );
        assert_eq!(
            r.waits_behind(&t, 0, &batch(0, 0)),
            None,
            "the retry itself goes"
        );
        r.settled(&t, 0, &batch(0, 0));
        assert_eq!(r.waits_behind(&t, 0, &batch(0, 1)), None);
        r.refused(&t, 0, &batch(0, 7));
        assert_eq!(
            r.waits_behind(&t, 0, &batch(1, 0)),
            None,
            "a new epoch starts afresh"
        );
        assert_eq!(
            r.waits_behind(&t, 0, &batch(0, 8)),
            None,
            "and the old entry is gone"
        );
        let plain = batches(build_batch(Producer::NONE, 0, &[(None, Some(b"v"), &[])])).unwrap();
        r.refused(&t, 0, &plain[0]);
        assert_eq!(
            r.waits_behind(&t, 0, &plain[0]),
            None,
            "no producer id: no order to keep"
        );
    }

    #[test]
    fn only_a_verdict_on_the_awaited_batch_ends_the_wait() {
        let r = Refusals::default();
        let t: Arc<str> = Arc::from("t");
        r.refused(&t, 0, &batch(0, 3));
        // A later batch refused for good (a record check, say): the retry
        // of 3 has not come, so the ones after it still wait.
        r.settled(&t, 0, &batch(0, 4));
        assert_eq!(
            r.waits_behind(&t, 0, &batch(0, 5)),
            Some(3),
            "still behind the retry of 3"
        );
        // The retry of 3 refused for good: nothing is left to wait for.
        r.settled(&t, 0, &batch(0, 3));
        assert_eq!(
            r.waits_behind(&t, 0, &batch(0, 4)),
            None,
            "the retry of 3 has had its verdict"
        );
    }
}
