//! The answers produce enforcement gives for what it cannot accept: an
//! unknown topic id, a batch Strait cannot read, a pipeline stage's refusal.
//! A leaf the produce enforcer and the batch checks both use.

use strait_policies::decide;
use strait_policies::Rule;
use strait_policies::{Policy, Violation};
use uuid::Uuid;

use crate::codec::batch::BatchError;
use crate::pipeline::{PipelineError, StageError};
use crate::response::{Rejected, TOPIC_RESOURCE};

/// Kafka's UNKNOWN_TOPIC_ID (retriable: the client refreshes its metadata).
const UNKNOWN_TOPIC_ID: i16 = 100;

pub(super) fn unknown_topic_id(topic_id: Uuid, partition: i32) -> Rejected {
    Rejected {
        name: None,
        topic_id,
        partition,
        resource_type: TOPIC_RESOURCE,
        error_code: UNKNOWN_TOPIC_ID,
        message: "Strait has not seen this topic id in Metadata yet; refresh metadata and retry"
            .into(),
        record_errors: vec![],
    }
}

/// A batch Strait cannot read: CORRUPT_MESSAGE where the broker would say so
/// too (bad CRC, malformed records), else POLICY_VIOLATION; the message names
/// the policy.
pub(super) fn unreadable(policy: &Policy, rule: Rule, e: &BatchError) -> Violation {
    let error_code = match e {
        BatchError::Crc { .. } | BatchError::Record(_) | BatchError::Truncated(_) => {
            decide::CORRUPT_MESSAGE
        }
        _ => decide::POLICY_VIOLATION,
    };
    Violation {
        rule,
        error_code,
        message: format!(
            "Strait policy {:?} ({}, topics {}) cannot {} this batch: {e}",
            policy.name,
            policy.source.file,
            policy.selector,
            if policy.rewrites_records() {
                "rewrite"
            } else {
                "inspect"
            }
        ),
        record_errors: vec![],
    }
}

pub(super) fn pipeline_violation(policy: &Policy, e: PipelineError) -> Violation {
    match e.error {
        StageError::Batch(b) => {
            let mut v = unreadable(policy, e.rule, &b);
            v.message = format!("{} (stage {})", v.message, e.stage);
            v
        }
        StageError::Refused {
            error_code,
            message,
        } => Violation {
            rule: e.rule,
            error_code,
            message,
            record_errors: vec![],
        },
    }
}
