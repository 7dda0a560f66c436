//! The policy-file schema as written by operators (TOML). Every table rejects
//! unknown keys; semantic checks happen in [`crate::set`].

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// One policy file: any number of `[[policy]]` tables.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    #[serde(default)]
    pub policy: Vec<Spanned<PolicyDef>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDef {
    /// A name for messages and metrics.
    pub name: Spanned<String>,
    /// Which topics the policy applies to.
    pub topics: Spanned<SelectorDef>,
    /// Orders regex selectors against each other (higher wins); regexes of
    /// equal priority would tie, which is an error at load time.
    #[serde(default)]
    pub priority: i32,
    #[serde(default)]
    pub produce: Option<ProduceDef>,
    #[serde(default)]
    pub fetch: Option<FetchDef>,
    #[serde(default)]
    pub admin: Option<Spanned<AdminDef>>,
    /// Record pipeline: (re)compress produced batches.
    #[serde(default)]
    pub compress: Option<Spanned<CompressDef>>,
    /// Record pipeline: inject W3C trace context headers.
    #[serde(default)]
    pub trace: Option<Spanned<TraceDef>>,
    /// Record pipeline: remedies for records over a size threshold.
    #[serde(default)]
    pub large_records: Option<Spanned<crate::large::LargeRecordsDef>>,
    /// What Strait's debug tooling may show of these topics.
    #[serde(default)]
    pub debug: Option<DebugDef>,
    /// Copy the topics' records to a topic and/or JSONL files.
    #[serde(default)]
    pub mirror: Option<Spanned<crate::mirror::MirrorDef>>,
}

/// `[policy.debug]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DebugDef {
    /// `false`: keys and headers only, never a value (live tail, stuck
    /// message, mirror, UI, CLI). Default true.
    #[serde(default = "yes")]
    pub values: bool,
}

fn yes() -> bool {
    true
}

/// Exactly one key: `exact`, `prefix`, `glob`, `regex`, or `default = true`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelectorDef {
    pub exact: Option<String>,
    pub prefix: Option<String>,
    pub glob: Option<String>,
    pub regex: Option<String>,
    pub default: Option<bool>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum AcksDef {
    /// Whatever the client asks for.
    #[default]
    Any,
    /// acks=0 and acks=1 are rejected.
    RequireAll,
    /// acks=1 is upgraded to acks=all in flight; acks=0 is rejected.
    Upgrade,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Codec {
    /// From the low three bits of a record batch's attributes.
    pub fn from_attributes(attributes: i16) -> Option<Codec> {
        match attributes & 0x07 {
            0 => Some(Codec::None),
            1 => Some(Codec::Gzip),
            2 => Some(Codec::Snappy),
            3 => Some(Codec::Lz4),
            4 => Some(Codec::Zstd),
            _ => None,
        }
    }

    /// The codec's id in a record batch's attributes.
    pub fn id(self) -> i16 {
        match self {
            Codec::None => 0,
            Codec::Gzip => 1,
            Codec::Snappy => 2,
            Codec::Lz4 => 3,
            Codec::Zstd => 4,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Codec::None => "none",
            Codec::Gzip => "gzip",
            Codec::Snappy => "snappy",
            Codec::Lz4 => "lz4",
            Codec::Zstd => "zstd",
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProduceDef {
    #[serde(default)]
    pub acks: AcksDef,
    #[serde(default)]
    pub require_idempotent: bool,
    #[serde(default)]
    pub require_transactional: bool,
    pub max_record_bytes: Option<Spanned<i64>>,
    #[serde(default)]
    pub required_headers: Vec<String>,
    pub allowed_compression: Option<Vec<Codec>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FetchDef {
    #[serde(default)]
    pub read_committed: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminDef {
    pub partitions: Option<Spanned<RangeDef>>,
    pub min_replication_factor: Option<Spanned<i64>>,
    pub name_pattern: Option<Spanned<String>>,
    /// Config name -> required value, or `"*"` for "must be set to anything".
    #[serde(default)]
    pub required_configs: BTreeMap<String, String>,
    /// Config names that AlterConfigs / IncrementalAlterConfigs may not change.
    #[serde(default)]
    pub deny_configs: Vec<String>,
    #[serde(default)]
    pub protect_delete: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RangeDef {
    pub min: Option<i64>,
    pub max: Option<i64>,
}

/// `[policy.compress]`: the codec Strait writes produced batches in.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompressDef {
    pub codec: Codec,
    /// gzip 1-9 (default 6), zstd 1-22 (default 3); snappy and lz4 have none.
    pub level: Option<i64>,
    /// Also re-compress batches the client compressed with another codec
    /// (default: only uncompressed batches are compressed).
    #[serde(default)]
    pub recompress: bool,
}

/// `[policy.trace]`: W3C trace context headers added to produced records.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceDef {
    /// The trace context header (default `traceparent`).
    pub header: Option<String>,
    /// When set, the producing client's id is added under this header name.
    pub client_id_header: Option<String>,
    /// When set, the time Strait received the record (milliseconds since the
    /// Unix epoch, decimal) is added under this header name.
    pub received_at_header: Option<String>,
}
