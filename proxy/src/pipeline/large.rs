//! Large-record stage: a record whose value is over the policy's threshold
//! gets the first remedy that brings it under, in the policy's order:
//!
//! - `compress`: the value compressed alone fits, so the batch is sealed in
//!   zstd (lz4 before Produce v7) and the client decompresses it as usual;
//! - `claim-check`: the value goes to the object store, the record carries a
//!   reference;
//! - `chunk`: the value goes to the chunk topic, the record carries a manifest.
//!
//! The record keeps its key, headers, timestamp and place in the batch (the
//! record count and the producer's sequences never change) and gains the
//! `strait.large-record` marker header. A batch carrying references is
//! sealed uncompressed (references are small) unless another of its values
//! fit only compressed: then it is sealed compressed (the client's codec,
//! else the `compress` remedy's), as that value must stay under the
//! threshold. Nothing is forwarded until the value
//! is stored: a store or chunk-topic failure refuses the partition with a
//! retriable error, and the client retries with the same sequence. When no
//! remedy fits, the partition is refused with MESSAGE_TOO_LARGE naming the
//! policy (it is a size limit: the Java client then splits its batch).

use bytes::Bytes;
use strait_policies::{LargeRecordRules, Remedy, Rule};

use super::{Context, Stage, StageError};
use crate::codec::compression::{compress, Compression};
use crate::codec::edit::BatchEdit;
use crate::large::reference::{Reference, MARKER};
use crate::large::LargeError;
use crate::metrics;

/// Kafka's MESSAGE_TOO_LARGE.
pub const MESSAGE_TOO_LARGE: i16 = 10;
/// Kafka's KAFKA_STORAGE_ERROR: retriable, and clients know nothing was
/// written (librdkafka and Java retry with the same sequence).
pub const KAFKA_STORAGE_ERROR: i16 = 56;
/// Kafka's POLICY_VIOLATION.
const POLICY_VIOLATION: i16 = 44;

/// A prefix this long is compressed first to estimate a large value's
/// compressed size before compressing all of it.
const SAMPLE_BYTES: usize = 256 * 1024;

pub struct LargeRecords {
    policy: String,
    rules: LargeRecordRules,
}

impl LargeRecords {
    pub fn new(policy: &str, rules: &LargeRecordRules) -> LargeRecords {
        LargeRecords {
            policy: policy.to_string(),
            rules: rules.clone(),
        }
    }

    fn refuse(&self, error_code: i16, why: impl std::fmt::Display) -> StageError {
        StageError::Refused {
            error_code,
            message: format!("Strait policy {:?} rule large_records: {why}", self.policy),
        }
    }

    fn failed(&self, remedy: Remedy, topic: &str, e: LargeError) -> StageError {
        let retriable = e.retriable();
        metrics::large_remedy(
            &self.policy,
            remedy.name(),
            if retriable { "failed" } else { "refused" },
        );
        tracing::warn!(topic, policy = %self.policy, remedy = remedy.name(), error = %e, retriable, "cannot offload a large record");
        let code = if retriable {
            KAFKA_STORAGE_ERROR
        } else {
            POLICY_VIOLATION
        };
        self.refuse(
            code,
            format!(
                "{} of a large record to topic {topic:?} failed{}: {e}",
                remedy.name(),
                if retriable {
                    " (retriable: nothing was written to the topic)"
                } else {
                    ""
                }
            ),
        )
    }
}

/// The codec the `compress` remedy seals a batch in.
fn remedy_codec(api_version: i16) -> Compression {
    if api_version >= super::compress::ZSTD_MIN_PRODUCE_VERSION {
        Compression::Zstd
    } else {
        Compression::Lz4
    }
}

/// Whether `value` compressed in `codec` fits under `threshold`; returns the
/// compressed size it measured (an estimate when a sample already says no).
fn compressed_size(value: &[u8], codec: Compression, threshold: usize) -> usize {
    if value.len() > 4 * SAMPLE_BYTES {
        let sample = &value[..SAMPLE_BYTES];
        if let Ok(packed) = compress(codec, codec.default_level(), sample) {
            let estimate = packed.len() * (value.len() / SAMPLE_BYTES);
            if estimate > threshold + threshold / 4 {
                return estimate;
            }
        }
    }
    compress(codec, codec.default_level(), value).map_or(usize::MAX, |p| p.len())
}

impl Stage for LargeRecords {
    fn name(&self) -> &'static str {
        "large_records"
    }

    fn rule(&self) -> Rule {
        Rule::LargeRecords
    }

    fn apply(&self, batch: &mut BatchEdit, cx: &mut Context<'_>) -> Result<(), StageError> {
        let threshold = self.rules.threshold as usize;
        if batch.original_codec() == Compression::None && batch.batch().raw().len() <= threshold {
            return Ok(()); // no value in it can be over the threshold
        }
        let over: Vec<usize> = batch
            .peek_records()?
            .iter()
            .enumerate()
            .filter(|(_, r)| r.value.as_ref().is_some_and(|v| v.len() > threshold))
            .map(|(i, _)| i)
            .collect();
        if over.is_empty() {
            return Ok(());
        }
        let codec = remedy_codec(cx.api_version);
        let mut seal_compressed = false;
        let mut offloaded = false;
        let records = batch.records()?;
        for i in over {
            let value = records[i].value.clone().expect("filtered on a value");
            let mut measured = None;
            let mut taken: Option<Reference> = None;
            let mut fits_compressed = false;
            for &remedy in &self.rules.remedies {
                match remedy {
                    Remedy::Compress => {
                        let size = compressed_size(&value, codec, threshold);
                        measured = Some(size);
                        if size <= threshold {
                            fits_compressed = true;
                        }
                    }
                    Remedy::ClaimCheck | Remedy::Chunk => {
                        let Some(io) = cx.large else {
                            return Err(self.refuse(
                                KAFKA_STORAGE_ERROR,
                                "large-record handling is not running in this Strait",
                            ));
                        };
                        let r = if remedy == Remedy::ClaimCheck {
                            io.offload_object(cx.topic, &self.rules, &value)
                        } else {
                            io.offload_chunks(cx.topic, cx.partition, &self.rules, &value)
                        };
                        taken = Some(r.map_err(|e| self.failed(remedy, cx.topic, e))?);
                    }
                }
                if fits_compressed || taken.is_some() {
                    metrics::large_remedy(&self.policy, remedy.name(), "ok");
                    break;
                }
            }
            if let Some(r) = taken {
                offloaded = true;
                let rec = &mut records[i];
                let at = cx.records_before + rec.offset_delta;
                if let Some(t) = cx.traced.iter_mut().rev().find(|t| t.relative_offset == at) {
                    t.original_size = Some(value.len() as u64);
                }
                rec.value = Some(Bytes::from(r.encode()));
                rec.add_header(
                    Bytes::from_static(MARKER),
                    Some(Bytes::from_static(r.marker())),
                );
                tracing::debug!(topic = cx.topic, partition = cx.partition, policy = %self.policy, bytes = value.len(), kind = ?std::str::from_utf8(r.marker()), "offloaded a large record");
            } else if fits_compressed {
                seal_compressed = true;
            } else {
                metrics::large_remedy(&self.policy, "none", "refused");
                let compressed = measured
                    .map(|m| format!(" ({} compressed)", m))
                    .unwrap_or_default();
                return Err(self.refuse(
                    MESSAGE_TOO_LARGE,
                    format!(
                        "a record value of {} bytes{compressed} is over the threshold of {threshold} bytes and no remedy ({}) brought it under",
                        value.len(),
                        self.rules
                            .remedies
                            .iter()
                            .map(|r| r.name())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
        if seal_compressed {
            // A value fit only compressed, so the batch must go out
            // compressed even when it carries references too: sealing it
            // plain would send that value over the threshold. The fetch side
            // opens compressed batches of large-record topics to restore.
            if batch.codec() == Compression::None {
                batch.seal_as(codec);
            }
        } else if offloaded {
            // References are small; a plain batch is what the fetch side
            // reads with the least work.
            batch.seal_as(Compression::None);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use strait_policies::PolicySet;

    use bytes::Bytes;

    use super::super::{Context, Pipeline};
    use super::{StageError, KAFKA_STORAGE_ERROR, MESSAGE_TOO_LARGE};
    use crate::codec::batch::batches;
    use crate::codec::build::{build_batch, Producer, RecordSpec};
    use crate::codec::Compression;
    use crate::config::{LargeRecordsConfig, LeaderEndpoints, UpstreamConfig};
    use crate::kafka_client::KafkaClient;
    use crate::large::reference::{Reference, Scope, MARKER};
    use crate::large::restore::{restore_partition, Limits};
    use crate::large::LargeRecords;
    use crate::upstream::Dialer;

    /// Large-record I/O with a store in a fresh directory and a client of a
    /// cluster that is never asked (claim-checks need none).
    fn large(dir: &std::path::Path) -> Arc<LargeRecords> {
        let upstream = UpstreamConfig {
            bootstrap: vec!["127.0.0.1:1".into()],
            connect_timeout_ms: 100,
            tls: None,
            sasl: None,
            leader_endpoints: LeaderEndpoints::Clamp,
        };
        let dialer = Arc::new(Dialer::new(&upstream, 1 << 20).unwrap());
        let client = Arc::new(KafkaClient::new(dialer, std::time::Duration::from_secs(1)));
        let cfg = LargeRecordsConfig {
            store: dir.display().to_string(),
            ..Default::default()
        };
        Arc::new(LargeRecords::new(&cfg, client).unwrap())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_claim_check_keeps_the_record_and_restores_it_whole() {
        let dir = std::env::temp_dir().join(format!("strait-claims-{}", std::process::id()));
        let large = large(&dir);
        let set = PolicySet::parse(&[(
            "p.toml".into(),
            "[[policy]]\nname = \"p\"\ntopics = { exact = \"t\" }\n[policy.trace]\n\
             [policy.large_records]\nthreshold = 1024\nremedies = [\"claim-check\"]\n"
                .into(),
        )])
        .unwrap();
        let rules = set.resolve("t").unwrap().large_records.as_ref().unwrap();
        let scope = Scope::new("t", rules);
        let big: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
        let h1: &[(&[u8], Option<&[u8]>)] = &[(b"h", Some(b"1"))];
        let h2: &[(&[u8], Option<&[u8]>)] = &[(b"h", Some(b"2"))];
        let recs: Vec<RecordSpec<'_>> = vec![
            (Some(&b"a"[..]), Some(&b"small"[..]), h1),
            (Some(&b"b"[..]), Some(&big[..]), h2),
            (Some(&b"c"[..]), None, &[]),
        ];
        let producer = Producer {
            id: 9,
            epoch: 0,
            base_sequence: 40,
            transactional: false,
        };
        let input = build_batch(producer, 1000, &recs);
        let io = large.clone();
        let (out, traced) = tokio::task::spawn_blocking(move || {
            let pipeline = Pipeline::for_policy(set.resolve("t").unwrap());
            let mut traced = Vec::new();
            let mut cx = Context {
                topic: "t",
                partition: 0,
                client_id: None,
                api_version: 9,
                received_at_ms: 0,
                traced: &mut traced,
                records_before: 0,
                large: Some(&io),
            };
            let out = pipeline.run(&batches(input).unwrap(), 1 << 20, &mut cx);
            (out.unwrap().expect("rewritten"), traced)
        })
        .await
        .unwrap();
        let b = &batches(out.clone()).unwrap()[0];
        assert_eq!(
            (b.producer_id(), b.base_sequence(), b.record_count()),
            (9, 40, 3),
            "the batch stays the producer's"
        );
        assert!(b.raw().len() < 1500, "the value left the batch");
        let mut edit = crate::codec::edit::BatchEdit::new(b.clone(), 1 << 20).unwrap();
        let rs = edit.peek_records().unwrap().to_vec();
        let marker = rs[1].header(MARKER).flatten().expect("marked");
        let Reference::Object(o) = Reference::parse(marker, rs[1].value.as_ref().unwrap()).unwrap()
        else {
            panic!("a claim-check")
        };
        assert!(dir.join(&o.key).exists(), "{} stored", o.key);
        assert_eq!(
            rs[1].header(b"h"),
            Some(Some(&b"2"[..])),
            "client headers kept"
        );
        assert!(rs[0].header(MARKER).is_none() && rs[2].header(MARKER).is_none());
        assert_eq!(
            traced[1].original_size,
            Some(5000),
            "the trace index learns the size"
        );
        assert_eq!(traced[0].original_size, None);
        // The fetch side puts it back: same records, marker gone.
        let limit = Limits {
            max_bytes: 1 << 20,
            partition_max: 1 << 20,
            per_connection: 1 << 20,
        };
        let io = large.clone();
        let restored = tokio::task::spawn_blocking(move || {
            restore_partition(&scope, out, &limit, io.as_ref(), 1 << 20)
                .unwrap()
                .expect("restored")
        })
        .await
        .unwrap();
        let mut edit =
            crate::codec::edit::BatchEdit::new(batches(restored).unwrap().remove(0), 1 << 20)
                .unwrap();
        let back = edit.peek_records().unwrap();
        assert_eq!(back[1].value.as_deref(), Some(&big[..]), "byte-identical");
        assert!(back[1].header(MARKER).is_none(), "the marker is gone");
        assert_eq!(back[1].header(b"h"), Some(Some(&b"2"[..])));
        assert!(
            back[1].header(b"traceparent").is_some(),
            "the trace header stays"
        );
        assert_eq!(back[0].value.as_deref(), Some(&b"small"[..]));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A batch with one value that fits only compressed and one that fits
    /// no way but a claim-check: both remedies must hold as sent, so the
    /// batch carrying the reference is still sealed compressed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_claim_check_in_the_batch_keeps_the_compress_remedy() {
        use sha2::Digest;
        let dir = std::env::temp_dir().join(format!("strait-claims-mixed-{}", std::process::id()));
        let large = large(&dir);
        let set = PolicySet::parse(&[(
            "p.toml".into(),
            "[[policy]]\nname = \"p\"\ntopics = { exact = \"t\" }\n\
             [policy.large_records]\nthreshold = 1024\nremedies = [\"compress\", \"claim-check\"]\n"
                .into(),
        )])
        .unwrap();
        let text = b"the same sentence again and again; ".repeat(300);
        let noise: Vec<u8> = (0..157u32)
            .flat_map(|i| sha2::Sha256::digest(i.to_be_bytes()))
            .take(5000)
            .collect();
        let recs: Vec<RecordSpec<'_>> = vec![
            (Some(&b"a"[..]), Some(&text[..]), &[]),
            (Some(&b"b"[..]), Some(&noise[..]), &[]),
        ];
        let producer = Producer {
            id: 9,
            epoch: 2,
            base_sequence: 40,
            transactional: false,
        };
        let input = build_batch(producer, 1000, &recs);
        let io = large.clone();
        let out = tokio::task::spawn_blocking(move || {
            let pipeline = Pipeline::for_policy(set.resolve("t").unwrap());
            let mut traced = Vec::new();
            let mut cx = Context {
                topic: "t",
                partition: 0,
                client_id: None,
                api_version: 9,
                received_at_ms: 0,
                traced: &mut traced,
                records_before: 0,
                large: Some(&io),
            };
            let out = pipeline.run(&batches(input).unwrap(), 1 << 20, &mut cx);
            out.unwrap().expect("rewritten")
        })
        .await
        .unwrap();
        let b = &batches(out).unwrap()[0];
        assert_eq!(
            (
                b.producer_id(),
                b.producer_epoch(),
                b.base_sequence(),
                b.record_count()
            ),
            (9, 2, 40, 2),
            "the batch stays the producer's"
        );
        assert_eq!(
            b.compression(),
            Compression::Zstd,
            "the compress remedy's codec"
        );
        assert!(
            b.raw().len() <= 1024,
            "the compressible value is within the threshold as sent: a batch of {} bytes",
            b.raw().len()
        );
        let mut edit = crate::codec::edit::BatchEdit::new(b.clone(), 1 << 20).unwrap();
        let rs = edit.peek_records().unwrap().to_vec();
        assert_eq!(
            rs[0].value.as_deref(),
            Some(&text[..]),
            "the client's value"
        );
        assert!(rs[0].header(MARKER).is_none(), "nothing to restore");
        let marker = rs[1].header(MARKER).flatten().expect("claim-checked");
        let Reference::Object(o) = Reference::parse(marker, rs[1].value.as_ref().unwrap()).unwrap()
        else {
            panic!("a claim-check")
        };
        assert!(dir.join(&o.key).exists(), "{} stored", o.key);
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn run_without_io(
        remedies: &str,
        value: &[u8],
        api_version: i16,
    ) -> Result<Option<Bytes>, super::super::PipelineError> {
        let set = PolicySet::parse(&[(
            "p.toml".into(),
            format!(
                "[[policy]]\nname = \"p\"\ntopics = {{ exact = \"t\" }}\n\
                 [policy.large_records]\nthreshold = 1024\nremedies = [{remedies}]\n"
            ),
        )])
        .unwrap();
        let input = build_batch(Producer::NONE, 0, &[(None, Some(value), &[])]);
        let pipeline = Pipeline::for_policy(set.resolve("t").unwrap());
        let mut traced = Vec::new();
        let mut cx = Context {
            topic: "t",
            partition: 0,
            client_id: None,
            api_version,
            received_at_ms: 0,
            traced: &mut traced,
            records_before: 0,
            large: None,
        };
        pipeline.run(&batches(input).unwrap(), 1 << 20, &mut cx)
    }

    #[test]
    fn compress_seals_a_compressible_batch_and_nothing_fitting_is_message_too_large() {
        let text = b"the same sentence again and again; ".repeat(300);
        let out = run_without_io("\"compress\"", &text, 9)
            .unwrap()
            .expect("sealed");
        let b = &batches(out).unwrap()[0];
        assert_eq!(b.compression(), Compression::Zstd);
        let mut e = crate::codec::edit::BatchEdit::new(b.clone(), 1 << 20).unwrap();
        let r = &e.peek_records().unwrap()[0];
        assert_eq!(
            r.value.as_deref(),
            Some(&text[..]),
            "the value is the client's"
        );
        assert!(r.header(MARKER).is_none(), "nothing to restore");
        let out = run_without_io("\"compress\"", &text, 3).unwrap().unwrap();
        assert_eq!(
            batches(out).unwrap()[0].compression(),
            Compression::Lz4,
            "no zstd before Produce v7"
        );

        use sha2::Digest;
        let noise: Vec<u8> = (0..157u32)
            .flat_map(|i| sha2::Sha256::digest(i.to_be_bytes()))
            .take(5000)
            .collect();
        let err = run_without_io("\"compress\"", &noise, 9).unwrap_err();
        let StageError::Refused {
            error_code,
            message,
        } = err.error
        else {
            panic!("refused")
        };
        assert_eq!(error_code, MESSAGE_TOO_LARGE);
        assert!(
            message.contains("policy \"p\"") && message.contains("5000 bytes"),
            "{message}"
        );
        // A claim-check with no store running is a retriable error, not a pass.
        let err = run_without_io("\"claim-check\"", &noise, 9).unwrap_err();
        assert!(matches!(
            err.error,
            StageError::Refused {
                error_code: KAFKA_STORAGE_ERROR,
                ..
            }
        ));
    }
}
