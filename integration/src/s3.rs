//! A real S3-compatible server per test: `s3s-fs` (crates.io, installed by
//! `scripts/install-deps` into `.cache/s3s-fs/`), serving a temporary
//! directory over HTTP on a free port of 127.0.0.1, with SigV4 authentication.
//!
//! s3s-fs keeps each bucket as a directory under its data directory and each
//! object as a file `<bucket>/<key>` (uploads in progress and metadata live
//! beside the buckets, never inside them), so [`S3Server::objects`] lists what
//! is stored by reading the disk. Path-style requests only: configure clients
//! with the `endpoint`, `allow_http` and path-style addressing (for
//! `object_store`: `AmazonS3Builder::with_virtual_hosted_style_request(false)`).
//!
//! ```text
//! let mut s3 = S3Server::start("claims");
//! // ... AmazonS3Builder::new().with_endpoint(&s3.endpoint).with_bucket_name(&s3.bucket) ...
//! s3.stop(); // outage: connections are refused, the data stays
//! s3.restart(); // same port, same data
//! ```

use std::fs::OpenOptions;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{eventually, repo, tempdir};

/// How long a start or restart may take before the test fails.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The `s3s-fs` binary: `$STRAIT_S3S_FS`, else `.cache/s3s-fs/bin/s3s-fs`.
pub fn s3s_fs_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("STRAIT_S3S_FS") {
        return PathBuf::from(p);
    }
    let bin = repo().join(".cache/s3s-fs/bin/s3s-fs");
    assert!(
        bin.exists(),
        "{} not found: run scripts/install-deps (or ./test), which installs s3s-fs from crates.io",
        bin.display()
    );
    bin
}

/// A running (or stopped) s3s-fs server with one bucket, killed on drop; its
/// temporary directory is removed on drop too.
pub struct S3Server {
    /// `http://127.0.0.1:PORT`, stable across [`S3Server::restart`].
    pub endpoint: String,
    /// The bucket created by [`S3Server::start`].
    pub bucket: String,
    /// Credentials the server requires (SigV4; any region is accepted).
    pub access_key: String,
    pub secret_key: String,
    /// The region to sign with: `us-east-1`.
    pub region: String,
    addr: SocketAddr,
    dir: tempdir::Dir,
    child: Option<Child>,
}

impl S3Server {
    /// Starts a server on a free port with an empty data directory holding
    /// the (empty) bucket `bucket`, and waits until it accepts connections.
    /// Bucket names follow S3's rules: 3 to 63 lowercase letters, digits,
    /// `-` and `.` (s3s-fs answers InvalidBucketName otherwise).
    pub fn start(bucket: &str) -> S3Server {
        assert!(
            (3..=63).contains(&bucket.len())
                && bucket.bytes().all(|b| b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || b == b'-'
                    || b == b'.'),
            "{bucket:?} is not a valid S3 bucket name"
        );
        let dir = tempdir::Dir::new("s3s-fs");
        std::fs::create_dir_all(dir.path().join("data").join(bucket)).expect("create bucket dir");
        let addr = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port");
        let mut s = S3Server {
            endpoint: format!("http://{addr}"),
            bucket: bucket.to_string(),
            access_key: "strait-test-access".to_string(),
            secret_key: "strait-test-secret".to_string(),
            region: "us-east-1".to_string(),
            addr,
            dir,
            child: None,
        };
        s.restart();
        s
    }

    /// Kills the server (SIGKILL, an abrupt outage) and waits for it to exit;
    /// the data directory stays, so [`S3Server::restart`] serves the same
    /// objects. Connections to the endpoint are refused until then.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and data directory (stopping
    /// it first if it runs), and waits until it accepts connections.
    pub fn restart(&mut self) {
        self.stop();
        let log = self.log_file();
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("open s3s-fs log");
        let err = out.try_clone().expect("clone log handle");
        let child = Command::new(s3s_fs_bin())
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &self.addr.port().to_string(),
            ])
            .args(["--access-key", &self.access_key])
            .args(["--secret-key", &self.secret_key])
            .arg(self.data_dir())
            .env("RUST_LOG", "s3s_fs=warn,s3s=warn")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn s3s-fs: {e}"));
        let child = self.child.insert(child);
        let addr = self.addr;
        eventually(
            &format!("s3s-fs accepting on {addr}"),
            START_TIMEOUT,
            || {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "s3s-fs exited ({status}) before accepting on {addr}:\n{}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
                TcpStream::connect_timeout(&addr, Duration::from_millis(200))
                    .ok()
                    .map(drop)
            },
        );
    }

    /// Freezes the server (SIGSTOP): a hung store. The kernel still accepts
    /// connections, but no request is answered until [`S3Server::resume`],
    /// so clients see their timeouts rather than refused connections.
    pub fn pause(&mut self) {
        self.signal("STOP");
    }

    /// Lets a paused server run again (SIGCONT); requests whose clients are
    /// still waiting are served then.
    pub fn resume(&mut self) {
        self.signal("CONT");
    }

    fn signal(&mut self, sig: &str) {
        let child = self.child.as_ref().expect("s3s-fs is not running");
        let status = Command::new("sh")
            .args(["-c", &format!("kill -{sig} {}", child.id())])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{sig} s3s-fs: {status}");
    }

    /// Whether the server process is running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// The directory s3s-fs serves: one sub-directory per bucket.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The file holding the object `key` of the bucket.
    pub fn object_path(&self, key: &str) -> PathBuf {
        self.data_dir().join(&self.bucket).join(key)
    }

    /// The keys stored in the bucket, sorted, read from the disk.
    pub fn objects(&self) -> Vec<String> {
        fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(root, &p, out);
                } else if let Ok(rel) = p.strip_prefix(root) {
                    out.push(rel.to_string_lossy().into_owned());
                }
            }
        }
        let root = self.data_dir().join(&self.bucket);
        let mut out = Vec::new();
        walk(&root, &root, &mut out);
        out.sort();
        out
    }

    /// The server's own log (stdout and stderr of every run, appended).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_file()).unwrap_or_default()
    }

    /// The variables `object_store::aws::AmazonS3Builder::from_env` reads,
    /// for a child process (e.g. `strait`) that builds its store from them.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT", self.endpoint.clone()),
            ("AWS_ALLOW_HTTP", "true".to_string()),
            ("AWS_VIRTUAL_HOSTED_STYLE_REQUEST", "false".to_string()),
            ("AWS_REGION", self.region.clone()),
            ("AWS_ACCESS_KEY_ID", self.access_key.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.secret_key.clone()),
            ("AWS_BUCKET", self.bucket.clone()),
        ]
    }

    fn log_file(&self) -> PathBuf {
        self.dir.path().join("s3s-fs.log")
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}
