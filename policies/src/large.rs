//! `[policy.large_records]`: what Strait does with a record whose value is
//! over a threshold: an ordered list of remedies, the first that brings the
//! record under the threshold wins.
//!
//! ```toml
//! [policy.large_records]
//! threshold = 1000000                  # bytes of a record's value (default)
//! remedies = ["compress", "claim-check"]
//! prefix = "strait"                    # object keys: <prefix>/<topic>/<sha256>
//! chunk_topic = "{topic}.strait-chunks" # for "chunk" (the default)
//! chunk_bytes = 524288                 # one chunk record's value (default)
//! allow_compacted = false              # chunking a compacted topic is refused
//! ```

use serde::Deserialize;

use crate::set::Ctx;

/// Strait's own headers start with this; clients may not send them on a
/// topic with large-record handling (nothing can forge a reference).
pub const RESERVED_HEADER_PREFIX: &[u8] = b"strait.";

/// One remedy for an oversized record.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum Remedy {
    /// Compress the batch (zstd; lz4 before Produce v7) when the value
    /// compressed alone fits under the threshold. Clients decompress it
    /// themselves: nothing to restore.
    Compress,
    /// The value goes to the object store; the record keeps a reference.
    ClaimCheck,
    /// The value goes to a companion topic in chunks; the record keeps a
    /// manifest.
    Chunk,
}

impl Remedy {
    pub fn name(self) -> &'static str {
        match self {
            Remedy::Compress => "compress",
            Remedy::ClaimCheck => "claim-check",
            Remedy::Chunk => "chunk",
        }
    }
}

/// As written in the policy file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LargeRecordsDef {
    pub threshold: Option<i64>,
    pub remedies: Vec<Remedy>,
    pub prefix: Option<String>,
    pub chunk_topic: Option<String>,
    pub chunk_bytes: Option<i64>,
    #[serde(default)]
    pub allow_compacted: bool,
}

/// `[policy.large_records]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LargeRecordRules {
    /// A value over this many bytes gets a remedy.
    pub threshold: u32,
    pub remedies: Vec<Remedy>,
    /// Object key prefix (no leading or trailing `/`).
    pub prefix: String,
    /// The chunk topic's name, with `{topic}` for the source topic.
    pub chunk_topic: String,
    pub chunk_bytes: u32,
    pub allow_compacted: bool,
}

/// Defaults: the threshold of the seeds' brokers (and bakdata's serde),
/// half-MiB chunks (well under a default broker's 1 MiB record limit).
pub const DEFAULT_THRESHOLD: u32 = 1_000_000;
pub const DEFAULT_PREFIX: &str = "strait";
pub const DEFAULT_CHUNK_TOPIC: &str = "{topic}.strait-chunks";
pub const DEFAULT_CHUNK_BYTES: u32 = 512 * 1024;
const CHUNK_BYTES_RANGE: (i64, i64) = (16 * 1024, 8 * 1024 * 1024);
const THRESHOLD_MIN: i64 = 1024;

impl LargeRecordRules {
    /// The chunk topic of `topic`.
    pub fn chunk_topic_for(&self, topic: &str) -> String {
        self.chunk_topic.replace("{topic}", topic)
    }

    pub fn uses(&self, r: Remedy) -> bool {
        self.remedies.contains(&r)
    }

    /// Remedies whose records the fetch path restores.
    pub fn restores(&self) -> bool {
        self.uses(Remedy::ClaimCheck) || self.uses(Remedy::Chunk)
    }
}

pub(crate) fn compile(
    ctx: &mut Ctx<'_>,
    at: usize,
    d: LargeRecordsDef,
) -> Option<LargeRecordRules> {
    let mut ok = true;
    let threshold = d.threshold.unwrap_or(i64::from(DEFAULT_THRESHOLD));
    if !(THRESHOLD_MIN..=i64::from(u32::MAX)).contains(&threshold) {
        ctx.at(
            at,
            format!(
                "large_records.threshold must be between {THRESHOLD_MIN} and {}, got {threshold}",
                u32::MAX
            ),
        );
        ok = false;
    }
    if d.remedies.is_empty() {
        ctx.at(
            at,
            "large_records.remedies must name at least one of \"compress\", \"claim-check\", \"chunk\"",
        );
        ok = false;
    }
    for (i, r) in d.remedies.iter().enumerate() {
        if d.remedies[i + 1..].contains(r) {
            ctx.at(
                at,
                format!("large_records.remedies: {:?} is listed twice", r.name()),
            );
            ok = false;
        }
    }
    if let Some(i) = d.remedies.iter().position(|r| *r != Remedy::Compress) {
        if let Some(after) = d.remedies[i + 1..].first() {
            ctx.at(
                at,
                format!(
                    "large_records.remedies: {:?} after {:?} is never reached ({:?} always brings a record under the threshold)",
                    after.name(),
                    d.remedies[i].name(),
                    d.remedies[i].name()
                ),
            );
            ok = false;
        }
    }
    let prefix = d.prefix.unwrap_or_else(|| DEFAULT_PREFIX.to_string());
    let prefix_ok = !prefix.is_empty()
        && !prefix.starts_with('/')
        && !prefix.ends_with('/')
        && !prefix.contains("//")
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b));
    if !prefix_ok {
        ctx.at(
            at,
            format!("large_records.prefix {prefix:?} must be non-empty path segments of letters, digits, '-', '_', '.', separated by single '/' (no leading or trailing '/')"),
        );
        ok = false;
    }
    let chunk_topic = d
        .chunk_topic
        .unwrap_or_else(|| DEFAULT_CHUNK_TOPIC.to_string());
    let sample = chunk_topic.replace("{topic}", "t");
    if !chunk_topic.contains("{topic}")
        || sample.len() > 200
        || !sample
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        ctx.at(
            at,
            format!("large_records.chunk_topic {chunk_topic:?} must contain \"{{topic}}\" (one chunk topic per source topic, with its partition count) and otherwise only letters, digits, '.', '_' and '-'"),
        );
        ok = false;
    }
    let chunk_bytes = d.chunk_bytes.unwrap_or(i64::from(DEFAULT_CHUNK_BYTES));
    let (lo, hi) = CHUNK_BYTES_RANGE;
    if !(lo..=hi).contains(&chunk_bytes) {
        ctx.at(
            at,
            format!("large_records.chunk_bytes must be between {lo} and {hi}, got {chunk_bytes}"),
        );
        ok = false;
    }
    ok.then_some(LargeRecordRules {
        threshold: threshold as u32,
        remedies: d.remedies,
        prefix,
        chunk_topic,
        chunk_bytes: chunk_bytes as u32,
        allow_compacted: d.allow_compacted,
    })
}
