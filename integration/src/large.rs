//! Large-record tests' helpers: the `LargeRecords` drivers (Java and
//! librdkafka) with their JSON-lines output, and Strait started with a
//! large-record policy and store.
//!
//! Values are deterministic from (seed, index) and incompressible, the same
//! in both drivers (see `conformance/python/large_records.py`), so a consumer's
//! SHA-256 is compared with what the producer acknowledged.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::{java, python, tempdir, Output, S3Server, Strait};

/// A client stack with a large-records driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stack {
    Java,
    Librdkafka,
}

impl Stack {
    pub const BOTH: [Stack; 2] = [Stack::Java, Stack::Librdkafka];
}

/// `LargeRecords MODE ARGS` of `stack` (`produce` or `consume`).
pub fn driver(stack: Stack, mode: &str, args: &[&str]) -> Command {
    let mut all = vec![mode];
    all.extend_from_slice(args);
    match stack {
        Stack::Java => java("LargeRecords", &all),
        Stack::Librdkafka => python("large_records.py", &all),
    }
}

/// A record a producer had acknowledged (or aborted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Produced {
    pub index: u64,
    pub partition: i64,
    pub offset: i64,
    pub size: u64,
    pub sha256: String,
    pub aborted: bool,
}

/// A record a consumer read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Consumed {
    pub partition: i64,
    pub offset: i64,
    pub size: Option<u64>,
    pub sha256: Option<String>,
    pub headers: Vec<(String, Option<String>)>,
    pub key: Option<String>,
    pub index: Option<u64>,
}

pub fn produced(out: &Output) -> Vec<Produced> {
    out.json_lines()
        .iter()
        .filter(|l| l["type"] == "acked" || l["type"] == "aborted")
        .map(|l| Produced {
            index: l["index"].as_u64().unwrap(),
            partition: l["partition"].as_i64().unwrap(),
            offset: l["offset"].as_i64().unwrap(),
            size: l["size"].as_u64().unwrap(),
            sha256: l["sha256"].as_str().unwrap().to_string(),
            aborted: l["type"] == "aborted",
        })
        .collect()
}

pub fn consumed_lines(lines: &[Value]) -> Vec<Consumed> {
    lines
        .iter()
        .filter(|l| l["type"] == "record")
        .map(|l| Consumed {
            partition: l["partition"].as_i64().unwrap(),
            offset: l["offset"].as_i64().unwrap(),
            size: l["size"].as_u64(),
            sha256: l["sha256"].as_str().map(str::to_string),
            headers: l["headers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| {
                    (
                        h[0].as_str().unwrap().to_string(),
                        h[1].as_str().map(str::to_string),
                    )
                })
                .collect(),
            key: l["key"].as_str().map(str::to_string),
            index: l["index"].as_u64(),
        })
        .collect()
}

pub fn consumed(out: &Output) -> Vec<Consumed> {
    consumed_lines(&out.json_lines())
}

/// Produce errors as (index, message, retriable).
pub fn produce_errors(out: &Output) -> Vec<(u64, String, bool)> {
    out.json_lines()
        .iter()
        .filter(|l| l["type"] == "error")
        .map(|l| {
            (
                l["index"].as_u64().unwrap_or(u64::MAX),
                l["error"].as_str().unwrap_or("").to_string(),
                l["retriable"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

/// Every committed record read exactly once, byte-identical (SHA-256, size),
/// with its key and its one client header; no aborted record read. Matched
/// by index (the `n` header), whatever offsets the records got. Fails when
/// nothing was committed: a producer whose output lost its records (or
/// never wrote any) would otherwise pass as a perfect round trip.
pub fn assert_round_trip(produced: &[Produced], consumed: &[Consumed], key_prefix: &str) {
    assert!(
        produced.iter().any(|p| !p.aborted),
        "a round trip of nothing: no committed record among the {} produced ({} consumed), \
         so there is nothing to compare",
        produced.len(),
        consumed.len()
    );
    for p in produced.iter().filter(|p| !p.aborted) {
        let got: Vec<&Consumed> = consumed
            .iter()
            .filter(|c| c.index == Some(p.index))
            .collect();
        assert_eq!(got.len(), 1, "record {} read {} times", p.index, got.len());
        let c = got[0];
        assert_eq!(
            c.sha256.as_deref(),
            Some(p.sha256.as_str()),
            "record {} bytes differ",
            p.index
        );
        assert_eq!(c.size, Some(p.size), "record {} size", p.index);
        assert_eq!(
            c.key.as_deref(),
            Some(format!("{key_prefix}{}", p.index).as_str()),
            "record {} key",
            p.index
        );
        assert_eq!(
            c.headers,
            vec![("n".to_string(), Some(p.index.to_string()))],
            "record {} headers: the marker is gone, the client's header stays",
            p.index
        );
    }
    for p in produced.iter().filter(|p| p.aborted) {
        assert!(
            consumed
                .iter()
                .all(|c| c.sha256.as_deref() != Some(p.sha256.as_str())),
            "aborted record {} was read",
            p.index
        );
    }
}

/// Where a test's claim-checks go.
pub enum StoreKind<'a> {
    /// A local directory (the default store).
    Dir(&'a Path),
    /// An S3-compatible server.
    S3(&'a S3Server),
}

/// Strait in front of `upstream` with `policies` (a policy file's text),
/// the given store and extra `strait.toml` text (e.g. `[limits]`); waits
/// until it is ready.
pub fn strait_with_store(
    upstream: &str,
    policies: &str,
    store: StoreKind<'_>,
    extra: &str,
) -> (Strait, tempdir::Dir) {
    strait_with_large_config(upstream, policies, store, extra, "")
}

/// Strait with the large-record `remedies` on `prefix` topics and a fresh
/// local-directory store: (Strait, the store's directory, the config's).
pub fn strait_with_dir(
    upstream: &str,
    prefix: &str,
    remedies: &[&str],
) -> (Strait, tempdir::Dir, tempdir::Dir) {
    let objects = tempdir::Dir::new("objects");
    let (strait, config) = strait_with_store(
        upstream,
        &policy(prefix, remedies, ""),
        StoreKind::Dir(objects.path()),
        "",
    );
    (strait, objects, config)
}

/// A policy file giving `prefix` topics large-record `remedies`
/// (e.g. `"claim-check"`), with `extra` lines in the section.
pub fn policy(prefix: &str, remedies: &[&str], extra: &str) -> String {
    let list: Vec<String> = remedies.iter().map(|r| format!("{r:?}")).collect();
    format!(
        "[[policy]]\nname = \"large\"\ntopics = {{ prefix = {prefix:?} }}\n\
         [policy.large_records]\nremedies = [{}]\n{extra}\n",
        list.join(", ")
    )
}

/// A counter's value from Strait's `/metrics`, summed over the series whose
/// labels contain every `labels` fragment (e.g. `op="written"`).
pub fn metric(strait: &Strait, name: &str, labels: &[&str]) -> f64 {
    let (_, body) = strait.admin_get("/metrics");
    body.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter(|l| labels.iter().all(|f| l.contains(f)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A driver running in the background (see [`spawn_driver`]): its JSON lines
/// as they come, and all of its output once it has finished. Killed on drop
/// if still running.
pub struct Running {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<Value>,
    stdout: std::sync::Arc<std::sync::Mutex<String>>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

/// Spawns a driver command (e.g. [`driver`]), capturing stdout (parsed JSON
/// lines handed over as they come, and the whole text) and stderr (the
/// client's own log, e.g. for error names the JSON lines do not carry).
pub fn spawn_driver(cmd: &mut Command) -> Running {
    use std::io::{BufRead, BufReader, Read};
    use std::process::Stdio;
    use std::sync::{Arc, Mutex};
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let (out, err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let stdout = Arc::new(Mutex::new(String::new()));
    let stderr = Arc::new(Mutex::new(String::new()));
    let (tx, lines) = std::sync::mpsc::channel();
    let sink = stdout.clone();
    let read_out = std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                let _ = tx.send(v);
            }
            let mut s = sink.lock().unwrap();
            s.push_str(&line);
            s.push('\n');
        }
    });
    let sink = stderr.clone();
    let read_err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = BufReader::new(err).read_to_end(&mut buf);
        sink.lock()
            .unwrap()
            .push_str(&String::from_utf8_lossy(&buf));
    });
    Running {
        child,
        lines,
        stdout,
        stderr,
        readers: vec![read_out, read_err],
    }
}

impl Running {
    /// The next JSON line, waiting at most `timeout`; `None` at the timeout
    /// or once the driver has closed its stdout.
    pub fn next_line(&self, timeout: std::time::Duration) -> Option<Value> {
        self.lines.recv_timeout(timeout).ok()
    }

    /// Every JSON line printed since the last call, without waiting.
    pub fn lines_so_far(&self) -> Vec<Value> {
        self.lines.try_iter().collect()
    }

    /// Whether the driver is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits for the driver to exit (its own `--timeout-s` and watchdog
    /// bound this) and returns all of its output.
    pub fn finish(mut self) -> Output {
        let status = self.child.wait().expect("wait for the driver");
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        Output {
            ok: status.success(),
            stdout: std::mem::take(&mut *self.stdout.lock().unwrap()),
            stderr: std::mem::take(&mut *self.stderr.lock().unwrap()),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// As [`strait_with_store`], with `large_extra` lines (e.g.
/// `memory_bytes = 201326592`) added to the `[large_records]` section.
pub fn strait_with_large_config(
    upstream: &str,
    policies: &str,
    store: StoreKind<'_>,
    extra: &str,
    large_extra: &str,
) -> (Strait, tempdir::Dir) {
    let dir = tempdir::Dir::new("strait-large");
    let pdir = dir.path().join("policies");
    std::fs::create_dir_all(&pdir).unwrap();
    std::fs::write(pdir.join("large.toml"), policies).unwrap();
    let brokers: Vec<String> = upstream.split(',').map(|b| format!("{b:?}")).collect();
    // Keys of [large_records] go before any of its sub-tables ([large_records.s3]).
    let (store_toml, env) = match store {
        StoreKind::Dir(d) => (
            format!("store = {:?}\n{large_extra}\n", d.display().to_string()),
            vec![],
        ),
        StoreKind::S3(s) => (
            format!(
                "store = \"s3://{}\"\nstore_timeout_ms = 5000\n{large_extra}\n[large_records.s3]\nendpoint = {:?}\nallow_http = true\n",
                s.bucket, s.endpoint
            ),
            s.env(),
        ),
    };
    let toml = format!(
        "[listen]\nbootstrap = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n\
         [upstream]\nbootstrap = [{}]\n[policies]\ndir = {:?}\n{extra}\n[large_records]\n{store_toml}",
        brokers.join(", "),
        pdir.display().to_string()
    );
    let path = dir.path().join("strait.toml");
    std::fs::write(&path, toml).unwrap();
    let s = Strait::start_with_env(&["run", "--config", path.to_str().unwrap()], &env);
    s.wait_ready();
    (s, dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "a round trip of nothing")]
    fn a_round_trip_of_no_record_fails() {
        assert_round_trip(&[], &[], "");
    }

    #[test]
    #[should_panic(expected = "no committed record among the 1 produced")]
    fn a_round_trip_of_only_aborted_records_fails() {
        let aborted = Produced {
            index: 0,
            partition: 0,
            offset: 0,
            size: 1,
            sha256: "00".into(),
            aborted: true,
        };
        assert_round_trip(&[aborted], &[], "");
    }
}
