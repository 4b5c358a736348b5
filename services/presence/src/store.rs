//! Where liveness lives: one trait, in memory (embedded) or in Redis
//! (shared by every presence replica), one conformance suite
//! (`tests/store_conformance.rs`). Times are passed in, never read from a
//! clock here, so every backend agrees and tests control time.

mod memory;
mod redis_store;

use chatterbox_types::{ConversationId, UserId};

pub use memory::MemoryPresenceStore;
pub use redis_store::RedisPresenceStore;

use crate::Status;

/// One connection of a user, as last reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// The gateway's connection id.
    pub id: String,
    /// When its user last did something on it.
    pub active_at_ms: i64,
    /// When it counts as gone unless it beats again.
    pub expires_at_ms: i64,
}

/// What is kept about a user besides their connections.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserRecord {
    /// What the user said (`None`: let activity decide).
    pub chosen: Option<Status>,
    /// When their last connection ended.
    pub last_seen_ms: Option<i64>,
}

/// A connection that expired without closing, claimed by one sweeper.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expired {
    /// Whose it was.
    pub user: UserId,
    /// Its id.
    pub connection: String,
    /// When it expired.
    pub expires_at_ms: i64,
}

/// The presence service's storage.
#[async_trait::async_trait]
pub trait PresenceStore: Send + Sync + std::fmt::Debug {
    /// Counts `connection` of `user` live until `expires_at_ms`; when `active`
    /// (or when it is new) its last activity becomes `now_ms`.
    async fn beat(
        &self,
        user: UserId,
        connection: &str,
        now_ms: i64,
        expires_at_ms: i64,
        active: bool,
    ) -> anyhow::Result<()>;
    /// Forgets a connection; whether it was there.
    async fn remove(&self, user: UserId, connection: &str) -> anyhow::Result<bool>;
    /// The user's connections not expired at `now_ms`.
    async fn connections(&self, user: UserId, now_ms: i64) -> anyhow::Result<Vec<Connection>>;
    /// Removes up to `limit` connections expired at `now_ms` and returns them;
    /// with several sweepers, each expired connection goes to exactly one.
    async fn sweep(&self, now_ms: i64, limit: usize) -> anyhow::Result<Vec<Expired>>;
    /// What is kept about `user` (defaults for a stranger).
    async fn record(&self, user: UserId) -> anyhow::Result<UserRecord>;
    /// Live connections and record of each of `users`, in order.
    async fn presence_of(&self, users: &[UserId], now_ms: i64) -> anyhow::Result<Vec<(Vec<Connection>, UserRecord)>>;
    /// Records what the user said (`None` clears it).
    async fn set_chosen(&self, user: UserId, chosen: Option<Status>) -> anyhow::Result<()>;
    /// Records when the user's last connection ended.
    async fn set_last_seen(&self, user: UserId, at_ms: i64) -> anyhow::Result<()>;
    /// The conversations that hear the user's changes.
    async fn audience(&self, user: UserId) -> anyhow::Result<Vec<ConversationId>>;
    /// Replaces the conversations that hear the user's changes.
    async fn set_audience(&self, user: UserId, audience: &[ConversationId]) -> anyhow::Result<()>;
    /// Records `status` as the last one announced; returns the one before, so
    /// that of racing announcers only one sees each change.
    async fn swap_announced(&self, user: UserId, status: Status) -> anyhow::Result<Option<Status>>;
}
