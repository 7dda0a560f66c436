//! Any bytes as a partition's record batches, rewritten by the record
//! pipeline under a policy picked by the first byte: the pipeline never
//! panics, and what it rewrites is the same batch as far as the broker's
//! idempotence checks and the consumer can tell: the same batches, each with
//! a valid CRC, the same header fields (but length, codec and CRC), and
//! records that decode to the same fields with the input's headers as a
//! prefix of the output's (only the trace stage's headers are added).
//!
//! The first byte, by bits:
//!   0-1  trace: off, on, on + client id and receive time headers, on with
//!        the short header name `k` (so inputs already carry it, any value)
//!   2-4  compress codec, modulo 5: none (no compress stage), gzip, snappy,
//!        lz4, zstd
//!   5    recompress = true
//!   6    re-seal the CRC of every batch before the pipeline sees it, so
//!        mutations reach the record decoder instead of failing the CRC check
//!   7    Produce v3 (no zstd) instead of v9
#![no_main]

use std::sync::LazyLock;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use strait_policies::{PolicySet, TraceRules};
use strait_proxy::codec::batch::{batches, Batch};
use strait_proxy::codec::edit::BatchEdit;
use strait_proxy::codec::records::Record;
use strait_proxy::codec::Compression;
use strait_proxy::pipeline::compress::wire_codec;
use strait_proxy::pipeline::trace::parse_trace_id;
use strait_proxy::pipeline::{Context, Pipeline, Traced};

const CAP: usize = 1 << 20;
const CODECS: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];
const CLIENT: &str = "fuzz-client";
const RECEIVED_AT: i64 = 1_700_000_000_123;

/// Policy text for (trace mode, codec, recompress); `None` when it asks for
/// no stage at all.
fn policy_text(trace: u8, codec: usize, recompress: bool) -> Option<String> {
    let mut body = String::new();
    if codec != 0 {
        body += &format!(
            "[policy.compress]\ncodec = \"{}\"\nrecompress = {recompress}\n",
            CODECS[codec]
        );
    }
    match trace {
        0 => {}
        1 => body += "[policy.trace]\n",
        2 => body +=
            "[policy.trace]\nclient_id_header = \"client\"\nreceived_at_header = \"received-at\"\n",
        _ => body += "[policy.trace]\nheader = \"k\"\n",
    }
    if body.is_empty() {
        return None;
    }
    Some(format!(
        "[[policy]]\nname = \"p\"\ntopics = {{ exact = \"t\" }}\n{body}"
    ))
}

/// Every policy, parsed once, indexed by `mode & 0x3f`.
static POLICIES: LazyLock<Vec<Option<PolicySet>>> = LazyLock::new(|| {
    (0u8..64)
        .map(|m| {
            let text = policy_text(m & 3, usize::from((m >> 2) & 7) % 5, m & 0x20 != 0)?;
            Some(PolicySet::parse(&[("p.toml".into(), text)]).expect("fuzz policy parses"))
        })
        .collect()
});

/// Re-computes the CRC-32C of every whole batch the bytes seem to hold.
fn reseal(data: &mut [u8]) {
    let mut pos = 0;
    while data.len() - pos >= 61 {
        let len = i32::from_be_bytes(data[pos + 8..pos + 12].try_into().unwrap());
        let Ok(len) = usize::try_from(len) else {
            return;
        };
        let end = pos + 12 + len;
        if len < 49 || end > data.len() {
            return;
        }
        let crc = crc32c(&data[pos + 21..end]);
        data[pos + 17..pos + 21].copy_from_slice(&crc.to_be_bytes());
        pos = end;
    }
}

/// CRC-32C (Castagnoli), bitwise; inputs are small.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0x82F6_3B78 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

type Headers = Vec<(Vec<u8>, Option<Vec<u8>>)>;

fn headers(r: &Record) -> Headers {
    r.headers()
        .map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec)))
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut rest = rest.to_vec();
    if mode & 0x40 != 0 {
        reseal(&mut rest);
    }
    let Ok(input) = batches(Bytes::from(rest)) else {
        return;
    };
    let Some(set) = &POLICIES[usize::from(mode & 0x3f)] else {
        return;
    };
    let policy = set.resolve("t").expect("policy for t");
    let trace = policy.trace.as_ref();
    let codec = policy.compress.as_ref().map(|c| wire_codec(c.codec));
    let api_version = if mode & 0x80 != 0 { 3 } else { 9 };

    let pipeline = Pipeline::for_policy(policy);
    let mut traced = Vec::new();
    let mut cx = Context {
        topic: "t",
        partition: 3,
        client_id: Some(CLIENT),
        api_version,
        received_at_ms: RECEIVED_AT,
        traced: &mut traced,
        records_before: 0,
        large: None,
    };
    let Ok(Some(out)) = pipeline.run(&input, CAP, &mut cx) else {
        return;
    };

    let output = batches(out).expect("the rewritten records split into batches");
    assert_eq!(output.len(), input.len(), "batch count");
    let mut want_traced: Vec<Traced> = Vec::new();
    let mut records_before = 0i64;
    for (i, (a, b)) in input.iter().zip(&output).enumerate() {
        check_batch(i, a, b, trace, codec, records_before, &mut want_traced);
        records_before += i64::from(a.record_count());
    }
    if trace.is_some() {
        assert_eq!(traced, want_traced, "trace index entries");
    }
});

fn check_batch(
    i: usize,
    a: &Batch,
    b: &Batch,
    trace: Option<&TraceRules>,
    codec: Option<Compression>,
    records_before: i64,
    want_traced: &mut Vec<Traced>,
) {
    if a.is_control() {
        assert_eq!(a.raw(), b.raw(), "batch {i}: a control batch passes as bytes");
        return;
    }
    let mut ea = BatchEdit::new(a.clone(), CAP)
        .unwrap_or_else(|e| panic!("batch {i}: rewritten, but the input fails: {e}"));
    let mut eb = BatchEdit::new(b.clone(), CAP)
        .unwrap_or_else(|e| panic!("batch {i}: the output fails: {e}"));
    assert_eq!(
        (
            b.producer_id(),
            b.producer_epoch(),
            b.base_sequence(),
            b.record_count(),
            b.is_transactional(),
            b.is_control(),
        ),
        (
            a.producer_id(),
            a.producer_epoch(),
            a.base_sequence(),
            a.record_count(),
            a.is_transactional(),
            a.is_control(),
        ),
        "batch {i}: producer fields and record count"
    );
    // Only the length, the codec bits and the CRC may change in the header.
    let (ha, hb) = (&a.raw()[..61], &b.raw()[..61]);
    assert_eq!(ha[..8], hb[..8], "batch {i}: base offset");
    assert_eq!(ha[12..17], hb[12..17], "batch {i}: leader epoch, magic");
    assert_eq!(ha[21], hb[21], "batch {i}: attributes (high byte)");
    assert_eq!(
        ha[22] & !7,
        hb[22] & !7,
        "batch {i}: attributes but the codec"
    );
    assert_eq!(ha[23..], hb[23..], "batch {i}: header after the attributes");
    let (ca, cb) = (a.compression(), b.compression());
    assert!(
        cb == ca || Some(cb) == codec || cb == Compression::None,
        "batch {i}: {ca:?} became {cb:?} under {codec:?}"
    );

    let ra = match ea.peek_records() {
        Ok(r) => r.to_vec(),
        Err(e) => {
            // Only a compress stage rewrites without decoding records: the
            // records section must come out as it went in.
            assert!(
                trace.is_none(),
                "batch {i}: traced undecodable records: {e}"
            );
            if a.raw() != b.raw() {
                let (pa, pb) = (ea.plain(), eb.plain());
                assert_eq!(
                    pa.as_ref().ok(),
                    pb.as_ref().ok(),
                    "batch {i}: undecodable records section changed ({e})"
                );
                assert!(
                    pa.is_ok(),
                    "batch {i}: rewritten though it does not decompress"
                );
            }
            return;
        }
    };
    let rb = eb
        .peek_records()
        .unwrap_or_else(|e| panic!("batch {i}: the input decodes, the output does not: {e}"))
        .to_vec();
    assert_eq!(ra.len(), rb.len(), "batch {i}: records");
    for (j, (x, y)) in ra.iter().zip(&rb).enumerate() {
        assert_eq!(
            (
                x.attributes,
                x.timestamp_delta,
                x.offset_delta,
                &x.key,
                &x.value
            ),
            (
                y.attributes,
                y.timestamp_delta,
                y.offset_delta,
                &y.key,
                &y.value
            ),
            "batch {i} record {j}: fields"
        );
        let (hx, hy) = (headers(x), headers(y));
        assert!(
            hy.len() >= hx.len() && hy[..hx.len()] == hx[..],
            "batch {i} record {j}: the input's headers are not a prefix: {hx:?} vs {hy:?}"
        );
        let added = &hy[hx.len()..];
        let Some(t) = trace else {
            assert!(
                added.is_empty(),
                "batch {i} record {j}: headers added without trace: {added:?}"
            );
            continue;
        };
        // What the trace stage adds: the trace header when missing, then
        // the client id and receive time when configured.
        let name = t.header.as_bytes();
        let mut want: Vec<&[u8]> = Vec::new();
        if x.header(name).is_none() {
            want.push(name);
        }
        if let Some(h) = &t.client_id_header {
            want.push(h.as_bytes());
        }
        if let Some(h) = &t.received_at_header {
            want.push(h.as_bytes());
        }
        let got: Vec<&[u8]> = added.iter().map(|(k, _)| &k[..]).collect();
        assert_eq!(got, want, "batch {i} record {j}: added headers");
        for (k, v) in added {
            let v = v.as_deref();
            if Some(k.as_slice()) == t.client_id_header.as_ref().map(|h| h.as_bytes()) {
                assert_eq!(
                    v,
                    Some(CLIENT.as_bytes()),
                    "batch {i} record {j}: client id"
                );
            } else if Some(k.as_slice()) == t.received_at_header.as_ref().map(|h| h.as_bytes()) {
                assert_eq!(
                    v,
                    Some(RECEIVED_AT.to_string().as_bytes()),
                    "batch {i} record {j}: receive time"
                );
            }
        }
        let first = y.header(name).expect("every traced record has the header");
        if x.header(name).is_none() {
            assert!(
                first.and_then(parse_trace_id).is_some(),
                "batch {i} record {j}: a new trace header parses"
            );
        }
        if let Some(id) = first.and_then(parse_trace_id) {
            want_traced.push(Traced {
                relative_offset: records_before + y.offset_delta,
                trace_id: id,
                original_size: None,
            });
        }
    }
}
