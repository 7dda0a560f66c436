//! The fetch side of large records on any input: the reference parser and
//! the restore step never panic, a reference that parses encodes back to
//! itself, and a restored partition is whole batches that are a prefix of
//! the input's (same base offsets and record counts), with every marked
//! record's value put back and its marker gone.
//!
//! The first byte, by bits:
//!   1    wrap the rest as the value of one marked record (marker chosen by
//!        bit 2: claim-check or chunks) in a valid batch, so mutations reach
//!        the reference parser through the restore step
//! The next two bytes are the response's max_bytes, in 64-byte units.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use strait_proxy::codec::batch::batches;
use strait_proxy::codec::build::{build_batch, Producer};
use strait_proxy::codec::edit::BatchEdit;
use strait_proxy::large::reference::{Reference, ReferenceError, CHUNKS, CLAIM_CHECK, MARKER};
use strait_proxy::large::restore::{restore_partition, Limits, ValueSource};
use strait_proxy::large::{Held, LargeError};

const CAP: usize = 1 << 20;
const FILL: u8 = 0xab;

/// Values of their declared size, when small.
struct Fixed;

impl ValueSource for Fixed {
    fn value(&self, r: &Reference) -> Result<Bytes, LargeError> {
        if r.size() > 1 << 16 {
            return Err(ReferenceError::Invalid("too large for the fuzz target").into());
        }
        Ok(Bytes::from(vec![FILL; r.size() as usize]))
    }
    fn hold(&self, _bytes: u64) -> Result<Option<Held>, LargeError> {
        Ok(None)
    }
    fn per_connection(&self) -> usize {
        1 << 20
    }
}

fuzz_target!(|data: &[u8]| {
    let [mode, a, b, rest @ ..] = data else {
        return;
    };
    let marker = if mode & 4 != 0 { CHUNKS } else { CLAIM_CHECK };
    if let Ok(r) = Reference::parse(marker, rest) {
        assert_eq!(Reference::parse(r.marker(), &r.encode()).as_ref(), Ok(&r));
    }
    let records = if mode & 2 != 0 {
        build_batch(
            Producer::NONE,
            0,
            &[(Some(&b"k"[..]), Some(rest), &[(MARKER, Some(marker)), (b"n", Some(b"1"))])],
        )
    } else {
        Bytes::copy_from_slice(rest)
    };
    let max = usize::from(u16::from_le_bytes([*a, *b])) * 64;
    let limit = Limits {
        max_bytes: max,
        partition_max: max,
        per_connection: 1 << 20,
    };
    let Ok(Some(out)) = restore_partition(records.clone(), &limit, &Fixed, CAP) else {
        return;
    };
    let input: Vec<_> = strait_proxy::codec::batch::Batches::new(records)
        .map_while(Result::ok)
        .collect();
    let output = batches(out).expect("restored records are whole batches");
    assert!(output.len() <= input.len(), "a prefix of the input's batches");
    for (x, y) in input.iter().zip(&output) {
        assert_eq!(
            (x.base_offset(), x.record_count(), x.producer_id(), x.base_sequence()),
            (y.base_offset(), y.record_count(), y.producer_id(), y.base_sequence()),
            "batch boundaries, offsets and producer fields stay as stored"
        );
        let mut e = BatchEdit::new(y.clone(), CAP).expect("a restored batch verifies");
        for r in e.peek_records().expect("a restored batch decodes") {
            assert!(r.header(MARKER).is_none(), "no marker left");
        }
    }
});
