//! `strait large-records gc`: claim-check objects no live record references.
//!
//! An object is garbage when no record in its topic references it and it is
//! older than the topic's retention (`retention.ms`; topics that keep
//! records forever, and topics that no longer exist, use [`DEFAULT_MIN_AGE`]).
//! Objects of aborted transactions and of produces that failed after the put
//! are never referenced by a committed record, and age out this way; so do
//! objects whose records the broker deleted by retention. The age guard
//! keeps an object whose record is still on its way (written to the store,
//! not yet appended). References are read from every partition from its log
//! start, read_uncommitted: a reference in an aborted transaction keeps its
//! object until the broker deletes that record (conservative: never deletes
//! what a consumer might still be served).
//!
//! Nothing a record references is ever deleted, and nothing is deleted on
//! consumption (the SQS extended client's dangling pointers and lost
//! payloads, amazon-sqs-java-extended-client-lib #30, #137, #6, #40).
//!
//! Dry run by default (lists); `--delete` deletes. Alongside, set the
//! bucket's lifecycle rules: abort incomplete multipart uploads after a day,
//! and (optionally) expire objects under the prefix after the longest
//! retention of the topics using it.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, SystemTime};

use strait_policies::{PolicySet, Remedy};

use super::reference::Reference;
use super::restore;
use super::store::Listed;
use super::LargeRecords;
use crate::codec::batch::Batches;

/// The age guard for topics without a finite retention.
pub const DEFAULT_MIN_AGE: Duration = Duration::from_secs(7 * 24 * 3600);
/// Bytes asked for per fetch while scanning for references.
const SCAN_BYTES: i32 = 8 << 20;

/// What a collection found.
#[derive(Debug, Default)]
pub struct Report {
    /// Objects under the claim-check prefixes.
    pub objects: usize,
    /// Of them, referenced by a record.
    pub referenced: usize,
    /// Unreferenced, but younger than their age guard.
    pub young: usize,
    /// Unreferenced and old enough: garbage (deleted with `delete`).
    pub garbage: Vec<Listed>,
    pub deleted: usize,
}

/// Lists (and with `delete`, deletes) the garbage under every claim-check
/// prefix the policies use. `say` gets one line per finding.
pub async fn collect(
    large: &LargeRecords,
    policies: &PolicySet,
    delete: bool,
    mut say: impl FnMut(String),
) -> anyhow::Result<Report> {
    let prefixes: Vec<&str> = {
        let mut p: Vec<&str> = policies
            .policies()
            .iter()
            .filter_map(|p| p.large_records.as_ref())
            .filter(|l| l.uses(Remedy::ClaimCheck))
            .map(|l| l.prefix.as_str())
            .collect();
        p.sort_unstable();
        p.dedup();
        p
    };
    let now = SystemTime::now();
    let mut report = Report::default();
    for prefix in prefixes {
        let mut by_topic: BTreeMap<String, Vec<Listed>> = BTreeMap::new();
        for o in large.store.list(prefix).await? {
            let Some(rest) = o.key.strip_prefix(prefix).and_then(|r| r.strip_prefix('/')) else {
                continue;
            };
            let Some((topic, _hash)) = rest.split_once('/') else {
                continue;
            };
            by_topic.entry(topic.to_string()).or_default().push(o);
        }
        for (topic, objects) in by_topic {
            report.objects += objects.len();
            let (live, min_age) = references(large, &topic).await?;
            for o in objects {
                if live.contains(&o.key) {
                    report.referenced += 1;
                    continue;
                }
                let age = now.duration_since(o.modified).unwrap_or_default();
                if age < min_age {
                    report.young += 1;
                    continue;
                }
                say(format!(
                    "garbage {} ({} bytes, {}s old, topic {topic})",
                    o.key,
                    o.size,
                    age.as_secs()
                ));
                if delete {
                    large.store.delete(&o.key).await?;
                    report.deleted += 1;
                }
                report.garbage.push(o);
            }
        }
    }
    Ok(report)
}

/// The object keys `topic`'s records reference, and its age guard.
async fn references(
    large: &LargeRecords,
    topic: &str,
) -> anyhow::Result<(HashSet<String>, Duration)> {
    let client = &large.client;
    let mut live = HashSet::new();
    let Some(partitions) = client.partitions(topic).await? else {
        return Ok((live, DEFAULT_MIN_AGE));
    };
    let configs = client.topic_configs(topic).await?;
    let min_age = configs
        .get("retention.ms")
        .and_then(|r| r.parse::<i64>().ok())
        .filter(|r| *r >= 0)
        .map_or(DEFAULT_MIN_AGE, |ms| Duration::from_millis(ms as u64));
    let cap = large.config.memory_bytes as usize;
    for partition in 0..partitions {
        let mut offset = client.earliest_offset(topic, partition).await?;
        loop {
            let fetched = client.fetch(topic, partition, offset, SCAN_BYTES).await?;
            let mut next = offset;
            for b in Batches::new(fetched.records) {
                let Ok(b) = b else { break };
                next = next.max(b.last_offset() + 1);
                let Some((_, found)) = restore::references(&b, cap)? else {
                    continue;
                };
                for (_, r) in found {
                    if let Ok(Reference::Object(o)) = r {
                        live.insert(o.key);
                    }
                }
            }
            if next >= fetched.high_watermark || next == offset {
                break;
            }
            offset = next;
        }
    }
    Ok((live, min_age))
}
