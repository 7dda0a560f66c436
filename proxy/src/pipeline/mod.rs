//! The record pipeline: per topic, from policy, ordered stages that rewrite
//! produced record batches (ARCHITECTURE.md: enforce → dedupe → trace headers →
//! large records → compress). Policy checks (`policy::produce`) run
//! first; the pipeline then edits each batch of a partition through a
//! [`BatchEdit`] and re-seals only the batches a stage changed.
//!
//! A policy's [`Pipeline`] is built once, when the policies are loaded
//! (`policy::compiled`), and shared by every request to its topics.
//! Adding a stage: one file with a type implementing [`Stage`], plus one line
//! in [`Pipeline::for_policy`].

pub mod compress;
pub mod index;
pub mod large;
pub mod route;
pub mod trace;

use bytes::Bytes;
use strait_policies::{Policy, Rule};

use crate::codec::batch::{Batch, BatchError};
use crate::codec::edit::BatchEdit;
use crate::metrics;

pub use index::{TraceIndex, TraceLocation};

/// What a stage knows about the request it is rewriting.
pub struct Context<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub client_id: Option<&'a str>,
    /// Produce request version (zstd needs v7+).
    pub api_version: i16,
    /// When Strait received the request, milliseconds since the Unix epoch.
    pub received_at_ms: i64,
    /// Trace ids of this partition's records, for the trace index once the
    /// broker has assigned offsets.
    pub traced: &'a mut Vec<Traced>,
    /// Records of earlier batches of this partition in the request (their
    /// offsets precede this batch's).
    pub records_before: i64,
    /// Large-record I/O (object store, chunk topics), when running.
    pub large: Option<&'a crate::large::LargeRecords>,
}

/// A record's trace id and its offset relative to the partition's first
/// offset in the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Traced {
    pub relative_offset: i64,
    pub trace_id: u128,
    /// The value's size when the large-record stage took it out of the record.
    pub original_size: Option<u64>,
}

/// One transformation of a batch. A stage may change bytes and sizes but
/// never the record count: the broker checks idempotent sequences per batch
/// (a stage sees the records as a slice, so it cannot). Stages are built
/// once per policy load and shared across threads.
pub trait Stage: Send + Sync {
    /// For metrics and errors.
    fn name(&self) -> &'static str;
    /// The policy rule a refusal by this stage is reported under.
    fn rule(&self) -> Rule;
    /// Edits the batch in place (or leaves it untouched).
    fn apply(&self, batch: &mut BatchEdit, cx: &mut Context<'_>) -> Result<(), StageError>;
}

/// Why a stage could not rewrite a batch.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// The batch cannot be read or re-sealed.
    #[error("{0}")]
    Batch(#[from] BatchError),
    /// The stage refuses the partition with this Kafka error code and a
    /// message naming the policy.
    #[error("{message}")]
    Refused { error_code: i16, message: String },
}

/// A policy's stages, in pipeline order.
#[derive(Default)]
pub struct Pipeline {
    stages: Vec<Box<dyn Stage>>,
}

impl Pipeline {
    /// The stages `policy` asks for.
    pub fn for_policy(policy: &Policy) -> Pipeline {
        let mut stages: Vec<Box<dyn Stage>> = Vec::new();
        if let Some(t) = &policy.trace {
            stages.push(Box::new(trace::Trace::new(t)));
        }
        if let Some(l) = &policy.large_records {
            stages.push(Box::new(large::LargeRecords::new(&policy.name, l)));
        }
        if let Some(c) = &policy.compress {
            stages.push(Box::new(compress::Compress::new(c)));
        }
        Pipeline { stages }
    }

    pub fn is_empty(&self) -> bool {
        self.stages.is_empty()
    }

    /// Stage names, in order (for logs and `explain`).
    pub fn names(&self) -> Vec<&'static str> {
        self.stages.iter().map(|s| s.name()).collect()
    }
}

/// Why a partition's batches could not be rewritten.
#[derive(Debug, thiserror::Error)]
#[error("stage {stage}: {error}")]
pub struct PipelineError {
    pub stage: &'static str,
    /// The stage's rule; reading and re-sealing batches report `batch.readable`.
    pub rule: Rule,
    pub error: StageError,
}

impl Pipeline {
    /// Runs the stages over a partition's batches (as split by
    /// [`crate::codec::batch::batches`]). Returns the new records when a stage
    /// changed a batch, `None` when every batch passes as it came. Control
    /// batches always pass as bytes.
    pub fn run(
        &self,
        batches: &[Batch],
        cap: usize,
        cx: &mut Context<'_>,
    ) -> Result<Option<Bytes>, PipelineError> {
        run(&self.stages, batches, cap, cx)
    }
}

fn run(
    stages: &[Box<dyn Stage>],
    batches: &[Batch],
    cap: usize,
    cx: &mut Context<'_>,
) -> Result<Option<Bytes>, PipelineError> {
    let mut out: Vec<Bytes> = Vec::with_capacity(batches.len());
    let mut changed = false;
    cx.records_before = 0;
    for b in batches {
        if b.is_control() || stages.is_empty() {
            metrics::pipeline_batch("passed");
            out.push(b.raw().clone());
            cx.records_before += i64::from(b.record_count());
            continue;
        }
        let mut edit = BatchEdit::new(b.clone(), cap).map_err(|error| PipelineError {
            stage: "decode",
            rule: Rule::Readable,
            error: error.into(),
        })?;
        for s in stages {
            s.apply(&mut edit, cx).map_err(|error| PipelineError {
                stage: s.name(),
                rule: s.rule(),
                error,
            })?;
        }
        changed |= edit.changed();
        let outcome = if edit.changed() {
            "rewritten"
        } else {
            "unchanged"
        };
        metrics::pipeline_batch(outcome);
        out.push(edit.finish().map_err(|error| PipelineError {
            stage: "encode",
            rule: Rule::Readable,
            error: error.into(),
        })?);
        cx.records_before += i64::from(b.record_count());
    }
    if !changed {
        return Ok(None);
    }
    // The usual case is one batch per partition: no copy then.
    Ok(Some(crate::codec::join(out)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::batch::batches;
    use crate::codec::build::{build_batch, Producer, RecordSpec};
    use crate::codec::Compression;
    use strait_policies::PolicySet;

    fn policy(body: &str) -> PolicySet {
        PolicySet::parse(&[(
            "p.toml".into(),
            format!("[[policy]]\nname = \"p\"\ntopics = {{ exact = \"t\" }}\n{body}"),
        )])
        .unwrap()
    }

    fn idempotent(seq: i32) -> Producer {
        Producer {
            id: 77,
            epoch: 1,
            base_sequence: seq,
            transactional: false,
        }
    }

    fn run_on(set: &PolicySet, data: Bytes, version: i16) -> (Option<Bytes>, Vec<Traced>) {
        let pipeline = Pipeline::for_policy(set.resolve("t").unwrap());
        let mut traced = Vec::new();
        let mut cx = Context {
            topic: "t",
            partition: 0,
            client_id: Some("client-1"),
            api_version: version,
            received_at_ms: 1_700_000_000_123,
            traced: &mut traced,
            records_before: 0,
            large: None,
        };
        let out = pipeline
            .run(&batches(data).unwrap(), 1 << 24, &mut cx)
            .unwrap();
        (out, traced)
    }

    const KEPT: &[u8] = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn sample(seq: i32) -> Bytes {
        let value = vec![b'v'; 2000];
        let recs: Vec<RecordSpec<'_>> = (0..20)
            .map(|i| {
                let hs: &[(&[u8], Option<&[u8]>)] = if i == 3 {
                    &[
                        (b"traceparent", Some(KEPT)),
                        (b"dup", Some(b"1")),
                        (b"dup", Some(b"2")),
                    ]
                } else {
                    &[(b"dup", Some(b"1")), (b"dup", Some(b"2"))]
                };
                (Some(&b"key"[..]), Some(&value[..]), hs)
            })
            .collect();
        build_batch(idempotent(seq), 1000, &recs)
    }

    #[test]
    fn trace_then_zstd_keeps_producer_fields_records_and_existing_traceparents() {
        let set = policy(
            "[policy.compress]\ncodec = \"zstd\"\n[policy.trace]\nclient_id_header = \"client\"\n",
        );
        let input = sample(40);
        let (out, traced) = run_on(&set, input.clone(), 9);
        let out = out.expect("rewritten");
        assert!(
            out.len() < input.len() / 4,
            "zstd shrank {} to {}",
            input.len(),
            out.len()
        );
        let b = &batches(out.clone()).unwrap()[0];
        assert_eq!(b.compression(), Compression::Zstd);
        let mut edit = BatchEdit::new(b.clone(), 1 << 24).expect("CRC verifies");
        assert_eq!(
            (
                b.producer_id(),
                b.producer_epoch(),
                b.base_sequence(),
                b.record_count()
            ),
            (77, 1, 40, 20)
        );
        let records = edit.peek_records().unwrap().to_vec();
        for (i, r) in records.iter().enumerate() {
            let tp = r.header(b"traceparent").flatten().unwrap();
            assert!(trace::parse_trace_id(tp).is_some());
            if i == 3 {
                assert_eq!(tp, KEPT, "an existing traceparent is kept");
            }
            let dups: Vec<_> = r
                .headers()
                .filter(|(k, _)| *k == b"dup")
                .map(|(_, v)| v)
                .collect();
            assert_eq!(
                dups,
                vec![Some(&b"1"[..]), Some(&b"2"[..])],
                "duplicate keys kept in order"
            );
            assert_eq!(r.header(b"client"), Some(Some(&b"client-1"[..])));
            assert_eq!(r.value.as_ref().unwrap().len(), 2000);
            assert_eq!(r.offset_delta, i as i64);
        }
        assert_eq!(traced.len(), 20);
        assert_eq!(traced[3].trace_id, 0x4bf92f3577b34da6a3ce929d0e0e4736);
        // A retry of the same batch gets the same ids (and so the same bytes).
        let (again, traced_again) = run_on(&set, input, 9);
        assert_eq!(again.unwrap(), out);
        assert_eq!(traced_again, traced);
    }

    #[test]
    fn every_codec_and_the_not_smaller_rule() {
        for codec in ["gzip", "snappy", "lz4", "zstd"] {
            let set = policy(&format!("[policy.compress]\ncodec = \"{codec}\"\n"));
            let (out, traced) = run_on(&set, sample(0), 9);
            let out = out.unwrap_or_else(|| panic!("{codec} compresses"));
            let b = &batches(out).unwrap()[0];
            assert_eq!(b.compression().name(), codec);
            assert!(traced.is_empty(), "no trace stage");
            let mut e = BatchEdit::new(b.clone(), 1 << 24).unwrap();
            assert_eq!(e.peek_records().unwrap().len(), 20, "{codec}");
        }
        // Incompressible values: the original is kept.
        let noise: Vec<u8> = (0..500)
            .flat_map(|i| trace::ids(9, i).1.to_le_bytes())
            .collect();
        let batch = build_batch(Producer::NONE, 0, &[(None, Some(&noise[..]), &[])]);
        let set = policy("[policy.compress]\ncodec = \"lz4\"\n");
        assert_eq!(run_on(&set, batch, 9).0, None, "not smaller: untouched");
    }

    #[test]
    fn codecs_the_client_chose_are_kept_unless_recompress_and_zstd_needs_v7() {
        let set = policy("[policy.compress]\ncodec = \"gzip\"\n");
        let lz4 = run_on(
            &policy("[policy.compress]\ncodec = \"lz4\"\n"),
            sample(0),
            9,
        )
        .0
        .unwrap();
        assert_eq!(
            run_on(&set, lz4.clone(), 9).0,
            None,
            "lz4 from the client stays"
        );
        let re = policy("[policy.compress]\ncodec = \"gzip\"\nrecompress = true\n");
        let out = run_on(&re, lz4, 9).0.unwrap();
        assert_eq!(batches(out).unwrap()[0].compression(), Compression::Gzip);
        let z = policy("[policy.compress]\ncodec = \"zstd\"\n");
        assert_eq!(
            run_on(&z, sample(0), 3).0,
            None,
            "Produce v3 cannot carry zstd"
        );
    }

    #[test]
    fn trace_alone_keeps_the_clients_codec() {
        let lz4 = run_on(
            &policy("[policy.compress]\ncodec = \"lz4\"\n"),
            sample(0),
            9,
        )
        .0
        .unwrap();
        let (out, traced) = run_on(&policy("[policy.trace]\n"), lz4.clone(), 9);
        let out = out.unwrap();
        assert_eq!(traced.len(), 20);
        let b = &batches(out).unwrap()[0];
        assert_eq!(
            b.compression(),
            Compression::Lz4,
            "re-sealed in the client's codec"
        );
        assert!(b.raw().len() < lz4.len() + 20 * 80, "still compressed");
    }

    #[test]
    fn several_batches_and_control_batches() {
        let set = policy("[policy.trace]\n");
        let mut control = build_batch(
            idempotent(0),
            0,
            &[(Some(&[0, 0, 0, 0][..]), Some(&[0, 0, 0, 0, 0, 0][..]), &[])],
        )
        .to_vec();
        control[22] |= 0x30; // transactional + control
        let crc = crc32c::crc32c(&control[21..]);
        control[17..21].copy_from_slice(&crc.to_be_bytes());
        let mut data = sample(0).to_vec();
        data.extend_from_slice(&control);
        data.extend_from_slice(&sample(20));
        let (out, traced) = run_on(&set, Bytes::from(data), 9);
        let bs = batches(out.unwrap()).unwrap();
        assert_eq!(bs.len(), 3);
        assert_eq!(
            &bs[1].raw()[..],
            &control[..],
            "control batch passes as bytes"
        );
        assert_eq!(traced.len(), 40);
        assert_eq!(
            traced[39].relative_offset,
            20 + 1 + 19,
            "offsets continue across batches"
        );
    }
}
