//! The five produce rules of conformance scenario 5 ("policy rejection"),
//! which every client stack's tests try: each rule's policy, the error a
//! violating producer gets, and one topic and policy file per rule.

use std::path::Path;

/// One produce rule.
pub struct ProduceRule {
    /// Its name, as Strait's error message and metrics give it.
    pub rule: &'static str,
    /// The policy table that sets it.
    pub body: &'static str,
    /// The Kafka error a violating produce gets, by name and code.
    pub error: &'static str,
    pub code: i64,
}

pub const PRODUCE_RULES: [ProduceRule; 5] = [
    ProduceRule {
        rule: "produce.acks",
        body: "[policy.produce]\nacks = \"require-all\"",
        error: "POLICY_VIOLATION",
        code: 44,
    },
    ProduceRule {
        rule: "produce.require_idempotent",
        body: "[policy.produce]\nrequire_idempotent = true",
        error: "POLICY_VIOLATION",
        code: 44,
    },
    ProduceRule {
        rule: "produce.required_headers",
        body: "[policy.produce]\nrequired_headers = [\"event-id\"]",
        error: "INVALID_RECORD",
        code: 87,
    },
    ProduceRule {
        rule: "produce.max_record_bytes",
        body: "[policy.produce]\nmax_record_bytes = 200",
        error: "INVALID_RECORD",
        code: 87,
    },
    ProduceRule {
        rule: "produce.allowed_compression",
        body: "[policy.produce]\nallowed_compression = [\"zstd\"]",
        error: "POLICY_VIOLATION",
        code: 44,
    },
];

/// A stack's producer flags that violate, then comply with, each of
/// [`PRODUCE_RULES`], in the same order.
pub type RuleFlags = [(&'static [&'static str], &'static [&'static str]); 5];

/// The flags every stack's policy producer shares for the header and the
/// record-size rules (`--header K=V`, `--value-bytes N`).
pub const HEADER_FLAGS: (&[&str], &[&str]) =
    (&["--header", "other=1"], &["--header", "event-id=42"]);
pub const VALUE_SIZE_FLAGS: (&[&str], &[&str]) =
    (&["--value-bytes", "400"], &["--value-bytes", "50"]);

/// The topic of rule `i`.
pub fn rule_topic(base: &str, i: usize) -> String {
    format!("{base}-{i}")
}

/// The policy of rule `i`.
pub fn rule_policy(base: &str, i: usize) -> String {
    format!("{base}-policy-{i}")
}

/// Writes a policy file `file` in `dir`: policy `name` on exactly `topic`,
/// with `body`.
pub fn write_policy(dir: &Path, file: &str, name: &str, topic: &str, body: &str) {
    std::fs::write(
        dir.join(file),
        format!("[[policy]]\nname = \"{name}\"\ntopics = {{ exact = \"{topic}\" }}\n{body}\n"),
    )
    .unwrap();
}

/// One policy file per rule in `dir` ([`rule_policy`] on [`rule_topic`]); returns the
/// topics, which the caller creates.
pub fn write_rule_policies(dir: &Path, base: &str) -> Vec<String> {
    PRODUCE_RULES
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let topic = rule_topic(base, i);
            write_policy(
                dir,
                &format!("p{i}.toml"),
                &rule_policy(base, i),
                &topic,
                r.body,
            );
            topic
        })
        .collect()
}
