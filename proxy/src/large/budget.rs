//! The memory bound of large-record handling: one process-wide budget, in
//! KiB units (a tokio semaphore counts permits in `u32`), taken before a
//! large request is buffered and before values are restored, and given back
//! when the work is done. Over what is free is a wait, never an OOM; more
//! than the whole bound is refused at once: waiting for all of it and then
//! taking more would break the bound it exists to keep.

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
pub enum OverBudget {
    #[error(
        "waited {waited:?} for {bytes} bytes of the large-record memory bound ({bound} bytes)"
    )]
    Waited {
        bytes: u64,
        bound: u64,
        waited: Duration,
    },
    #[error(
        "{bytes} bytes are more than the whole large-record memory bound \
         ({bound} bytes, large_records.memory_bytes)"
    )]
    OverBound { bytes: u64, bound: u64 },
}

impl OverBudget {
    /// Whether waiting may help: memory others hold frees up, the bound
    /// does not grow.
    pub fn retriable(&self) -> bool {
        matches!(self, OverBudget::Waited { .. })
    }
}

impl Budget {
    pub fn new(bytes: u64) -> Budget {
        // Rounded up: whatever the configuration says fits, fits.
        let units = bytes.div_ceil(UNIT).clamp(1, u64::from(u32::MAX)) as u32;
        Budget {
            permits: Arc::new(Semaphore::new(units as usize)),
            total_units: units,
            held: Arc::new(AtomicU64::new(0)),
        }
    }

    pub fn bound(&self) -> u64 {
        u64::from(self.total_units) * UNIT
    }

    fn units(&self, bytes: u64) -> Result<u32, OverBudget> {
        match bytes.div_ceil(UNIT) {
            u if u <= u64::from(self.total_units) => Ok(u.max(1) as u32),
            _ => Err(OverBudget::OverBound {
                bytes,
                bound: self.bound(),
            }),
        }
    }

    /// Waits until `bytes` fit under the bound; refuses at once what could
    /// never fit.
    pub async fn acquire(&self, bytes: u64) -> Result<Held, OverBudget> {
        let units = self.units(bytes)?;
        let permit = self
            .permits
            .clone()
            .acquire_many_owned(units)
            .await
            .expect("the budget's semaphore is never closed");
        Ok(self.held(permit, bytes))
    }

    /// As [`Budget::acquire`], giving up after `wait`.
    pub async fn acquire_within(&self, bytes: u64, wait: Duration) -> Result<Held, OverBudget> {
        match tokio::time::timeout(wait, self.acquire(bytes)).await {
            Ok(h) => h,
            Err(_) => Err(OverBudget::Waited {
                bytes,
                bound: self.bound(),
                waited: wait,
            }),
        }
    }

    /// Bytes held now.
    #[cfg(test)]
    pub fn held_bytes(&self) -> u64 {
        self.held.load(Ordering::Relaxed)
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
        let a = b.acquire(3 << 20).await.unwrap();
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
    }

    /// More than the whole bound is refused at once, not waited for and
    /// then let past the bound; the whole bound itself fits.
    #[tokio::test(start_paused = true)]
    async fn more_than_the_whole_bound_is_refused() {
        let b = Budget::new(4 << 20);
        let began = tokio::time::Instant::now();
        let err = b
            .acquire_within((4 << 20) + 1, Duration::from_millis(50))
            .await
            .err()
            .expect("more than the bound is refused");
        assert!(
            matches!(
                err,
                OverBudget::OverBound {
                    bytes: 4194305,
                    bound: 4194304
                }
            ),
            "{err}"
        );
        assert!(
            !err.retriable() && err.to_string().contains("memory_bytes"),
            "{err}"
        );
        assert_eq!(began.elapsed(), Duration::ZERO, "refused without waiting");
        assert!(b.acquire(10 << 20).await.is_err());
        let _all = b.acquire(4 << 20).await.unwrap();
        // A bound that is not a whole number of units still takes itself.
        let odd = Budget::new(1_000_000);
        let _held = odd.acquire(1_000_000).await.unwrap();
    }
}
