//! Test support for Strait's integration tests: the real Kafka clusters the
//! suite started (`integration/kafka up`), the real `strait` binary as a child
//! process with its JSON log lines captured, the real client drivers under
//! `conformance/`, and a raw Kafka wire client for byte-level checks.
//!
//! Every wait is bounded polling ([`eventually`]); nothing sleeps to synchronise.

pub mod franz_go;
pub mod kafka_python;
pub mod kafkajs;
pub mod lag;
pub mod large;
pub mod produce_rules;
pub mod s3;
pub mod sasl;
pub mod wire;

pub use s3::S3Server;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_path_buf()
}

/// Bootstrap servers of a cluster started by the suite (`./test` exports them).
pub fn cluster(brokers: u32) -> String {
    let var = format!("STRAIT_KAFKA_{brokers}");
    std::env::var(&var).unwrap_or_else(|_| {
        panic!(
            "{var} is not set: run the suite with ./test (it starts Kafka with integration/kafka up \
             --brokers {brokers} --name it{brokers} and exports {var})"
        )
    })
}

/// The harness name of a cluster, for kill-node / start-node: the cluster
/// under `integration/.run/` whose bootstrap is `STRAIT_KAFKA_<brokers>` (so a
/// cluster started by hand under another `--name` works too), else `it<brokers>`.
pub fn cluster_name(brokers: u32) -> String {
    std::env::var(format!("STRAIT_KAFKA_{brokers}"))
        .ok()
        .and_then(|bootstrap| harness_name_of(&bootstrap))
        .unwrap_or_else(|| format!("it{brokers}"))
}

/// The name of the harness cluster (`integration/.run/NAME/bootstrap`) whose
/// bootstrap servers are `bootstrap`.
pub fn harness_name_of(bootstrap: &str) -> Option<String> {
    std::fs::read_dir(repo().join("integration/.run"))
        .ok()?
        .filter_map(|e| e.ok())
        .find(|e| {
            std::fs::read_to_string(e.path().join("bootstrap"))
                .is_ok_and(|b| b.trim() == bootstrap.trim())
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
}

/// Polls `f` until it returns `Some`, or panics after `timeout` naming `what`.
pub fn eventually<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(10);
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}

/// A unique name for a topic or group.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}-{}-{nanos:x}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The `strait` binary, built by cargo for this test run.
pub fn strait_bin() -> PathBuf {
    if let Ok(p) = std::env::var("STRAIT_BIN") {
        return PathBuf::from(p);
    }
    let profile_dir = std::env::current_exe()
        .expect("test exe")
        .parent()
        .and_then(|p| p.parent())
        .expect("target/<profile>")
        .to_path_buf();
    let bin = profile_dir.join("strait");
    assert!(
        bin.exists(),
        "{} not found: build it first (cargo build -p strait-proxy --bin strait)",
        bin.display()
    );
    bin
}

/// A running `strait` process.
pub struct Strait {
    child: Child,
    pub bootstrap: String,
    pub admin: String,
    logs: Arc<Mutex<Vec<Value>>>,
}

impl Strait {
    /// Starts `strait run` with a quick-start upstream.
    pub fn quick(upstream: &str) -> Strait {
        Strait::quick_with(upstream, &[])
    }

    /// `quick` plus more `strait run` flags.
    pub fn quick_with(upstream: &str, extra: &[&str]) -> Strait {
        let mut args = vec![
            "run",
            "--upstream",
            upstream,
            "--listen",
            "127.0.0.1:0",
            "--admin",
            "127.0.0.1:0",
        ];
        args.extend_from_slice(extra);
        Strait::start(&args)
    }

    /// `quick` with a policy directory, once the cluster is discovered.
    pub fn with_policies(upstream: &str, dir: &Path) -> Strait {
        let s = Strait::quick_with(upstream, &["--policies", dir.to_str().expect("utf-8 path")]);
        s.wait_ready();
        s
    }

    /// Starts `strait run --config FILE` with the given TOML (listeners should use port 0).
    pub fn with_config(toml: &str) -> (Strait, tempdir::Dir) {
        let dir = tempdir::Dir::new("strait-config");
        let path = dir.path().join("strait.toml");
        std::fs::write(&path, toml).unwrap();
        let s = Strait::start(&["run", "--config", path.to_str().unwrap()]);
        (s, dir)
    }

    pub fn start(args: &[&str]) -> Strait {
        Strait::start_with_env(args, &[])
    }

    /// `start` with extra environment variables (object-store credentials).
    pub fn start_with_env(args: &[&str], env: &[(&str, String)]) -> Strait {
        let mut child = Command::new(strait_bin())
            .args(args)
            .args(["--log-format", "json"])
            .env("RUST_LOG", "info")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn strait");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let v = serde_json::from_str(&line).unwrap_or_else(|_| Value::String(line.clone()));
                if std::env::var_os("STRAIT_TEST_ECHO").is_some() {
                    eprintln!("[strait] {line}");
                }
                sink.lock().unwrap().push(v);
            }
        });
        let mut s = Strait {
            child,
            bootstrap: String::new(),
            admin: String::new(),
            logs,
        };
        let started = s.wait_log("the 'strait listening' line", |l| {
            message(l) == "strait listening"
        });
        s.bootstrap = field(&started, "bootstrap");
        s.admin = field(&started, "admin");
        s
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal (`TERM`, `INT`, `KILL`) to the process.
    pub fn signal(&self, name: &str) {
        let out = run(Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string()));
        out.assert_ok(&format!("kill -{name} {}", self.pid()));
    }

    /// Waits (bounded) for the process to exit and returns its status.
    pub fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let child = &mut self.child;
        eventually("strait to exit", timeout, || child.try_wait().unwrap())
    }

    /// All log lines so far.
    pub fn logs(&self) -> Vec<Value> {
        self.logs.lock().unwrap().clone()
    }

    /// Waits (bounded) for a log line matching `pred`.
    pub fn wait_log(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let logs = self.logs.clone();
        let child = &mut self.child;
        eventually(what, Duration::from_secs(30), || {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "strait exited ({status}) while waiting for {what}: {:#?}",
                    logs.lock().unwrap()
                );
            }
            logs.lock().unwrap().iter().find(|l| pred(l)).cloned()
        })
    }

    /// Log lines at WARN or ERROR.
    pub fn warnings(&self) -> Vec<Value> {
        self.logs()
            .into_iter()
            .filter(|l| {
                matches!(
                    l.get("level").and_then(Value::as_str),
                    Some("WARN" | "ERROR")
                )
            })
            .collect()
    }

    /// `GET path` on the admin listener; returns (status, body).
    pub fn admin_get(&self, path: &str) -> (u16, String) {
        http_get(&self.admin, path)
    }

    /// Resident set size now and at peak, in KiB, from /proc.
    pub fn rss_kib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let get = |k: &str| {
            status
                .lines()
                .find(|l| l.starts_with(k))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (get("VmRSS:"), get("VmHWM:"))
    }

    /// The proxy ports of the brokers, from the admin `/brokers` view.
    pub fn broker_ports(&self) -> Vec<u16> {
        let (_, body) = self.admin_get("/brokers");
        body.lines()
            .filter_map(|l| l.split_whitespace().nth(1)?.parse().ok())
            .collect()
    }

    /// Waits until the proxy has discovered the cluster.
    pub fn wait_ready(&self) {
        eventually("strait /readyz", Duration::from_secs(60), || {
            (self.admin_get("/readyz").0 == 200).then_some(())
        });
    }
}

impl Drop for Strait {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `message` of a JSON log line.
pub fn message(line: &Value) -> &str {
    line.pointer("/fields/message")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// A field of a JSON log line, as a string.
pub fn field(line: &Value, key: &str) -> String {
    match line.pointer(&format!("/fields/{key}")) {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => String::new(),
    }
}

/// A minimal HTTP/1.0 GET, enough for the admin listener.
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    http_get_with_token(addr, path, None)
}

/// [`http_get`] with `Authorization: Bearer <token>` when `token` is given.
pub fn http_get_with_token(addr: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect admin");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n{auth}\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Output of a finished client driver.
pub struct Output {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// The JSON lines printed on stdout.
    pub fn json_lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The last JSON line (the drivers' summary).
    pub fn summary(&self) -> Value {
        self.json_lines().pop().unwrap_or(Value::Null)
    }

    pub fn assert_ok(&self, what: &str) -> &Self {
        assert!(
            self.ok,
            "{what} failed\n--- stdout\n{}\n--- stderr\n{}",
            tail(&self.stdout),
            tail(&self.stderr)
        );
        self
    }
}

/// Runs a driver that must refuse its arguments, and checks the drivers'
/// contract for that (conformance/README.md): exit 2 and a failing summary
/// whose error starts with "usage: ". Returns the summary.
pub fn assert_usage_error(cmd: &mut Command, what: &str) -> Value {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary: Value = stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or(Value::Null);
    assert_eq!(out.status.code(), Some(2), "{what}: {stdout}");
    assert_eq!(summary["ok"], false, "{what}: {summary}");
    assert!(
        summary["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("usage: ")),
        "{what}: {summary}"
    );
    summary
}

fn tail(s: &str) -> String {
    let lines: Vec<_> = s.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Runs a command to completion and captures its output.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    Output {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Spawns a command whose stdout is JSON lines (Kafka's Verifiable* tools),
/// handing each parsed line to the receiver as it comes. Its stderr goes to
/// the test's captured output (shown when the test fails), not the suite's.
pub fn spawn_lines(cmd: &mut Command) -> (Child, std::sync::mpsc::Receiver<Value>) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let stderr = child.stderr.take().expect("piped");
    // Threads spawned by a test share its output capture.
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("{line}");
        }
    });
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                if tx.send(v).is_err() {
                    return;
                }
            }
        }
    });
    (child, rx)
}

/// Kafka's TransactionalMessageCopier: copies `records` records of
/// `input` partition 0 to `output` in transactions of 100, aborting some at
/// random, as transactional id `{base}-txn` and group `{base}-group`.
pub fn copy_transactionally(
    bootstrap: &str,
    base: &str,
    input: &str,
    output: &str,
    records: usize,
) -> Output {
    run(&mut harness(&[
        "tool",
        "org.apache.kafka.tools.TransactionalMessageCopier",
        "--broker-list",
        bootstrap,
        "--transactional-id",
        &format!("{base}-txn"),
        "--consumer-group",
        &format!("{base}-group"),
        "--input-topic",
        input,
        "--input-partition",
        "0",
        "--output-topic",
        output,
        "--max-messages",
        &records.to_string(),
        "--transaction-size",
        "100",
        "--enable-random-aborts",
    ]))
}

/// A Java conformance driver (`conformance/java/run CLASS ARGS`).
pub fn java(class: &str, args: &[&str]) -> Command {
    let mut c = Command::new(repo().join("conformance/java/run"));
    c.arg(format!("strait.conformance.{class}")).args(args);
    c
}

/// The Kafka harness (`integration/kafka ARGS`).
pub fn harness(args: &[&str]) -> Command {
    let mut c = Command::new(repo().join("integration/kafka"));
    c.args(args);
    c
}

/// A Python conformance driver in the suite's virtualenv.
pub fn python(script: &str, args: &[&str]) -> Command {
    let mut c = Command::new(repo().join("conformance/.venv/bin/python"));
    c.arg(repo().join("conformance/python").join(script))
        .args(args);
    c
}

/// The leader (node id) of `topic`'s partition 0, from `kafka-topics --describe`.
pub fn leader_of(bootstrap: &str, topic: &str) -> u32 {
    let out = run(&mut harness(&[
        "topics",
        "--bootstrap-server",
        bootstrap,
        "--describe",
        "--topic",
        topic,
    ]));
    out.assert_ok("describe topic");
    out.stdout
        .split_whitespace()
        .skip_while(|w| *w != "Leader:")
        .nth(1)
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no leader in:\n{}", out.stdout))
}

/// `kill-node` or `start-node` of a node of the 3-broker cluster.
pub fn node3(cmd: &str, id: u32) {
    run(&mut harness(&[
        cmd,
        "--name",
        &cluster_name(3),
        "--node",
        &id.to_string(),
    ]))
    .assert_ok(&format!("{cmd} {id}"));
}

/// `kill-node` or `start-node` of a node of the suite's `brokers`-broker cluster.
pub fn node_of(brokers: u32, cmd: &str, id: u32) {
    run(&mut harness(&[
        cmd,
        "--name",
        &cluster_name(brokers),
        "--node",
        &id.to_string(),
    ]))
    .assert_ok(&format!("{cmd} {id}"));
}

/// Freezes (SIGSTOP) node `id` of the suite's `brokers`-broker cluster: its
/// connections stay open and it answers nothing, until a test kills it
/// with [`KilledNode::kill_in`] (SIGKILL ends a stopped process too).
pub fn freeze_node(brokers: u32, id: u32) {
    let pid_file = repo()
        .join("integration/.run")
        .join(cluster_name(brokers))
        .join(format!("node-{id}"))
        .join("pid");
    let pid = std::fs::read_to_string(&pid_file)
        .unwrap_or_else(|e| panic!("{}: {e}", pid_file.display()));
    let stopped = Command::new("kill")
        .args(["-STOP", pid.trim()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(stopped, "SIGSTOP to node {id} (pid {})", pid.trim());
}

/// A node of a suite cluster killed by a test: started again by
/// [`KilledNode::restart`], or on drop, so the shared cluster is whole
/// again whatever the test's outcome.
pub struct KilledNode {
    brokers: u32,
    id: Option<u32>,
}

impl KilledNode {
    /// Kills a node of the 3-broker cluster.
    pub fn kill(id: u32) -> KilledNode {
        KilledNode::kill_in(3, id)
    }

    /// Kills a node of the `brokers`-broker cluster.
    pub fn kill_in(brokers: u32, id: u32) -> KilledNode {
        node_of(brokers, "kill-node", id);
        KilledNode {
            brokers,
            id: Some(id),
        }
    }

    pub fn restart(mut self) {
        if let Some(id) = self.id.take() {
            node_of(self.brokers, "start-node", id);
        }
    }
}

impl Drop for KilledNode {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            // Maybe unwinding already: report, do not assert.
            let out = run(&mut harness(&[
                "start-node",
                "--name",
                &cluster_name(self.brokers),
                "--node",
                &id.to_string(),
            ]));
            if !out.ok {
                eprintln!("start-node {id} failed: {}", out.stderr);
            }
        }
    }
}

/// Creates a topic directly on the cluster.
pub fn create_topic(bootstrap: &str, topic: &str, partitions: u32, rf: u32) {
    create_topic_with_configs(bootstrap, topic, partitions, rf, &[]);
}

/// Creates a topic directly on the cluster with topic configs (`--config K=V`),
/// e.g. `("max.message.bytes", "67108864")` for batches past the 1 MiB default.
pub fn create_topic_with_configs(
    bootstrap: &str,
    topic: &str,
    partitions: u32,
    rf: u32,
    configs: &[(&str, &str)],
) {
    let (partitions_arg, rf_arg) = (partitions.to_string(), rf.to_string());
    let mut args = vec![
        "topics",
        "--bootstrap-server",
        bootstrap,
        "--create",
        "--topic",
        topic,
        "--partitions",
        &partitions_arg,
        "--replication-factor",
        &rf_arg,
    ];
    let configs: Vec<String> = configs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    for c in &configs {
        args.extend(["--config", c.as_str()]);
    }
    run(&mut harness(&args)).assert_ok("create topic");
    // Every broker learns of the topic shortly after the controller commits it.
    for broker in bootstrap.split(',') {
        eventually(
            &format!("topic {topic} with leaders in {broker}'s metadata"),
            Duration::from_secs(30),
            || {
                let mut w = wire::Wire::connect(broker);
                let req =
                    kafka_protocol::messages::MetadataRequest::default().with_topics(Some(vec![
                        kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
                            .with_name(Some(kafka_protocol::messages::TopicName(
                                kafka_protocol::protocol::StrBytes::from_string(topic.to_string()),
                            ))),
                    ]));
                let m: kafka_protocol::messages::MetadataResponse =
                    w.call(kafka_protocol::messages::ApiKey::Metadata, 12, &req);
                let t = m.topics.first()?;
                (t.error_code == 0
                    && t.partitions.len() == partitions as usize
                    && t.partitions.iter().all(|p| p.leader_id.0 >= 0))
                .then_some(())
            },
        );
    }
}

/// Produces `(key, value)` records to `topic`/`partition` directly with
/// kcat (values must not hold a newline, keys no tab).
pub fn kcat_produce(bootstrap: &str, topic: &str, partition: i32, records: &[(String, String)]) {
    use std::io::Write;
    let text: String = records.iter().map(|(k, v)| format!("{k}\t{v}\n")).collect();
    let mut child = Command::new("kcat")
        .args([
            "-P",
            "-b",
            bootstrap,
            "-t",
            topic,
            "-p",
            &partition.to_string(),
            "-K",
            "\t",
        ])
        .stdin(Stdio::piped())
        .spawn()
        .expect("kcat");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    assert!(
        child.wait().unwrap().success(),
        "kcat produce to {topic}/{partition}"
    );
}

/// Every record value of a topic, read directly from the broker with kcat.
pub fn values_on_broker(bootstrap: &str, topic: &str) -> Vec<String> {
    let out = run(Command::new("kcat").args([
        "-C",
        "-b",
        bootstrap,
        "-t",
        topic,
        "-o",
        "beginning",
        "-e",
        "-q",
        "-f",
        "%s\\n",
    ]));
    out.assert_ok("kcat consume");
    out.stdout.lines().map(str::to_string).collect()
}

/// The batches of a partition as the broker stored them: (codec, record
/// count) per data batch, read from the log segments of a harness cluster
/// with Kafka's own DumpLogSegments (control batches are left out).
pub fn stored_batches(brokers: u32, topic: &str, partition: u32) -> Vec<(String, u64)> {
    dump_batches(brokers, topic, partition)
        .into_iter()
        .map(|b| (b.codec, b.count))
        .collect()
}

/// A data batch as the broker stored it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBatch {
    pub codec: String,
    pub count: u64,
    /// The batch's size on disk, in bytes.
    pub size: u64,
}

/// The data batches of a partition, read from the log segments of a harness
/// cluster with Kafka's own DumpLogSegments (control batches left out).
pub fn dump_batches(brokers: u32, topic: &str, partition: u32) -> Vec<StoredBatch> {
    dump_batches_in(&cluster_name(brokers), topic, partition)
}

/// [`dump_batches`] of the harness cluster called `name`.
pub fn dump_batches_in(name: &str, topic: &str, partition: u32) -> Vec<StoredBatch> {
    let run_dir = repo().join("integration/.run").join(name);
    let part = format!("{topic}-{partition}");
    let dir = std::fs::read_dir(&run_dir)
        .unwrap_or_else(|e| panic!("{}: {e}", run_dir.display()))
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("data").join(&part))
        .find(|d| d.is_dir())
        .unwrap_or_else(|| panic!("no broker of {} stores {part}", run_dir.display()));
    let mut logs: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .map(|p| p.display().to_string())
        .collect();
    logs.sort();
    assert!(!logs.is_empty(), "no log segment in {}", dir.display());
    let mut args = vec!["tool", "kafka.tools.DumpLogSegments", "--files"];
    let joined = logs.join(",");
    args.push(&joined);
    let out = run(&mut harness(&args));
    out.assert_ok("DumpLogSegments");
    let field = |line: &str, key: &str| -> Option<String> {
        let at = line.find(key)? + key.len();
        line[at..].split_whitespace().next().map(str::to_string)
    };
    out.stdout
        .lines()
        .filter(|l| l.starts_with("baseOffset:"))
        .filter(|l| field(l, "isControl:").as_deref() != Some("true"))
        .map(|l| {
            let number = |key: &str| -> u64 {
                field(l, key)
                    .and_then(|c| c.parse().ok())
                    .unwrap_or_else(|| panic!("no {key} in {l}"))
            };
            StoredBatch {
                codec: field(l, "compresscodec:").unwrap_or_else(|| panic!("no codec in {l}")),
                count: number("count:"),
                size: number("size:"),
            }
        })
        .collect()
}

/// A one-broker cluster of a test's own, for broker settings the suite's
/// shared clusters must not get (e.g. a `compression.type` default); stopped
/// on drop. Costs a broker start (a JVM): only for what needs it.
pub struct OwnCluster {
    pub name: String,
    pub bootstrap: String,
}

impl OwnCluster {
    /// `integration/kafka up --name NAME --broker-config K=V ...`.
    pub fn up(name: &str, broker_config: &[&str]) -> OwnCluster {
        let mut args = vec!["up", "--brokers", "1", "--name", name];
        for c in broker_config {
            args.extend(["--broker-config", c]);
        }
        let out = run(&mut harness(&args));
        out.assert_ok(&format!("start cluster {name} with {broker_config:?}"));
        let bootstrap = out
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("BOOTSTRAP="))
            .unwrap_or_else(|| panic!("no BOOTSTRAP= line from `up`: {}", out.stdout))
            .to_string();
        OwnCluster {
            name: name.to_string(),
            bootstrap,
        }
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let _ = harness(&["down", "--name", &self.name]).output();
    }
}

/// Ten consecutive free ports below the ephemeral range (so no outgoing
/// connection takes one between two runs of Strait), for a Strait restarted
/// on the same ports: the bootstrap port and the broker port range after it.
/// Tests in one process each get a block no other has been given.
pub fn free_port_block() -> u16 {
    use std::net::{Ipv4Addr, SocketAddr, TcpListener};
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    let seed = std::process::id() as u64
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
    let base = (0..200u64)
        .map(|i| 20_000 + ((seed.wrapping_mul(7919) + i * 97) % 12_000) as u16)
        .find(|&base| {
            given.iter().all(|&g| base.abs_diff(g) >= 10)
                && (base..base + 10)
                    .all(|p| TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, p))).is_ok())
        })
        .expect("ten free ports below 32000");
    given.push(base);
    base
}

/// Temporary directories, removed on drop.
/// A `--producer.config` file that makes Kafka's VerifiableProducer an
/// idempotent producer: the tool sets `retries=0`, which quietly turns
/// idempotence off unless retries are allowed again.
pub fn idempotent_producer_config(dir: &Path) -> PathBuf {
    let props = dir.join("idempotent-producer.properties");
    std::fs::write(
        &props,
        "enable.idempotence=true\nacks=all\nretries=2147483647\n",
    )
    .unwrap();
    props
}

pub mod pki;

pub mod tempdir {
    use std::path::{Path, PathBuf};

    pub struct Dir(PathBuf);

    impl Dir {
        pub fn new(prefix: &str) -> Dir {
            let p = std::env::temp_dir().join(super::unique(prefix));
            std::fs::create_dir_all(&p).unwrap();
            Dir(p)
        }
        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
