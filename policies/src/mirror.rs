//! `[policy.mirror]`: the policy's topics' records, as Strait reads them
//! from the log, copied to a Kafka topic and/or rotating JSONL files, with
//! a sampling rate and a byte-rate cap (the proxy's `debug::mirror`).
//!
//! ```toml
//! [policy.mirror]
//! sample = 0.1                         # share of records mirrored (0 < x <= 1, default 1)
//! max_bytes_per_sec = 1048576          # over this, records are dropped and counted
//! jsonl_dir = "/var/lib/strait/mirror" # files mirror-<topic>-<n>.jsonl
//! rotate_bytes = 67108864              # a file's size before the next one (default 64 MiB)
//! keep_files = 4                       # files kept per topic (default 4)
//! topic = "orders.mirror"              # JSON values keyed by the source key
//! bootstrap = ["other:9092"]           # the mirror topic's cluster (default: this one)
//! ```

use std::path::PathBuf;

use serde::Deserialize;

use crate::set::Ctx;

/// As written in the policy file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorDef {
    pub sample: Option<f64>,
    pub max_bytes_per_sec: Option<i64>,
    pub jsonl_dir: Option<String>,
    pub rotate_bytes: Option<i64>,
    pub keep_files: Option<i64>,
    pub topic: Option<String>,
    pub bootstrap: Option<Vec<String>>,
}

/// `[policy.mirror]`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct MirrorRules {
    /// Share of records mirrored, chosen per record by a hash of its
    /// topic, partition and offset (so the same records on every run).
    pub sample: f64,
    /// Mirrored bytes per second over all of the policy's topics at most.
    pub max_bytes_per_sec: u64,
    pub jsonl: Option<JsonlSink>,
    pub topic: Option<TopicSink>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonlSink {
    pub dir: PathBuf,
    pub rotate_bytes: u64,
    pub keep_files: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSink {
    pub name: String,
    /// Another cluster's brokers; `None`: the cluster Strait fronts.
    pub bootstrap: Option<Vec<String>>,
}

pub const DEFAULT_MAX_BYTES_PER_SEC: u64 = 10 << 20;
pub const DEFAULT_ROTATE_BYTES: u64 = 64 << 20;
pub const DEFAULT_KEEP_FILES: u32 = 4;
const ROTATE_MIN: i64 = 4 << 10;
const KEEP_MAX: i64 = 10_000;

pub(crate) fn compile(ctx: &mut Ctx<'_>, at: usize, d: MirrorDef) -> Option<MirrorRules> {
    let mut ok = true;
    macro_rules! bad {
        ($($t:tt)*) => {{
            ctx.at(at, format!($($t)*));
            ok = false;
        }};
    }
    let sample = d.sample.unwrap_or(1.0);
    if !(sample > 0.0 && sample <= 1.0) {
        bad!("mirror.sample must be above 0 and at most 1 (the share of records mirrored), got {sample}");
    }
    let rate = d
        .max_bytes_per_sec
        .unwrap_or(DEFAULT_MAX_BYTES_PER_SEC as i64);
    if rate < 1 {
        bad!("mirror.max_bytes_per_sec must be at least 1, got {rate}");
    }
    let rotate = d.rotate_bytes.unwrap_or(DEFAULT_ROTATE_BYTES as i64);
    if rotate < ROTATE_MIN {
        bad!("mirror.rotate_bytes must be at least {ROTATE_MIN}, got {rotate}");
    }
    let keep = d.keep_files.unwrap_or(i64::from(DEFAULT_KEEP_FILES));
    if !(1..=KEEP_MAX).contains(&keep) {
        bad!("mirror.keep_files must be between 1 and {KEEP_MAX}, got {keep}");
    }
    if d.jsonl_dir.is_none() && (d.rotate_bytes.is_some() || d.keep_files.is_some()) {
        bad!("mirror.rotate_bytes and mirror.keep_files need mirror.jsonl_dir");
    }
    let jsonl = match d.jsonl_dir {
        Some(dir) if dir.trim().is_empty() => {
            bad!("mirror.jsonl_dir must not be empty");
            None
        }
        Some(dir) => Some(JsonlSink {
            dir: PathBuf::from(dir),
            rotate_bytes: rotate.max(0) as u64,
            keep_files: keep.clamp(0, KEEP_MAX) as u32,
        }),
        None => None,
    };
    if d.topic.is_none() && d.bootstrap.is_some() {
        bad!("mirror.bootstrap needs mirror.topic");
    }
    if let Some(b) = &d.bootstrap {
        if b.is_empty() || b.iter().any(|a| !a.contains(':') || a.trim() != a) {
            bad!("mirror.bootstrap must list the mirror cluster's brokers as host:port, got {b:?}");
        }
    }
    let topic = match d.topic {
        Some(t)
            if t.is_empty()
                || t.len() > 249
                || !t
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) =>
        {
            bad!("mirror.topic {t:?} is not a topic name (1 to 249 letters, digits, '.', '_' and '-')");
            None
        }
        Some(name) => Some(TopicSink {
            name,
            bootstrap: d.bootstrap,
        }),
        None => None,
    };
    if jsonl.is_none() && topic.is_none() && ok {
        bad!("mirror needs somewhere to write: jsonl_dir, topic, or both");
    }
    ok.then_some(MirrorRules {
        sample,
        max_bytes_per_sec: rate as u64,
        jsonl,
        topic,
    })
}
