//! `[upstream.sasl]`: the credentials Strait's own connections to the
//! brokers (discovery, the internal Kafka client) authenticate with. Client
//! connections never use them: clients authenticate to the brokers
//! themselves, through Strait.
//!
//! The password comes from a file or an environment variable, never from the
//! configuration itself or the command line, and is never logged (`Debug`
//! redacts it).

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

/// A SASL mechanism Strait can authenticate with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum SaslMechanism {
    #[serde(rename = "PLAIN")]
    Plain,
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
}

impl SaslMechanism {
    /// The name the broker knows it by (SaslHandshake).
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

impl fmt::Display for SaslMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `[upstream.sasl]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamSaslConfig {
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub mechanism: SaslMechanism,
    pub username: String,
    /// A file holding the password (one trailing newline is ignored).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// An environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
}

/// Credentials ready to use: the password read.
#[derive(Clone)]
pub struct SaslCredentials {
    pub mechanism: SaslMechanism,
    pub username: String,
    pub password: String,
}

impl fmt::Debug for SaslCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslCredentials")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl UpstreamSaslConfig {
    /// Reads the password; the error names the key and what is wrong (never
    /// the password).
    pub fn credentials(&self) -> Result<SaslCredentials, String> {
        if self.username.is_empty() {
            return Err("upstream.sasl.username: must not be empty".into());
        }
        let password = match (&self.password_file, &self.password_env) {
            (Some(_), Some(_)) => {
                return Err(
                    "upstream.sasl: set one of password_file and password_env, not both".into(),
                )
            }
            (None, None) => {
                return Err(
                    "upstream.sasl: the password comes from password_file or password_env; neither is set"
                        .into(),
                )
            }
            (Some(path), None) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    format!(
                        "upstream.sasl.password_file: cannot read {}: {e}",
                        path.display()
                    )
                })?;
                let text = text.strip_suffix('\n').unwrap_or(&text);
                text.strip_suffix('\r').unwrap_or(text).to_string()
            }
            (None, Some(var)) => std::env::var(var).map_err(|e| {
                format!("upstream.sasl.password_env: environment variable {var:?}: {e}")
            })?,
        };
        if password.is_empty() {
            return Err("upstream.sasl: the password is empty".into());
        }
        Ok(SaslCredentials {
            mechanism: self.mechanism,
            username: self.username.clone(),
            password,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<UpstreamSaslConfig, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn unknown_mechanism_is_named() {
        let e = parse("mechanism = \"GSSAPI\"\nusername = \"u\"\npassword_env = \"X\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("GSSAPI") && e.contains("SCRAM-SHA-512"), "{e}");
    }

    #[test]
    fn password_from_file_without_its_newline() {
        let dir = std::env::temp_dir().join(format!("strait-sasl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("pw");
        std::fs::write(&file, "s3cret\n").unwrap();
        let cfg = UpstreamSaslConfig {
            mechanism: SaslMechanism::ScramSha512,
            username: "strait".into(),
            password_file: Some(file),
            password_env: None,
        };
        let c = cfg.credentials().unwrap();
        assert_eq!(c.password, "s3cret");
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("s3cret") && shown.contains("redacted"),
            "{shown}"
        );
    }

    #[test]
    fn bad_password_sources_are_clear() {
        let base = UpstreamSaslConfig {
            mechanism: SaslMechanism::Plain,
            username: "strait".into(),
            password_file: None,
            password_env: None,
        };
        let neither = base.credentials().unwrap_err();
        assert!(neither.contains("neither"), "{neither}");
        let both = UpstreamSaslConfig {
            password_file: Some("/x".into()),
            password_env: Some("X".into()),
            ..base.clone()
        }
        .credentials()
        .unwrap_err();
        assert!(both.contains("not both"), "{both}");
        let missing = UpstreamSaslConfig {
            password_file: Some("/nonexistent/strait-password".into()),
            ..base.clone()
        }
        .credentials()
        .unwrap_err();
        assert!(
            missing.contains("password_file") && missing.contains("/nonexistent/strait-password"),
            "{missing}"
        );
        let unset = UpstreamSaslConfig {
            password_env: Some("STRAIT_TEST_SURELY_UNSET_PASSWORD".into()),
            ..base
        }
        .credentials()
        .unwrap_err();
        assert!(
            unset.contains("STRAIT_TEST_SURELY_UNSET_PASSWORD"),
            "{unset}"
        );
    }

    #[test]
    fn empty_username_or_password_is_refused() {
        let dir = std::env::temp_dir().join(format!("strait-sasl-empty-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("pw");
        std::fs::write(&file, "\n").unwrap();
        let cfg = UpstreamSaslConfig {
            mechanism: SaslMechanism::ScramSha256,
            username: "strait".into(),
            password_file: Some(file),
            password_env: None,
        };
        assert!(cfg.credentials().unwrap_err().contains("empty"));
        let nameless = UpstreamSaslConfig {
            username: String::new(),
            ..cfg
        };
        assert!(nameless.credentials().unwrap_err().contains("username"));
    }
}
