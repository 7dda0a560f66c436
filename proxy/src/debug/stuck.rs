//! The stuck message: for a group and a partition, the record at the
//! group's committed offset (the next one it would be handed), read on
//! demand with the internal client, read_committed (so neither a marker nor
//! an aborted record is shown), its value restored when it is a large
//! record, and a `kcat` command that prints exactly it through Strait.

use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use serde::Serialize;

use super::lag::now_ms;
use super::tail::Record;
use crate::kafka_client::{KafkaClient, KafkaError};
use crate::large::reference::{Reference, Scope, MARKER};
use crate::large::LargeRecords;
use crate::offload::Offload;
use crate::policy::PolicyStore;

/// Bytes read from the committed offset: enough for the batch holding it
/// (a larger first batch still comes whole).
const READ_BYTES: i32 = 1 << 20;
/// Key, value and header bytes shown at most (the size is always shown).
const SHOWN_BYTES: usize = 64 << 10;

/// A record's key, value or header value as shown.
#[derive(Debug, Clone, Serialize)]
pub struct Shown {
    /// `json` (pretty-printed), `text` (UTF-8), `base64`, `null`, or
    /// `hidden` (the topic's policy forbids showing values).
    pub format: &'static str,
    pub text: Option<String>,
    pub size: usize,
    /// Only the first `SHOWN_BYTES` are shown.
    pub truncated: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct StuckMessage {
    pub group: String,
    pub topic: String,
    pub partition: i32,
    pub committed: i64,
    /// The record's offset (past the committed one when that is a marker,
    /// an aborted record, compacted away, or below the log start).
    pub offset: i64,
    pub timestamp_ms: i64,
    pub age_ms: u64,
    pub key: Shown,
    pub value: Shown,
    pub headers: Vec<(String, Shown)>,
    /// The value was a large-record reference, restored here.
    pub restored_large_record: bool,
    pub kcat: String,
}

#[derive(Debug, thiserror::Error)]
pub enum StuckError {
    #[error("group {group} has no committed offset for {topic}/{partition}")]
    NoCommit {
        group: String,
        topic: String,
        partition: i32,
    },
    #[error("group {group} is caught up on {topic}/{partition} (committed {committed}): no record waits")]
    CaughtUp {
        group: String,
        topic: String,
        partition: i32,
        committed: i64,
    },
    #[error("{0}")]
    Kafka(#[from] crate::kafka_client::KafkaError),
    #[error("the record at {topic}/{partition}@{offset} cannot be read: {why}")]
    Unreadable {
        topic: String,
        partition: i32,
        offset: i64,
        why: String,
    },
}

/// What reading a stuck message needs.
#[derive(Clone)]
pub struct Reader {
    pub client: Arc<KafkaClient>,
    pub offload: Offload,
    pub policies: Arc<PolicyStore>,
    pub large: Option<Arc<LargeRecords>>,
    /// Strait's bootstrap address, for the kcat command.
    pub bootstrap: String,
}

/// Whether `topic`'s policy lets values be shown (`debug.values`).
pub fn values_shown(policies: &PolicyStore, topic: &str) -> bool {
    policies
        .get()
        .plan(topic)
        .is_none_or(|p| p.policy.debug_values)
}

impl Reader {
    pub async fn read(
        &self,
        group: &str,
        topic: &str,
        partition: i32,
    ) -> Result<StuckMessage, StuckError> {
        let committed = self
            .client
            .committed_offsets(group)
            .await?
            .get(&(topic.to_string(), partition))
            .copied()
            .ok_or_else(|| StuckError::NoCommit {
                group: group.into(),
                topic: topic.into(),
                partition,
            })?;
        let caught_up = || StuckError::CaughtUp {
            group: group.into(),
            topic: topic.into(),
            partition,
            committed,
        };
        // Below the log start (retention or DeleteRecords took it), the
        // consumer resumes by its auto.offset.reset; the first record still
        // there is what `earliest` hands it, and `offset` says it is not
        // the committed one. Past the end there is nothing to show.
        let (from, got) = match self
            .client
            .fetch_committed(topic, partition, committed, READ_BYTES)
            .await
        {
            Err(KafkaError::OffsetOutOfRange { .. }) => {
                let start = self.client.earliest_offset(topic, partition).await?;
                if start <= committed {
                    return Err(caught_up());
                }
                let got = self
                    .client
                    .fetch_committed(topic, partition, start, READ_BYTES)
                    .await?;
                (start, got)
            }
            other => (committed, other?),
        };
        let end = if got.last_stable_offset >= 0 {
            got.last_stable_offset
        } else {
            got.high_watermark
        };
        if committed >= end {
            return Err(caught_up());
        }
        let unreadable = |why: String| StuckError::Unreadable {
            topic: topic.into(),
            partition,
            offset: committed,
            why,
        };
        let (aborted, records) = (got.aborted, got.records);
        let found = self
            .offload
            .run(move || first_record(records, &aborted, from))
            .await
            .map_err(|e| unreadable(e.to_string()))?
            .map_err(unreadable)?;
        let Some(mut rec) = found else {
            return Err(caught_up());
        };
        let show = values_shown(&self.policies, topic);
        let mut restored = false;
        let marker = rec
            .headers
            .iter()
            .find(|(k, _)| k.as_ref() == MARKER)
            .map(|(_, v)| v.clone().unwrap_or_default());
        if let (true, Some(marker)) = (show, marker) {
            let value = self.restore(topic, &marker, rec.value.clone()).await;
            rec.value = Some(value.map_err(unreadable)?);
            restored = true;
        }
        let now = now_ms();
        Ok(StuckMessage {
            group: group.into(),
            topic: topic.into(),
            partition,
            committed,
            offset: rec.offset,
            timestamp_ms: rec.timestamp,
            age_ms: now.saturating_sub(u64::try_from(rec.timestamp).unwrap_or(0)),
            // `debug.values = false` hides values only: keys and headers show.
            key: shown(rec.key.as_deref(), true),
            value: shown(rec.value.as_deref(), show),
            headers: shown_headers(&rec.headers),
            restored_large_record: restored,
            kcat: kcat(&self.bootstrap, topic, partition, rec.offset),
        })
    }

    /// The original value of a large record, as a consumer would get it.
    async fn restore(
        &self,
        topic: &str,
        marker: &[u8],
        value: Option<Bytes>,
    ) -> Result<Bytes, String> {
        let large = self
            .large
            .clone()
            .ok_or("large records are not configured")?;
        let compiled = self.policies.get();
        let rules = compiled
            .plan(topic)
            .and_then(|p| p.policy.large_records.clone())
            .ok_or("the record carries a large-record marker but no policy restores its topic")?;
        let r = Reference::parse(marker, value.as_deref().unwrap_or_default())
            .map_err(|e| e.to_string())?;
        Scope::new(topic, &rules)
            .check(&r)
            .map_err(|e| e.to_string())?;
        let pool = large.pool.clone();
        pool.run(move || large.fetch_value(&r).map_err(|e| e.to_string()))
            .await
            .map_err(|e| e.to_string())?
    }
}

/// The first record a read_committed consumer at `from` is handed, read
/// as the live tail reads records.
fn first_record(
    records: Bytes,
    aborted: &[(i64, i64)],
    from: i64,
) -> Result<Option<Record>, String> {
    let (recs, _, unreadable) = super::tail::records(0, records, aborted, from, 1);
    match (recs.into_iter().next(), unreadable) {
        (Some(r), _) => Ok(Some(r)),
        (None, Some(why)) => Err(why),
        (None, None) => Ok(None),
    }
}

/// Headers as the debug views show them: names as text, values like keys
/// (`debug.values = false` hides values only).
pub fn shown_headers(headers: &[(bytes::Bytes, Option<bytes::Bytes>)]) -> Vec<(String, Shown)> {
    headers
        .iter()
        .map(|(k, v)| {
            (
                String::from_utf8_lossy(k).into_owned(),
                shown(v.as_deref(), true),
            )
        })
        .collect()
}

/// How a key, value or header value is shown.
pub fn shown(bytes: Option<&[u8]>, allowed: bool) -> Shown {
    let Some(b) = bytes else {
        return Shown {
            format: "null",
            text: None,
            size: 0,
            truncated: false,
        };
    };
    if !allowed {
        return Shown {
            format: "hidden",
            text: None,
            size: b.len(),
            truncated: false,
        };
    }
    let truncated = b.len() > SHOWN_BYTES;
    let head = &b[..b.len().min(SHOWN_BYTES)];
    let (format, text) = match std::str::from_utf8(head) {
        Ok(s) if !truncated => match serde_json::from_str::<serde_json::Value>(s) {
            Ok(v) if v.is_object() || v.is_array() => (
                "json",
                serde_json::to_string_pretty(&v).unwrap_or_else(|_| s.to_string()),
            ),
            _ => ("text", s.to_string()),
        },
        Ok(s) => ("text", s.to_string()),
        Err(_) => (
            "base64",
            base64::engine::general_purpose::STANDARD.encode(head),
        ),
    };
    Shown {
        format,
        text: Some(text),
        size: b.len(),
        truncated,
    }
}

/// A kcat command that prints exactly the record at `offset`, through
/// Strait (so a large record's value comes back restored).
pub fn kcat(bootstrap: &str, topic: &str, partition: i32, offset: i64) -> String {
    format!(
        "kcat -C -b {bootstrap} -t {} -p {partition} -o {offset} -c 1 -e -f 'offset %o  timestamp %T  key %k\\nheaders %h\\n%s\\n'",
        shell_quote(topic)
    )
}

fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_show_as_json_text_or_base64_and_hidden_shows_only_the_size() {
        let j = shown(Some(br#"{"id":7,"ok":true}"#), true);
        assert_eq!(j.format, "json");
        assert!(j.text.unwrap().contains("\"id\": 7"));
        assert_eq!(shown(Some(b"plain"), true).format, "text");
        let bin = shown(Some(&[0xff, 0x00, 0x01]), true);
        assert_eq!((bin.format, bin.text.as_deref()), ("base64", Some("/wAB")));
        let hidden = shown(Some(b"secret"), false);
        assert_eq!(
            (hidden.format, hidden.text, hidden.size),
            ("hidden", None, 6)
        );
        assert_eq!(shown(None, true).format, "null");
        let big = vec![b'a'; SHOWN_BYTES + 1];
        let s = shown(Some(&big), true);
        assert!(s.truncated && s.text.unwrap().len() == SHOWN_BYTES);
    }

    #[test]
    fn the_kcat_command_names_exactly_the_record_and_quotes_the_topic() {
        let c = kcat("localhost:9092", "orders", 2, 41);
        assert!(
            c.starts_with("kcat -C -b localhost:9092 -t orders -p 2 -o 41 -c 1 -e"),
            "{c}"
        );
        let c = kcat("h:1", "it's", 0, 0);
        assert!(c.contains("-t 'it'\\''s'"), "{c}");
    }
}
