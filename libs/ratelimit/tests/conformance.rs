//! One suite, every limiter: in memory, on a real Redis server and on a real
//! Redis Cluster.

#![allow(clippy::unwrap_used)] // a panic is how a test fails

use chatterbox_testkit::RedisBacking;
use std::sync::Arc;
use std::time::Duration;

use chatterbox_ratelimit::{MemoryLimiter, Quota, RateLimiter, RedisLimiter};

async fn limiter(backing: RedisBacking, quota: Quota) -> Arc<dyn RateLimiter> {
    match backing {
        RedisBacking::InProcess => Arc::new(MemoryLimiter::new(quota)),
        RedisBacking::On(redis) => {
            Arc::new(RedisLimiter::new(redis.connection().await, format!("test:{}", ulid::Ulid::new()), quota))
        }
    }
}

/// Test bodies take the backing and build their limiter with their quota.
async fn backing(backing: RedisBacking) -> RedisBacking {
    backing
}

chatterbox_testkit::conformance! {
    make: crate::backing;
    names: [in_memory, on_redis, on_redis_cluster];
    tests: [
        a_burst_of_the_capacity_passes_and_the_next_is_refused,
        keys_have_separate_buckets,
        tokens_refill_over_time,
        concurrent_callers_never_exceed_the_capacity,
        a_token_given_back_can_be_taken_again,
    ];
}

async fn a_token_given_back_can_be_taken_again(backing: RedisBacking) {
    let limiter = limiter(backing, Quota::per_minute(2)).await;
    // Giving back to a full bucket adds nothing.
    limiter.give_back("account").await.unwrap();
    assert!(limiter.acquire("account").await.unwrap().allowed);
    assert!(limiter.acquire("account").await.unwrap().allowed);
    assert!(!limiter.acquire("account").await.unwrap().allowed);
    limiter.give_back("account").await.unwrap();
    let again = limiter.acquire("account").await.unwrap();
    assert!(again.allowed);
    assert_eq!(again.remaining, 0);
    assert!(!limiter.acquire("account").await.unwrap().allowed);
}

async fn a_burst_of_the_capacity_passes_and_the_next_is_refused(backing: RedisBacking) {
    let limiter = limiter(backing, Quota::per_minute(5)).await;
    for left in (0..5).rev() {
        let d = limiter.acquire("ip-1").await.unwrap();
        assert!(d.allowed);
        assert_eq!((d.limit, d.remaining), (5, left));
    }
    let refused = limiter.acquire("ip-1").await.unwrap();
    assert!(!refused.allowed);
    assert!(refused.retry_after > Duration::from_secs(1) && refused.retry_after <= Duration::from_secs(12));
}

async fn keys_have_separate_buckets(backing: RedisBacking) {
    let limiter = limiter(backing, Quota::per_minute(1)).await;
    assert!(limiter.acquire("a").await.unwrap().allowed);
    assert!(!limiter.acquire("a").await.unwrap().allowed);
    assert!(limiter.acquire("b").await.unwrap().allowed);
}

async fn tokens_refill_over_time(backing: RedisBacking) {
    let limiter = limiter(backing, Quota::per_second(20)).await;
    for _ in 0..20 {
        assert!(limiter.acquire("u").await.unwrap().allowed);
    }
    let refused = limiter.acquire("u").await.unwrap();
    assert!(!refused.allowed);
    // The passing of time is what is under test here.
    tokio::time::sleep(refused.retry_after + Duration::from_millis(20)).await;
    assert!(limiter.acquire("u").await.unwrap().allowed);
}

async fn concurrent_callers_never_exceed_the_capacity(backing: RedisBacking) {
    let limiter = limiter(backing, Quota::per_minute(10)).await;
    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let l = limiter.clone();
            tokio::spawn(async move { l.acquire("shared").await.unwrap().allowed })
        })
        .collect();
    let mut allowed = 0;
    for t in tasks {
        allowed += usize::from(t.await.unwrap());
    }
    assert_eq!(allowed, 10);
}
