//! Policies in the proxy: loading the policy directory, hot reload (file
//! changes and SIGHUP, keeping the last good set), and enforcement on the wire.

pub mod enforce;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use strait_policies::{PolicySet, Problem};
use tracing::{error, info};

/// Reads every `*.toml` file of a directory (sorted by name) and validates them as one set.
pub fn load_dir(dir: &Path) -> Result<PolicySet, Vec<Problem>> {
    let problem = |file: &Path, message: String| Problem {
        file: file.display().to_string(),
        line: 0,
        column: 0,
        message,
    };
    let entries = std::fs::read_dir(dir)
        .map_err(|e| vec![problem(dir, format!("cannot read policy directory: {e}"))])?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    let mut files = Vec::new();
    let mut problems = Vec::new();
    for p in paths {
        match std::fs::read_to_string(&p) {
            Ok(text) => files.push((p.display().to_string(), text)),
            Err(e) => problems.push(problem(&p, format!("cannot read: {e}"))),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    PolicySet::parse(&files)
}

/// A fingerprint of the policy files: names, sizes and modification times.
fn fingerprint(dir: &Path) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.path().extension().is_some_and(|x| x == "toml"))
                .map(|e| {
                    let m = e.metadata().ok();
                    (
                        e.path(),
                        m.as_ref().map_or(0, |m| m.len()),
                        m.and_then(|m| m.modified().ok()),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The policy set in force, swapped atomically on reload.
pub struct PolicyStore {
    current: ArcSwap<PolicySet>,
    dir: Option<PathBuf>,
}

impl PolicyStore {
    /// Loads the directory once; a bad set at start-up is an error (nothing to fall back to).
    pub fn open(dir: Option<&Path>) -> anyhow::Result<PolicyStore> {
        let set = match dir {
            None => PolicySet::default(),
            Some(d) => load_dir(d).map_err(|problems| {
                anyhow::anyhow!(
                    "policy directory {} is invalid:\n{}",
                    d.display(),
                    problems
                        .iter()
                        .map(|p| format!("  {p}"))
                        .collect::<Vec<_>>()
                        .join("\n")
                )
            })?,
        };
        if let Some(d) = dir {
            info!(dir = %d.display(), policies = set.len(), "policies loaded");
        }
        Ok(PolicyStore {
            current: ArcSwap::from_pointee(set),
            dir: dir.map(Path::to_path_buf),
        })
    }

    pub fn get(&self) -> arc_swap::Guard<Arc<PolicySet>> {
        self.current.load()
    }

    /// Reloads from disk; keeps the current set when the new one is invalid.
    pub fn reload(&self, why: &str) -> bool {
        let Some(dir) = &self.dir else { return false };
        match load_dir(dir) {
            Ok(set) => {
                let n = set.len();
                self.current.store(Arc::new(set));
                metrics::counter!("strait_policy_reloads_total", "outcome" => "ok").increment(1);
                info!(dir = %dir.display(), policies = n, trigger = why, "policies reloaded");
                true
            }
            Err(problems) => {
                metrics::counter!("strait_policy_reloads_total", "outcome" => "rejected")
                    .increment(1);
                for p in &problems {
                    error!(problem = %p, "policy problem");
                }
                error!(dir = %dir.display(), problems = problems.len(), trigger = why,
                       "policy reload rejected; the previous policies stay in force");
                false
            }
        }
    }

    /// Watches the directory (polling, 250 ms) and SIGHUP until `shutdown`.
    pub async fn watch(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let Some(dir) = self.dir.clone() else { return };
        let mut last = fingerprint(&dir);
        #[cfg(unix)]
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            #[cfg(unix)]
            let hup_recv = async {
                match hup.as_mut() {
                    Some(h) => h.recv().await,
                    None => std::future::pending().await,
                }
            };
            #[cfg(not(unix))]
            let hup_recv = std::future::pending::<Option<()>>();
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = hup_recv => {
                    last = fingerprint(&dir);
                    self.reload("SIGHUP");
                }
                _ = tick.tick() => {
                    let now = fingerprint(&dir);
                    if now != last {
                        last = now;
                        self.reload("file change");
                    }
                }
            }
        }
    }
}
