//! What a large record carries instead of its value: a claim-check
//! reference to an object, or a manifest of chunks in a companion topic,
//! marked by a header in Strait's reserved namespace.
//!
//! Both are small JSON documents, so a consumer that bypasses Strait (straight
//! to the broker) sees a readable pointer and the marker header, never a
//! silently truncated value:
//!
//! ```text
//! header strait.large-record = claim-check
//! value  {"strait":"claim-check","v":1,"key":"strait/media.video/9f86…","size":5242880,"sha256":"9f86…"}
//!
//! header strait.large-record = chunks
//! value  {"strait":"chunks","v":1,"topic":"scans.x.strait-chunks","partition":0,
//!         "ranges":[[120,8],[131,4]],"chunks":12,"size":6291456,"sha256":"…"}
//! ```
//!
//! The value is never null (a null value is a tombstone on a compacted
//! topic: the irori claim-check interceptors' trap), and the marker is a
//! header rather than a magic prefix of the value (bakdata
//! kafka-large-message-serde #32).
//!
//! `ranges` lists `[base offset, records]` runs of the chunk topic's
//! partition holding the chunks in order (Strait writes a value's chunks in
//! a few batches, and other writers may interleave between them). Parsing is
//! strict and bounded: a reference that does not parse is an error for that
//! partition, never passed off as the value.
//!
//! A reference is tied to its record's topic ([`Scope`]): a claim-check key
//! must be the one Strait writes for the topic and a manifest must name the
//! topic's chunk topic, both under the topic's policy. Strait refuses
//! `strait.` headers from its clients, but a producer that bypasses it can
//! still write a reference, and one naming another topic's object or chunk
//! topic would have Strait read that with its own credentials, with only the
//! SHA-256 (which the forger may know) in the way.

use serde::{Deserialize, Serialize};
use strait_policies::LargeRecordRules;

/// The marker header's key, and its values.
pub const MARKER: &[u8] = b"strait.large-record";
pub const CLAIM_CHECK: &[u8] = b"claim-check";
pub const CHUNKS: &[u8] = b"chunks";

/// Bounds on what a reference may claim (a value can be no larger than a
/// frame Strait accepts; a manifest no longer than a value's chunks).
pub const MAX_VALUE_BYTES: u64 = 1 << 31;
pub const MAX_CHUNKS: u32 = 1 << 17;
const MAX_DOCUMENT_BYTES: usize = 64 * 1024;

pub type Sha256 = [u8; 32];

/// A claim-checked value: the object's key in the store, its size and hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub key: String,
    pub size: u64,
    pub sha256: Sha256,
}

/// A chunked value: where its chunks are, how many, its size and hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub topic: String,
    pub partition: i32,
    pub ranges: Vec<(i64, u32)>,
    pub chunks: u32,
    pub size: u64,
    pub sha256: Sha256,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Object(ObjectRef),
    Chunks(Manifest),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReferenceError {
    #[error("unknown marker {0:?} (expected \"claim-check\" or \"chunks\")")]
    Marker(String),
    #[error("reference of {0} bytes is too long")]
    TooLong(usize),
    #[error("malformed reference: {0}")]
    Malformed(String),
    #[error("reference kind {found:?} does not match its marker {marker:?}")]
    Kind { found: String, marker: String },
    #[error("reference version {0} is not supported (this Strait reads version 1)")]
    Version(u32),
    #[error("invalid reference: {0}")]
    Invalid(&'static str),
    #[error("the reference names {found}, not {expected} as topic {topic}'s policy does")]
    Elsewhere {
        topic: String,
        found: String,
        expected: String,
    },
}

/// The object key Strait writes a value of `topic` under: a content
/// address, `<prefix>/<topic>/<sha256>`.
pub fn object_key(prefix: &str, topic: &str, sha256: &Sha256) -> String {
    format!("{prefix}/{topic}/{}", hex::encode(sha256))
}

/// Where the references of one topic's records may point: exactly where
/// Strait writes them under the topic's policy (its key prefix, its chunk
/// topic). Changing `prefix` or `chunk_topic` in a policy therefore leaves
/// the records written before unreadable through Strait, like a reference
/// copied to another topic: telling those apart from a forged reference
/// would need a record of every name the topic's policy ever had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    topic: String,
    prefix: String,
    chunk_topic: String,
}

impl Scope {
    pub fn new(topic: &str, rules: &LargeRecordRules) -> Scope {
        Scope {
            topic: topic.to_string(),
            prefix: rules.prefix.clone(),
            chunk_topic: rules.chunk_topic_for(topic),
        }
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Whether `r` points where Strait would have written this topic's
    /// value: the error names both places.
    pub fn check(&self, r: &Reference) -> Result<(), ReferenceError> {
        let (found, expected) = match r {
            Reference::Object(o) => {
                let key = object_key(&self.prefix, &self.topic, &o.sha256);
                if o.key == key {
                    return Ok(());
                }
                (format!("object {:?}", o.key), format!("object {key:?}"))
            }
            Reference::Chunks(m) => {
                if m.topic == self.chunk_topic {
                    return Ok(());
                }
                (
                    format!("chunk topic {:?}", m.topic),
                    format!("chunk topic {:?}", self.chunk_topic),
                )
            }
        };
        Err(ReferenceError::Elsewhere {
            topic: self.topic.clone(),
            found,
            expected,
        })
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Doc {
    strait: String,
    v: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    topic: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    partition: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ranges: Option<Vec<(i64, u32)>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    chunks: Option<u32>,
    size: u64,
    sha256: String,
}

impl Reference {
    /// The marker header value for this reference.
    pub fn marker(&self) -> &'static [u8] {
        match self {
            Reference::Object(_) => CLAIM_CHECK,
            Reference::Chunks(_) => CHUNKS,
        }
    }

    pub fn size(&self) -> u64 {
        match self {
            Reference::Object(o) => o.size,
            Reference::Chunks(m) => m.size,
        }
    }

    pub fn sha256(&self) -> &Sha256 {
        match self {
            Reference::Object(o) => &o.sha256,
            Reference::Chunks(m) => &m.sha256,
        }
    }

    /// The record value that carries this reference.
    pub fn encode(&self) -> Vec<u8> {
        let doc = match self {
            Reference::Object(o) => Doc {
                strait: "claim-check".into(),
                v: 1,
                key: Some(o.key.clone()),
                topic: None,
                partition: None,
                ranges: None,
                chunks: None,
                size: o.size,
                sha256: hex::encode(o.sha256),
            },
            Reference::Chunks(m) => Doc {
                strait: "chunks".into(),
                v: 1,
                key: None,
                topic: Some(m.topic.clone()),
                partition: Some(m.partition),
                ranges: Some(m.ranges.clone()),
                chunks: Some(m.chunks),
                size: m.size,
                sha256: hex::encode(m.sha256),
            },
        };
        serde_json::to_vec(&doc).expect("a reference always serialises")
    }

    /// Parses the value of a record whose marker header is `marker`.
    pub fn parse(marker: &[u8], value: &[u8]) -> Result<Reference, ReferenceError> {
        let kind = match marker {
            CLAIM_CHECK => "claim-check",
            CHUNKS => "chunks",
            other => return Err(ReferenceError::Marker(lossy(other))),
        };
        if value.len() > MAX_DOCUMENT_BYTES {
            return Err(ReferenceError::TooLong(value.len()));
        }
        let doc: Doc =
            serde_json::from_slice(value).map_err(|e| ReferenceError::Malformed(e.to_string()))?;
        if doc.strait != kind {
            return Err(ReferenceError::Kind {
                found: doc.strait,
                marker: kind.into(),
            });
        }
        if doc.v != 1 {
            return Err(ReferenceError::Version(doc.v));
        }
        if doc.size > MAX_VALUE_BYTES {
            return Err(ReferenceError::Invalid("size over 2 GiB"));
        }
        let mut sha256 = [0u8; 32];
        hex::decode_to_slice(&doc.sha256, &mut sha256)
            .map_err(|_| ReferenceError::Invalid("sha256 is not 64 hex digits"))?;
        if kind == "claim-check" {
            let key = doc.key.ok_or(ReferenceError::Invalid("no key"))?;
            let hex = &doc.sha256;
            let good = key.len() > hex.len()
                && key.ends_with(hex.as_str())
                && key.as_bytes()[key.len() - hex.len() - 1] == b'/'
                && !key.starts_with('/')
                && !key
                    .split('/')
                    .any(|s| s.is_empty() || s == "." || s == "..");
            if !good || doc.topic.is_some() || doc.ranges.is_some() || doc.chunks.is_some() {
                return Err(ReferenceError::Invalid(
                    "a claim-check names a key <prefix>/<topic>/<sha256> and nothing else",
                ));
            }
            return Ok(Reference::Object(ObjectRef {
                key,
                size: doc.size,
                sha256,
            }));
        }
        let (Some(topic), Some(partition), Some(ranges), Some(chunks)) =
            (doc.topic, doc.partition, doc.ranges, doc.chunks)
        else {
            return Err(ReferenceError::Invalid(
                "a manifest names topic, partition, ranges and chunks",
            ));
        };
        if doc.key.is_some() || topic.is_empty() || topic.len() > 249 || partition < 0 {
            return Err(ReferenceError::Invalid("bad chunk topic or partition"));
        }
        if chunks == 0 || chunks > MAX_CHUNKS || ranges.is_empty() {
            return Err(ReferenceError::Invalid("bad chunk count"));
        }
        let mut total: u64 = 0;
        let mut next = i64::MIN;
        for &(base, n) in &ranges {
            if base < 0 || n == 0 || base < next {
                return Err(ReferenceError::Invalid(
                    "chunk ranges must be non-empty, ascending and disjoint",
                ));
            }
            next = base.saturating_add(i64::from(n));
            total += u64::from(n);
        }
        if total != u64::from(chunks) {
            return Err(ReferenceError::Invalid(
                "chunk ranges do not add up to chunks",
            ));
        }
        if doc.size < u64::from(chunks) - 1 {
            return Err(ReferenceError::Invalid("more chunks than bytes"));
        }
        Ok(Reference::Chunks(Manifest {
            topic,
            partition,
            ranges,
            chunks,
            size: doc.size,
            sha256,
        }))
    }
}

/// Checks a restored value against the size and SHA-256 its reference
/// names; the error says what differs.
pub fn check_value(value: &[u8], size: u64, sha256: &Sha256) -> Result<(), String> {
    use sha2::Digest;
    if value.len() as u64 != size {
        return Err(format!("{} bytes, the reference says {size}", value.len()));
    }
    let got: Sha256 = sha2::Sha256::digest(value).into();
    if &got != sha256 {
        return Err(format!(
            "hash mismatch: SHA-256 {}, the reference says {}",
            hex::encode(got),
            hex::encode(sha256)
        ));
    }
    Ok(())
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(64)]).into_owned()
}

#[cfg(test)]
#[path = "tests/reference.rs"]
mod tests;
