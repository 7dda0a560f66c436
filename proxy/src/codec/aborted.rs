//! Dropping aborted transactions' records from fetched records, as a
//! read_committed consumer would, for clients that Strait forces to
//! read_committed but that filter nothing themselves.
//!
//! An aborted batch is not removed outright: it becomes a control batch
//! over the same offsets (one ABORT marker record at the batch's last
//! offset, no data). Removing it would leave a fetch window that holds only
//! aborted data (the abort marker past the partition's `max_bytes`) with no
//! batch at all, and the client would fetch the same offset forever: clients
//! step past data by the batches they receive. Every client skips control
//! batches (a read_uncommitted consumer of a transactional topic receives
//! one per transaction) and moves its position past them, whether it counts
//! from the batch header (`base offset + last offset delta + 1`, Java) or
//! from the last record's offset (the marker sits at the last offset).

use bytes::{BufMut, Bytes, BytesMut};

use super::batch::{
    Batch, Batches, Cursor, ATTRIBUTES_OFFSET, BASE_SEQUENCE_OFFSET, BATCH_HEADER_LEN, CODEC_MASK,
    CONTROL, CRC_OFFSET, LENGTH_OFFSET, RECORD_COUNT_OFFSET, TRANSACTIONAL,
};
use super::records::put_varint;

/// `aborted` is the fetch response's (producer id, first offset) list.
/// Aborted batches become marker-only control batches over the same
/// offsets ([`marker_in_place_of`]). Partial trailing bytes (a truncated
/// last batch) are kept as they are.
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
            kept.push(marker_in_place_of(&b));
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

/// A control batch in place of the aborted batch `b`: its header (base
/// offset, last offset delta, timestamps, producer id and epoch, leader
/// epoch) with the control and transactional flags, no codec, no sequence,
/// and one ABORT marker record at the batch's last offset.
fn marker_in_place_of(b: &Batch) -> Bytes {
    let raw = b.raw();
    let last_delta = b.last_offset() - b.base_offset();
    // The marker: key = (version 0, type 0 ABORT), value = (version 0,
    // coordinator epoch 0), no headers.
    let mut record = BytesMut::with_capacity(32);
    record.put_i8(0); // attributes
    put_varint(&mut record, 0); // timestamp delta
    put_varint(&mut record, last_delta);
    put_varint(&mut record, 4);
    record.put_slice(&[0, 0, 0, 0]);
    put_varint(&mut record, 6);
    record.put_slice(&[0, 0, 0, 0, 0, 0]);
    put_varint(&mut record, 0); // headers
    let mut out = BytesMut::with_capacity(BATCH_HEADER_LEN + record.len() + 5);
    out.put_slice(&raw[..BATCH_HEADER_LEN]);
    put_varint(&mut out, record.len() as i64);
    out.put_slice(&record);
    let length = (out.len() - LENGTH_OFFSET - 4) as i32;
    out[LENGTH_OFFSET..LENGTH_OFFSET + 4].copy_from_slice(&length.to_be_bytes());
    let attributes = (b.attributes() & !CODEC_MASK) | TRANSACTIONAL | CONTROL;
    out[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attributes.to_be_bytes());
    out[BASE_SEQUENCE_OFFSET..BASE_SEQUENCE_OFFSET + 4].copy_from_slice(&(-1i32).to_be_bytes());
    out[RECORD_COUNT_OFFSET..RECORD_COUNT_OFFSET + 4].copy_from_slice(&1i32.to_be_bytes());
    let crc = crc32c::crc32c(&out[ATTRIBUTES_OFFSET..]);
    out[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
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

    /// The batches of `records`: (base offset, last offset, control, records section).
    fn batches(records: &Bytes) -> Vec<(i64, i64, bool, Bytes)> {
        Batches::new(records.clone())
            .map_while(Result::ok)
            .map(|b| {
                (
                    b.base_offset(),
                    b.last_offset(),
                    b.is_control(),
                    b.records(),
                )
            })
            .collect()
    }

    #[test]
    fn aborted_batches_become_abort_markers_over_the_same_offsets() {
        // pid 5's batch at offset 0 belongs to an aborted transaction; pid 6's does not.
        let a = txn_batch(0, 5);
        let c = txn_batch(1, 6);
        let mut data = a.clone();
        data.extend_from_slice(&c);
        data.extend_from_slice(&[1, 2, 3]); // a truncated tail stays
        let records = Bytes::from(data);
        let out = drop_aborted(&records, &[(5, 0)]);
        let got = batches(&out);
        assert_eq!(got.len(), 2, "{got:?}");
        let (base, last, control, section) = &got[0];
        assert_eq!(
            (*base, *last, *control),
            (0, 0, true),
            "a marker over offset 0"
        );
        assert!(is_abort_marker(section), "an ABORT marker record");
        assert!(
            !section.windows(1).any(|w| w == b"v"),
            "no aborted data left"
        );
        assert_eq!(
            &out[out.len() - c.len() - 3..],
            &[&c[..], &[1, 2, 3]].concat()[..]
        );
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

    #[test]
    fn a_window_of_only_aborted_data_still_moves_the_consumer_past_it() {
        // Three aborted batches of pid 5, the abort marker beyond the window.
        let mut data = Vec::new();
        for base in [10, 11, 12] {
            data.extend_from_slice(&txn_batch(base, 5));
        }
        let records = Bytes::from(data);
        let out = drop_aborted(&records, &[(5, 10)]);
        let got = batches(&out);
        let offsets: Vec<(i64, i64, bool)> = got.iter().map(|(b, l, c, _)| (*b, *l, *c)).collect();
        assert_eq!(
            offsets,
            vec![(10, 10, true), (11, 11, true), (12, 12, true)]
        );
        // An independent decoder reads each as a valid control batch (CRC,
        // lengths) whose one record sits at the batch's last offset.
        let mut buf = out.clone();
        let sets = kafka_protocol::records::RecordBatchDecoder::decode_all(&mut buf)
            .expect("valid batches");
        let seen: Vec<(i64, bool)> = sets
            .iter()
            .flat_map(|s| s.records.iter().map(|r| (r.offset, r.control)))
            .collect();
        assert_eq!(seen, vec![(10, true), (11, true), (12, true)]);
    }
}
