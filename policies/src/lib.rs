//! Strait's policy core: per-topic policy files, topic matching and the pure
//! decision functions the proxy applies on the wire. No tokio, no I/O: the
//! proxy reads the files and gathers the facts, so every decision can be
//! fuzzed and benchmarked alone.
//!
//! A policy file is TOML with any number of `[[policy]]` tables; see
//! `policies/examples/` and the README for the schema.

pub mod decide;
pub mod explain;
pub mod large;
pub mod mirror;
pub mod schema;
pub mod selector;
pub mod set;

pub use decide::{Rule, Violation};
pub use large::{LargeRecordRules, Remedy};
pub use mirror::MirrorRules;
pub use schema::Codec;
pub use set::{CompressRules, Policy, PolicySet, Problem, TraceRules};

#[cfg(test)]
mod tests;
