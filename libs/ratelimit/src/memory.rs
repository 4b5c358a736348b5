//! The in-process limiter for the embedded mode.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use crate::bucket::{Bucket, give_back, take};
use crate::{Decision, Quota, RateLimiter};

/// Buckets in a map; full buckets are forgotten so the map stays small.
#[derive(Debug)]
pub struct MemoryLimiter {
    quota: Quota,
    /// Monotonic origin for bucket times.
    origin: Instant,
    buckets: Mutex<Buckets>,
}

#[derive(Debug)]
struct Buckets {
    map: HashMap<String, Bucket>,
    /// The size at which the next sweep runs: at least [`SWEEP_AT`], and
    /// twice what the last sweep kept, so a map of keys that are all still
    /// in use is not scanned again on every request (the cost of a sweep is
    /// spread over as many inserts as it scanned).
    sweep_at: usize,
}

/// Past this many keys, buckets that have refilled are dropped.
const SWEEP_AT: usize = 10_000;

impl MemoryLimiter {
    /// A limiter applying `quota` to every key.
    pub fn new(quota: Quota) -> Self {
        let buckets = Buckets { map: HashMap::new(), sweep_at: SWEEP_AT };
        Self { quota, origin: Instant::now(), buckets: Mutex::new(buckets) }
    }
}

impl Buckets {
    /// Drops buckets untouched for a whole period (they are full again) once
    /// the map has grown to `sweep_at`.
    fn sweep_if_due(&mut self, now_ms: u64, period_ms: u64) {
        if self.map.len() < self.sweep_at {
            return;
        }
        self.map.retain(|_, b| now_ms.saturating_sub(b.updated_ms) < period_ms);
        self.sweep_at = SWEEP_AT.max(self.map.len() * 2);
    }
}

#[async_trait::async_trait]
impl RateLimiter for MemoryLimiter {
    async fn acquire(&self, key: &str) -> anyhow::Result<Decision> {
        let now_ms = self.origin.elapsed().as_millis() as u64;
        let mut buckets = self.buckets.lock().map_err(|_| anyhow::anyhow!("limiter lock poisoned"))?;
        buckets.sweep_if_due(now_ms, self.quota.period.as_millis() as u64);
        let (bucket, decision) = take(buckets.map.get(key).copied(), self.quota, now_ms);
        buckets.map.insert(key.to_owned(), bucket);
        Ok(decision)
    }

    async fn give_back(&self, key: &str) -> anyhow::Result<()> {
        let now_ms = self.origin.elapsed().as_millis() as u64;
        let mut buckets = self.buckets.lock().map_err(|_| anyhow::anyhow!("limiter lock poisoned"))?;
        // A bucket nobody holds is full: nothing to give back to.
        if let Some(bucket) = buckets.map.get_mut(key) {
            *bucket = give_back(Some(*bucket), self.quota, now_ms);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_all_in_use_are_not_scanned_again_on_every_request() {
        let mut buckets = Buckets { map: HashMap::new(), sweep_at: SWEEP_AT };
        let bucket = Bucket { tokens: 1.0, updated_ms: 1_000 };
        let mut sweeps = 0;
        // 40,000 keys, every one used within the period: nothing can go.
        for n in 0..40_000 {
            let due = buckets.map.len() >= buckets.sweep_at;
            buckets.sweep_if_due(1_500, 60_000);
            sweeps += usize::from(due);
            buckets.map.insert(format!("10.0.{}.{}", n / 256, n % 256), bucket);
        }
        assert_eq!(buckets.map.len(), 40_000, "keys in use are kept");
        // At 10k, 20k and 40k: a handful of sweeps, not one per request past 10k.
        assert!(sweeps <= 3, "{sweeps} sweeps");

        // Once the period has passed they are all full again, and dropped.
        buckets.sweep_at = 0;
        buckets.sweep_if_due(1_000 + 60_000, 60_000);
        assert!(buckets.map.is_empty());
        assert_eq!(buckets.sweep_at, SWEEP_AT);
    }
}
