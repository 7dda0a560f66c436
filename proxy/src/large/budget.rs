//! The memory bound of large-record handling: one process-wide budget, in
//! KiB units (a tokio semaphore counts permits in `u32`), taken before a
//! large request is buffered and before values are restored, and given back
//! when the work is done. Over the bound is a wait, never an OOM.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::metrics;

const UNIT: u64 = 1024;

#[derive(Clone)]
pub struct Budget {
    permits: Arc<Semaphore>,
    total_units: u32,
    held: Arc<AtomicU64>,
}

/// Bytes held against the budget until dropped.
pub struct Held {
    _permit: OwnedSemaphorePermit,
    bytes: u64,
    held: Arc<AtomicU64>,
}

impl Drop for Held {
    fn drop(&mut self) {
        let now = self.held.fetch_sub(self.bytes, Ordering::Relaxed) - self.bytes;
        metrics::large_memory(now);
    }
}

#[derive(Debug, thiserror::Error)]
#[error("waited {waited:?} for {bytes} bytes of the large-record memory bound ({bound} bytes)")]
pub struct OverBudget {
    pub bytes: u64,
    pub bound: u64,
    pub waited: Duration,
}

impl Budget {
    pub fn new(bytes: u64) -> Budget {
        let units = (bytes / UNIT).clamp(1, u64::from(u32::MAX)) as u32;
        Budget {
            permits: Arc::new(Semaphore::new(units as usize)),
            total_units: units,
            held: Arc::new(AtomicU64::new(0)),
        }
    }

    pub fn bound(&self) -> u64 {
        u64::from(self.total_units) * UNIT
    }

    fn units(&self, bytes: u64) -> u32 {
        // Anything larger than the whole bound waits for all of it.
        (bytes.div_ceil(UNIT)).clamp(1, u64::from(self.total_units)) as u32
    }

    /// Waits until `bytes` fit under the bound.
    pub async fn acquire(&self, bytes: u64) -> Held {
        let permit = self
            .permits
            .clone()
            .acquire_many_owned(self.units(bytes))
            .await
            .expect("the budget's semaphore is never closed");
        self.held(permit, bytes)
    }

    /// As [`Budget::acquire`], giving up after `wait`.
    pub async fn acquire_within(&self, bytes: u64, wait: Duration) -> Result<Held, OverBudget> {
        match tokio::time::timeout(wait, self.acquire(bytes)).await {
            Ok(h) => Ok(h),
            Err(_) => Err(OverBudget {
                bytes,
                bound: self.bound(),
                waited: wait,
            }),
        }
    }

    fn held(&self, permit: OwnedSemaphorePermit, bytes: u64) -> Held {
        let now = self.held.fetch_add(bytes, Ordering::Relaxed) + bytes;
        metrics::large_memory(now);
        Held {
            _permit: permit,
            bytes,
            held: self.held.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn over_the_bound_waits_then_gives_up() {
        let b = Budget::new(4 << 20);
        let a = b.acquire(3 << 20).await;
        let err = b
            .acquire_within(2 << 20, Duration::from_millis(50))
            .await
            .err()
            .expect("over the bound");
        assert!(err.to_string().contains("bytes"), "{err}");
        drop(a);
        let _c = b
            .acquire_within(2 << 20, Duration::from_millis(50))
            .await
            .unwrap();
        // A request larger than the bound waits for all of it, not forever.
        drop(_c);
        let _d = b
            .acquire_within(10 << 20, Duration::from_millis(50))
            .await
            .unwrap();
    }
}
