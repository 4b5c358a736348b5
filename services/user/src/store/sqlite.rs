//! The user store on SQLite (embedded mode).

use std::path::Path;

use chatterbox_store::{SqliteDb, StoreError, is_unique_violation};
use chatterbox_types::{Timestamp, UserId};
use rusqlite::{OptionalExtension, Row, params};

use super::{Profile, ProfilePatch, Status, UserStore, prefix_end, stored_status};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS profiles (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    username_key TEXT NOT NULL UNIQUE,
    email TEXT NOT NULL,
    email_key TEXT NOT NULL UNIQUE,
    avatar TEXT,
    status TEXT NOT NULL,
    last_seen INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
";

const COLUMNS: &str = "id, username, username_key, email, email_key, avatar, status, last_seen, created_at, updated_at";

/// Profiles in a SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteUserStore {
    db: SqliteDb,
}

impl SqliteUserStore {
    /// Opens the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Ok(Self { db: SqliteDb::open(path, SCHEMA)? })
    }

    /// A throwaway in-memory store, for tests.
    pub fn in_memory() -> Result<Self, StoreError> {
        Ok(Self { db: SqliteDb::in_memory(SCHEMA)? })
    }
}

fn profile(row: &Row<'_>) -> rusqlite::Result<Profile> {
    let id: String = row.get(0)?;
    let status: String = row.get(6)?;
    Ok(Profile {
        id: UserId::parse(&id)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))?,
        username: row.get(1)?,
        username_key: row.get(2)?,
        email: row.get(3)?,
        email_key: row.get(4)?,
        avatar: row.get(5)?,
        status: stored_status(&status),
        last_seen: row.get::<_, Option<i64>>(7)?.map(Timestamp::from_millis),
        created_at: Timestamp::from_millis(row.get(8)?),
        updated_at: Timestamp::from_millis(row.get(9)?),
    })
}

/// Which unique key a constraint message names.
fn duplicate(e: &rusqlite::Error) -> Option<StoreError> {
    if !is_unique_violation(e) {
        return None;
    }
    let text = e.to_string();
    Some(StoreError::Duplicate(if text.contains("username_key") {
        "username"
    } else if text.contains("email_key") {
        "email"
    } else {
        "id"
    }))
}

#[async_trait::async_trait]
impl UserStore for SqliteUserStore {
    async fn create_profile(&self, p: &Profile) -> Result<(), StoreError> {
        let p = p.clone();
        self.db
            .call(move |conn| {
                conn.execute(
                    &format!("INSERT INTO profiles ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"),
                    params![
                        p.id.to_string(),
                        p.username,
                        p.username_key,
                        p.email,
                        p.email_key,
                        p.avatar,
                        p.status.as_str(),
                        p.last_seen.map(Timestamp::millis),
                        p.created_at.millis(),
                        p.updated_at.millis()
                    ],
                )
                .map_err(|e| duplicate(&e).unwrap_or_else(|| e.into()))?;
                Ok(())
            })
            .await
    }

    async fn get_profile(&self, id: UserId) -> Result<Option<Profile>, StoreError> {
        self.db
            .read(move |conn| {
                Ok(conn
                    .query_row(&format!("SELECT {COLUMNS} FROM profiles WHERE id = ?1"), [id.to_string()], profile)
                    .optional()?)
            })
            .await
    }

    async fn search_profiles(&self, prefix: &str, after: Option<&str>, limit: u32) -> Result<Vec<Profile>, StoreError> {
        let (low, high) = (prefix.to_owned(), prefix_end(prefix));
        let after = after.map(str::to_owned);
        self.db
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM profiles
                     WHERE username_key >= ?1 AND username_key < ?2 AND (?3 IS NULL OR username_key > ?3)
                     ORDER BY username_key LIMIT ?4"
                ))?;
                let rows = stmt.query_map(params![low, high, after, limit], profile)?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await
    }

    async fn profiles_by_keys(&self, keys: &[String]) -> Result<Vec<Profile>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let keys = serde_json::to_string(keys).map_err(StoreError::backend)?;
        self.db
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM profiles WHERE username_key IN (SELECT value FROM json_each(?1))"
                ))?;
                let rows = stmt.query_map([keys], profile)?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await
    }

    async fn update_profile(
        &self,
        id: UserId,
        patch: &ProfilePatch,
        now: Timestamp,
    ) -> Result<Option<Profile>, StoreError> {
        let patch = patch.clone();
        self.db
            .call(move |conn| {
                let (username, username_key) = patch.username.clone().unzip();
                let (set_avatar, avatar) = match &patch.avatar {
                    Some(a) => (true, a.clone()),
                    None => (false, None),
                };
                conn.query_row(
                    &format!(
                        "UPDATE profiles SET
                                username = COALESCE(?2, username),
                                username_key = COALESCE(?3, username_key),
                                avatar = CASE WHEN ?4 THEN ?5 ELSE avatar END,
                                updated_at = ?6
                             WHERE id = ?1 RETURNING {COLUMNS}"
                    ),
                    params![id.to_string(), username, username_key, set_avatar, avatar, now.millis()],
                    profile,
                )
                .optional()
                .map_err(|e| duplicate(&e).unwrap_or_else(|| e.into()))
            })
            .await
    }

    async fn set_presence(
        &self,
        id: UserId,
        status: Status,
        last_seen: Option<Timestamp>,
    ) -> Result<Option<Profile>, StoreError> {
        self.db
            .call(move |conn| {
                Ok(conn
                    .query_row(
                        &format!(
                            "UPDATE profiles SET status = ?2, last_seen = COALESCE(?3, last_seen)
                             WHERE id = ?1 RETURNING {COLUMNS}"
                        ),
                        params![id.to_string(), status.as_str(), last_seen.map(Timestamp::millis)],
                        profile,
                    )
                    .optional()?)
            })
            .await
    }

    async fn delete_profile(&self, id: UserId) -> Result<(), StoreError> {
        self.db
            .call(move |conn| {
                conn.execute("DELETE FROM profiles WHERE id = ?1", [id.to_string()])?;
                Ok(())
            })
            .await
    }
}
