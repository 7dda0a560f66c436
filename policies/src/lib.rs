//! Strait's policy core: per-topic policy files, topic matching and the pure
//! decision functions the proxy applies on the wire. No tokio, no I/O, so every
//! decision can be fuzzed and benchmarked alone.
//!
//! The foundation (issue 2) is a transparent proxy: no policy applies yet, and
//! [`Verdict::Passthrough`] is the only decision. The schema and rules arrive
//! with the policy-file issue.

/// What the proxy does with a request for a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Forward the bytes unchanged without decoding past the request header.
    Passthrough,
}

/// The decision for a request naming no topic-level policy.
pub fn decide_default() -> Verdict {
    Verdict::Passthrough
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_passthrough() {
        assert_eq!(decide_default(), Verdict::Passthrough);
    }
}
