//! `[shutdown]`: how Strait stops on SIGTERM or SIGINT (see README,
//! "Restarts and draining").

use serde::Deserialize;

/// The longest drain accepted: an hour (a rolling update waits for it).
const MAX_DRAIN_TIMEOUT_MS: u64 = 3_600_000;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShutdownConfig {
    /// How long open connections get, after SIGTERM, to receive the
    /// responses to the requests they sent and close at a request boundary;
    /// the ones still open then are cut. Milliseconds.
    #[serde(default = "default_drain_timeout_ms")]
    pub drain_timeout_ms: u64,
}

fn default_drain_timeout_ms() -> u64 {
    30_000
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        Self {
            drain_timeout_ms: default_drain_timeout_ms(),
        }
    }
}

impl ShutdownConfig {
    /// Every problem with the section.
    pub fn problems(&self) -> Vec<String> {
        let ms = self.drain_timeout_ms;
        if ms == 0 || ms > MAX_DRAIN_TIMEOUT_MS {
            return vec![format!(
                "shutdown.drain_timeout_ms: {ms} is outside 1..={MAX_DRAIN_TIMEOUT_MS}"
            )];
        }
        Vec::new()
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
    fn defaults_to_thirty_seconds() {
        let c = parse("").unwrap();
        assert_eq!(c.shutdown.drain_timeout_ms, 30_000);
        let c = parse("[shutdown]\n").unwrap();
        assert_eq!(c.shutdown.drain_timeout_ms, 30_000);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn reads_the_drain_timeout() {
        let c = parse("[shutdown]\ndrain_timeout_ms = 2500\n").unwrap();
        assert_eq!(c.validate().unwrap().config.shutdown.drain_timeout_ms, 2500);
    }

    #[test]
    fn rejects_a_zero_or_huge_drain_timeout() {
        for ms in [0u64, 3_600_001] {
            let errs = parse(&format!("[shutdown]\ndrain_timeout_ms = {ms}\n"))
                .unwrap()
                .validate()
                .unwrap_err();
            assert_eq!(
                errs,
                vec![format!(
                    "shutdown.drain_timeout_ms: {ms} is outside 1..=3600000"
                )]
            );
        }
    }

    #[test]
    fn rejects_bad_types_and_unknown_keys() {
        let err = parse("[shutdown]\ndrain_timeout_ms = -1\n").unwrap_err();
        assert!(err.to_string().contains("drain_timeout_ms"), "{err}");
        let err = parse("[shutdown]\ndrain_timeout_ms = '30s'\n").unwrap_err();
        assert!(err.to_string().contains("drain_timeout_ms"), "{err}");
        let err = parse("[shutdown]\ngrace_ms = 10\n").unwrap_err();
        assert!(err.to_string().contains("grace_ms"), "{err}");
    }
}
