//! Dropping aborted transactions' batches from fetched records, as a
//! read_committed consumer would, for clients that Strait forces to
//! read_committed but that filter nothing themselves.

use bytes::{Bytes, BytesMut};

use super::batch::{Batches, Cursor, BATCH_HEADER_LEN};

/// `aborted` is the fetch response's (producer id, first offset) list.
/// Partial trailing bytes (a truncated last batch) are kept as they are.
pub fn drop_aborted(records: &Bytes, aborted: &[(i64, i64)]) -> Bytes {
    let mut pending: Vec<(i64, i64)> = aborted.to_vec();
    pending.sort_by_key(|a| a.1);
    let mut next = 0;
    let mut active: Vec<i64> = Vec::new();
    let mut kept: Vec<Bytes> = Vec::new();
    let mut dropped = false;
    let mut it = Batches::new(records.clone());
    for batch in it.by_ref() {
        let Ok(b) = batch else { break };
        let pid = b.producer_id();
        let mut keep = true;
        if pid >= 0 {
            while next < pending.len() && pending[next].1 <= b.last_offset() {
                active.push(pending[next].0);
                next += 1;
            }
            if b.is_control() {
                if is_abort_marker(&b.raw()[BATCH_HEADER_LEN..]) {
                    active.retain(|p| *p != pid);
                }
            } else if b.is_transactional() && active.contains(&pid) {
                keep = false;
            }
        }
        if keep {
            kept.push(b.into_raw());
        } else {
            dropped = true;
        }
    }
    if !dropped {
        return records.clone();
    }
    let mut out = BytesMut::with_capacity(records.len());
    for b in kept {
        out.extend_from_slice(&b);
    }
    out.extend_from_slice(it.rest());
    out.freeze()
}

/// Whether a control batch's first record is an ABORT marker (key: version, type 0).
fn is_abort_marker(records: &[u8]) -> bool {
    let mut r = Cursor(records);
    let parsed = (|| {
        r.varint()?; // length
        r.take(1)?; // attributes
        r.varint()?; // timestamp delta
        r.varint()?; // offset delta
        let key = r.bytes_varint()??;
        Some(key.get(2..4)? == [0, 0])
    })();
    parsed.unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::batch::{ATTRIBUTES_OFFSET, CRC_OFFSET};
    use crate::codec::build::{build_batch, Producer};

    /// A transactional batch of one record at `base` from producer `pid`.
    fn txn_batch(base: i64, pid: i64) -> Vec<u8> {
        let producer = Producer {
            id: pid,
            epoch: 0,
            base_sequence: 0,
            transactional: true,
        };
        let mut b = build_batch(producer, 0, &[(Some(&b"k"[..]), Some(&b"v"[..]), &[])]).to_vec();
        b[0..8].copy_from_slice(&base.to_be_bytes());
        let crc = crc32c::crc32c(&b[ATTRIBUTES_OFFSET..]);
        b[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
        b
    }

    #[test]
    fn aborted_transactions_are_dropped() {
        // pid 5's batch at offset 0 belongs to an aborted transaction; pid 6's does not.
        let a = txn_batch(0, 5);
        let c = txn_batch(1, 6);
        let mut data = a.clone();
        data.extend_from_slice(&c);
        data.extend_from_slice(&[1, 2, 3]); // a truncated tail stays
        let records = Bytes::from(data);
        let out = drop_aborted(&records, &[(5, 0)]);
        let mut want = c.clone();
        want.extend_from_slice(&[1, 2, 3]);
        assert_eq!(&out[..], &want[..]);
        assert_eq!(
            drop_aborted(&records, &[]),
            records,
            "nothing aborted: untouched"
        );
        assert_eq!(
            drop_aborted(&records, &[(5, 7)]),
            records,
            "abort starts later"
        );
    }
}
