//! The produce checks on a partition's batches: batch headers (producer
//! identity, transactions, codec), then records when a rule needs them, as
//! the policy core's facts.

use bytes::Bytes;
use strait_policies::decide::{self, BatchFacts, RecordFacts};
use strait_policies::{Codec, Rule, Violation};

use super::violations::unreadable;
use super::TopicPlan;
use crate::codec::batch::{self, Batch, BatchError, RecordView};
use crate::codec::Compression;

/// The policy core's view of a batch header.
fn facts(b: &Batch) -> BatchFacts {
    BatchFacts {
        producer_id: b.producer_id(),
        transactional: b.is_transactional(),
        compression: match b.compression() {
            Compression::None => Codec::None,
            Compression::Gzip => Codec::Gzip,
            Compression::Snappy => Codec::Snappy,
            Compression::Lz4 => Codec::Lz4,
            Compression::Zstd => Codec::Zstd,
        },
        magic: b.magic(),
    }
}

/// The policy core's view of a record.
struct Facts<'a>(RecordView<'a>);

impl RecordFacts for Facts<'_> {
    fn size(&self) -> usize {
        self.0.size()
    }

    fn has_header(&self, key: &[u8]) -> bool {
        self.0.has_header(key)
    }

    fn has_header_prefix(&self, prefix: &[u8]) -> bool {
        self.0.has_header_prefix(prefix)
    }
}

/// Checks a partition's batches; returns them split for the pipeline (empty
/// when neither the rules nor a stage needs them).
pub(super) fn check_partition(
    plan: &TopicPlan,
    txn: bool,
    records: Option<Bytes>,
    cap: usize,
) -> Result<Vec<Batch>, Violation> {
    let Some(records) = records else {
        return Ok(Vec::new());
    };
    if !plan.needs_batches {
        // acks rules alone: old message formats and anything else pass as bytes.
        return Ok(Vec::new());
    }
    let policy = &plan.policy;
    let readable = |e: BatchError| unreadable(policy, Rule::Readable, &e);
    let batches = batch::batches(records).map_err(readable)?;
    for b in &batches {
        decide::decide_batch(policy, txn, &facts(b))?;
        if plan.needs_records {
            let bytes = b.record_bytes(cap).map_err(readable)?;
            let views = batch::records(&bytes, b.record_count()).map_err(readable)?;
            decide::decide_records(policy, views.into_iter().map(Facts))?;
        }
    }
    Ok(batches)
}
