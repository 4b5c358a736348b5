//! The token-bucket arithmetic. The Redis script mirrors this function line
//! for line; keep them in step.

use std::time::Duration;

use crate::{Decision, Quota};

/// A bucket's state: tokens (fractional) as of `updated_ms`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bucket {
    pub tokens: f64,
    pub updated_ms: u64,
}

/// Refills `bucket` up to `now_ms`, then takes a token if one is whole.
pub(crate) fn take(bucket: Option<Bucket>, quota: Quota, now_ms: u64) -> (Bucket, Decision) {
    let capacity = f64::from(quota.capacity);
    let rate = quota.rate_per_ms();
    let mut b = bucket.unwrap_or(Bucket { tokens: capacity, updated_ms: now_ms });
    let elapsed = now_ms.saturating_sub(b.updated_ms) as f64;
    b.tokens = (b.tokens + elapsed * rate).min(capacity);
    b.updated_ms = now_ms.max(b.updated_ms);
    let allowed = b.tokens >= 1.0;
    if allowed {
        b.tokens -= 1.0;
    }
    let retry_after = if allowed { 0.0 } else { ((1.0 - b.tokens) / rate).ceil() };
    let decision = Decision {
        allowed,
        limit: quota.capacity,
        remaining: b.tokens.floor() as u32,
        retry_after: Duration::from_millis(retry_after as u64),
    };
    (b, decision)
}

/// Refills `bucket` up to `now_ms`, then puts one token back (never past the
/// capacity): a request that turned out not to count.
pub(crate) fn give_back(bucket: Option<Bucket>, quota: Quota, now_ms: u64) -> Bucket {
    let capacity = f64::from(quota.capacity);
    let mut b = bucket.unwrap_or(Bucket { tokens: capacity, updated_ms: now_ms });
    let elapsed = now_ms.saturating_sub(b.updated_ms) as f64;
    b.tokens = (b.tokens + elapsed * quota.rate_per_ms() + 1.0).min(capacity);
    b.updated_ms = now_ms.max(b.updated_ms);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_bucket_allows_a_burst_of_its_capacity_then_refuses() {
        let quota = Quota::per_minute(3);
        let mut state = None;
        for expected_remaining in [2, 1, 0] {
            let (b, d) = take(state, quota, 1_000);
            assert!(d.allowed);
            assert_eq!(d.remaining, expected_remaining);
            state = Some(b);
        }
        let (_, d) = take(state, quota, 1_000);
        assert!(!d.allowed);
        assert_eq!(d.retry_after, Duration::from_secs(20));
    }

    #[test]
    fn a_token_given_back_is_taken_again_but_never_overfills() {
        let quota = Quota::per_minute(2);
        let (b, _) = take(None, quota, 0);
        let (b, _) = take(Some(b), quota, 0);
        assert!(!take(Some(b), quota, 0).1.allowed);
        let b = give_back(Some(b), quota, 0);
        assert!(take(Some(b), quota, 0).1.allowed);
        let full = give_back(None, quota, 0);
        assert!((full.tokens - 2.0).abs() < f64::EPSILON);
    }

    #[test]
    fn tokens_come_back_at_the_refill_rate() {
        let quota = Quota::per_second(10);
        let (b, _) = take(Some(Bucket { tokens: 0.0, updated_ms: 0 }), quota, 100);
        assert!(b.tokens < 0.001, "one token refilled after 100 ms and taken");
    }
}
