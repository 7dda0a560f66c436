//! The chunk topic of a source topic: created to fit it, or checked.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use strait_policies::LargeRecordRules;

use super::{max_batch_bytes, ChunkError};
use crate::kafka_client::KafkaClient;

/// How long a chunk topic counts as ensured before it is checked again.
const RE_ENSURE: Duration = Duration::from_secs(600);
const MAX_ENSURED: usize = 4096;

/// What a chunk topic must look like for `source`'s configs.
#[derive(Debug, PartialEq, Eq)]
struct Wanted {
    retention_ms: i64,
    max_message_bytes: u64,
}

fn has(policy: &str, word: &str) -> bool {
    policy.split(',').any(|p| p.trim() == word)
}

fn wanted(
    source: &str,
    chunk_topic: &str,
    configs: &HashMap<String, String>,
    chunk_bytes: u32,
    allow_compacted: bool,
) -> Result<Wanted, ChunkError> {
    let policy = configs
        .get("cleanup.policy")
        .map_or("delete", String::as_str);
    if has(policy, "compact") && !allow_compacted {
        return Err(ChunkError::Compacted {
            topic: source.into(),
            chunk_topic: chunk_topic.into(),
            policy: policy.into(),
        });
    }
    let retention: i64 = configs
        .get("retention.ms")
        .and_then(|r| r.parse().ok())
        .unwrap_or(7 * 24 * 3_600_000);
    // A compact-only topic keeps its manifests forever.
    let forever = retention < 0 || (has(policy, "compact") && !has(policy, "delete"));
    Ok(Wanted {
        retention_ms: if forever { -1 } else { retention },
        max_message_bytes: max_batch_bytes(chunk_bytes) + 1024,
    })
}

/// Why an existing chunk topic does not fit, if it does not.
fn unfit(
    w: &Wanted,
    configs: &HashMap<String, String>,
    has_partitions: i32,
    needs: i32,
) -> Option<String> {
    let num = |k: &str, default: i64| {
        configs
            .get(k)
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let policy = configs
        .get("cleanup.policy")
        .map_or("delete", String::as_str);
    let (retention, bytes) = (num("retention.ms", -1), num("retention.bytes", -1));
    let max_message = num("max.message.bytes", 1_048_588);
    if has_partitions < needs {
        Some(format!(
            "has {has_partitions} partition(s), fewer than its source's {needs}"
        ))
    } else if has(policy, "compact") {
        Some(format!("cleanup.policy={policy}: compaction would keep one chunk per value (chunks share their value's key)"))
    } else if retention >= 0 && (w.retention_ms < 0 || retention < w.retention_ms) {
        let source = match w.retention_ms {
            -1 => "forever".to_string(),
            ms => format!("{ms} ms"),
        };
        Some(format!("retention.ms={retention} is shorter than its source's ({source}): chunks would go before their manifests"))
    } else if bytes >= 0 {
        Some(format!(
            "retention.bytes={bytes}: chunks would go by size before their manifests (set -1)"
        ))
    } else if (max_message as u64) < w.max_message_bytes {
        Some(format!(
            "max.message.bytes={max_message} is below the {} a batch of chunks needs",
            w.max_message_bytes
        ))
    } else {
        None
    }
}

/// Makes sure `chunk_topic` can hold `source`'s chunks: creates it (same
/// partition count, `cleanup.policy=delete`, the source's retention or
/// longer, no size retention, batches of `chunk_bytes` chunks allowed) or
/// checks the existing one. A compacted source is refused unless
/// `allow_compacted`.
pub async fn ensure_chunk_topic(
    client: &KafkaClient,
    source: &str,
    chunk_topic: &str,
    chunk_bytes: u32,
    allow_compacted: bool,
) -> Result<(), ChunkError> {
    let partitions = client
        .partitions(source)
        .await?
        .ok_or_else(|| ChunkError::NoSource {
            topic: source.into(),
            chunk_topic: chunk_topic.into(),
        })?;
    let configs = client.topic_configs(source).await?;
    let w = wanted(source, chunk_topic, &configs, chunk_bytes, allow_compacted)?;
    match client.partitions(chunk_topic).await? {
        None => {
            let configs = [
                ("cleanup.policy", "delete".to_string()),
                ("retention.ms", w.retention_ms.to_string()),
                ("retention.bytes", "-1".to_string()),
                ("max.message.bytes", w.max_message_bytes.to_string()),
            ];
            client
                .create_topic(chunk_topic, partitions, &configs)
                .await?;
        }
        Some(n) => {
            let configs = client.topic_configs(chunk_topic).await?;
            if let Some(problem) = unfit(&w, &configs, n, partitions) {
                let topic = chunk_topic.into();
                return Err(ChunkError::ChunkTopic { topic, problem });
            }
        }
    }
    Ok(())
}

/// The chunk topics this process has ensured: each is checked once (again
/// after ten minutes, or after [`ChunkTopics::forget`]); a failed check is
/// not remembered, so the next write checks again.
#[derive(Default)]
pub struct ChunkTopics {
    ensured: Mutex<HashMap<(String, String, u32, bool), Instant>>,
}

impl ChunkTopics {
    /// [`ensure_chunk_topic`] with the policy's chunk size and
    /// `allow_compacted`, unless done recently with the same arguments.
    pub async fn ensure(
        &self,
        client: &KafkaClient,
        source: &str,
        chunk_topic: &str,
        rules: &LargeRecordRules,
    ) -> Result<(), ChunkError> {
        let (chunk_bytes, allow_compacted) = (rules.chunk_bytes, rules.allow_compacted);
        let key = (
            source.into(),
            chunk_topic.into(),
            chunk_bytes,
            allow_compacted,
        );
        let fresh = |e: &HashMap<_, Instant>| e.get(&key).is_some_and(|t| t.elapsed() < RE_ENSURE);
        if fresh(&self.ensured.lock().expect("ensured lock")) {
            return Ok(());
        }
        ensure_chunk_topic(client, source, chunk_topic, chunk_bytes, allow_compacted).await?;
        let mut ensured = self.ensured.lock().expect("ensured lock");
        if ensured.len() >= MAX_ENSURED {
            ensured.clear();
        }
        ensured.insert(key, Instant::now());
        Ok(())
    }

    /// Forgets that `chunk_topic` was ensured (a write to it failed).
    pub fn forget(&self, chunk_topic: &str) {
        let mut ensured = self.ensured.lock().expect("ensured lock");
        ensured.retain(|k, _| k.1 != chunk_topic);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_chunk_topic_keeps_chunks_as_long_as_the_source_keeps_manifests() {
        let w = |c: &[(&str, &str)], allow| wanted("s", "s.c", &cfg(c), 1000, allow);
        let delete = w(
            &[("cleanup.policy", "delete"), ("retention.ms", "3600000")],
            false,
        );
        assert_eq!(delete.unwrap().retention_ms, 3_600_000);
        assert_eq!(
            w(&[("retention.ms", "-1")], false).unwrap().retention_ms,
            -1
        );
        let e = w(&[("cleanup.policy", "compact")], false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("topic s has cleanup.policy=compact"), "{e}");
        assert!(e.contains("allow_compacted"), "{e}");
        let compact = w(
            &[("cleanup.policy", "compact"), ("retention.ms", "1000")],
            true,
        );
        assert_eq!(compact.unwrap().retention_ms, -1, "kept forever");
        let both = w(
            &[
                ("cleanup.policy", "compact,delete"),
                ("retention.ms", "1000"),
            ],
            true,
        );
        assert_eq!(both.unwrap().retention_ms, 1000);
        assert!(w(&[("cleanup.policy", "delete,compact")], false).is_err());
        let max = w(&[], false).unwrap().max_message_bytes;
        assert!(max > max_batch_bytes(1000));
    }

    #[test]
    fn an_existing_chunk_topic_that_would_lose_chunks_is_refused() {
        let w = Wanted {
            retention_ms: 1000,
            max_message_bytes: 9000,
        };
        let good = [
            ("cleanup.policy", "delete"),
            ("retention.ms", "1000"),
            ("retention.bytes", "-1"),
            ("max.message.bytes", "9000"),
        ];
        assert_eq!(unfit(&w, &cfg(&good), 3, 3), None);
        assert_eq!(
            unfit(&w, &cfg(&good), 4, 3),
            None,
            "more partitions are fine"
        );
        assert!(unfit(&w, &cfg(&good), 2, 3)
            .unwrap()
            .contains("2 partition(s)"));
        let with = |k: &'static str, v: &'static str| {
            let mut c = cfg(&good);
            c.insert(k.into(), v.into());
            unfit(&w, &c, 3, 3).unwrap_or_default()
        };
        assert!(with("cleanup.policy", "compact").contains("compaction"));
        assert!(with("retention.ms", "999").contains("shorter"));
        assert_eq!(with("retention.ms", "-1"), "");
        assert!(with("retention.bytes", "100").contains("retention.bytes=100"));
        assert!(with("max.message.bytes", "8999").contains("max.message.bytes=8999"));
        let forever = Wanted {
            retention_ms: -1,
            ..w
        };
        assert!(unfit(&forever, &cfg(&good), 3, 3)
            .unwrap()
            .contains("shorter"));
    }
}
