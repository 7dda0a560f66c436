//! The fetch side of large records: values put back into the batches of a
//! fetch response, in order, and the response cut at a batch boundary once
//! it holds what the client asked for.
//!
//! For each partition of a topic whose policy restores, batches are read in
//! order; a batch whose records carry the `strait.large-record` marker gets
//! their original values back (from the object store or the chunk topic,
//! verified against the reference's size and SHA-256), loses the marker, and
//! is re-sealed uncompressed with the lossless codec: offsets, record counts
//! and batch boundaries stay as stored. Compressed batches are opened too:
//! Strait writes batches that carry references uncompressed, but a topic or
//! broker `compression.type` other than `producer` makes the broker
//! recompress them, so what comes back need not be what Strait wrote. A
//! restored response may outgrow what
//! the client asked for (`max_bytes`, the partition's `max_bytes`) and what
//! it accepts (librdkafka's `receive.message.max.bytes`), so batches are kept
//! only while they fit, except the response's first one, as the broker does
//! (KIP-74); the consumer fetches the rest next time.
//!
//! Memory: values restored for one response are bounded by
//! `connection_memory_bytes` (a connection restores one response at a time)
//! and, across connections, by the process-wide [`super::Budget`]; over it a
//! partition waits, then gets a retriable error.
//!
//! Failures never reach the client as data: a store or chunk topic that
//! cannot be read, a hash that does not match, or a reference that does not
//! parse gives the partition KAFKA_STORAGE_ERROR (retriable: the client
//! tries again) unless earlier batches of it were kept (then the answer ends
//! before the bad batch, and the client's next fetch starts there), and a
//! log line that names the topic, partition, offset and object. So does a
//! reference that points anywhere but where Strait writes this topic's
//! values ([`Scope`]): it is never followed. A topic
//! given by an id Strait cannot name (the request side looked it up and
//! still does not know it) is never passed on unread: its partitions get
//! UNKNOWN_TOPIC_ID (retriable; the client refreshes its metadata).

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::FetchResponse;
use uuid::Uuid;

use super::reference::{Reference, ReferenceError, Scope, MARKER};
use super::{Held, LargeError, LargeRecords};
use crate::codec::batch::{Batch, BatchError, Batches, BATCH_HEADER_LEN};
use crate::codec::compression::Compression;
use crate::codec::edit::BatchEdit;
use crate::codec::join;
use crate::metrics;

/// Kafka's KAFKA_STORAGE_ERROR (retriable on fetch: the client refreshes
/// metadata and fetches again).
pub const KAFKA_STORAGE_ERROR: i16 = 56;
/// Kafka's UNKNOWN_TOPIC_ID (retriable: the client refreshes its metadata).
pub const UNKNOWN_TOPIC_ID: i16 = 100;

/// Whether a topic (by name) is restored and, if so, where its policy
/// lets its references point.
pub type Restores = Arc<dyn Fn(&str) -> Option<Scope> + Send + Sync>;

/// What the fetch request asked for, and which topics to restore.
pub struct RestoreSpec {
    /// The request's `max_bytes` (the whole response).
    pub max_bytes: usize,
    /// `(topic name or id, partition, max_bytes)` of the partitions the
    /// request named; partitions a fetch session left out use `max_bytes`.
    pub partition_max: Vec<(TopicKey, i32, usize)>,
    pub restores: Restores,
}

impl std::fmt::Debug for RestoreSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestoreSpec")
            .field("max_bytes", &self.max_bytes)
            .field("partitions", &self.partition_max.len())
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TopicKey {
    Name(String),
    Id(Uuid),
}

/// A record to restore: its index in the batch and its reference.
type Marked = Vec<(usize, Reference)>;

/// References as found in a batch: record index, parsed or not.
pub type Found = Vec<(usize, Result<Reference, ReferenceError>)>;

impl RestoreSpec {
    fn partition_max(&self, name: &str, id: &Uuid, partition: i32) -> usize {
        self.partition_max
            .iter()
            .find(|(t, p, _)| {
                *p == partition
                    && match t {
                        TopicKey::Name(n) => n == name,
                        TopicKey::Id(i) => i == id,
                    }
            })
            .map_or(self.max_bytes, |(_, _, m)| *m)
    }
}

/// Where restored values come from, and the memory they may take: the
/// store and chunk topic in Strait ([`LargeRecords`]); fixed values in the
/// fuzz target.
pub trait ValueSource {
    /// The verified value of a reference. Blocking.
    fn value(&self, r: &Reference) -> Result<Bytes, LargeError>;
    /// Takes `bytes` of the process-wide memory bound (waiting, within
    /// limits). Blocking.
    fn hold(&self, bytes: u64) -> Result<Option<Held>, LargeError>;
    /// Bytes one response may restore (one connection's share).
    fn per_connection(&self) -> usize;
}

impl ValueSource for LargeRecords {
    fn value(&self, r: &Reference) -> Result<Bytes, LargeError> {
        self.fetch_value(r)
    }

    fn hold(&self, bytes: u64) -> Result<Option<Held>, LargeError> {
        let held = self
            .block_on(self.budget.acquire_within(bytes, self.memory_wait()))
            .inspect_err(|e| {
                // More than the whole bound is counted as a failed partition.
                if e.retriable() {
                    metrics::large_restore("memory_wait");
                }
            })?;
        Ok(Some(held))
    }

    fn per_connection(&self) -> usize {
        self.config.connection_memory_bytes as usize
    }
}

/// Restores every restorable partition of `resp`, in order, within the
/// client's limits. `name_of` names topics given by id. Blocking: call on
/// the large-record pool. The returned memory is held until dropped (after
/// the response is encoded).
pub fn restore(
    resp: &mut FetchResponse,
    spec: &RestoreSpec,
    name_of: impl Fn(&Uuid) -> Option<Arc<str>>,
    large: &dyn ValueSource,
    cap: usize,
) -> Vec<Held> {
    let mut held = Vec::new();
    let mut total = 0usize;
    let mut restored = 0usize;
    let per_connection = large.per_connection();
    for t in &mut resp.responses {
        let name: Option<Arc<str>> = if t.topic.0.is_empty() {
            name_of(&t.topic_id)
        } else {
            Some(Arc::from(t.topic.0.as_str()))
        };
        // None: an id nobody could name, which may be a large-records
        // topic (fail closed); Some(None): a topic that is not restored.
        let scope: Option<Option<Scope>> = name.as_deref().map(|n| (spec.restores)(n));
        for p in &mut t.partitions {
            let Some(records) = p.records.clone() else {
                continue;
            };
            if matches!(scope, Some(None)) || p.error_code != 0 || records.is_empty() {
                total += records.len();
                continue;
            }
            let Some(Some(scope)) = &scope else {
                p.error_code = UNKNOWN_TOPIC_ID;
                p.records = Some(Bytes::new());
                metrics::large_restore("unknown_topic");
                tracing::warn!(topic_id = %t.topic_id, partition = p.partition_index, "a fetch answer names a topic id Strait cannot name; the partition gets a retriable error instead of records it cannot check");
                continue;
            };
            let topic = scope.topic();
            let limit = Limits {
                max_bytes: spec.max_bytes,
                partition_max: spec.partition_max(topic, &t.topic_id, p.partition_index),
                per_connection,
            };
            let mut walk = Walk {
                total: &mut total,
                restored: &mut restored,
                held: &mut held,
                large,
                cap,
                scope,
                partition: p.partition_index,
            };
            match walk.partition(records, &limit) {
                Ok(Some(new)) => p.records = Some(new),
                Ok(None) => {}
                Err(e) => {
                    p.error_code = KAFKA_STORAGE_ERROR;
                    p.records = Some(Bytes::new());
                    metrics::large_restore("failed");
                    tracing::warn!(topic, partition = p.partition_index, error = %e, "cannot restore large records; the partition gets a retriable error");
                }
            }
        }
    }
    held
}

/// What one partition's records may grow to.
pub struct Limits {
    /// The response's `max_bytes`.
    pub max_bytes: usize,
    /// The partition's `max_bytes`.
    pub partition_max: usize,
    /// Values one response may restore.
    pub per_connection: usize,
}

/// Restores one partition's `records` (of the topic `scope` names) alone,
/// as the response's first: its new records, or `None` when they pass as
/// they came. For the fuzz target and tests; [`restore`] walks whole
/// responses.
pub fn restore_partition(
    scope: &Scope,
    records: Bytes,
    limit: &Limits,
    large: &dyn ValueSource,
    cap: usize,
) -> Result<Option<Bytes>, String> {
    let (mut total, mut restored, mut held) = (0, 0, Vec::new());
    let mut walk = Walk {
        total: &mut total,
        restored: &mut restored,
        held: &mut held,
        large,
        cap,
        scope,
        partition: 0,
    };
    walk.partition(records, limit).map_err(|e| e.to_string())
}

struct Walk<'a> {
    total: &'a mut usize,
    restored: &'a mut usize,
    held: &'a mut Vec<Held>,
    large: &'a dyn ValueSource,
    cap: usize,
    /// The topic, and where its references may point.
    scope: &'a Scope,
    partition: i32,
}

/// Why a batch could not be restored, with the offset it starts at.
#[derive(Debug, thiserror::Error)]
#[error("batch at offset {offset}: {error}")]
struct BatchFailure {
    offset: i64,
    error: Failure,
}

#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("{0}")]
    Batch(#[from] BatchError),
    #[error("record {record}: {error}")]
    Large { record: i64, error: LargeError },
}

impl Walk<'_> {
    /// The partition's new records, `None` when they pass as they came.
    fn partition(&mut self, records: Bytes, limit: &Limits) -> Result<Option<Bytes>, BatchFailure> {
        let mut out: Vec<Bytes> = Vec::new();
        let mut changed = false;
        let mut cut = false;
        let mut part = 0usize;
        let mut batches = Batches::new(records.clone());
        for b in batches.by_ref() {
            let Ok(b) = b else {
                break; // a partial batch at the end: the client fetches it again
            };
            let offset = b.base_offset();
            let fail = |error: Failure| BatchFailure { offset, error };
            let found = match self.marked(&b) {
                Ok(found) => found,
                Err(e) if out.is_empty() => return Err(fail(e)),
                Err(e) => {
                    self.cut_before(offset, &e);
                    cut = true;
                    break;
                }
            };
            let added: usize = found
                .as_ref()
                .map_or(0, |(_, m)| m.iter().map(|(_, r)| r.size() as usize).sum());
            let size = match &found {
                // Restored batches are sealed uncompressed.
                Some((edit, _)) => BATCH_HEADER_LEN + edit.section_len() + added,
                None => b.raw().len(),
            };
            let first = *self.total == 0;
            if !first
                && (*self.total + size > limit.max_bytes
                    || part + size > limit.partition_max
                    || *self.restored + added > limit.per_connection)
            {
                cut = true;
                break;
            }
            match found {
                None => out.push(b.raw().clone()),
                Some((edit, marked)) => {
                    let new = match self.restore_batch(edit, offset, marked) {
                        Ok(new) => new,
                        Err(e) if out.is_empty() => return Err(fail(e)),
                        Err(e) => {
                            self.cut_before(offset, &e);
                            cut = true;
                            break;
                        }
                    };
                    changed = true;
                    *self.restored += added;
                    metrics::large_bytes("restored", added as u64);
                    out.push(new);
                }
            }
            *self.total += size;
            part += size;
        }
        if cut {
            metrics::large_restore("cut");
        }
        if changed {
            metrics::large_restore("restored");
        }
        if !changed && !cut {
            return Ok(None);
        }
        Ok(Some(join(out)))
    }

    /// The batch's references, parsed, with its edit; `None` when it has
    /// none.
    fn marked(&self, b: &Batch) -> Result<Option<(BatchEdit, Marked)>, Failure> {
        let Some((edit, found)) = references(b, self.cap)? else {
            return Ok(None);
        };
        let offset = b.base_offset();
        let marked = found
            .into_iter()
            .map(|(i, r)| {
                r.and_then(|r| self.scope.check(&r).map(|()| (i, r)))
                    .map_err(|e| Failure::Large {
                        record: offset + i as i64,
                        error: e.into(),
                    })
            })
            .collect::<Result<Marked, Failure>>()?;
        Ok(Some((edit, marked)).filter(|(_, m)| !m.is_empty()))
    }

    /// Keeps what was read before a bad batch: the client fetches from it
    /// again and gets the error then, as the first batch of its answer.
    fn cut_before(&self, offset: i64, e: &Failure) {
        tracing::warn!(topic = self.scope.topic(), partition = self.partition, offset, error = %e, "cannot restore a large record; cutting the fetch before it");
    }

    /// Puts the values back into the batch under `edit` (its records at
    /// `base` and on), re-sealed uncompressed.
    fn restore_batch(
        &mut self,
        mut edit: BatchEdit,
        base: i64,
        marked: Marked,
    ) -> Result<Bytes, Failure> {
        let added: u64 = marked.iter().map(|(_, r)| r.size()).sum();
        // The values, the re-sealed batch and the encoded response.
        let held = self.large.hold(added * 2).map_err(|error| Failure::Large {
            record: base,
            error,
        })?;
        self.held.extend(held);
        let records = edit.records()?;
        for (i, r) in marked {
            let value = self.large.value(&r).map_err(|error| Failure::Large {
                record: base + i as i64,
                error,
            })?;
            let rec = &mut records[i];
            rec.value = Some(value);
            rec.remove_header(MARKER);
        }
        edit.seal_as(Compression::None);
        Ok(edit.finish()?)
    }
}

/// Strait's references in a batch, by record index: each parsed, or why it
/// does not parse; with the batch's edit, for the restore to reuse. Control
/// batches are `None` unopened; compressed ones are opened (the broker may
/// have recompressed what Strait wrote uncompressed, see the module docs);
/// a batch whose records carry no marker is `None` after a scan of record
/// views, no decode.
pub fn references(b: &Batch, cap: usize) -> Result<Option<(BatchEdit, Found)>, BatchError> {
    if b.is_control() {
        return Ok(None);
    }
    let bytes = b.record_bytes(cap)?;
    let views = crate::codec::batch::records(&bytes, b.record_count())?;
    if !views.iter().any(|v| v.has_header(MARKER)) {
        return Ok(None);
    }
    let mut edit = BatchEdit::new(b.clone(), cap)?;
    if b.compression() != Compression::None {
        // Decompressed once: the edit decodes these bytes.
        edit.set_section(Compression::None, bytes);
    }
    let found = edit
        .peek_records()?
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            let marker = r.header(MARKER)?.unwrap_or_default();
            let value = r.value.as_deref().unwrap_or_default();
            Some((i, Reference::parse(marker, value)))
        })
        .collect();
    Ok(Some((edit, found)))
}

#[cfg(test)]
#[path = "tests/restore.rs"]
mod tests;
