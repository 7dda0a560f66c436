//! A live-tail viewer's filters: key, header, value substring, a JSON
//! field and a CEL expression, all of which must hold.

use std::sync::Arc;

use super::cel::Expr;
use super::tail::Record;

/// What a viewer keeps. Every condition must hold.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub partition: Option<i32>,
    /// The key, exactly.
    pub key: Option<String>,
    /// A header by name, or `name=value`.
    pub header: Option<String>,
    /// A substring of the value.
    pub contains: Option<String>,
    /// `path=value`: a field of a JSON value (dotted path), compared as text.
    pub json: Option<(String, String)>,
    /// A CEL expression that must give true (`cel.rs`).
    pub cel: Option<Arc<Expr>>,
}

/// What a batch of records came to.
#[derive(Default)]
pub(super) struct Sifted {
    /// The records that passed, in order.
    pub(super) kept: Vec<Record>,
    pub(super) processed: u64,
    /// Records the expression could not decide (they did not pass).
    pub(super) errors: u64,
    pub(super) first_error: Option<String>,
}

impl Filter {
    /// Whether the filter reads values (refused where values are hidden).
    pub fn reads_values(&self) -> bool {
        self.contains.is_some()
            || self.json.is_some()
            || self.cel.as_ref().is_some_and(|c| c.reads_values())
    }

    /// The records of a fetch that pass. Runs the expression and parses
    /// JSON: call it on the blocking pool only.
    pub(super) fn sift(&self, records: Vec<Record>) -> Sifted {
        let processed = records.len() as u64;
        let kept: Vec<Record> = records.into_iter().filter(|r| self.keeps(r)).collect();
        let Some(cel) = &self.cel else {
            return Sifted {
                kept,
                processed,
                ..Default::default()
            };
        };
        let mut out = Sifted {
            processed,
            ..Default::default()
        };
        let verdicts = cel.judge(&kept);
        for (r, verdict) in kept.into_iter().zip(verdicts) {
            match verdict {
                Ok(true) => out.kept.push(r),
                Ok(false) => {}
                Err(why) => {
                    out.errors += 1;
                    out.first_error.get_or_insert(why);
                }
            }
        }
        out
    }

    pub(super) fn keeps(&self, r: &Record) -> bool {
        if let Some(k) = &self.key {
            if r.key.as_deref() != Some(k.as_bytes()) {
                return false;
            }
        }
        if let Some(h) = &self.header {
            let (name, value) = match h.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (h.as_str(), None),
            };
            let found = r.headers.iter().any(|(k, v)| {
                k.as_ref() == name.as_bytes()
                    && value.is_none_or(|want| v.as_deref() == Some(want.as_bytes()))
            });
            if !found {
                return false;
            }
        }
        let value = r.value.as_deref().unwrap_or_default();
        if let Some(c) = &self.contains {
            if !value.windows(c.len().max(1)).any(|w| w == c.as_bytes()) {
                return false;
            }
        }
        if let Some((path, want)) = &self.json {
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(value) else {
                return false;
            };
            let found = path.split('.').try_fold(&v, |v, part| match v {
                serde_json::Value::Array(a) => a.get(part.parse::<usize>().ok()?),
                other => other.get(part),
            });
            let text = match found {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => return false,
            };
            if &text != want {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn record(key: &str, value: &str, headers: &[(&str, &str)]) -> Record {
        Record {
            partition: 0,
            offset: 0,
            timestamp: 0,
            key: Some(Bytes::copy_from_slice(key.as_bytes())),
            value: Some(Bytes::copy_from_slice(value.as_bytes())),
            headers: headers
                .iter()
                .map(|(k, v)| {
                    (
                        Bytes::copy_from_slice(k.as_bytes()),
                        Some(Bytes::copy_from_slice(v.as_bytes())),
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn filters_on_key_header_substring_and_json_field() {
        let r = record(
            "k1",
            r#"{"order":{"status":"paid","lines":[{"sku":"a"}]},"n":3}"#,
            &[("region", "eu")],
        );
        let f = |f: Filter| f.keeps(&r);
        assert!(f(Filter::default()));
        assert!(f(Filter {
            key: Some("k1".into()),
            ..Default::default()
        }));
        assert!(!f(Filter {
            key: Some("k2".into()),
            ..Default::default()
        }));
        assert!(f(Filter {
            header: Some("region".into()),
            ..Default::default()
        }));
        assert!(f(Filter {
            header: Some("region=eu".into()),
            ..Default::default()
        }));
        assert!(!f(Filter {
            header: Some("region=us".into()),
            ..Default::default()
        }));
        assert!(f(Filter {
            contains: Some("paid".into()),
            ..Default::default()
        }));
        assert!(!f(Filter {
            contains: Some("refund".into()),
            ..Default::default()
        }));
        let json = |p: &str, v: &str| Filter {
            json: Some((p.into(), v.into())),
            ..Default::default()
        };
        assert!(f(json("order.status", "paid")));
        assert!(f(json("order.lines.0.sku", "a")));
        assert!(f(json("n", "3")));
        assert!(!f(json("order.status", "open")));
        assert!(!f(json("missing", "x")));
        let not_json = record("k", "plain", &[]);
        assert!(!json("a", "b").keeps(&not_json));
    }
}
