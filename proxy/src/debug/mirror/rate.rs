//! Which records the mirror takes (a deterministic sample) and how many
//! bytes a second it may write (a token bucket per policy).

use std::time::Instant;

/// Whether the record at `topic`/`partition`@`offset` is in a `sample`
/// share of the records: a hash of the three, so the same records are
/// chosen on every run and a test can count them.
pub fn sampled(topic: &str, partition: i32, offset: i64, sample: f64) -> bool {
    if sample >= 1.0 {
        return true;
    }
    // FNV-1a over the three, then splitmix64's finaliser to spread
    // neighbouring offsets over the whole range.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let bytes = topic
        .bytes()
        .chain(partition.to_be_bytes())
        .chain(offset.to_be_bytes());
    for b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    ((h >> 11) as f64 / (1u64 << 53) as f64) < sample
}

/// A token bucket of bytes: `rate` a second, at most one second's worth
/// saved up. A record larger than that never passes.
#[derive(Debug)]
pub struct Bucket {
    rate: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    pub fn new(rate: u64, now: Instant) -> Bucket {
        Bucket {
            rate: rate as f64,
            tokens: rate as f64,
            at: now,
        }
    }

    /// Takes `bytes` tokens if there are that many.
    pub fn take(&mut self, bytes: usize, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        self.at = now;
        if self.tokens >= bytes as f64 {
            self.tokens -= bytes as f64;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn sampling_is_deterministic_and_near_its_share() {
        let kept = (0..10_000)
            .filter(|o| sampled("orders", 0, *o, 0.25))
            .count();
        assert!((2_200..2_800).contains(&kept), "{kept}");
        let again = (0..10_000)
            .filter(|o| sampled("orders", 0, *o, 0.25))
            .count();
        assert_eq!(kept, again);
        assert!((0..1000).all(|o| sampled("t", 3, o, 1.0)));
        // Another partition or topic is another sample.
        let a: Vec<bool> = (0..64).map(|o| sampled("t", 0, o, 0.5)).collect();
        let b: Vec<bool> = (0..64).map(|o| sampled("t", 1, o, 0.5)).collect();
        assert_ne!(a, b);
    }

    #[test]
    fn the_bucket_passes_its_rate_and_refills_with_time() {
        let t0 = Instant::now();
        let mut b = Bucket::new(1000, t0);
        assert!(b.take(600, t0));
        assert!(!b.take(600, t0), "only 400 left");
        assert!(b.take(400, t0));
        assert!(!b.take(1, t0));
        // Half a second later: 500 more, never more than a second's worth.
        assert!(b.take(500, t0 + Duration::from_millis(500)));
        assert!(!b.take(1, t0 + Duration::from_millis(500)));
        assert!(!b.take(1001, t0 + Duration::from_secs(60)));
        assert!(b.take(1000, t0 + Duration::from_secs(60)));
        // Bigger than a second's worth: never.
        let mut tiny = Bucket::new(1, t0);
        assert!(!tiny.take(50, t0 + Duration::from_secs(3600)));
    }
}
