//! Presence in this process's memory: the embedded mode, where the gateway
//! and the presence service die together anyway.

use std::collections::HashMap;
use std::sync::Mutex;

use chatterbox_types::{ConversationId, UserId};

use super::{Connection, Expired, PresenceStore, UserRecord};
use crate::Status;

#[derive(Debug, Default)]
struct Inner {
    connections: HashMap<UserId, HashMap<String, (i64, i64)>>,
    records: HashMap<UserId, UserRecord>,
    audiences: HashMap<UserId, Vec<ConversationId>>,
    announced: HashMap<UserId, Status>,
}

/// Presence kept in memory.
#[derive(Debug, Default)]
pub struct MemoryPresenceStore {
    inner: Mutex<Inner>,
}

impl MemoryPresenceStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere cannot leave these maps half-updated.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn live(connections: Option<&HashMap<String, (i64, i64)>>, now_ms: i64) -> Vec<Connection> {
    let mut live: Vec<Connection> = connections
        .into_iter()
        .flatten()
        .filter(|(_, (_, expires))| *expires > now_ms)
        .map(|(id, (active, expires))| Connection { id: id.clone(), active_at_ms: *active, expires_at_ms: *expires })
        .collect();
    live.sort_by(|a, b| a.id.cmp(&b.id));
    live
}

#[async_trait::async_trait]
impl PresenceStore for MemoryPresenceStore {
    async fn beat(
        &self,
        user: UserId,
        connection: &str,
        now_ms: i64,
        expires_at_ms: i64,
        active: bool,
    ) -> anyhow::Result<()> {
        let mut inner = self.lock();
        let entry = inner.connections.entry(user).or_default().entry(connection.to_owned()).or_insert((now_ms, 0));
        if active {
            entry.0 = now_ms;
        }
        entry.1 = expires_at_ms;
        Ok(())
    }

    async fn remove(&self, user: UserId, connection: &str) -> anyhow::Result<bool> {
        let mut inner = self.lock();
        let Some(connections) = inner.connections.get_mut(&user) else { return Ok(false) };
        let removed = connections.remove(connection).is_some();
        if connections.is_empty() {
            inner.connections.remove(&user);
        }
        Ok(removed)
    }

    async fn connections(&self, user: UserId, now_ms: i64) -> anyhow::Result<Vec<Connection>> {
        Ok(live(self.lock().connections.get(&user), now_ms))
    }

    async fn sweep(&self, now_ms: i64, limit: usize) -> anyhow::Result<Vec<Expired>> {
        let mut inner = self.lock();
        let mut expired = Vec::new();
        for (user, connections) in &inner.connections {
            for (id, (_, expires)) in connections {
                if *expires <= now_ms && expired.len() < limit {
                    expired.push(Expired { user: *user, connection: id.clone(), expires_at_ms: *expires });
                }
            }
        }
        for e in &expired {
            if let Some(connections) = inner.connections.get_mut(&e.user) {
                connections.remove(&e.connection);
                if connections.is_empty() {
                    inner.connections.remove(&e.user);
                }
            }
        }
        Ok(expired)
    }

    async fn record(&self, user: UserId) -> anyhow::Result<UserRecord> {
        Ok(self.lock().records.get(&user).cloned().unwrap_or_default())
    }

    async fn presence_of(&self, users: &[UserId], now_ms: i64) -> anyhow::Result<Vec<(Vec<Connection>, UserRecord)>> {
        let inner = self.lock();
        Ok(users
            .iter()
            .map(|u| (live(inner.connections.get(u), now_ms), inner.records.get(u).cloned().unwrap_or_default()))
            .collect())
    }

    async fn set_chosen(&self, user: UserId, chosen: Option<Status>) -> anyhow::Result<()> {
        self.lock().records.entry(user).or_default().chosen = chosen;
        Ok(())
    }

    async fn set_last_seen(&self, user: UserId, at_ms: i64) -> anyhow::Result<()> {
        self.lock().records.entry(user).or_default().last_seen_ms = Some(at_ms);
        Ok(())
    }

    async fn audience(&self, user: UserId) -> anyhow::Result<Vec<ConversationId>> {
        Ok(self.lock().audiences.get(&user).cloned().unwrap_or_default())
    }

    async fn set_audience(&self, user: UserId, audience: &[ConversationId]) -> anyhow::Result<()> {
        self.lock().audiences.insert(user, audience.to_vec());
        Ok(())
    }

    async fn swap_announced(&self, user: UserId, status: Status) -> anyhow::Result<Option<Status>> {
        Ok(self.lock().announced.insert(user, status))
    }
}
