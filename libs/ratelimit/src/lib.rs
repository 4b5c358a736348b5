//! Token-bucket rate limiting behind one trait, with an in-memory bucket map
//! (embedded mode) and an atomic Redis script (shared by every replica).
//! Both run the same arithmetic, in [`bucket`], and one conformance suite.

mod bucket;
mod memory;
mod redis_store;

use std::time::Duration;

pub use memory::MemoryLimiter;
pub use redis_store::RedisLimiter;

/// How many requests a key may make: `capacity` at once, refilled evenly
/// over `period`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quota {
    /// Bucket size: the burst allowed after a quiet spell.
    pub capacity: u32,
    /// Time to refill an empty bucket completely.
    pub period: Duration,
}

impl Quota {
    /// `n` requests per minute.
    pub fn per_minute(n: u32) -> Self {
        Self { capacity: n, period: Duration::from_secs(60) }
    }

    /// `n` requests per second.
    pub fn per_second(n: u32) -> Self {
        Self { capacity: n, period: Duration::from_secs(1) }
    }

    /// Tokens added per millisecond.
    pub(crate) fn rate_per_ms(&self) -> f64 {
        f64::from(self.capacity) / (self.period.as_millis().max(1) as f64)
    }
}

/// The answer for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// The bucket's capacity, for `X-RateLimit-Limit`.
    pub limit: u32,
    /// Whole tokens left after this request, for `X-RateLimit-Remaining`.
    pub remaining: u32,
    /// When refused: how long until one token is back.
    pub retry_after: Duration,
}

/// A rate limiter keyed by an opaque string (an IP, a user id).
#[async_trait::async_trait]
pub trait RateLimiter: Send + Sync + std::fmt::Debug {
    /// Takes one token from `key`'s bucket if there is one.
    async fn acquire(&self, key: &str) -> anyhow::Result<Decision>;
    /// Puts one token back into `key`'s bucket (up to its capacity): for a
    /// request that turned out not to count, such as a login that succeeded
    /// under a limit on failed ones.
    async fn give_back(&self, key: &str) -> anyhow::Result<()>;
}
