//! The in-process limiter for the embedded mode.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use crate::bucket::{Bucket, take};
use crate::{Decision, Quota, RateLimiter};

/// Buckets in a map; full buckets are forgotten so the map stays small.
#[derive(Debug)]
pub struct MemoryLimiter {
    quota: Quota,
    /// Monotonic origin for bucket times.
    origin: Instant,
    buckets: Mutex<HashMap<String, Bucket>>,
}

/// Past this many keys, buckets that have refilled are dropped.
const SWEEP_AT: usize = 10_000;

impl MemoryLimiter {
    /// A limiter applying `quota` to every key.
    pub fn new(quota: Quota) -> Self {
        Self { quota, origin: Instant::now(), buckets: Mutex::new(HashMap::new()) }
    }
}

#[async_trait::async_trait]
impl RateLimiter for MemoryLimiter {
    async fn acquire(&self, key: &str) -> anyhow::Result<Decision> {
        let now_ms = self.origin.elapsed().as_millis() as u64;
        let mut buckets = self.buckets.lock().map_err(|_| anyhow::anyhow!("limiter lock poisoned"))?;
        if buckets.len() >= SWEEP_AT {
            let period_ms = self.quota.period.as_millis() as u64;
            buckets.retain(|_, b| now_ms.saturating_sub(b.updated_ms) < period_ms);
        }
        let (bucket, decision) = take(buckets.get(key).copied(), self.quota, now_ms);
        buckets.insert(key.to_owned(), bucket);
        Ok(decision)
    }
}
