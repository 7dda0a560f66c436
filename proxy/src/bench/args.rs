//! `strait bench`'s options.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

/// Measures what Strait costs on a workload: produce and consume direct to
/// the cluster and through Strait, in alternating pairs in one run (A B,
/// then B A), each on a fresh topic; reports the ratios (through Strait ÷
/// direct), produce latency, and Strait's CPU per MB and per request.
///
/// Without --bootstrap it starts a 1-broker Kafka with the project's
/// harness (`integration/kafka`, from the repository's top), as `./run`
/// does. Without --proxy it runs Strait in this process, from --config or
/// --policies. Exit 0: every threshold held; 1: one was missed; 2: the
/// bench could not run. The last line says why.
#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// The cluster, comma-separated host:port (default: a local Kafka
    /// started and stopped by integration/kafka).
    #[arg(long)]
    pub bootstrap: Option<String>,
    /// strait.toml for the Strait started in this process (its [upstream]
    /// is replaced by --bootstrap's cluster, its listeners by free ports).
    #[arg(long, short, conflicts_with = "proxy")]
    pub config: Option<PathBuf>,
    /// A policy directory for the Strait started in this process.
    #[arg(long, conflicts_with = "proxy")]
    pub policies: Option<PathBuf>,
    /// A running Strait's bootstrap listener (fronting --bootstrap's
    /// cluster) instead of one in this process. Its CPU is read from /proc
    /// when it runs on this machine, else omitted.
    #[arg(long)]
    pub proxy: Option<String>,
    /// Records per run (per side of a pair), over all producers.
    #[arg(long, default_value_t = 200_000)]
    pub records: u64,
    /// Run each produce for this many seconds instead of --records.
    #[arg(long)]
    pub duration: Option<f64>,
    /// Bytes of each record's value.
    #[arg(long, default_value_t = 1024)]
    pub record_size: usize,
    /// Distinct keys, uniformly spread (0: no keys).
    #[arg(long, default_value_t = 0)]
    pub keys: u64,
    /// Values: random bytes, repetitive text (compresses well), or the
    /// contents of a sample file (cut into --record-size pieces).
    #[arg(long, default_value = "random")]
    pub value: String,
    /// Partitions of each bench topic.
    #[arg(long, default_value_t = 3)]
    pub partitions: i32,
    /// Produce acks: -1 (all), 1 or 0.
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub acks: i16,
    /// Compression of the produced batches.
    #[arg(long, value_enum, default_value_t = Codec::None)]
    pub compression: Codec,
    /// Idempotent producers (a producer id, sequence numbers).
    #[arg(long)]
    pub idempotent: bool,
    /// Producers side by side, each with its own connections.
    #[arg(long, default_value_t = 1)]
    pub producers: usize,
    /// Consumers side by side, each reading its share of the partitions.
    #[arg(long, default_value_t = 1)]
    pub consumers: usize,
    /// Records per batch (one batch per partition in each produce request).
    #[arg(long, default_value_t = 16)]
    pub batch_records: usize,
    /// Produce requests in flight per connection (at most 5 when idempotent).
    #[arg(long, default_value_t = 5)]
    pub in_flight: usize,
    /// A fixed produce rate, records per second over all producers, one
    /// request at a time per batch: latency is then the added latency, not
    /// queueing (default: as fast as the cluster takes them).
    #[arg(long)]
    pub rate: Option<u64>,
    /// Pairs (direct and through Strait) to run.
    #[arg(long, default_value_t = 3)]
    pub pairs: usize,
    /// Print the result as JSON (machines).
    #[arg(long, conflicts_with = "markdown")]
    pub json: bool,
    /// Print the result as Markdown (a CI job summary).
    #[arg(long)]
    pub markdown: bool,
    /// Also write the JSON result to this file.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Fail (exit 1) when the median produce or consume MB/s ratio is below this.
    #[arg(long)]
    pub min_ratio: Option<f64>,
    /// Fail when Strait's median CPU ms per MB (produce or consume) is above this.
    #[arg(long)]
    pub max_cpu_ms_per_mb: Option<f64>,
    /// Fail when the median p99 produce latency added by Strait is above this (ms).
    #[arg(long)]
    pub max_p99_added_ms: Option<f64>,
    /// A JSON result of an earlier run to compare CPU with.
    #[arg(long, requires = "max_regression")]
    pub baseline: Option<PathBuf>,
    /// Fail when CPU per MB or per request rose more than this many percent
    /// over --baseline's.
    #[arg(long, requires = "baseline")]
    pub max_regression: Option<f64>,
    /// Compare with --baseline by Strait's CPU relative to the load
    /// generator's own CPU for the same records (holds across machines of
    /// different speed) instead of CPU per MB and per request.
    #[arg(long, requires = "baseline")]
    pub relative: bool,
    /// Keep the bench's topics (strait-bench-*) instead of deleting them
    /// at the end.
    #[arg(long)]
    pub keep_topics: bool,
    /// No progress bar on stderr.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Codec {
    pub fn compression(self) -> strait_proxy::codec::compression::Compression {
        use strait_proxy::codec::compression::Compression as C;
        match self {
            Codec::None => C::None,
            Codec::Gzip => C::Gzip,
            Codec::Snappy => C::Snappy,
            Codec::Lz4 => C::Lz4,
            Codec::Zstd => C::Zstd,
        }
    }
}

impl BenchArgs {
    /// Problems with the options that clap cannot see, all at once.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.records == 0 && self.duration.is_none() {
            p.push("--records must be > 0".to_string());
        }
        if self.duration.is_some_and(|d| !(d > 0.0 && d <= 3600.0)) {
            p.push("--duration must be in (0, 3600] seconds".into());
        }
        if !(1..=(8 << 20)).contains(&self.record_size) {
            p.push("--record-size must be in 1..=8388608".into());
        }
        if !(1..=10_000).contains(&self.partitions) {
            p.push("--partitions must be in 1..=10000".into());
        }
        if ![-1, 0, 1].contains(&self.acks) {
            p.push("--acks must be -1, 0 or 1".into());
        }
        if self.idempotent && (self.acks != -1 || self.in_flight > 5) {
            p.push("--idempotent needs --acks -1 and --in-flight at most 5".into());
        }
        if self.producers == 0 || self.consumers == 0 || self.pairs == 0 {
            p.push("--producers, --consumers and --pairs must be > 0".into());
        }
        if self.batch_records == 0 || self.in_flight == 0 {
            p.push("--batch-records and --in-flight must be > 0".into());
        }
        if self.rate == Some(0) {
            p.push("--rate must be > 0".into());
        }
        if !matches!(self.value.as_str(), "random" | "repetitive")
            && !self.value.starts_with("file:")
        {
            p.push(format!(
                "--value must be random, repetitive or file:PATH, got {:?}",
                self.value
            ));
        }
        p
    }
}
