//! The auth store on SQLite (embedded mode).

use std::path::Path;

use chatterbox_store::{AddedColumn, SqliteDb, StoreError, is_unique_violation};
use chatterbox_types::{SessionId, Timestamp, UserId};
use rusqlite::{OptionalExtension, Row, params};

use super::{AuthStore, Consumed, Credential, LoginSession, TokenHash};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS credentials (
    user_id TEXT PRIMARY KEY,
    email_key TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    active INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    family_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    family_id TEXT NOT NULL REFERENCES sessions(family_id),
    used INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS refresh_tokens_by_family ON refresh_tokens(family_id);
CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions(user_id, created_at);
";

/// What sessions record about their client, added in 1.1 (0 for
/// `last_used_at` means "since it started").
const ADDED: &[AddedColumn] = &[
    AddedColumn { table: "sessions", name: "last_used_at", definition: "INTEGER NOT NULL DEFAULT 0", index: None },
    AddedColumn { table: "sessions", name: "user_agent", definition: "TEXT NOT NULL DEFAULT ''", index: None },
    AddedColumn { table: "sessions", name: "ip", definition: "TEXT NOT NULL DEFAULT ''", index: None },
];

/// Credentials and sessions in a SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteAuthStore {
    db: SqliteDb,
}

impl SqliteAuthStore {
    /// Opens the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Ok(Self { db: SqliteDb::open_adding(path, SCHEMA, ADDED)? })
    }

    /// A throwaway in-memory store, for tests.
    pub fn in_memory() -> Result<Self, StoreError> {
        Ok(Self { db: SqliteDb::in_memory_adding(SCHEMA, ADDED)? })
    }
}

fn parse_id<T>(s: String, parse: fn(&str) -> Result<T, chatterbox_types::InvalidValue>) -> rusqlite::Result<T> {
    parse(&s).map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
}

fn credential(row: &Row<'_>) -> rusqlite::Result<Credential> {
    Ok(Credential {
        user_id: parse_id(row.get(0)?, UserId::parse)?,
        email_key: row.get(1)?,
        password_hash: row.get(2)?,
        active: row.get(3)?,
        created_at: Timestamp::from_millis(row.get(4)?),
    })
}

fn session(row: &Row<'_>) -> rusqlite::Result<LoginSession> {
    let created_at: i64 = row.get(2)?;
    let last_used_at: i64 = row.get(5)?;
    Ok(LoginSession {
        id: parse_id(row.get(0)?, SessionId::parse)?,
        user_id: parse_id(row.get(1)?, UserId::parse)?,
        created_at: Timestamp::from_millis(created_at),
        expires_at: Timestamp::from_millis(row.get(3)?),
        revoked: row.get(4)?,
        last_used_at: Timestamp::from_millis(last_used_at.max(created_at)),
        user_agent: row.get(6)?,
        ip: row.get(7)?,
    })
}

const SESSION_COLUMNS: &str =
    "s.family_id, s.user_id, s.created_at, s.expires_at, s.revoked, s.last_used_at, s.user_agent, s.ip";

#[async_trait::async_trait]
impl AuthStore for SqliteAuthStore {
    async fn create_credential(&self, c: &Credential) -> Result<(), StoreError> {
        let c = c.clone();
        self.db
            .call(move |conn| {
                conn.execute(
                    "INSERT INTO credentials (user_id, email_key, password_hash, active, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![c.user_id.to_string(), c.email_key, c.password_hash, c.active, c.created_at.millis()],
                )
                .map_err(|e| if is_unique_violation(&e) { StoreError::Duplicate("email") } else { e.into() })?;
                Ok(())
            })
            .await
    }

    async fn find_credential(&self, email_key: &str) -> Result<Option<Credential>, StoreError> {
        let email_key = email_key.to_owned();
        self.db
            .read(move |conn| {
                Ok(conn
                    .query_row(
                        "SELECT user_id, email_key, password_hash, active, created_at FROM credentials WHERE email_key = ?1",
                        [email_key],
                        credential,
                    )
                    .optional()?)
            })
            .await
    }

    async fn activate_credential(&self, user: UserId) -> Result<(), StoreError> {
        self.db
            .call(move |conn| {
                conn.execute("UPDATE credentials SET active = 1 WHERE user_id = ?1", [user.to_string()])?;
                Ok(())
            })
            .await
    }

    async fn delete_credential(&self, user: UserId) -> Result<(), StoreError> {
        self.db
            .call(move |conn| {
                conn.execute("DELETE FROM credentials WHERE user_id = ?1", [user.to_string()])?;
                Ok(())
            })
            .await
    }

    async fn create_session(&self, s: &LoginSession, first: &TokenHash) -> Result<(), StoreError> {
        let (s, first) = (s.clone(), first.clone());
        self.db
            .call(move |conn| {
                conn.execute(
                    "INSERT INTO sessions (family_id, user_id, created_at, expires_at, revoked, last_used_at, user_agent, ip)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![
                        s.id.to_string(),
                        s.user_id.to_string(),
                        s.created_at.millis(),
                        s.expires_at.millis(),
                        s.revoked,
                        s.last_used_at.millis(),
                        s.user_agent,
                        s.ip
                    ],
                )?;
                conn.execute(
                    "INSERT INTO refresh_tokens (token_hash, family_id, used, created_at) VALUES (?1, ?2, 0, ?3)",
                    params![first.0, s.id.to_string(), s.created_at.millis()],
                )?;
                Ok(())
            })
            .await
    }

    async fn add_token(&self, session: SessionId, token: &TokenHash, now: Timestamp) -> Result<(), StoreError> {
        let token = token.clone();
        self.db
            .call(move |conn| {
                conn.execute(
                    "INSERT INTO refresh_tokens (token_hash, family_id, used, created_at) VALUES (?1, ?2, 0, ?3)",
                    params![token.0, session.to_string(), now.millis()],
                )?;
                conn.execute(
                    "UPDATE sessions SET last_used_at = MAX(last_used_at, ?2) WHERE family_id = ?1",
                    params![session.to_string(), now.millis()],
                )?;
                Ok(())
            })
            .await
    }

    async fn consume_token(&self, token: &TokenHash, _now: Timestamp) -> Result<Consumed, StoreError> {
        let token = token.clone();
        self.db
            .call(move |conn| {
                // The conditional update is the atomic step: only one caller
                // can flip `used` from 0 to 1.
                let spent: Option<String> = conn
                    .query_row(
                        "UPDATE refresh_tokens SET used = 1 WHERE token_hash = ?1 AND used = 0 RETURNING family_id",
                        [&token.0],
                        |r| r.get(0),
                    )
                    .optional()?;
                if let Some(family) = spent {
                    let found = conn.query_row(
                        &format!("SELECT {SESSION_COLUMNS} FROM sessions s WHERE s.family_id = ?1"),
                        [family],
                        session,
                    )?;
                    return Ok(Consumed::Fresh(found));
                }
                let replayed: Option<String> = conn
                    .query_row("SELECT family_id FROM refresh_tokens WHERE token_hash = ?1", [&token.0], |r| r.get(0))
                    .optional()?;
                Ok(match replayed {
                    Some(f) => {
                        Consumed::Replayed(SessionId::parse(&f).map_err(|e| StoreError::backend(e.to_string()))?)
                    }
                    None => Consumed::Unknown,
                })
            })
            .await
    }

    async fn find_session_by_token(&self, token: &TokenHash) -> Result<Option<LoginSession>, StoreError> {
        let token = token.clone();
        self.db
            .read(move |conn| {
                Ok(conn
                    .query_row(
                        &format!(
                            "SELECT {SESSION_COLUMNS} FROM refresh_tokens t JOIN sessions s ON s.family_id = t.family_id WHERE t.token_hash = ?1"
                        ),
                        [token.0],
                        session,
                    )
                    .optional()?)
            })
            .await
    }

    async fn find_session(&self, id: SessionId) -> Result<Option<LoginSession>, StoreError> {
        self.db
            .read(move |conn| {
                Ok(conn
                    .query_row(
                        &format!("SELECT {SESSION_COLUMNS} FROM sessions s WHERE s.family_id = ?1"),
                        [id.to_string()],
                        session,
                    )
                    .optional()?)
            })
            .await
    }

    async fn live_sessions(&self, user: UserId, now: Timestamp, limit: usize) -> Result<Vec<LoginSession>, StoreError> {
        self.db
            .read(move |conn| {
                let mut statement = conn.prepare_cached(&format!(
                    "SELECT {SESSION_COLUMNS} FROM sessions s
                     WHERE s.user_id = ?1 AND s.revoked = 0 AND s.expires_at > ?2
                     ORDER BY s.created_at DESC, s.family_id DESC LIMIT ?3"
                ))?;
                let rows = statement.query_map(params![user.to_string(), now.millis(), limit as i64], session)?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await
    }

    async fn revoke_session(&self, id: SessionId) -> Result<(), StoreError> {
        self.db
            .call(move |conn| {
                conn.execute("UPDATE sessions SET revoked = 1 WHERE family_id = ?1", [id.to_string()])?;
                Ok(())
            })
            .await
    }
}
