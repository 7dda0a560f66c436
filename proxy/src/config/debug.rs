//! `[debug]`: the debug tooling on the admin listener (README, "Debug
//! tooling"): how often consumer lag is evaluated, how much of it is kept,
//! and the token the debug API asks for off loopback.

use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DebugConfig {
    /// How often every consumer group's lag is evaluated, in milliseconds.
    #[serde(default = "default_lag_interval_ms")]
    pub lag_interval_ms: u64,
    /// Evaluations in the sliding window a partition's status is judged on
    /// (so a status changes after `lag_window × lag_interval_ms` at most).
    #[serde(default = "default_lag_window")]
    pub lag_window: usize,
    /// Consumer groups followed at most (by name order); the rest are
    /// counted, not shown.
    #[serde(default = "default_max_groups")]
    pub max_groups: usize,
    /// Group partitions followed at most, over all groups.
    #[serde(default = "default_max_partitions")]
    pub max_partitions: usize,
    /// A file holding the bearer token the debug API and UI require
    /// (`Authorization: Bearer <token>`). Required for them to answer when
    /// the admin listener is bound beyond loopback; optional on loopback.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// The observation tap (ARCHITECTURE.md, "Observation tap"): the debug
    /// views' last-consume times, commits and event routes come from it.
    #[serde(default = "default_tap")]
    pub tap: bool,
    /// Observations queued for the tap's thread at most; past it they are
    /// dropped and counted, never waited for.
    #[serde(default = "default_tap_queue")]
    pub tap_queue: usize,
    /// Produce request bytes per second the tap copies to count their keys
    /// (top keys per partition); 0 turns top keys off.
    #[serde(default = "default_key_sample_bytes_per_sec")]
    pub key_sample_bytes_per_sec: u64,
    /// What the top-keys sketches may weigh in all (least recently fed
    /// partitions out first).
    #[serde(default = "default_top_keys_bytes")]
    pub top_keys_bytes: u64,
    /// Publish this instance's observations to `observations_topic` and
    /// merge the other instances' (several Strait instances in front of one
    /// cluster). Off by default: it creates a topic in the cluster.
    #[serde(default)]
    pub share_observations: bool,
    /// The compacted topic the instances share observations through.
    #[serde(default = "default_observations_topic")]
    pub observations_topic: String,
    /// This instance's name there (default: the advertised host and the
    /// bootstrap port, unique per instance).
    #[serde(default)]
    pub instance_id: Option<String>,
}

fn default_observations_topic() -> String {
    "__strait_debug_observations".into()
}

fn default_key_sample_bytes_per_sec() -> u64 {
    1 << 20
}
fn default_top_keys_bytes() -> u64 {
    32 << 20
}

fn default_tap() -> bool {
    true
}
fn default_tap_queue() -> usize {
    4_096
}

fn default_lag_interval_ms() -> u64 {
    5_000
}
fn default_lag_window() -> usize {
    10
}
fn default_max_groups() -> usize {
    1_000
}
fn default_max_partitions() -> usize {
    100_000
}

impl Default for DebugConfig {
    fn default() -> Self {
        Self {
            lag_interval_ms: default_lag_interval_ms(),
            lag_window: default_lag_window(),
            max_groups: default_max_groups(),
            max_partitions: default_max_partitions(),
            token_file: None,
            tap: default_tap(),
            tap_queue: default_tap_queue(),
            key_sample_bytes_per_sec: default_key_sample_bytes_per_sec(),
            top_keys_bytes: default_top_keys_bytes(),
            share_observations: false,
            observations_topic: default_observations_topic(),
            instance_id: None,
        }
    }
}

/// The shortest token accepted: a guessable one is no protection.
pub const MIN_TOKEN_CHARS: usize = 16;

impl DebugConfig {
    /// Every problem with the section (the token file is read at start-up:
    /// [`DebugConfig::token`]).
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if !(100..=3_600_000).contains(&self.lag_interval_ms) {
            p.push(format!(
                "debug.lag_interval_ms: {} is outside 100..=3600000",
                self.lag_interval_ms
            ));
        }
        if !(2..=100).contains(&self.lag_window) {
            p.push(format!(
                "debug.lag_window: {} is outside 2..=100",
                self.lag_window
            ));
        }
        if !(1..=1_000_000).contains(&self.tap_queue) {
            p.push(format!(
                "debug.tap_queue: {} is outside 1..=1000000",
                self.tap_queue
            ));
        }
        if !((1 << 20)..=(16 << 30)).contains(&self.top_keys_bytes) {
            p.push(format!(
                "debug.top_keys_bytes: {} is outside 1 MiB..=16 GiB",
                self.top_keys_bytes
            ));
        }
        if self.share_observations && !self.tap {
            p.push(
                "debug.share_observations needs debug.tap: it shares the tap's observations".into(),
            );
        }
        let t = &self.observations_topic;
        let legal = |c: char| c.is_ascii_alphanumeric() || "._-".contains(c);
        if t.is_empty() || t.len() > 249 || !t.chars().all(legal) || t == "." || t == ".." {
            p.push(format!(
                "debug.observations_topic: {t:?} is not a legal topic name (1-249 of [a-zA-Z0-9._-])"
            ));
        }
        if self
            .instance_id
            .as_ref()
            .is_some_and(|i| i.is_empty() || i.contains('\u{0}'))
        {
            p.push("debug.instance_id must be non-empty text".into());
        }
        if self.max_groups == 0 || self.max_partitions == 0 {
            p.push("debug.max_groups and debug.max_partitions must be at least 1".into());
        }
        p
    }

    /// The token from `token_file`, trimmed; `None` without one.
    pub fn token(&self) -> anyhow::Result<Option<String>> {
        let Some(path) = &self.token_file else {
            return Ok(None);
        };
        let raw = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("debug.token_file {}: {e}", path.display()))?;
        let token = raw.trim().to_string();
        if token.chars().count() < MIN_TOKEN_CHARS || token.contains(char::is_whitespace) {
            anyhow::bail!(
                "debug.token_file {}: the token must be at least {MIN_TOKEN_CHARS} characters, without spaces",
                path.display()
            );
        }
        Ok(Some(token))
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn parse(section: &str) -> Result<Config, toml::de::Error> {
        Config::from_toml(&format!(
            "[listen]\nbootstrap='127.0.0.1:9092'\n[upstream]\nbootstrap=['k:9092']\n{section}"
        ))
    }

    #[test]
    fn defaults_and_bounds() {
        let c = parse("").unwrap();
        assert_eq!(c.debug.lag_interval_ms, 5_000);
        assert!(c.validate().is_ok());
        let errs = parse("[debug]\nlag_interval_ms = 5\nlag_window = 1\n")
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].starts_with("debug.lag_interval_ms: 5"), "{errs:?}");
        let err = parse("[debug]\nlag_every = 5\n").unwrap_err();
        assert!(err.to_string().contains("lag_every"), "{err}");
    }

    #[test]
    fn a_short_or_missing_token_file_is_refused() {
        let dir = std::env::temp_dir().join(format!("strait-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let short = dir.join("short");
        std::fs::write(&short, "abc\n").unwrap();
        let c = parse(&format!("[debug]\ntoken_file = {:?}\n", short)).unwrap();
        let e = c.debug.token().unwrap_err().to_string();
        assert!(e.contains("at least 16 characters"), "{e}");
        let c = parse("[debug]\ntoken_file = '/nonexistent/strait-token'\n").unwrap();
        let e = c.debug.token().unwrap_err().to_string();
        assert!(e.contains("/nonexistent/strait-token"), "{e}");
        let good = dir.join("good");
        std::fs::write(&good, "0123456789abcdef0123\n").unwrap();
        let c = parse(&format!("[debug]\ntoken_file = {:?}\n", good)).unwrap();
        assert_eq!(
            c.debug.token().unwrap().as_deref(),
            Some("0123456789abcdef0123")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
