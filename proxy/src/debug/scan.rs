//! How many records a consumer at an offset still has to read: the
//! partition's log from the committed offset to the last stable offset,
//! read batch header by batch header (records are never decoded), without
//! the transaction markers and the records of aborted transactions, which
//! no consumer is ever handed. Offsets alone count both, which is why
//! `kafka-consumer-groups` shows a lag of 1 or more for a read_committed
//! group that has read everything.

use std::collections::HashSet;

use bytes::Bytes;

use crate::codec::batch::Batches;

/// The first `SCAN_BYTES` of the range are read; past them the rest of
/// the range counts by offsets (and the count says it is not exact).
pub const SCAN_BYTES: i32 = 256 << 10;

/// Timestamp type bit of a batch's attributes: LogAppendTime.
const LOG_APPEND_TIME: i16 = 0x08;

/// What a scan found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    /// Records a consumer at `from` still gets before `end`.
    pub records: i64,
    /// The whole range was read (else its unread rest counted by offsets).
    pub exact: bool,
    /// The time of the batch holding the first of those records (ms since
    /// the epoch).
    pub first_timestamp: Option<i64>,
}

/// Counts the records in `[from, end)` of `records` (batches fetched
/// read_committed from `from`, whose aborted transactions are `aborted`:
/// producer id and first offset).
pub fn count(records: Bytes, aborted: &[(i64, i64)], from: i64, end: i64) -> Count {
    let mut pending: Vec<(i64, i64)> = aborted.to_vec();
    pending.sort_by_key(|a| std::cmp::Reverse(a.1));
    let mut aborting: HashSet<i64> = HashSet::new();
    let mut records_left = 0i64;
    let mut first_timestamp = None;
    let mut reached = from;
    for batch in Batches::new(records) {
        let Ok(batch) = batch else { break };
        let (base, last) = (batch.base_offset(), batch.last_offset());
        if base >= end {
            break;
        }
        reached = reached.max(last + 1);
        // Aborted transactions that have begun by this batch.
        while pending.last().is_some_and(|a| a.1 <= last) {
            let (pid, _) = pending.pop().expect("checked");
            aborting.insert(pid);
        }
        if batch.is_control() {
            // The marker ends the producer's transaction.
            aborting.remove(&batch.producer_id());
            continue;
        }
        if batch.is_transactional() && aborting.contains(&batch.producer_id()) {
            continue;
        }
        let (lo, hi) = (base.max(from), last.min(end - 1));
        if lo > hi {
            continue;
        }
        let whole = base >= from && last < end;
        let n = if whole {
            i64::from(batch.record_count())
        } else {
            (hi - lo + 1).min(i64::from(batch.record_count()))
        };
        if n > 0 && first_timestamp.is_none() {
            first_timestamp = Some(if batch.attributes() & LOG_APPEND_TIME != 0 {
                batch.max_timestamp()
            } else {
                batch.base_timestamp()
            });
        }
        records_left += n;
    }
    let exact = reached >= end;
    if !exact {
        records_left += end - reached;
    }
    Count {
        records: records_left,
        exact,
        first_timestamp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::batch::{ATTRIBUTES_OFFSET, CONTROL, TRANSACTIONAL};
    use crate::codec::build::{build_batch, Producer};

    /// `n` records at `base` from producer `pid` (-1: none), at `ts`.
    fn data(base: i64, n: usize, pid: i64, transactional: bool, ts: i64) -> Bytes {
        let producer = Producer {
            id: pid,
            epoch: 0,
            base_sequence: 0,
            transactional,
        };
        let recs: Vec<_> = (0..n)
            .map(|_| (Some(&b"k"[..]), Some(&b"v"[..]), &[][..]))
            .collect();
        let mut b = build_batch(producer, ts, &recs).to_vec();
        b[0..8].copy_from_slice(&base.to_be_bytes());
        b.into()
    }

    /// A transaction marker at `base` (its record is not read here).
    fn control_batch(base: i64, pid: i64) -> Bytes {
        let mut b = data(base, 1, pid, true, 0).to_vec();
        let attrs = (TRANSACTIONAL | CONTROL).to_be_bytes();
        b[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attrs);
        b.into()
    }

    fn join(parts: &[Bytes]) -> Bytes {
        parts.concat().into()
    }

    #[test]
    fn markers_and_aborted_records_are_not_lag() {
        // Committed transaction of 3 (offsets 0-2) + marker (3), aborted
        // transaction of 2 (4-5) + marker (6), committed 2 (7-8) + marker (9).
        let log = join(&[
            data(0, 3, 7, true, 100),
            control_batch(3, 7),
            data(4, 2, 8, true, 200),
            control_batch(6, 8),
            data(7, 2, 7, true, 300),
            control_batch(9, 7),
        ]);
        let aborted = [(8, 4)];
        // A consumer that committed 3 (past the data, before the marker).
        let c = count(log.clone(), &aborted, 3, 10);
        assert_eq!(c.records, 2, "only 7-8 are left to read");
        assert!(c.exact);
        assert_eq!(c.first_timestamp, Some(300));
        // Caught up but for the last marker: nothing left.
        let c = count(log.slice(..), &aborted, 9, 10);
        assert_eq!((c.records, c.exact), (0, true));
        // From the start: 3 + 2.
        assert_eq!(count(log, &aborted, 0, 10).records, 5);
    }

    #[test]
    fn a_range_past_what_was_read_counts_its_rest_by_offsets() {
        let log = join(&[data(10, 5, -1, false, 50)]);
        // Committed mid-batch: the batch counts from there.
        let c = count(log.clone(), &[], 12, 100);
        assert_eq!(c.records, 3 + (100 - 15));
        assert!(!c.exact);
        assert_eq!(c.first_timestamp, Some(50));
        // Nothing fetched at all.
        let c = count(Bytes::new(), &[], 20, 25);
        assert_eq!((c.records, c.exact, c.first_timestamp), (5, false, None));
    }
}
