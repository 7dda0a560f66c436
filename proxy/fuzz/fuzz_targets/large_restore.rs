//! The fetch side of large records on any input: the reference parser and
//! the restore step never panic, a reference that parses encodes back to
//! itself, and a restored partition is whole batches that are a prefix of
//! the input's: at least its first batch (KIP-74: kept even over the
//! limit), no more than `max_bytes` unless that first batch alone, each
//! batch with the input's base offset, last offset delta, record count and
//! producer fields. In a restored batch every marked record holds the value
//! the [`ValueSource`] gives for its reference, without the marker, and every
//! other record is as it came; a batch passed as it came holds no marker. A
//! reference to another topic's object or chunk topic is never read: the
//! restore fails (first batch) or the answer ends before its batch.
//!
//! The first byte, by bits:
//!   1    wrap the rest as the value of one marked record (marker chosen by
//!        bit 2: claim-check or chunks) in a valid batch, so mutations reach
//!        the reference parser through the restore step
//!   3    build batches from the rest, a byte a step (see [`script`]), with
//!        references Strait would write for the topic and some it would not,
//!        so restores happen and their values can be checked
//! The next two bytes are the response's max_bytes, in 64-byte units.
#![no_main]

use std::sync::Mutex;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use strait_policies::LargeRecordRules;
use strait_proxy::codec::batch::{batches, Batch, Batches};
use strait_proxy::codec::build::{build_batch, HeaderSpec, Producer, RecordSpec};
use strait_proxy::codec::edit::BatchEdit;
use strait_proxy::large::reference::{
    Manifest, ObjectRef, Reference, ReferenceError, Scope, CHUNKS, CLAIM_CHECK, MARKER,
};
use strait_proxy::large::restore::{references, restore_partition, Limits, ValueSource};
use strait_proxy::large::{Held, LargeError};

const CAP: usize = 1 << 20;
const TOPIC: &str = "fuzz";

/// Values of their declared size, when small, made of the reference's hash
/// so one put in another record's place shows; records what it was asked.
struct Fixed {
    asked: Mutex<Vec<Reference>>,
}

fn fixed_value(r: &Reference) -> Bytes {
    let h = r.sha256();
    Bytes::from(
        (0..r.size() as usize)
            .map(|i| h[i % 32])
            .collect::<Vec<u8>>(),
    )
}

impl ValueSource for Fixed {
    fn value(&self, r: &Reference) -> Result<Bytes, LargeError> {
        self.asked.lock().unwrap().push(r.clone());
        if r.size() > 1 << 16 {
            return Err(ReferenceError::Invalid("too large for the fuzz target").into());
        }
        Ok(fixed_value(r))
    }
    fn hold(&self, _bytes: u64) -> Result<Option<Held>, LargeError> {
        Ok(None)
    }
    fn per_connection(&self) -> usize {
        1 << 20
    }
}

fn rules() -> LargeRecordRules {
    LargeRecordRules {
        threshold: 1024,
        remedies: Vec::new(),
        prefix: "strait".into(),
        chunk_topic: "{topic}.strait-chunks".into(),
        chunk_bytes: 1 << 16,
        allow_compacted: false,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn reference(topic: &str, chunks: bool, size: u64, sha256: [u8; 32]) -> Reference {
    if chunks {
        Reference::Chunks(Manifest {
            topic: format!("{topic}.strait-chunks"),
            partition: 0,
            ranges: vec![(7, 1)],
            chunks: 1,
            size,
            sha256,
        })
    } else {
        Reference::Object(ObjectRef {
            key: format!("strait/{topic}/{}", hex(&sha256)),
            size,
            sha256,
        })
    }
}

/// Batches built from `steps`, a byte each, by its low two bits: 0 ends the
/// batch, 1 adds a plain record, 2 a record with a reference Strait would
/// write for [`TOPIC`] (bit 2: chunks or claim-check; bits 3 on: its size
/// in 211-byte units), 3 one to another topic's object or chunk topic. The
/// index of the first batch with a foreign reference comes with them.
fn script(steps: &[u8]) -> (Bytes, Option<usize>) {
    let mut out = Vec::new();
    let mut foreign = None;
    let mut batch: Vec<(Vec<u8>, Option<&'static [u8]>)> = Vec::new();
    let mut base = 0i64;
    let mut seal = |batch: &mut Vec<(Vec<u8>, Option<&'static [u8]>)>, out: &mut Vec<u8>| {
        if batch.is_empty() {
            return;
        }
        let marked: Vec<[HeaderSpec<'_>; 2]> = batch
            .iter()
            .map(|(_, m)| [(MARKER, *m), (&b"n"[..], Some(&b"1"[..]))])
            .collect();
        let specs: Vec<RecordSpec<'_>> = batch
            .iter()
            .zip(&marked)
            .map(|((v, m), h)| {
                let headers: &[HeaderSpec<'_>] = if m.is_some() { h } else { &h[1..] };
                (Some(&b"k"[..]), Some(&v[..]), headers)
            })
            .collect();
        let mut raw = build_batch(Producer::NONE, 0, &specs).to_vec();
        raw[..8].copy_from_slice(&base.to_be_bytes());
        base += batch.len() as i64;
        out.extend(raw);
        batch.clear();
    };
    for (i, &b) in steps.iter().enumerate() {
        // A hash of its own per record, so values differ byte to byte.
        let mut sha256 = [0u8; 32];
        for (j, s) in sha256.iter_mut().enumerate() {
            *s = (i as u8).wrapping_mul(31) ^ b ^ (j as u8).wrapping_mul(7);
        }
        match b & 3 {
            0 => seal(&mut batch, &mut out),
            1 => batch.push((vec![b; usize::from(b >> 2)], None)),
            kind => {
                let topic = if kind == 3 {
                    if foreign.is_none() {
                        foreign = Some(Batches::new(Bytes::from(out.clone())).count());
                    }
                    "other"
                } else {
                    TOPIC
                };
                let r = reference(topic, b & 4 != 0, u64::from(b >> 3) * 211, sha256);
                batch.push((r.encode(), Some(r.marker())));
            }
        }
    }
    seal(&mut batch, &mut out);
    (Bytes::from(out), foreign)
}

fuzz_target!(|data: &[u8]| {
    let [mode, a, b, rest @ ..] = data else {
        return;
    };
    let marker = if mode & 4 != 0 { CHUNKS } else { CLAIM_CHECK };
    if let Ok(r) = Reference::parse(marker, rest) {
        assert_eq!(Reference::parse(r.marker(), &r.encode()).as_ref(), Ok(&r));
    }
    let (records, foreign) = if mode & 8 != 0 {
        let (records, foreign) = script(rest);
        (records, Some(foreign))
    } else if mode & 2 != 0 {
        let headers: &[HeaderSpec<'_>] = &[(MARKER, Some(marker)), (b"n", Some(b"1"))];
        let batch = build_batch(Producer::NONE, 0, &[(Some(&b"k"[..]), Some(rest), headers)]);
        (batch, None)
    } else {
        (Bytes::copy_from_slice(rest), None)
    };
    let max = usize::from(u16::from_le_bytes([*a, *b])) * 64;
    let limit = Limits {
        max_bytes: max,
        partition_max: max,
        per_connection: 1 << 20,
    };
    let scope = Scope::new(TOPIC, &rules());
    let source = Fixed {
        asked: Mutex::new(Vec::new()),
    };
    let result = restore_partition(&scope, records.clone(), &limit, &source, CAP);
    let asked = source.asked.into_inner().unwrap();
    for r in &asked {
        assert_eq!(scope.check(r), Ok(()), "read a reference of another topic");
    }
    let input: Vec<Batch> = Batches::new(records).map_while(Result::ok).collect();
    let out = match result {
        Err(e) => {
            let first = input.first().expect("an error names a batch");
            let at = format!("batch at offset {}:", first.base_offset());
            assert!(e.starts_with(&at), "only the first batch fails: {e}");
            if let Some(k) = foreign {
                assert_eq!(k, Some(0), "failed without a foreign reference: {e}");
                assert!(e.contains("the reference names"), "{e}");
            }
            return;
        }
        Ok(None) => {
            if let Some(k) = foreign {
                assert_eq!(k, None, "a foreign reference passed unread");
            }
            // As they came: then no batch held a marker to restore.
            for x in &input {
                assert!(
                    matches!(references(x, CAP), Ok(None)),
                    "batch at {} passed with its marker",
                    x.base_offset()
                );
            }
            return;
        }
        Ok(Some(out)) => out,
    };
    let output = batches(out.clone()).expect("restored records are whole batches");
    assert!(
        !output.is_empty(),
        "the first batch is always kept (KIP-74): {} in",
        input.len()
    );
    assert!(
        output.len() <= input.len(),
        "a prefix of the input's batches"
    );
    assert!(
        output.len() == 1 || out.len() <= max,
        "{} batches of {} bytes over max_bytes {max}",
        output.len(),
        out.len()
    );
    if let Some(Some(k)) = foreign {
        assert!(
            output.len() <= k,
            "the answer runs past a foreign reference"
        );
    }
    for (x, y) in input.iter().zip(&output) {
        assert_eq!(
            (
                x.base_offset(),
                x.last_offset(),
                x.record_count(),
                x.producer_id(),
                x.producer_epoch(),
                x.base_sequence()
            ),
            (
                y.base_offset(),
                y.last_offset(),
                y.record_count(),
                y.producer_id(),
                y.producer_epoch(),
                y.base_sequence()
            ),
            "batch boundaries, offsets, counts and producer fields stay as stored"
        );
        assert!(
            matches!(references(y, CAP), Ok(None)),
            "no marker left in the batch at {}",
            y.base_offset()
        );
        if x.raw() == y.raw() {
            continue;
        }
        let Ok(Some((mut before, found))) = references(x, CAP) else {
            panic!("batch at {} changed without a marker", x.base_offset());
        };
        let mut after = BatchEdit::new(y.clone(), CAP).expect("a restored batch verifies");
        let after = after.peek_records().expect("a restored batch decodes");
        let before = before.peek_records().expect("its input decoded");
        assert_eq!(before.len(), after.len(), "records of the batch");
        for (i, (p, q)) in before.iter().zip(after).enumerate() {
            assert_eq!(
                (p.offset_delta, p.timestamp_delta, &p.key),
                (q.offset_delta, q.timestamp_delta, &q.key),
                "record {i}"
            );
            let headers = |r: &strait_proxy::codec::records::Record| {
                r.headers()
                    .filter(|(k, _)| *k != MARKER)
                    .map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec)))
                    .collect::<Vec<_>>()
            };
            assert_eq!(headers(p), headers(q), "record {i}: other headers kept");
            match found.iter().find(|(j, _)| *j == i) {
                Some((_, Ok(r))) => assert_eq!(
                    q.value.as_ref(),
                    Some(&fixed_value(r)),
                    "record {i}: the value of {r:?}"
                ),
                Some((_, Err(e))) => panic!("record {i} restored from a bad reference: {e}"),
                None => assert_eq!(p.value, q.value, "record {i}: not marked, kept"),
            }
        }
    }
});
