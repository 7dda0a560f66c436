//! Start-up validation: everything that can be checked before binding a
//! socket, every problem reported at once.

use std::net::SocketAddr;
use std::path::Path;

use super::*;

/// Port-per-broker addressing, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerPorts {
    /// Every broker listener gets an OS-assigned port.
    Ephemeral,
    /// Node id N listens on `start + N`; ids beyond `end` cannot be served.
    Range { start: u16, end: u16 },
}

impl BrokerPorts {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s == "0" {
            return Ok(BrokerPorts::Ephemeral);
        }
        let (a, b) = s.split_once('-').ok_or_else(|| {
            format!("listen.broker_ports: expected \"START-END\" or \"0\", got {s:?}")
        })?;
        let start: u16 = a
            .trim()
            .parse()
            .map_err(|_| format!("listen.broker_ports: bad start port {a:?}"))?;
        let end: u16 = b
            .trim()
            .parse()
            .map_err(|_| format!("listen.broker_ports: bad end port {b:?}"))?;
        if start == 0 || end < start {
            return Err(format!("listen.broker_ports: empty or invalid range {s:?}"));
        }
        Ok(BrokerPorts::Range { start, end })
    }

    /// The port for a node id, or `None` when the id falls outside the range.
    pub fn port_for(&self, node_id: i32) -> Option<u16> {
        match *self {
            BrokerPorts::Ephemeral => Some(0),
            BrokerPorts::Range { start, end } => {
                let p = i64::from(start) + i64::from(node_id);
                (node_id >= 0 && p <= i64::from(end)).then_some(p as u16)
            }
        }
    }
}

/// A configuration that passed validation, with parsed addresses.
#[derive(Debug, Clone)]
pub struct Validated {
    pub config: Config,
    pub bootstrap_listen: SocketAddr,
    pub admin_listen: SocketAddr,
    pub advertised_host: String,
    pub broker_ports: BrokerPorts,
}

impl Config {
    /// Reads and parses a TOML file; unknown keys are rejected.
    pub fn from_file(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read config file {}: {e}", path.display()))?;
        Config::from_toml(&text).map_err(|e| anyhow::anyhow!("config file {}: {e}", path.display()))
    }

    pub fn from_toml(text: &str) -> Result<Config, toml::de::Error> {
        toml::from_str(text)
    }

    /// A configuration for a quick start without a file.
    pub fn quick(listen: &str, upstream: &str) -> Config {
        Config {
            listen: ListenConfig {
                bootstrap: listen.to_string(),
                advertised_host: None,
                broker_ports: default_broker_ports(),
            },
            upstream: UpstreamConfig {
                bootstrap: upstream.split(',').map(|s| s.trim().to_string()).collect(),
                connect_timeout_ms: default_connect_timeout_ms(),
                tls: None,
                sasl: None,
                leader_endpoints: LeaderEndpoints::default(),
            },
            admin: AdminConfig::default(),
            limits: LimitsConfig::default(),
            tls: None,
            log: LogConfig::default(),
            policies: PoliciesConfig::default(),
            large_records: LargeRecordsConfig::default(),
            shutdown: ShutdownConfig::default(),
            debug: super::DebugConfig::default(),
        }
    }

    /// Checks everything that can be checked before binding a socket and
    /// returns every problem found, not just the first.
    pub fn validate(self) -> Result<Validated, Vec<String>> {
        let mut errors = Vec::new();
        let bootstrap_listen = match self.listen.bootstrap.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                errors.push(format!(
                    "listen.bootstrap: {:?} is not an IP:PORT socket address",
                    self.listen.bootstrap
                ));
                None
            }
        };
        let admin_listen = match self.admin.listen.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                errors.push(format!(
                    "admin.listen: {:?} is not an IP:PORT socket address",
                    self.admin.listen
                ));
                None
            }
        };
        let broker_ports = match BrokerPorts::parse(&self.listen.broker_ports) {
            Ok(p) => Some(p),
            Err(e) => {
                errors.push(e);
                None
            }
        };
        if self.upstream.bootstrap.is_empty() {
            errors.push("upstream.bootstrap: at least one broker host:port is required".into());
        }
        for b in &self.upstream.bootstrap {
            if !valid_host_port(b) {
                errors.push(format!("upstream.bootstrap: {b:?} is not host:port"));
            }
        }
        if self.upstream.connect_timeout_ms == 0 {
            errors.push("upstream.connect_timeout_ms must be > 0".into());
        }
        let l = &self.limits;
        if l.max_frame_bytes < 1024 || l.max_frame_bytes > i32::MAX as usize {
            errors.push(format!(
                "limits.max_frame_bytes: {} is outside 1024..=2147483647",
                l.max_frame_bytes
            ));
        }
        if l.buffer_bytes < 4096 || l.buffer_bytes > 16 * 1024 * 1024 {
            errors.push(format!(
                "limits.buffer_bytes: {} is outside 4096..=16777216",
                l.buffer_bytes
            ));
        }
        if l.max_in_flight == 0 {
            errors.push("limits.max_in_flight must be > 0".into());
        }
        if l.topic_ids == 0 {
            errors.push("limits.topic_ids must be > 0".into());
        }
        if l.policy_cache_topics == 0 {
            errors.push("limits.policy_cache_topics must be > 0".into());
        }
        if l.batch_workers == 0 || l.batch_workers > 1024 {
            errors.push(format!(
                "limits.batch_workers: {} is outside 1..=1024",
                l.batch_workers
            ));
        }
        if l.max_decompressed_bytes < 1024 || l.max_decompressed_bytes > i32::MAX as usize {
            errors.push(format!(
                "limits.max_decompressed_bytes: {} is outside 1024..=2147483647",
                l.max_decompressed_bytes
            ));
        }
        for (key, ms) in [
            ("frame_read_timeout_ms", l.frame_read_timeout_ms),
            ("client_write_timeout_ms", l.client_write_timeout_ms),
        ] {
            if ms == 0 || ms > 86_400_000 {
                errors.push(format!("limits.{key}: {ms} is outside 1..=86400000"));
            }
        }
        errors.extend(self.large_records.problems(l.max_frame_bytes));
        errors.extend(self.shutdown.problems());
        errors.extend(self.debug.problems());
        if let Some(tls) = &self.tls {
            check_file(&mut errors, "tls.cert_file", &tls.cert_file);
            check_file(&mut errors, "tls.key_file", &tls.key_file);
            if let Some(ca) = &tls.client_ca_file {
                check_file(&mut errors, "tls.client_ca_file", ca);
            }
        }
        if let Some(tls) = &self.upstream.tls {
            check_file(&mut errors, "upstream.tls.ca_file", &tls.ca_file);
        }
        if let Some(Err(e)) = self.upstream.sasl.as_ref().map(|s| s.credentials()) {
            errors.push(e);
        }
        if let Some(d) = &self.policies.dir {
            if !d.is_dir() {
                errors.push(format!("policies.dir: {} is not a directory", d.display()));
            }
        }
        if let Some(h) = &self.listen.advertised_host {
            if h.is_empty() || h.contains(':') && h.parse::<std::net::Ipv6Addr>().is_err() {
                errors.push(format!(
                    "listen.advertised_host: {h:?} is not a host name or IP"
                ));
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let bootstrap_listen = bootstrap_listen.expect("checked above");
        let advertised_host = self.listen.advertised_host.clone().unwrap_or_else(|| {
            if bootstrap_listen.ip().is_unspecified() {
                "127.0.0.1".to_string()
            } else {
                bootstrap_listen.ip().to_string()
            }
        });
        Ok(Validated {
            admin_listen: admin_listen.expect("checked above"),
            broker_ports: broker_ports.expect("checked above"),
            bootstrap_listen,
            advertised_host,
            config: self,
        })
    }
}

fn valid_host_port(s: &str) -> bool {
    match s.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0),
        None => false,
    }
}

fn check_file(errors: &mut Vec<String>, key: &str, path: &Path) {
    if !path.is_file() {
        errors.push(format!("{key}: {} is not a readable file", path.display()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example at the repository's top is a valid config.
    #[test]
    fn the_example_config_is_valid() {
        let c = Config::from_toml(include_str!("../../../strait.example.toml")).unwrap();
        assert!(c.debug.tap && c.debug.lag_interval_ms == 5_000);
        c.validate().unwrap();
    }

    #[test]
    fn rejects_unknown_keys() {
        let err = Config::from_toml(
            "[listen]\nbootstrap='127.0.0.1:9092'\nbogus=1\n[upstream]\nbootstrap=['a:1']\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("bogus"), "{err}");
    }

    #[test]
    fn reports_every_problem_at_once() {
        let mut c = Config::quick("not-an-addr", "nohost");
        c.admin.listen = "x".into();
        c.limits.max_frame_bytes = 10;
        c.listen.broker_ports = "9-1".into();
        let errs = c.validate().unwrap_err();
        assert_eq!(errs.len(), 5, "{errs:#?}");
    }

    #[test]
    fn peer_timeouts_must_be_positive_and_at_most_a_day() {
        let mut c = Config::quick("127.0.0.1:0", "kafka:9092");
        c.limits.frame_read_timeout_ms = 0;
        c.limits.client_write_timeout_ms = 86_400_001;
        let errs = c.validate().unwrap_err();
        assert_eq!(
            errs,
            vec![
                "limits.frame_read_timeout_ms: 0 is outside 1..=86400000".to_string(),
                "limits.client_write_timeout_ms: 86400001 is outside 1..=86400000".to_string(),
            ]
        );
    }

    #[test]
    fn broker_port_range() {
        let r = BrokerPorts::parse("19000-19010").unwrap();
        assert_eq!(r.port_for(3), Some(19003));
        assert_eq!(r.port_for(11), None);
        assert_eq!(r.port_for(-1), None);
        assert_eq!(BrokerPorts::parse("0").unwrap().port_for(7), Some(0));
    }

    #[test]
    fn advertised_host_defaults_to_listen_ip() {
        let v = Config::quick("0.0.0.0:9092", "k:9092").validate().unwrap();
        assert_eq!(v.advertised_host, "127.0.0.1");
        let v = Config::quick("127.0.0.2:0", "k:9092").validate().unwrap();
        assert_eq!(v.advertised_host, "127.0.0.2");
    }
}
