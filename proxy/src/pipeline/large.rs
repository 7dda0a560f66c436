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
#[path = "tests/large.rs"]
mod tests;
