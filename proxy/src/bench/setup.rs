//! Where the bench runs: a local Kafka started by the project's harness
//! when no cluster is given, and Strait in this process on a runtime of its
//! own.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use strait_proxy::Config;

use super::BenchArgs;

/// A Kafka started for the bench by the project's harness, stopped on drop.
pub struct LocalKafka {
    harness: std::path::PathBuf,
}

const LOCAL_NAME: &str = "strait-bench";

impl LocalKafka {
    pub fn start() -> anyhow::Result<(LocalKafka, String)> {
        let harness = std::env::current_dir()?.join("integration/kafka");
        if !harness.exists() {
            bail!(
                "no --bootstrap, and no integration/kafka here to start a local Kafka with: \
                 run from the repository's top, or pass --bootstrap HOST:PORT"
            );
        }
        eprintln!("strait bench: no --bootstrap: starting a 1-broker Kafka (integration/kafka up --name {LOCAL_NAME})");
        let out = Command::new(&harness)
            .args(["up", "--brokers", "1", "--name", LOCAL_NAME])
            .stderr(std::process::Stdio::inherit())
            .output()
            .context("starting integration/kafka")?;
        let kafka = LocalKafka { harness };
        let stdout = String::from_utf8_lossy(&out.stdout);
        let bootstrap = stdout
            .lines()
            .find_map(|l| l.strip_prefix("BOOTSTRAP="))
            .map(str::to_string);
        match (out.status.success(), bootstrap) {
            (true, Some(b)) => Ok((kafka, b)),
            _ => Err(anyhow!("integration/kafka up failed ({})", out.status)),
        }
    }
}

impl Drop for LocalKafka {
    fn drop(&mut self) {
        let _ = Command::new(&self.harness)
            .args(["down", "--name", LOCAL_NAME])
            .stdout(std::process::Stdio::null())
            .status();
    }
}

/// Strait in this process, on its own runtime.
pub struct InProcess {
    runtime: Option<tokio::runtime::Runtime>,
    proxy: strait_proxy::Proxy,
}

impl InProcess {
    pub fn start(args: &BenchArgs, cluster: &str) -> anyhow::Result<InProcess> {
        let mut config = match &args.config {
            Some(path) => Config::from_file(path)?,
            None => Config::quick("127.0.0.1:0", cluster),
        };
        config.upstream.bootstrap = cluster.split(',').map(|b| b.trim().to_string()).collect();
        config.listen.bootstrap = "127.0.0.1:0".into();
        config.listen.broker_ports = "0".into();
        config.admin.listen = "127.0.0.1:0".into();
        // The load speaks plaintext to Strait's listeners.
        config.tls = None;
        config.listen.advertised_host = None;
        if let Some(dir) = &args.policies {
            config.policies.dir = Some(dir.clone());
        }
        let validated = config
            .validate()
            .map_err(|errors| anyhow!("the Strait config: {}", errors.join("; ")))?;
        // Blocking threads kept for the whole bench: an idle one that ended
        // would take its CPU time out of the per-thread sums (cpu.rs).
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .thread_name("strait-rt")
            .thread_keep_alive(Duration::from_secs(24 * 3600))
            .enable_all()
            .build()?;
        let proxy = runtime.block_on(strait_proxy::Proxy::start(validated))?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while !proxy.env.cluster.is_ready() {
            if Instant::now() > deadline {
                bail!("Strait did not discover the cluster at {cluster} within 60 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(InProcess {
            runtime: Some(runtime),
            proxy,
        })
    }

    pub fn bootstrap(&self) -> String {
        self.proxy.bootstrap_addr.to_string()
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.proxy.stop();
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(1));
        }
    }
}
