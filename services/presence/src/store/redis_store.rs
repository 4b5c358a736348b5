//! Presence in Redis, shared by every presence replica. Users are spread
//! over [`SHARDS`] shards by a hash of their id; every key of a user lives
//! under their shard's hash tag `{N}`, so each script and pipeline touches
//! one slot (as Redis Cluster requires) and the shards spread over a
//! cluster's primaries:
//! - `<prefix>:presence:{N}:conns:<user>`: hash, connection id → `active_ms:expires_ms`;
//! - `<prefix>:presence:{N}:live`: sorted set of the shard's `<user>/<connection>`
//!   by expiry, which sweepers claim from atomically;
//! - `<prefix>:presence:{N}:user:<user>`: hash of `chosen`, `last_seen` and
//!   `announced`;
//! - `<prefix>:presence:{N}:audience:<user>`: the conversation ids that hear
//!   the user's changes, comma-separated (read only when announcing).
//!
//! Ids reach these keys only after parsing (ULIDs), so no caller can name
//! another key.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chatterbox_redis::Connection as RedisConnection;
use chatterbox_types::{ConversationId, UserId};

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

/// KEYS: the shard's live set. ARGV: now, limit, prefix of the shard's conns hashes.
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

/// How many shards users are spread over. Each is one hash slot, so at most
/// this many cluster primaries share the presence load; a sweep visits them
/// all.
pub const SHARDS: u32 = 16;

/// The shard of `user`: FNV-1a of its id, stable across processes and
/// versions (every replica must agree).
fn shard(user: UserId) -> u32 {
    let hash = user.to_string().bytes().fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    hash % SHARDS
}

/// Presence kept in Redis.
#[derive(Clone)]
pub struct RedisPresenceStore {
    connection: RedisConnection,
    prefix: String,
    /// The shard the next sweep starts from, so no shard waits behind another.
    next_sweep: Arc<AtomicUsize>,
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
    pub fn new(connection: RedisConnection, prefix: &str) -> Self {
        Self {
            connection,
            prefix: format!("{prefix}:presence"),
            next_sweep: Arc::new(AtomicUsize::new(0)),
            beat: redis::Script::new(BEAT),
            sweep: redis::Script::new(SWEEP),
            swap: redis::Script::new(SWAP),
        }
    }

    /// What every key of shard `n` starts with.
    fn shard_prefix(&self, n: u32) -> String {
        format!("{}:{{{n}}}", self.prefix)
    }

    fn conns_key(&self, user: UserId) -> String {
        format!("{}:conns:{user}", self.shard_prefix(shard(user)))
    }

    fn live_key(&self, user: UserId) -> String {
        format!("{}:live", self.shard_prefix(shard(user)))
    }

    fn user_key(&self, user: UserId) -> String {
        format!("{}:user:{user}", self.shard_prefix(shard(user)))
    }

    fn audience_key(&self, user: UserId) -> String {
        format!("{}:audience:{user}", self.shard_prefix(shard(user)))
    }

    fn conn(&self) -> RedisConnection {
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
            .key(self.live_key(user))
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
            .zrem(self.live_key(user), format!("{user}/{connection}"))
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
        let first = self.next_sweep.fetch_add(1, Ordering::Relaxed);
        let mut claimed: Vec<String> = Vec::new();
        for n in (0..SHARDS as usize).map(|i| ((first + i) % SHARDS as usize) as u32) {
            let room = limit.saturating_sub(claimed.len() / 2);
            if room == 0 {
                break;
            }
            let shard_prefix = self.shard_prefix(n);
            let mut more: Vec<String> = self
                .sweep
                .key(format!("{shard_prefix}:live"))
                .arg(now_ms)
                .arg(room)
                .arg(format!("{shard_prefix}:conns:"))
                .invoke_async(&mut self.conn())
                .await?;
            claimed.append(&mut more);
        }
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
        // One pipeline per shard (one slot each), all at once.
        let mut by_shard: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
        for (i, user) in users.iter().enumerate() {
            by_shard.entry(shard(*user)).or_default().push(i);
        }
        let reads = by_shard.into_values().map(|positions| {
            let mut pipe = redis::pipe();
            for &i in &positions {
                pipe.cmd("HGETALL").arg(self.conns_key(users[i])).cmd("HGETALL").arg(self.user_key(users[i]));
            }
            let mut conn = self.conn();
            async move {
                let hashes: Vec<HashMap<String, String>> = pipe.query_async(&mut conn).await?;
                anyhow::Ok((positions, hashes))
            }
        });
        let mut out = vec![(Vec::new(), UserRecord::default()); users.len()];
        for read in futures::future::join_all(reads).await {
            let (positions, hashes) = read?;
            let mut hashes = hashes.into_iter();
            for i in positions {
                let (Some(connections), Some(user)) = (hashes.next(), hashes.next()) else {
                    anyhow::bail!("Redis answered a presence read with too few replies");
                };
                out[i] = (live(connections, now_ms), record(user));
            }
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
