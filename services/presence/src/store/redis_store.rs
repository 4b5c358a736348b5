//! Presence in Redis, shared by every presence replica:
//! - `<prefix>:presence:conns:<user>`: hash, connection id → `active_ms:expires_ms`;
//! - `<prefix>:presence:live`: sorted set of `<user>/<connection>` by expiry,
//!   which sweepers claim from atomically;
//! - `<prefix>:presence:user:<user>`: hash of `chosen`, `last_seen` and
//!   `announced`;
//! - `<prefix>:presence:audience:<user>`: the conversation ids that hear the
//!   user's changes, comma-separated (read only when announcing).
//!
//! The scripts reach keys derived from their arguments, so this needs one
//! Redis server (or a primary with replicas), not Redis Cluster.
//!
//! Ids reach these keys only after parsing (ULIDs), so no caller can name
//! another key.

use std::collections::HashMap;

use chatterbox_types::{ConversationId, UserId};
use redis::aio::ConnectionManager;

use super::{Connection, Expired, PresenceStore, UserRecord};
use crate::Status;

/// KEYS: conns hash, live set. ARGV: connection, now, expires, active (0/1), live member.
const BEAT: &str = r#"
local active_at = ARGV[2]
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old and ARGV[4] == '0' then
  active_at = string.match(old, '^([^:]+)')
end
redis.call('HSET', KEYS[1], ARGV[1], active_at .. ':' .. ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[5])
return 1
"#;

/// KEYS: live set. ARGV: now, limit, prefix of the conns hashes.
/// Claims and removes expired connections in one step.
const SWEEP: &str = r#"
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for i = 1, #due, 2 do
  local member = due[i]
  redis.call('ZREM', KEYS[1], member)
  local sep = string.find(member, '/', 1, true)
  if sep then
    redis.call('HDEL', ARGV[3] .. string.sub(member, 1, sep - 1), string.sub(member, sep + 1))
  end
  table.insert(out, member)
  table.insert(out, due[i + 1])
end
return out
"#;

/// KEYS: user hash. ARGV: status. Returns the previous one.
const SWAP: &str = r#"
local old = redis.call('HGET', KEYS[1], 'announced')
redis.call('HSET', KEYS[1], 'announced', ARGV[1])
return old
"#;

/// Presence kept in Redis.
#[derive(Clone)]
pub struct RedisPresenceStore {
    connection: ConnectionManager,
    prefix: String,
    beat: redis::Script,
    sweep: redis::Script,
    swap: redis::Script,
}

impl std::fmt::Debug for RedisPresenceStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisPresenceStore").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

impl RedisPresenceStore {
    /// A store under `<prefix>:presence:`.
    pub fn new(connection: ConnectionManager, prefix: &str) -> Self {
        Self {
            connection,
            prefix: format!("{prefix}:presence"),
            beat: redis::Script::new(BEAT),
            sweep: redis::Script::new(SWEEP),
            swap: redis::Script::new(SWAP),
        }
    }

    fn conns_key(&self, user: UserId) -> String {
        format!("{}:conns:{user}", self.prefix)
    }

    fn live_key(&self) -> String {
        format!("{}:live", self.prefix)
    }

    fn user_key(&self, user: UserId) -> String {
        format!("{}:user:{user}", self.prefix)
    }

    fn audience_key(&self, user: UserId) -> String {
        format!("{}:audience:{user}", self.prefix)
    }

    fn conn(&self) -> ConnectionManager {
        self.connection.clone()
    }
}

fn live(hash: HashMap<String, String>, now_ms: i64) -> Vec<Connection> {
    let mut live: Vec<Connection> = hash
        .into_iter()
        .filter_map(|(id, value)| {
            let (active, expires) = value.split_once(':')?;
            Some(Connection { id, active_at_ms: active.parse().ok()?, expires_at_ms: expires.parse().ok()? })
        })
        .filter(|c| c.expires_at_ms > now_ms)
        .collect();
    live.sort_by(|a, b| a.id.cmp(&b.id));
    live
}

fn record(hash: HashMap<String, String>) -> UserRecord {
    UserRecord {
        chosen: hash.get("chosen").and_then(|s| Status::parse(s).ok()),
        last_seen_ms: hash.get("last_seen").and_then(|s| s.parse().ok()),
    }
}

#[async_trait::async_trait]
impl PresenceStore for RedisPresenceStore {
    async fn beat(
        &self,
        user: UserId,
        connection: &str,
        now_ms: i64,
        expires_at_ms: i64,
        active: bool,
    ) -> anyhow::Result<()> {
        let _: i64 = self
            .beat
            .key(self.conns_key(user))
            .key(self.live_key())
            .arg(connection)
            .arg(now_ms)
            .arg(expires_at_ms)
            .arg(u8::from(active))
            .arg(format!("{user}/{connection}"))
            .invoke_async(&mut self.conn())
            .await?;
        Ok(())
    }

    async fn remove(&self, user: UserId, connection: &str) -> anyhow::Result<bool> {
        let (removed, _): (i64, i64) = redis::pipe()
            .atomic()
            .hdel(self.conns_key(user), connection)
            .zrem(self.live_key(), format!("{user}/{connection}"))
            .query_async(&mut self.conn())
            .await?;
        Ok(removed == 1)
    }

    async fn connections(&self, user: UserId, now_ms: i64) -> anyhow::Result<Vec<Connection>> {
        let hash: HashMap<String, String> =
            redis::cmd("HGETALL").arg(self.conns_key(user)).query_async(&mut self.conn()).await?;
        Ok(live(hash, now_ms))
    }

    async fn sweep(&self, now_ms: i64, limit: usize) -> anyhow::Result<Vec<Expired>> {
        let claimed: Vec<String> = self
            .sweep
            .key(self.live_key())
            .arg(now_ms)
            .arg(limit)
            .arg(format!("{}:conns:", self.prefix))
            .invoke_async(&mut self.conn())
            .await?;
        Ok(claimed
            .chunks(2)
            .filter_map(|pair| {
                let [member, score] = pair else { return None };
                let (user, connection) = member.split_once('/')?;
                Some(Expired {
                    user: UserId::parse(user).ok()?,
                    connection: connection.to_owned(),
                    expires_at_ms: score.parse::<f64>().ok()? as i64,
                })
            })
            .collect())
    }

    async fn record(&self, user: UserId) -> anyhow::Result<UserRecord> {
        let hash: HashMap<String, String> =
            redis::cmd("HGETALL").arg(self.user_key(user)).query_async(&mut self.conn()).await?;
        Ok(record(hash))
    }

    async fn presence_of(&self, users: &[UserId], now_ms: i64) -> anyhow::Result<Vec<(Vec<Connection>, UserRecord)>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for user in users {
            pipe.cmd("HGETALL").arg(self.conns_key(*user)).cmd("HGETALL").arg(self.user_key(*user));
        }
        let hashes: Vec<HashMap<String, String>> = pipe.query_async(&mut self.conn()).await?;
        let mut hashes = hashes.into_iter();
        let mut out = Vec::with_capacity(users.len());
        while let (Some(connections), Some(user)) = (hashes.next(), hashes.next()) {
            out.push((live(connections, now_ms), record(user)));
        }
        Ok(out)
    }

    async fn set_chosen(&self, user: UserId, chosen: Option<Status>) -> anyhow::Result<()> {
        let command = match chosen {
            Some(status) => {
                let mut c = redis::cmd("HSET");
                c.arg(self.user_key(user)).arg("chosen").arg(status.as_str());
                c
            }
            None => {
                let mut c = redis::cmd("HDEL");
                c.arg(self.user_key(user)).arg("chosen");
                c
            }
        };
        command.query_async::<i64>(&mut self.conn()).await?;
        Ok(())
    }

    async fn set_last_seen(&self, user: UserId, at_ms: i64) -> anyhow::Result<()> {
        redis::cmd("HSET")
            .arg(self.user_key(user))
            .arg("last_seen")
            .arg(at_ms)
            .query_async::<i64>(&mut self.conn())
            .await?;
        Ok(())
    }

    async fn audience(&self, user: UserId) -> anyhow::Result<Vec<ConversationId>> {
        let list: Option<String> = redis::cmd("GET").arg(self.audience_key(user)).query_async(&mut self.conn()).await?;
        Ok(list.unwrap_or_default().split(',').filter_map(|id| ConversationId::parse(id).ok()).collect())
    }

    async fn set_audience(&self, user: UserId, audience: &[ConversationId]) -> anyhow::Result<()> {
        let list = audience.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
        redis::cmd("SET").arg(self.audience_key(user)).arg(list).query_async::<()>(&mut self.conn()).await?;
        Ok(())
    }

    async fn swap_announced(&self, user: UserId, status: Status) -> anyhow::Result<Option<Status>> {
        let old: Option<String> =
            self.swap.key(self.user_key(user)).arg(status.as_str()).invoke_async(&mut self.conn()).await?;
        Ok(old.as_deref().and_then(|s| Status::parse(s).ok()))
    }
}
