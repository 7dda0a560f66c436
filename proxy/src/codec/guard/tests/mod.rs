//! Every layout against kafka-protocol itself, at every version: messages
//! built from the layout (arrays of 0 to 3 elements, nullable fields null
//! and not, known and unknown tagged fields) must decode with
//! kafka-protocol to their very end, and kafka-protocol's own encoding of
//! what it decoded must be walked to its very end (so the walk reads
//! exactly the fields the decoder reads: no false refusal of valid
//! traffic). Then the same bodies, corrupted: a huge, a negative or a
//! 2^32-ish array count, a cut body, and tags out of order or past 2^31 - 1
//! must each be refused.

use super::walk::Walk;
use super::{Layout, Malformed, F, T};

mod build;
mod messages;

use build::Gen;
use messages::{Case, CASES};

/// Seeds per message and version: each builds a different message.
const SEEDS: u64 = 24;

/// The walk of `body`, with where it read each array length.
fn walk(layout: &Layout, v: i16, body: &[u8]) -> (Result<usize, Malformed>, Vec<(usize, bool)>) {
    let mut w = Walk::new(body, v >= layout.flex, v);
    let r = w.fields(layout.fields).map(|()| w.at());
    (r, w.arrays)
}

fn versions(c: &Case) -> std::ops::RangeInclusive<i16> {
    c.layout.lo..=c.layout.hi
}

#[test]
fn every_layout_matches_kafka_protocol_at_every_version() {
    for c in CASES {
        assert_eq!(
            (c.layout.lo, c.layout.hi),
            c.versions,
            "{}: the layout covers kafka-protocol's versions",
            c.name
        );
        for v in versions(c) {
            let mut encoded_ok = 0;
            for seed in 0..SEEDS {
                let (body, _) = Gen::message(c.layout, v, seed);
                // kafka-protocol decodes the built message to its end...
                let (used, again) = (c.roundtrip)(&body, v)
                    .unwrap_or_else(|e| panic!("{} v{v} seed {seed}: {e:#}\n{body:?}", c.name));
                assert_eq!(
                    used,
                    body.len(),
                    "{} v{v} seed {seed}: decoded to the end",
                    c.name
                );
                // ...and so does the walk.
                assert_eq!(
                    walk(c.layout, v, &body).0,
                    Ok(body.len()),
                    "{} v{v} seed {seed}",
                    c.name
                );
                // kafka-protocol's own encoding of it is walked to its end.
                if let Some(again) = again {
                    encoded_ok += 1;
                    assert_eq!(
                        walk(c.layout, v, &again).0,
                        Ok(again.len()),
                        "{} v{v} seed {seed}: kafka-protocol's encoding",
                        c.name
                    );
                }
            }
            assert!(
                encoded_ok > 0,
                "{} v{v}: kafka-protocol encoded none",
                c.name
            );
        }
    }
}

#[test]
fn a_cut_body_is_refused() {
    for c in CASES {
        for v in versions(c) {
            for seed in 0..SEEDS {
                let (body, _) = Gen::message(c.layout, v, seed);
                if body.is_empty() {
                    continue;
                }
                let cut = &body[..body.len() - 1];
                assert!(
                    matches!(walk(c.layout, v, cut).0, Err(Malformed::Short { .. })),
                    "{} v{v} seed {seed}: one byte short",
                    c.name
                );
            }
        }
    }
}

/// Replaces the array length at `at` (an int32, or a varint in flexible
/// versions) with `count`.
fn with_count(body: &[u8], at: usize, flexible: bool, count: &[u8]) -> Vec<u8> {
    let len = if flexible {
        1 + body[at..].iter().take_while(|b| **b >= 0x80).count()
    } else {
        4
    };
    [&body[..at], count, &body[at + len..]].concat()
}

#[test]
fn huge_and_negative_array_counts_are_refused_before_decoding() {
    let mut arrays = 0;
    for c in CASES {
        for v in versions(c) {
            for seed in 0..SEEDS {
                let (body, _) = Gen::message(c.layout, v, seed);
                let (_, at) = walk(c.layout, v, &body);
                for (at, flexible) in at {
                    arrays += 1;
                    let counts: &[&[u8]] = if flexible {
                        // 2^31 - 1 and 2^32 - 2 elements.
                        &[
                            &[0x80, 0x80, 0x80, 0x80, 0x08],
                            &[0xff, 0xff, 0xff, 0xff, 0x0f],
                        ]
                    } else {
                        &[&[0x7f, 0xff, 0xff, 0xff], &[0x40, 0, 0, 0]]
                    };
                    for count in counts {
                        let bad = with_count(&body, at, flexible, count);
                        assert!(
                            matches!(walk(c.layout, v, &bad).0, Err(Malformed::Array { at: a, .. }) if a == at),
                            "{} v{v} seed {seed}: huge array at {at}",
                            c.name
                        );
                    }
                    if !flexible {
                        let bad = with_count(&body, at, false, &(-2i32).to_be_bytes());
                        assert_eq!(
                            walk(c.layout, v, &bad).0,
                            Err(Malformed::Negative { at, count: -2 }),
                            "{} v{v} seed {seed}: negative array at {at}",
                            c.name
                        );
                    }
                }
            }
        }
    }
    assert!(arrays > 1000, "only {arrays} arrays corrupted");
}

#[test]
fn tags_out_of_order_or_past_int32_are_refused() {
    for c in CASES {
        for v in versions(c).filter(|v| *v >= c.layout.flex) {
            let (body, tags_at) = Gen::message(c.layout, v, 1);
            let with_tags = |tags: &[u8]| [&body[..tags_at], tags].concat();
            assert_eq!(
                walk(c.layout, v, &with_tags(&[2, 93, 0, 97, 0]))
                    .0
                    .map(|_| ()),
                Ok(())
            );
            // Tag 97 twice, and 97 before 93 (unknown tags, empty).
            for tags in [[2, 97, 0, 97, 0], [2, 97, 0, 93, 0]] {
                assert!(
                    matches!(walk(c.layout, v, &with_tags(&tags)).0, Err(Malformed::Tag { at, .. }) if at == tags_at + 3),
                    "{} v{v}: tags {tags:?}",
                    c.name
                );
            }
            // Tag 2^31 (a varint), empty.
            let big = with_tags(&[1, 0x80, 0x80, 0x80, 0x80, 0x08, 0]);
            assert_eq!(
                walk(c.layout, v, &big).0,
                Err(Malformed::Tag {
                    at: tags_at + 1,
                    tag: 1 << 31
                }),
                "{} v{v}: tag 2^31",
                c.name
            );
        }
    }
}

/// The public entry points: the right layout per api and direction, and a
/// message Strait does not guard is refused rather than waved through.
#[test]
fn entry_points_pick_the_layout_of_the_api_and_direction() {
    use kafka_protocol::messages::ApiKey;
    // Metadata v1 response: no throttle time, then a brokers array of
    // 2^31 - 1 elements in 4 bytes.
    let mut body = i32::MAX.to_be_bytes().to_vec();
    body.extend_from_slice(&[0; 16]);
    assert_eq!(
        super::response(ApiKey::Metadata, 1, &body),
        Err(Malformed::Array {
            at: 0,
            count: i32::MAX as u64,
            left: 16
        })
    );
    // The Metadata v1 request is a topics array too.
    assert!(matches!(
        super::request(ApiKey::Metadata, 1, &body),
        Err(Malformed::Array { at: 0, .. })
    ));
    // Produce v3 request: a null transactional id, acks, timeout, then
    // 2^30 topics.
    let produce = [&[0xff, 0xff, 0, 1, 0, 0, 0, 0][..], &[0x40, 0, 0, 0, 0, 0]].concat();
    assert!(matches!(
        super::request(ApiKey::Produce, 3, &produce),
        Err(Malformed::Array { at: 8, .. })
    ));
    assert_eq!(
        super::request(ApiKey::Heartbeat, 4, &[]),
        Err(Malformed::Unguarded)
    );
    assert_eq!(
        super::response(ApiKey::Heartbeat, 4, &[]),
        Err(Malformed::Unguarded)
    );
    // A version kafka-protocol does not decode is left to the decoder.
    assert_eq!(super::request(ApiKey::Produce, 99, &produce), Ok(()));
    // Headers: request v2 (client id "ab", no tags), response v1.
    let header = [0, 3, 0, 12, 0, 0, 0, 7, 0, 2, b'a', b'b', 0, 0xee];
    assert_eq!(super::request_header(2, &header), Ok(13));
    assert!(super::request_header(2, &header[..11]).is_err());
    assert_eq!(super::response_header(1, &[0, 0, 0, 7, 0, 0xee]), Ok(5));
}

/// The layout tables use every kind of field the walk knows.
#[test]
fn the_tables_use_every_field_kind() {
    fn kinds(fields: &[F], seen: &mut [bool; 4]) {
        for f in fields {
            let mut ty = &f.ty;
            loop {
                match ty {
                    T::N(_) => seen[0] = true,
                    T::Str { .. } | T::Bytes { .. } => seen[1] = true,
                    T::A(e) | T::NA(e) => {
                        seen[2] = true;
                        ty = e;
                        continue;
                    }
                    T::S(fs) => {
                        seen[3] = true;
                        kinds(fs, seen);
                    }
                }
                break;
            }
        }
    }
    let mut seen = [false; 4];
    for c in CASES {
        kinds(c.layout.fields, &mut seen);
    }
    assert_eq!(seen, [true; 4]);
}
