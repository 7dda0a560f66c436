//! The bounded pool for CPU-heavy work: decompressing, decoding, compressing
//! and re-sealing record batches, and decoding large responses. Such work
//! never runs on the async reactor, where it would stall every connection
//! that shares the worker thread (on 2 cores, half the proxy).
//!
//! Jobs run on tokio's blocking threads; a semaphore caps how many run at
//! once (`limits.batch_workers`), so a burst of large batches queues instead
//! of spawning a thread each. Callers await their job, so a connection keeps
//! its request order while other connections go on being served.

use std::sync::Arc;

use tokio::sync::Semaphore;

/// Work at or above this many bytes goes to the pool; smaller work costs
/// less than the hand-off (a few microseconds) and stays inline.
pub const INLINE_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
#[error("a batch job panicked: {0}")]
pub struct Panicked(String);

/// A bounded pool of blocking threads for batch work.
#[derive(Clone)]
pub struct Offload {
    permits: Arc<Semaphore>,
}

impl Offload {
    /// A pool running at most `workers` jobs at once.
    pub fn new(workers: usize) -> Offload {
        Offload {
            permits: Arc::new(Semaphore::new(workers.max(1))),
        }
    }

    /// Runs `job` on a blocking thread once a permit is free.
    pub async fn run<T, F>(&self, job: F) -> Result<T, Panicked>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        crate::metrics::offload_job();
        let joined = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            job()
        })
        .await;
        joined.map_err(|e| {
            let why = match e.try_into_panic() {
                Ok(p) => p
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into()),
                Err(e) => e.to_string(),
            };
            Panicked(why)
        })
    }

    /// Runs `job` on the pool when `bytes` is large, else inline.
    pub async fn run_sized<T, F>(&self, bytes: usize, job: F) -> Result<T, Panicked>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        if bytes < INLINE_BYTES {
            Ok(job())
        } else {
            self.run(job).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn jobs_run_off_the_reactor_and_report_panics() {
        let pool = Offload::new(1);
        let reactor = std::thread::current().id();
        let ran_on = pool.run(|| std::thread::current().id()).await.unwrap();
        assert_ne!(ran_on, reactor, "the job ran on a blocking thread");
        let inline = pool
            .run_sized(10, || std::thread::current().id())
            .await
            .unwrap();
        assert_eq!(inline, reactor, "small work stays inline");
        let err = pool.run(|| -> () { panic!("boom") }).await.unwrap_err();
        assert!(err.to_string().contains("boom"), "{err}");
        assert_eq!(pool.run(|| 7).await.unwrap(), 7, "the permit came back");
    }
}
