//! The shared limiter: one Lua script per request, so the read-refill-take
//! is atomic across every gateway replica. The clock is Redis' own (`TIME`),
//! so replicas with skewed clocks still agree.

use chatterbox_redis::Connection;

use crate::{Decision, Quota, RateLimiter};

/// Mirrors `bucket::take`. KEYS[1] = bucket; ARGV = capacity, rate per ms, ttl ms.
const SCRIPT: &str = r#"
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens = tonumber(state[1])
local updated = tonumber(state[2])
if tokens == nil then
  tokens = capacity
  updated = now
end
local elapsed = math.max(0, now - updated)
tokens = math.min(capacity, tokens + elapsed * rate)
updated = math.max(now, updated)
local allowed = 0
if tokens >= 1 then
  allowed = 1
  tokens = tokens - 1
end
local retry = 0
if allowed == 0 then
  retry = math.ceil((1 - tokens) / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'updated', tostring(updated))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {allowed, math.floor(tokens), retry}
"#;

/// Mirrors `bucket::give_back`. KEYS[1] = bucket; ARGV = capacity, rate per ms.
/// A bucket Redis no longer holds is full: nothing to give back to.
const GIVE_BACK: &str = r#"
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens = tonumber(state[1])
local updated = tonumber(state[2])
if tokens == nil then
  return 0
end
local elapsed = math.max(0, now - updated)
tokens = math.min(capacity, tokens + elapsed * rate + 1)
updated = math.max(now, updated)
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'updated', tostring(updated))
return 1
"#;

/// Buckets in Redis hashes under `<prefix>:<key>`.
#[derive(Clone)]
pub struct RedisLimiter {
    quota: Quota,
    prefix: String,
    connection: Connection,
    script: redis::Script,
    give_back: redis::Script,
}

impl std::fmt::Debug for RedisLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLimiter").field("quota", &self.quota).field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

impl RedisLimiter {
    /// A limiter whose keys live under `prefix` (one prefix per limit).
    pub fn new(connection: Connection, prefix: impl Into<String>, quota: Quota) -> Self {
        Self {
            quota,
            prefix: prefix.into(),
            connection,
            script: redis::Script::new(SCRIPT),
            give_back: redis::Script::new(GIVE_BACK),
        }
    }
}

#[async_trait::async_trait]
impl RateLimiter for RedisLimiter {
    async fn acquire(&self, key: &str) -> anyhow::Result<Decision> {
        let mut conn = self.connection.clone();
        // An idle bucket is full again after one period; let Redis forget it then.
        let ttl_ms = self.quota.period.as_millis().max(1000) as u64;
        let (allowed, remaining, retry_ms): (i64, i64, i64) = self
            .script
            .key(format!("{}:{key}", self.prefix))
            .arg(self.quota.capacity)
            .arg(self.quota.rate_per_ms())
            .arg(ttl_ms)
            .invoke_async(&mut conn)
            .await?;
        Ok(Decision {
            allowed: allowed == 1,
            limit: self.quota.capacity,
            remaining: remaining.max(0) as u32,
            retry_after: std::time::Duration::from_millis(retry_ms.max(0) as u64),
        })
    }

    async fn give_back(&self, key: &str) -> anyhow::Result<()> {
        let mut conn = self.connection.clone();
        let _: i64 = self
            .give_back
            .key(format!("{}:{key}", self.prefix))
            .arg(self.quota.capacity)
            .arg(self.quota.rate_per_ms())
            .invoke_async(&mut conn)
            .await?;
        Ok(())
    }
}
