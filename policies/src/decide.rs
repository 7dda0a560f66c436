//! The pure decision functions: facts about a request in, a verdict out.
//! The proxy gathers the facts (header peeks, batch headers, records only when
//! a rule needs them) and applies the verdict on the wire.

use std::fmt;

use crate::schema::{AcksDef, Codec};
use crate::set::Policy;

/// Kafka error codes a rejection uses.
pub const POLICY_VIOLATION: i16 = 44;
pub const INVALID_RECORD: i16 = 87;
/// Kafka's CORRUPT_MESSAGE: what the broker answers for a bad CRC.
pub const CORRUPT_MESSAGE: i16 = 2;

/// A rule, as named in messages and metrics (`<section>.<key>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    Acks,
    RequireIdempotent,
    RequireTransactional,
    MaxRecordBytes,
    RequiredHeaders,
    AllowedCompression,
    Partitions,
    MinReplicationFactor,
    NamePattern,
    RequiredConfigs,
    DenyConfigs,
    ProtectDelete,
    /// A batch Strait must read (to check or rewrite it) is unreadable.
    Readable,
    /// The compression stage.
    Compress,
    /// The trace-context stage.
    Trace,
    /// The large-record stage (a record no remedy brings under the threshold).
    LargeRecords,
    /// A client header in Strait's reserved `strait.` namespace.
    ReservedHeaders,
}

impl Rule {
    pub fn name(self) -> &'static str {
        match self {
            Rule::Acks => "produce.acks",
            Rule::RequireIdempotent => "produce.require_idempotent",
            Rule::RequireTransactional => "produce.require_transactional",
            Rule::MaxRecordBytes => "produce.max_record_bytes",
            Rule::RequiredHeaders => "produce.required_headers",
            Rule::AllowedCompression => "produce.allowed_compression",
            Rule::Partitions => "admin.partitions",
            Rule::MinReplicationFactor => "admin.min_replication_factor",
            Rule::NamePattern => "admin.name_pattern",
            Rule::RequiredConfigs => "admin.required_configs",
            Rule::DenyConfigs => "admin.deny_configs",
            Rule::ProtectDelete => "admin.protect_delete",
            Rule::Readable => "batch.readable",
            Rule::Compress => "compress",
            Rule::Trace => "trace",
            Rule::LargeRecords => "large_records",
            Rule::ReservedHeaders => "large_records.reserved_headers",
        }
    }
}

/// A rejection: the Kafka error code, a message naming policy, file, selector
/// and rule, and (for record-level rules) the offending records by index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub rule: Rule,
    pub error_code: i16,
    pub message: String,
    pub record_errors: Vec<(i32, String)>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

fn violation(policy: &Policy, rule: Rule, code: i16, why: impl fmt::Display) -> Violation {
    Violation {
        rule,
        error_code: code,
        message: format!(
            "Strait policy {:?} ({}, topics {}) rule {}: {}",
            policy.name,
            policy.source.file,
            policy.selector,
            rule.name(),
            why
        ),
        record_errors: Vec::new(),
    }
}

/// What Strait does with a produce request's `acks` for a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcksVerdict {
    Keep,
    /// Rewrite acks=1 to acks=all in flight.
    UpgradeToAll,
    Reject(Violation),
}

/// The request-level check: acks.
pub fn decide_acks(policy: &Policy, acks: i16) -> AcksVerdict {
    let Some(rules) = &policy.produce else {
        return AcksVerdict::Keep;
    };
    match (rules.acks, acks) {
        (AcksDef::Any, _) | (_, -1) => AcksVerdict::Keep,
        (AcksDef::Upgrade, 1) => AcksVerdict::UpgradeToAll,
        (_, a) => AcksVerdict::Reject(violation(
            policy,
            Rule::Acks,
            POLICY_VIOLATION,
            format!("acks={a} is not allowed, producers must use acks=all"),
        )),
    }
}

/// What a batch header says (no records decoded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchFacts {
    pub producer_id: i64,
    pub transactional: bool,
    pub compression: Codec,
    pub magic: i8,
}

/// A record's facts, only gathered when a rule needs them.
pub trait RecordFacts {
    /// The record's encoded size in bytes.
    fn size(&self) -> usize;
    /// Whether the record has a header with this key.
    fn has_header(&self, key: &[u8]) -> bool;
    /// Whether the record has a header whose key starts with `prefix`.
    fn has_header_prefix(&self, prefix: &[u8]) -> bool;
}

/// Whether the record-level checks need the records of this policy's batches.
pub fn needs_records(policy: &Policy) -> bool {
    policy.large_records.is_some() || policy.produce.as_ref().is_some_and(|r| r.needs_records())
}

/// The batch-level checks (producer identity, transactions, compression).
pub fn decide_batch(
    policy: &Policy,
    has_transactional_id: bool,
    batch: &BatchFacts,
) -> Result<(), Violation> {
    let Some(rules) = &policy.produce else {
        return Ok(());
    };
    if rules.require_transactional && !(has_transactional_id && batch.transactional) {
        return Err(violation(
            policy,
            Rule::RequireTransactional,
            POLICY_VIOLATION,
            "the batch is not part of a transaction; set transactional.id and produce inside a transaction",
        ));
    }
    if rules.require_idempotent && batch.producer_id < 0 {
        return Err(violation(
            policy,
            Rule::RequireIdempotent,
            POLICY_VIOLATION,
            "the producer is not idempotent (no producer id); set enable.idempotence=true",
        ));
    }
    if let Some(allowed) = &rules.allowed_compression {
        if !allowed.contains(&batch.compression) {
            let names: Vec<_> = allowed.iter().map(|c| c.name()).collect();
            return Err(violation(
                policy,
                Rule::AllowedCompression,
                POLICY_VIOLATION,
                format!(
                    "compression {} is not allowed (allowed: {})",
                    batch.compression.name(),
                    names.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// The record-level checks; every offending record is listed by its index in the batch.
pub fn decide_records<R: RecordFacts>(
    policy: &Policy,
    records: impl IntoIterator<Item = R>,
) -> Result<(), Violation> {
    if !needs_records(policy) {
        return Ok(());
    }
    let rules = policy.produce.as_ref();
    let reserved = policy.large_records.is_some();
    let mut first: Option<Violation> = None;
    let mut errors = Vec::new();
    for (i, r) in records.into_iter().enumerate() {
        let mut why = None;
        if reserved && r.has_header_prefix(crate::large::RESERVED_HEADER_PREFIX) {
            why = Some((
                Rule::ReservedHeaders,
                "record carries a header in Strait's reserved \"strait.\" namespace; rename it"
                    .to_string(),
            ));
        }
        let max_bytes = rules.and_then(|r| r.max_record_bytes);
        if let (None, Some(max)) = (&why, max_bytes) {
            if r.size() > max as usize {
                why = Some((
                    Rule::MaxRecordBytes,
                    format!(
                        "record of {} bytes exceeds the limit of {max} bytes",
                        r.size()
                    ),
                ));
            }
        }
        if let (None, Some(rules)) = (&why, rules) {
            if let Some(missing) = rules
                .required_headers
                .iter()
                .find(|h| !r.has_header(h.as_bytes()))
            {
                why = Some((
                    Rule::RequiredHeaders,
                    format!("record lacks the required header {missing:?}"),
                ));
            }
        }
        if let Some((rule, text)) = why {
            // Clients show a record's own message, so it names policy and rule too.
            let v = violation(policy, rule, INVALID_RECORD, &text);
            errors.push((i as i32, v.message.clone()));
            if first.is_none() {
                first = Some(v);
            }
        }
    }
    match first {
        None => Ok(()),
        Some(mut v) => {
            if errors.len() > 1 {
                v.message
                    .push_str(&format!(" ({} records rejected)", errors.len()));
            }
            v.record_errors = errors;
            Err(v)
        }
    }
}

/// Whether fetches of this topic must be read_committed.
pub fn forces_read_committed(policy: &Policy) -> bool {
    policy.fetch.read_committed
}

/// A topic to be created.
#[derive(Debug, Clone)]
pub struct NewTopic<'a> {
    pub name: &'a str,
    /// -1: the broker's default.
    pub partitions: i32,
    /// -1: the broker's default.
    pub replication_factor: i16,
    pub configs: Vec<(&'a str, Option<&'a str>)>,
}

pub fn decide_create_topic(policy: &Policy, t: &NewTopic<'_>) -> Result<(), Violation> {
    let Some(rules) = &policy.admin else {
        return Ok(());
    };
    let v = |rule, why: String| Err(violation(policy, rule, POLICY_VIOLATION, why));
    if let Some(p) = &rules.name_pattern {
        if !p.is_match(t.name) {
            return v(
                Rule::NamePattern,
                format!(
                    "topic name {:?} does not match {:?}",
                    t.name,
                    inner(p.as_str())
                ),
            );
        }
    }
    let (lo, hi) = rules.partitions;
    if lo.is_some() || hi.is_some() {
        if t.partitions < 1 {
            return v(
                Rule::Partitions,
                "the partition count must be given explicitly".into(),
            );
        }
        if lo.is_some_and(|lo| t.partitions < lo) || hi.is_some_and(|hi| t.partitions > hi) {
            return v(
                Rule::Partitions,
                format!(
                    "{} partitions is outside {}..={}",
                    t.partitions,
                    fmt_opt(lo),
                    fmt_opt(hi)
                ),
            );
        }
    }
    if let Some(min) = rules.min_replication_factor {
        if t.replication_factor < min {
            let given = if t.replication_factor < 1 {
                "the broker default".to_string()
            } else {
                t.replication_factor.to_string()
            };
            return v(
                Rule::MinReplicationFactor,
                format!("replication factor {given} is below the minimum of {min}"),
            );
        }
    }
    for (key, want) in &rules.required_configs {
        let got = t
            .configs
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| *v);
        match got {
            None => return v(Rule::RequiredConfigs, format!("config {key} must be set")),
            Some(g) if want != "*" && g != want => {
                return v(
                    Rule::RequiredConfigs,
                    format!("config {key} must be {want:?}, got {g:?}"),
                )
            }
            _ => {}
        }
    }
    Ok(())
}

/// AlterConfigs / IncrementalAlterConfigs of a topic.
pub fn decide_alter_configs<'a>(
    policy: &Policy,
    names: impl IntoIterator<Item = &'a str>,
) -> Result<(), Violation> {
    let Some(rules) = &policy.admin else {
        return Ok(());
    };
    for n in names {
        if rules.deny_configs.iter().any(|d| d == n) {
            return Err(violation(
                policy,
                Rule::DenyConfigs,
                POLICY_VIOLATION,
                format!("config {n} may not be changed"),
            ));
        }
    }
    Ok(())
}

pub fn decide_delete_topic(policy: &Policy) -> Result<(), Violation> {
    match &policy.admin {
        Some(r) if r.protect_delete => Err(violation(
            policy,
            Rule::ProtectDelete,
            POLICY_VIOLATION,
            "the topic is protected from deletion",
        )),
        _ => Ok(()),
    }
}

fn fmt_opt(v: Option<i32>) -> String {
    v.map_or_else(String::new, |v| v.to_string())
}

/// The user's pattern without the anchoring Strait added.
fn inner(anchored: &str) -> &str {
    anchored
        .strip_prefix("^(?:")
        .and_then(|s| s.strip_suffix(")$"))
        .unwrap_or(anchored)
}
