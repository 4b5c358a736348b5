//! The conversation store on SQLite (embedded mode).

use std::path::Path;

use chatterbox_store::{SqliteDb, StoreError, is_unique_violation};
use chatterbox_types::{ConversationId, Timestamp, UserId};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{
    ActivityCursor, Block, BlockCursor, Conversation, ConversationRef, ConversationStore, Kind, Membership, NameCursor,
    Rename, prefix_end,
};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    unique_key TEXT NOT NULL UNIQUE,
    name_key TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    last_activity INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS rooms_by_name ON conversations(kind, name_key, id);
CREATE TABLE IF NOT EXISTS participants (
    conversation_id TEXT NOT NULL REFERENCES conversations(id),
    user_id TEXT NOT NULL,
    admin INTEGER NOT NULL DEFAULT 0,
    joined_at INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, user_id)
);
CREATE INDEX IF NOT EXISTS participants_by_user ON participants(user_id);
CREATE TABLE IF NOT EXISTS blocks (
    blocker TEXT NOT NULL,
    blocked TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (blocker, blocked)
);
CREATE INDEX IF NOT EXISTS blocks_by_time ON blocks(blocker, created_at, blocked);
";

/// Ids looked up per statement by `private_among`.
const PRIVATE_AMONG_CHUNK: usize = 500;

const COLUMNS: &str = "c.id, c.kind, c.name, c.description, c.unique_key, c.name_key, c.created_by, c.created_at, c.updated_at, c.last_activity";

/// A page of a user's conversations, most recent activity first, after the
/// cursor (?2, ?3) when given: `user_id` = ?1, page size ?4.
const USER_PAGE: &str = "FROM participants p JOIN conversations c ON c.id = p.conversation_id
     WHERE p.user_id = ?1 AND (?2 IS NULL OR (c.last_activity, c.id) < (?2, ?3))
     ORDER BY c.last_activity DESC, c.id DESC LIMIT ?4";

/// Conversations in a SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteConversationStore {
    db: SqliteDb,
}

impl SqliteConversationStore {
    /// Opens the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Ok(Self { db: SqliteDb::open(path, SCHEMA)? })
    }

    /// A throwaway in-memory store, for tests.
    pub fn in_memory() -> Result<Self, StoreError> {
        Ok(Self { db: SqliteDb::in_memory(SCHEMA)? })
    }

    /// Runs one membership statement (parameters: conversation, user, now);
    /// if it changed a row, stamps the conversation as updated. Returns the
    /// conversation as it is afterwards.
    async fn change_membership(
        &self,
        id: ConversationId,
        user: UserId,
        now: Timestamp,
        statement: &'static str,
    ) -> Result<Option<Conversation>, StoreError> {
        self.db
            .call(move |conn| {
                let changed =
                    conn.prepare_cached(statement)?.execute(params![id.to_string(), user.to_string(), now.millis()])?;
                if changed > 0 {
                    conn.prepare_cached("UPDATE conversations SET updated_at = ?2 WHERE id = ?1")?
                        .execute(params![id.to_string(), now.millis()])?;
                }
                let found = load(conn, id)?;
                Ok(found)
            })
            .await
    }
}

fn conversion(e: impl std::error::Error + Send + Sync + 'static) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
}

fn user_id(s: String) -> rusqlite::Result<UserId> {
    UserId::parse(&s).map_err(conversion)
}

/// A conversation row, without its participants yet.
fn row(r: &Row<'_>) -> rusqlite::Result<Conversation> {
    let kind: String = r.get(1)?;
    Ok(Conversation {
        id: ConversationId::parse(&r.get::<_, String>(0)?).map_err(conversion)?,
        kind: Kind::parse(&kind).ok_or_else(|| conversion(chatterbox_types::InvalidValue::new("kind")))?,
        name: r.get(2)?,
        description: r.get(3)?,
        unique_key: r.get(4)?,
        name_key: r.get(5)?,
        participants: Vec::new(),
        admins: Vec::new(),
        created_by: user_id(r.get(6)?)?,
        created_at: Timestamp::from_millis(r.get(7)?),
        updated_at: Timestamp::from_millis(r.get(8)?),
        last_activity: Timestamp::from_millis(r.get(9)?),
    })
}

/// Fills in participants and admins, in joining order.
fn with_members(conn: &Connection, mut c: Conversation) -> Result<Conversation, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT user_id, admin FROM participants WHERE conversation_id = ?1 ORDER BY joined_at, rowid",
    )?;
    let rows = stmt.query_map([c.id.to_string()], |r| Ok((user_id(r.get(0)?)?, r.get::<_, bool>(1)?)))?;
    for member in rows {
        let (user, admin) = member?;
        c.participants.push(user);
        if admin {
            c.admins.push(user);
        }
    }
    Ok(c)
}

fn load(conn: &Connection, id: ConversationId) -> Result<Option<Conversation>, StoreError> {
    let found = conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM conversations c WHERE c.id = ?1"))?
        .query_row([id.to_string()], row)
        .optional()?;
    found.map(|c| with_members(conn, c)).transpose()
}

fn load_all(conn: &Connection, rows: Vec<Conversation>) -> Result<Vec<Conversation>, StoreError> {
    rows.into_iter().map(|c| with_members(conn, c)).collect()
}

#[async_trait::async_trait]
impl ConversationStore for SqliteConversationStore {
    async fn create(&self, c: &Conversation) -> Result<(), StoreError> {
        let c = c.clone();
        self.db
            .call(move |conn| {
                conn.prepare_cached("INSERT INTO conversations (id, kind, name, description, unique_key, name_key, created_by, created_at, updated_at, last_activity)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)")?.execute(params![
                        c.id.to_string(),
                        c.kind.as_str(),
                        c.name,
                        c.description,
                        c.unique_key,
                        c.name_key,
                        c.created_by.to_string(),
                        c.created_at.millis(),
                        c.updated_at.millis(),
                        c.last_activity.millis()
                    ],
                )
                .map_err(|e| if is_unique_violation(&e) { StoreError::Duplicate("unique_key") } else { e.into() })?;
                for user in &c.participants {
                    conn.prepare_cached("INSERT INTO participants (conversation_id, user_id, admin, joined_at) VALUES (?1, ?2, ?3, ?4)")?.execute(params![c.id.to_string(), user.to_string(), c.admins.contains(user), c.created_at.millis()],
                    )?;
                }
                Ok(())
            })
            .await
    }

    async fn get(&self, id: ConversationId) -> Result<Option<Conversation>, StoreError> {
        self.db.read(move |conn| load(conn, id)).await
    }

    async fn membership(&self, id: ConversationId, user: UserId) -> Result<Option<Membership>, StoreError> {
        self.db
            .read(move |conn| {
                let found = conn
                    .prepare_cached(
                        "SELECT c.kind, p.admin FROM participants p JOIN conversations c ON c.id = p.conversation_id
                         WHERE p.conversation_id = ?1 AND p.user_id = ?2",
                    )?
                    .query_row(params![id.to_string(), user.to_string()], |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, bool>(1)?))
                    })
                    .optional()?;
                found
                    .map(|(kind, admin)| {
                        let kind =
                            Kind::parse(&kind).ok_or_else(|| StoreError::backend("corrupt conversation kind"))?;
                        Ok(Membership { kind, admin })
                    })
                    .transpose()
            })
            .await
    }

    async fn private_among(&self, user: UserId, ids: &[ConversationId]) -> Result<Vec<ConversationId>, StoreError> {
        let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
        self.db
            .read(move |conn| {
                let mut found = Vec::new();
                // In chunks of one statement shape each (the last may be shorter).
                for chunk in ids.chunks(PRIVATE_AMONG_CHUNK) {
                    let marks = vec!["?"; chunk.len()].join(", ");
                    let mut statement = conn.prepare_cached(&format!(
                        "SELECT p.conversation_id FROM participants p JOIN conversations c ON c.id = p.conversation_id
                         WHERE p.user_id = ? AND c.kind != 'room' AND p.conversation_id IN ({marks})"
                    ))?;
                    let user = user.to_string();
                    let params = std::iter::once(&user).chain(chunk.iter());
                    let rows = statement.query_map(rusqlite::params_from_iter(params), |r| r.get::<_, String>(0))?;
                    for id in rows {
                        found.push(ConversationId::parse(&id?).map_err(|_| StoreError::backend("corrupt id"))?);
                    }
                }
                Ok(found)
            })
            .await
    }

    async fn get_by_unique_key(&self, key: &str) -> Result<Option<Conversation>, StoreError> {
        let key = key.to_owned();
        self.db
            .read(move |conn| {
                let found = conn
                    .prepare_cached(&format!("SELECT {COLUMNS} FROM conversations c WHERE c.unique_key = ?1"))?
                    .query_row([key], row)
                    .optional()?;
                found.map(|c| with_members(conn, c)).transpose()
            })
            .await
    }

    async fn list_for_user(
        &self,
        user: UserId,
        after: Option<&ActivityCursor>,
        limit: u32,
    ) -> Result<Vec<Conversation>, StoreError> {
        let after = after.map(|a| (a.last_activity.millis(), a.id.to_string()));
        self.db
            .read(move |conn| {
                let (activity, id) = after.unzip();
                let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} {USER_PAGE}"))?;
                let rows = stmt.query_map(params![user.to_string(), activity, id, limit], row)?;
                let rows = rows.collect::<Result<Vec<_>, _>>()?;
                load_all(conn, rows)
            })
            .await
    }

    async fn list_refs_for_user(
        &self,
        user: UserId,
        after: Option<&ActivityCursor>,
        limit: u32,
    ) -> Result<Vec<ConversationRef>, StoreError> {
        let after = after.map(|a| (a.last_activity.millis(), a.id.to_string()));
        self.db
            .read(move |conn| {
                let (activity, id) = after.unzip();
                let mut stmt = conn.prepare_cached(&format!("SELECT c.id, c.kind, c.last_activity {USER_PAGE}"))?;
                let rows = stmt.query_map(params![user.to_string(), activity, id, limit], |r| {
                    let kind: String = r.get(1)?;
                    Ok(ConversationRef {
                        id: ConversationId::parse(&r.get::<_, String>(0)?).map_err(conversion)?,
                        kind: Kind::parse(&kind)
                            .ok_or_else(|| conversion(chatterbox_types::InvalidValue::new("kind")))?,
                        last_activity: Timestamp::from_millis(r.get(2)?),
                    })
                })?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await
    }

    async fn conversation_ids_of(&self, user: UserId, limit: u32) -> Result<Vec<ConversationId>, StoreError> {
        self.db
            .read(move |conn| {
                let mut stmt =
                    conn.prepare_cached("SELECT conversation_id FROM participants WHERE user_id = ?1 LIMIT ?2")?;
                let rows = stmt.query_map(params![user.to_string(), limit], |r| {
                    ConversationId::parse(&r.get::<_, String>(0)?).map_err(conversion)
                })?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await
    }

    async fn list_rooms(
        &self,
        prefix: &str,
        after: Option<&NameCursor>,
        limit: u32,
    ) -> Result<Vec<Conversation>, StoreError> {
        let (low, high) = (prefix.to_owned(), prefix_end(prefix));
        let after = after.map(|a| (a.name_key.clone(), a.id.to_string()));
        self.db
            .read(move |conn| {
                let (key, id) = after.unzip();
                let mut stmt = conn.prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM conversations c
                     WHERE c.kind = 'room' AND c.name_key >= ?1 AND c.name_key < ?2
                       AND (?3 IS NULL OR (c.name_key, c.id) > (?3, ?4))
                     ORDER BY c.name_key, c.id LIMIT ?5"
                ))?;
                let rows = stmt.query_map(params![low, high, key, id, limit], row)?;
                let rows = rows.collect::<Result<Vec<_>, _>>()?;
                load_all(conn, rows)
            })
            .await
    }

    async fn update_details(
        &self,
        id: ConversationId,
        rename: Option<&Rename>,
        description: Option<&str>,
        now: Timestamp,
    ) -> Result<Option<Conversation>, StoreError> {
        let rename = rename.cloned();
        let description = description.map(str::to_owned);
        self.db
            .call(move |conn| {
                let (name, name_key, unique_key) = match rename {
                    Some(r) => (Some(r.name), Some(r.name_key), Some(r.unique_key)),
                    None => (None, None, None),
                };
                let changed = conn
                    .prepare_cached("UPDATE conversations SET name = COALESCE(?2, name), name_key = COALESCE(?3, name_key),
                            unique_key = COALESCE(?4, unique_key), description = COALESCE(?5, description), updated_at = ?6
                         WHERE id = ?1")?.execute(params![id.to_string(), name, name_key, unique_key, description, now.millis()],
                    )
                    .map_err(|e| if is_unique_violation(&e) { StoreError::Duplicate("unique_key") } else { e.into() })?;
                if changed == 0 { Ok(None) } else { load(conn, id) }
            })
            .await
    }

    async fn add_participant(
        &self,
        id: ConversationId,
        user: UserId,
        now: Timestamp,
    ) -> Result<Option<Conversation>, StoreError> {
        // The conversation must exist: a participant row alone would dangle.
        self.change_membership(
            id,
            user,
            now,
            "INSERT OR IGNORE INTO participants (conversation_id, user_id, admin, joined_at)
             SELECT ?1, ?2, 0, ?3 FROM conversations WHERE id = ?1",
        )
        .await
    }

    async fn remove_participant(
        &self,
        id: ConversationId,
        user: UserId,
        now: Timestamp,
    ) -> Result<Option<Conversation>, StoreError> {
        self.change_membership(
            id,
            user,
            now,
            "DELETE FROM participants WHERE conversation_id = ?1 AND user_id = ?2 AND ?3 IS NOT NULL",
        )
        .await
    }

    async fn add_admin(
        &self,
        id: ConversationId,
        user: UserId,
        now: Timestamp,
    ) -> Result<Option<Conversation>, StoreError> {
        self.change_membership(
            id,
            user,
            now,
            "UPDATE participants SET admin = 1 WHERE conversation_id = ?1 AND user_id = ?2 AND admin = 0 AND ?3 IS NOT NULL",
        )
        .await
    }

    async fn record_activity(&self, id: ConversationId, by: UserId, at: Timestamp) -> Result<(), StoreError> {
        self.db
            .call(move |conn| {
                conn.prepare_cached(
                    "UPDATE conversations SET last_activity = ?2 WHERE id = ?1 AND last_activity < ?2
                       AND EXISTS (SELECT 1 FROM participants WHERE conversation_id = ?1 AND user_id = ?3)",
                )?
                .execute(params![id.to_string(), at.millis(), by.to_string()])?;

                Ok(())
            })
            .await
    }

    async fn block(&self, blocker: UserId, blocked: UserId, at: Timestamp) -> Result<bool, StoreError> {
        self.db
            .call(move |conn| {
                let added = conn
                    .prepare_cached("INSERT OR IGNORE INTO blocks (blocker, blocked, created_at) VALUES (?1, ?2, ?3)")?
                    .execute(params![blocker.to_string(), blocked.to_string(), at.millis()])?;
                Ok(added > 0)
            })
            .await
    }

    async fn unblock(&self, blocker: UserId, blocked: UserId) -> Result<bool, StoreError> {
        self.db
            .call(move |conn| {
                let removed = conn
                    .prepare_cached("DELETE FROM blocks WHERE blocker = ?1 AND blocked = ?2")?
                    .execute(params![blocker.to_string(), blocked.to_string()])?;
                Ok(removed > 0)
            })
            .await
    }

    async fn blocked_between(&self, a: UserId, b: UserId) -> Result<bool, StoreError> {
        self.db
            .read(move |conn| {
                let found = conn
                    .prepare_cached(
                        "SELECT EXISTS (SELECT 1 FROM blocks WHERE (blocker = ?1 AND blocked = ?2)
                                                             OR (blocker = ?2 AND blocked = ?1))",
                    )?
                    .query_row(params![a.to_string(), b.to_string()], |r| r.get::<_, bool>(0))?;
                Ok(found)
            })
            .await
    }

    async fn blocks_of(
        &self,
        blocker: UserId,
        after: Option<&BlockCursor>,
        limit: u32,
    ) -> Result<Vec<Block>, StoreError> {
        let after = after.copied();
        self.db
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT blocked, created_at FROM blocks
                     WHERE blocker = ?1 AND (?2 IS NULL OR (created_at, blocked) < (?2, ?3))
                     ORDER BY created_at DESC, blocked DESC LIMIT ?4",
                )?;
                let rows = stmt.query_map(
                    params![
                        blocker.to_string(),
                        after.map(|a| a.at.millis()),
                        after.map(|a| a.blocked.to_string()),
                        limit
                    ],
                    |r| Ok(Block { blocked: user_id(r.get(0)?)?, at: Timestamp::from_millis(r.get(1)?) }),
                )?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .await
    }
}
