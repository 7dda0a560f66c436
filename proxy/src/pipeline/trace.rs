//! Trace-context stage: gives every record a W3C `traceparent` header
//! (version 00, sampled) unless it has one, which it keeps untouched;
//! optionally adds the producing client's id (replacing the one an earlier
//! hop through Strait gave it) and Strait's receive time. The
//! trace id of every record (new or kept) goes to the trace index.
//!
//! Ids: for idempotent batches they derive from (topic, partition, producer
//! id, epoch, base sequence) under a per-process random key, so a retried
//! batch gets the ids its first attempt got and the index agrees with what
//! the broker kept; other batches get a fresh random seed.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;

use bytes::{BufMut, Bytes, BytesMut};
use strait_policies::TraceRules;

use super::{Context, Stage, StageError, Traced};
use crate::codec::edit::BatchEdit;

/// `00-` + 32 hex + `-` + 16 hex + `-01`.
pub const TRACEPARENT_LEN: usize = 55;

static KEY: LazyLock<std::hash::RandomState> = LazyLock::new(std::hash::RandomState::new);
static UNSEEDED: AtomicU64 = AtomicU64::new(0);

pub struct Trace {
    header: Bytes,
    client_id_header: Option<Bytes>,
    received_at_header: Option<Bytes>,
}

impl Trace {
    pub fn new(rules: &TraceRules) -> Trace {
        let b = |s: &String| Bytes::copy_from_slice(s.as_bytes());
        Trace {
            header: b(&rules.header),
            client_id_header: rules.client_id_header.as_ref().map(b),
            received_at_header: rules.received_at_header.as_ref().map(b),
        }
    }
}

impl Stage for Trace {
    fn name(&self) -> &'static str {
        "trace"
    }

    fn rule(&self) -> strait_policies::Rule {
        strait_policies::Rule::Trace
    }

    fn apply(&self, batch: &mut BatchEdit, cx: &mut Context<'_>) -> Result<(), StageError> {
        let extra = self.client_id_header.is_some() || self.received_at_header.is_some();
        let missing = batch
            .peek_records()?
            .iter()
            .filter(|r| r.header(&self.header).is_none())
            .count();
        if missing == 0 && !extra {
            // Nothing to add: the batch passes as it came; index the kept ids.
            let records_before = cx.records_before;
            cx.traced
                .extend(batch.peek_records()?.iter().filter_map(|r| {
                    Some(Traced {
                        relative_offset: records_before + r.offset_delta,
                        trace_id: r.header(&self.header).flatten().and_then(parse_trace_id)?,
                        original_size: None,
                    })
                }));
            return Ok(());
        }
        let b = batch.batch();
        let seed = if b.producer_id() >= 0 {
            KEY.hash_one((
                cx.topic,
                cx.partition,
                b.producer_id(),
                b.producer_epoch(),
                b.base_sequence(),
            ))
        } else {
            KEY.hash_one((UNSEEDED.fetch_add(1, Ordering::Relaxed), cx.received_at_ms))
        };
        let client = match (&self.client_id_header, cx.client_id) {
            (Some(_), Some(c)) => Some(Bytes::copy_from_slice(c.as_bytes())),
            _ => None,
        };
        let received = self
            .received_at_header
            .as_ref()
            .map(|_| Bytes::from(cx.received_at_ms.to_string()));
        let mut values = BytesMut::with_capacity(missing * TRACEPARENT_LEN);
        let records_before = cx.records_before;
        for (i, r) in batch.records()?.iter_mut().enumerate() {
            let id = match r.header(&self.header) {
                Some(v) => v.and_then(parse_trace_id),
                None => {
                    let (trace_id, span_id) = ids(seed, i as u64);
                    write_traceparent(&mut values, trace_id, span_id);
                    r.add_header(self.header.clone(), Some(values.split().freeze()));
                    Some(trace_id)
                }
            };
            if let Some(trace_id) = id {
                cx.traced.push(Traced {
                    relative_offset: records_before + r.offset_delta,
                    trace_id,
                    original_size: None,
                });
            }
            if let (Some(h), Some(c)) = (&self.client_id_header, &client) {
                // The record may come from an earlier hop through Strait (a
                // stream app's input, then its repartition topic): it names
                // the client that produced it now, once.
                r.remove_header(h);
                r.add_header(h.clone(), Some(c.clone()));
            }
            if let (Some(h), Some(t)) = (&self.received_at_header, &received) {
                r.add_header(h.clone(), Some(t.clone()));
            }
        }
        Ok(())
    }
}

/// splitmix64's output function.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The trace and span id of record `i` of a batch seeded with `seed`
/// (never all zero, which W3C reserves as invalid).
pub fn ids(seed: u64, i: u64) -> (u128, u64) {
    const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;
    let at = |k: u64| mix(seed.wrapping_add((3 * i + k).wrapping_mul(GOLDEN)));
    let trace = (u128::from(at(1)) << 64 | u128::from(at(2))).max(1);
    (trace, at(3).max(1))
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `00-{trace id}-{span id}-01` in lowercase hex.
pub fn write_traceparent(out: &mut BytesMut, trace_id: u128, span_id: u64) {
    let mut v = *b"00-00000000000000000000000000000000-0000000000000000-01";
    for i in 0..32 {
        v[34 - i] = HEX[((trace_id >> (i * 4)) & 0xf) as usize];
    }
    for i in 0..16 {
        v[51 - i] = HEX[((span_id >> (i * 4)) & 0xf) as usize];
    }
    out.put_slice(&v);
}

/// The trace id of a valid W3C traceparent (version 00 layout; future
/// versions may append fields), else `None`.
pub fn parse_trace_id(v: &[u8]) -> Option<u128> {
    if v.len() < TRACEPARENT_LEN || v[2] != b'-' || v[35] != b'-' || v[52] != b'-' {
        return None;
    }
    if &v[..2] == b"ff" || (v.len() > TRACEPARENT_LEN && (&v[..2] == b"00" || v[55] != b'-')) {
        return None;
    }
    let hex = |s: &[u8]| -> Option<u128> {
        s.iter().try_fold(0u128, |acc, &c| {
            let d = match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                _ => return None,
            };
            Some(acc << 4 | u128::from(d))
        })
    };
    hex(&v[..2])?;
    let trace = hex(&v[3..35])?;
    let span = hex(&v[36..52])?;
    hex(&v[53..55])?;
    (trace != 0 && span != 0).then_some(trace)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record that went input → repartition → output through Strait
    /// carries one `strait-client-id` header, the last hop's; every other
    /// header stays, duplicates and order included.
    #[test]
    fn the_client_id_header_replaces_an_earlier_hops() {
        use crate::codec::batch::batches;
        use crate::codec::build::{build_batch, Producer, RecordSpec};
        use crate::codec::records::Record;
        use crate::pipeline::Pipeline;

        let set = strait_policies::PolicySet::parse(&[(
            "p.toml".into(),
            "[[policy]]\nname = \"p\"\ntopics = { exact = \"t\" }\n\
             [policy.trace]\nclient_id_header = \"strait-client-id\"\n"
                .into(),
        )])
        .unwrap();
        type Headers<'a> = &'a [(&'a [u8], Option<&'a [u8]>)];
        let earlier: Headers<'_> = &[
            (b"a", Some(b"1")),
            (b"strait-client-id", Some(b"input-app")),
            (b"a", Some(b"2")),
            (b"b", None),
        ];
        let twice: Headers<'_> = &[
            (b"strait-client-id", Some(b"one")),
            (b"a", Some(b"1")),
            (b"strait-client-id", Some(b"two")),
        ];
        let recs: Vec<RecordSpec<'_>> = vec![
            (None, Some(&b"v"[..]), earlier),
            (None, Some(&b"v"[..]), twice),
            (None, Some(&b"v"[..]), &[]),
        ];
        let input = build_batch(Producer::NONE, 0, &recs);
        let pipeline = Pipeline::for_policy(set.resolve("t").unwrap());
        let mut traced = Vec::new();
        let mut cx = Context {
            topic: "t",
            partition: 0,
            client_id: Some("streams-app"),
            api_version: 9,
            received_at_ms: 0,
            traced: &mut traced,
            records_before: 0,
            large: None,
        };
        let out = pipeline
            .run(&batches(input).unwrap(), 1 << 20, &mut cx)
            .unwrap()
            .expect("rewritten");
        let b = batches(out).unwrap().remove(0);
        let mut edit = BatchEdit::new(b, 1 << 20).unwrap();
        let rs = edit.peek_records().unwrap();
        fn client_ids(r: &Record) -> Vec<Option<&[u8]>> {
            r.headers()
                .filter(|(k, _)| *k == b"strait-client-id")
                .map(|(_, v)| v)
                .collect()
        }
        fn others(r: &Record) -> Vec<(&[u8], Option<&[u8]>)> {
            r.headers()
                .filter(|(k, _)| *k != b"strait-client-id" && *k != b"traceparent")
                .collect()
        }
        assert_eq!(rs.len(), 3);
        for (i, r) in rs.iter().enumerate() {
            assert_eq!(
                client_ids(r),
                [Some(&b"streams-app"[..])],
                "record {i}: this hop's client id, once"
            );
            assert!(r.header(b"traceparent").is_some());
        }
        assert_eq!(
            others(&rs[0]),
            [
                (&b"a"[..], Some(&b"1"[..])),
                (b"a", Some(b"2")),
                (b"b", None)
            ],
            "the client's headers stay, duplicates and order included"
        );
        assert_eq!(others(&rs[1]), [(&b"a"[..], Some(&b"1"[..]))]);
        assert!(others(&rs[2]).is_empty());
    }

    #[test]
    fn traceparent_is_w3c_and_parses_back() {
        let (t, s) = ids(42, 7);
        let mut b = BytesMut::new();
        write_traceparent(&mut b, t, s);
        assert_eq!(b.len(), TRACEPARENT_LEN);
        assert_eq!(parse_trace_id(&b), Some(t));
        assert_eq!(ids(42, 7), (t, s), "deterministic per seed and index");
        assert_ne!(ids(42, 8).0, t);
        assert_ne!(ids(43, 7).0, t);
        let known = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(
            parse_trace_id(known),
            Some(0x4bf92f3577b34da6a3ce929d0e0e4736)
        );
        for bad in [
            &b"00-00000000000000000000000000000000-00f067aa0ba902b7-01"[..],
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            b"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            b"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            b"not a traceparent",
        ] {
            assert_eq!(
                parse_trace_id(bad),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
