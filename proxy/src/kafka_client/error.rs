//! What can go wrong talking to the cluster, and whether trying again may help.

use std::time::Duration;

use kafka_protocol::error::ResponseError;

/// An error of one [`super::KafkaClient`] call. Messages name the operation,
/// the broker, the topic and partition, and the Kafka error code by name.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    /// Could not reach or talk to a broker: connect, TLS, I/O, framing,
    /// decoding, or the request timed out.
    #[error("{op}: {broker}: {reason}")]
    Connection {
        op: &'static str,
        broker: String,
        reason: String,
    },
    /// The broker answered with a Kafka error code.
    #[error("{op} {topic}{}: {broker} answered {} ({code}){}",
        partition.map(|p| format!("/{p}")).unwrap_or_default(),
        error_name(*code),
        message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Broker {
        op: &'static str,
        broker: String,
        topic: String,
        partition: Option<i32>,
        code: i16,
        message: Option<String>,
    },
    /// The cluster says the topic does not exist (an admin call; produce
    /// and fetch retry UNKNOWN_TOPIC_OR_PARTITION, as metadata spreads).
    #[error("{op} {topic}: {broker} answered UNKNOWN_TOPIC_OR_PARTITION (3): no such topic")]
    UnknownTopic {
        op: &'static str,
        broker: String,
        topic: String,
    },
    /// A fetch below the partition's log start offset or past its end.
    #[error("fetch {topic}/{partition} at offset {offset}: {broker} answered OFFSET_OUT_OF_RANGE (1): the partition does not hold that offset (any more, or yet)")]
    OffsetOutOfRange {
        broker: String,
        topic: String,
        partition: i32,
        offset: i64,
    },
    /// The broker does not speak a version of the api Strait can use.
    #[error("{op}: {broker} supports api key {api_key} v{broker_min}..=v{broker_max}, Strait needs one of v{min}..=v{max}")]
    Unsupported {
        op: &'static str,
        broker: String,
        api_key: i16,
        broker_min: i16,
        broker_max: i16,
        min: i16,
        max: i16,
    },
    /// The broker's answer does not cover what was asked.
    #[error("{op}: {broker} answered without {what}")]
    Protocol {
        op: &'static str,
        broker: String,
        what: String,
    },
    /// The call's deadline passed (retries included).
    #[error("{op}: gave up after {after:?} ({attempts} attempts); last error: {last}")]
    Timeout {
        op: &'static str,
        after: Duration,
        attempts: u32,
        last: String,
    },
}

impl KafkaError {
    /// Whether the same call may succeed later (a new leader, a broker back,
    /// a topic whose metadata has not spread yet).
    pub fn retriable(&self) -> bool {
        match self {
            KafkaError::Connection { .. } | KafkaError::Timeout { .. } => true,
            KafkaError::Broker { code, .. } => {
                ResponseError::try_from_code(*code).is_some_and(|e| e.is_retriable())
            }
            KafkaError::UnknownTopic { .. }
            | KafkaError::OffsetOutOfRange { .. }
            | KafkaError::Unsupported { .. }
            | KafkaError::Protocol { .. } => false,
        }
    }

    /// The Kafka error code the broker answered, if it did.
    pub fn code(&self) -> Option<i16> {
        match self {
            KafkaError::Broker { code, .. } => Some(*code),
            KafkaError::UnknownTopic { .. } => Some(3),
            KafkaError::OffsetOutOfRange { .. } => Some(1),
            _ => None,
        }
    }

    /// Whether the cached metadata (leaders, controller, broker addresses)
    /// may be what is wrong.
    pub(super) fn stale_metadata(&self) -> bool {
        match self {
            KafkaError::Connection { .. } => true,
            // UNKNOWN_TOPIC_OR_PARTITION, LEADER_NOT_AVAILABLE,
            // NOT_LEADER_OR_FOLLOWER, REPLICA_NOT_AVAILABLE, NETWORK_EXCEPTION,
            // NOT_CONTROLLER, FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH,
            // KAFKA_STORAGE_ERROR.
            KafkaError::Broker { code, .. } => {
                matches!(code, 3 | 5 | 6 | 9 | 13 | 41 | 56 | 74 | 75)
            }
            _ => false,
        }
    }
}

/// The protocol's name of a Kafka error code, as the Kafka documentation
/// spells it (`NOT_LEADER_OR_FOLLOWER`).
pub fn error_name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        None => "NONE".into(),
        Some(ResponseError::Unknown(_)) => "UNKNOWN_ERROR_CODE".into(),
        Some(e) => {
            let camel = e.to_string();
            let mut out = String::with_capacity(camel.len() + 8);
            for (i, c) in camel.chars().enumerate() {
                if c.is_ascii_uppercase() && i > 0 {
                    out.push('_');
                }
                out.push(c.to_ascii_uppercase());
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_read_as_the_protocol_names_them() {
        assert_eq!(error_name(6), "NOT_LEADER_OR_FOLLOWER");
        assert_eq!(error_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(error_name(1), "OFFSET_OUT_OF_RANGE");
        assert_eq!(error_name(-1), "UNKNOWN_SERVER_ERROR");
        assert_eq!(error_name(9999), "UNKNOWN_ERROR_CODE");
    }

    #[test]
    fn messages_name_the_broker_topic_partition_and_code() {
        let e = KafkaError::Broker {
            op: "produce",
            broker: "broker 1 (k1:9092)".into(),
            topic: "t".into(),
            partition: Some(2),
            code: 6,
            message: None,
        };
        assert_eq!(
            e.to_string(),
            "produce t/2: broker 1 (k1:9092) answered NOT_LEADER_OR_FOLLOWER (6)"
        );
        assert!(e.retriable() && e.stale_metadata());
        let e = KafkaError::Broker {
            op: "create topic",
            broker: "b".into(),
            topic: "t".into(),
            partition: None,
            code: 44,
            message: Some("no".into()),
        };
        assert_eq!(
            e.to_string(),
            "create topic t: b answered POLICY_VIOLATION (44): no"
        );
        assert!(!e.retriable());
    }
}
