//! SQLite for the embedded mode, in WAL mode, used on tokio's blocking pool
//! so async threads never wait on disk: one writer connection (writes are
//! serialised anyway, and one connection makes each write closure atomic
//! with respect to the others) and a few reader connections, which in WAL
//! mode read committed snapshots while the writer works.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags};

use crate::StoreError;

/// A SQLite database shared by a store's methods.
#[derive(Debug, Clone)]
pub struct SqliteDb {
    /// The one connection that writes.
    writer: Arc<Mutex<Connection>>,
    /// Read-only connections; empty for in-memory databases, which cannot
    /// share data between connections (reads then use the writer).
    readers: Arc<[Mutex<Connection>]>,
    /// Round-robin position over the readers.
    next_reader: Arc<AtomicUsize>,
}

/// Reader connections per file database.
const READERS: usize = 4;

impl SqliteDb {
    /// Opens (creating if needed) `path` and applies `schema` (idempotent DDL).
    pub fn open(path: &Path, schema: &str) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Backend(format!("{}: {e}", dir.display())))?;
        }
        let mut db = Self::init(Connection::open(path)?, schema)?;
        let readers = (0..READERS)
            .map(|_| {
                let conn = Connection::open_with_flags(
                    path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
                )?;
                conn.busy_timeout(std::time::Duration::from_secs(5))?;
                Ok(Mutex::new(conn))
            })
            .collect::<Result<Vec<_>, rusqlite::Error>>()?;
        db.readers = readers.into();
        Ok(db)
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
        Ok(Self { writer: Arc::new(Mutex::new(conn)), readers: Arc::new([]), next_reader: Arc::default() })
    }

    /// Runs `f` with the writer connection on the blocking pool.
    pub async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = self.writer.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().map_err(|_| StoreError::Backend("sqlite connection poisoned".into()))?;
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("sqlite task failed: {e}")))?
    }

    /// Runs a read-only `f` on a reader connection (the writer when there
    /// are none). It sees every write committed before it starts.
    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        if self.readers.is_empty() {
            return self.call(f).await;
        }
        let (readers, start) = (self.readers.clone(), self.next_reader.fetch_add(1, Ordering::Relaxed));
        tokio::task::spawn_blocking(move || {
            // Take a free reader if there is one, else wait for ours.
            let count = readers.len();
            let free = (0..count).find_map(|i| readers[(start + i) % count].try_lock().ok());
            let mut guard = match free {
                Some(guard) => guard,
                None => readers[start % count]
                    .lock()
                    .map_err(|_| StoreError::Backend("sqlite connection poisoned".into()))?,
            };
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
