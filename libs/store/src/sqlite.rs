//! SQLite for the embedded mode: one connection per database, in WAL mode,
//! used on tokio's blocking pool so async threads never wait on disk.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

use crate::StoreError;

/// A SQLite database shared by a store's methods.
#[derive(Debug, Clone)]
pub struct SqliteDb {
    /// One connection: SQLite serialises writers anyway, and a single
    /// connection makes each closure atomic with respect to the others.
    conn: Arc<Mutex<Connection>>,
}

impl SqliteDb {
    /// Opens (creating if needed) `path` and applies `schema` (idempotent DDL).
    pub fn open(path: &Path, schema: &str) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Backend(format!("{}: {e}", dir.display())))?;
        }
        Self::init(Connection::open(path)?, schema)
    }

    /// A private in-memory database, for tests.
    pub fn in_memory(schema: &str) -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory()?, schema)
    }

    fn init(conn: Connection, schema: &str) -> Result<Self, StoreError> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // FULL: a write is on disk before it is acknowledged.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(schema)?;
        Ok(Self { conn: Arc::new(Mutex::new(conn)) })
    }

    /// Runs `f` with the connection on the blocking pool.
    pub async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().map_err(|_| StoreError::Backend("sqlite connection poisoned".into()))?;
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("sqlite task failed: {e}")))?
    }
}

/// Whether an error is a UNIQUE (or primary key) constraint violation.
pub fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
}
