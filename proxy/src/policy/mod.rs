//! Policies in the proxy, the request side of the data flow: loading and
//! compiling the policy directory ([`compiled`]), hot reload (file changes
//! and SIGHUP, keeping the last good set), and enforcement on the wire, one
//! file per api ([`produce`], [`fetch`], [`admin`]) behind one entry point
//! ([`request::enforce`]).

pub mod admin;
mod checks;
pub mod compiled;
pub mod fetch;
pub mod order;
pub mod produce;
pub mod request;
mod violations;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use strait_policies::{PolicySet, Problem};
use tokio::sync::watch;
use tracing::{error, info};

use crate::metrics;
pub use compiled::{Compiled, TopicPlan};
pub use request::{enforce, ConnState, EnforceError, Enforcer, Outcome};

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

/// The policy files' names, sizes and modification times.
type Fingerprint = Vec<(PathBuf, u64, Option<SystemTime>)>;

/// Runs directory work (reads, reloads) on a blocking thread.
async fn off_reactor(work: impl FnOnce() -> Fingerprint + Send + 'static) -> Fingerprint {
    tokio::task::spawn_blocking(work).await.unwrap_or_default()
}

/// A fingerprint of the policy files: names, sizes and modification times.
fn fingerprint(dir: &Path) -> Fingerprint {
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

/// The compiled policy set in force, swapped atomically on reload.
pub struct PolicyStore {
    current: ArcSwap<Compiled>,
    dir: Option<PathBuf>,
    cache_topics: usize,
    /// Bumped after every reload attempt, so tests and benchmarks can wait
    /// for one instead of sleeping.
    reloads: watch::Sender<u64>,
}

impl PolicyStore {
    /// Loads the directory once; a bad set at start-up is an error (nothing to fall back to).
    pub fn open(dir: Option<&Path>, cache_topics: usize) -> anyhow::Result<PolicyStore> {
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
            current: ArcSwap::from_pointee(Compiled::new(set, cache_topics)),
            dir: dir.map(Path::to_path_buf),
            cache_topics,
            reloads: watch::channel(0).0,
        })
    }

    pub fn get(&self) -> arc_swap::Guard<Arc<Compiled>> {
        self.current.load()
    }

    /// Reload attempts so far; changes after each one.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.reloads.subscribe()
    }

    /// Reloads from disk; keeps the current set when the new one is invalid.
    /// Blocking (file I/O, regex compilation): the watcher calls it on a
    /// blocking thread.
    pub fn reload(&self, why: &str) -> bool {
        let Some(dir) = &self.dir else { return false };
        let ok = match load_dir(dir) {
            Ok(set) => {
                let n = set.len();
                self.current
                    .store(Arc::new(Compiled::new(set, self.cache_topics)));
                metrics::policy_reload("ok");
                info!(dir = %dir.display(), policies = n, trigger = why, "policies reloaded");
                true
            }
            Err(problems) => {
                metrics::policy_reload("rejected");
                for p in &problems {
                    error!(problem = %p, "policy problem");
                }
                error!(dir = %dir.display(), problems = problems.len(), trigger = why,
                       "policy reload rejected; the previous policies stay in force");
                false
            }
        };
        self.reloads.send_modify(|n| *n += 1);
        ok
    }

    /// Watches the directory (polling, 250 ms) and SIGHUP until `shutdown`.
    /// The directory is read on blocking threads, never on the reactor.
    pub async fn watch(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let Some(dir) = self.dir.clone() else { return };
        let d = dir.clone();
        let mut last = off_reactor(move || fingerprint(&d)).await;
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
            let trigger = tokio::select! {
                _ = shutdown.changed() => return,
                _ = hup_recv => "SIGHUP",
                _ = tick.tick() => "file change",
            };
            let (store, d) = (self.clone(), dir.clone());
            let previous = std::mem::take(&mut last);
            last = off_reactor(move || {
                let now = fingerprint(&d);
                if trigger == "SIGHUP" || now != previous {
                    store.reload(trigger);
                }
                now
            })
            .await;
        }
    }
}

#[cfg(test)]
mod tests;
