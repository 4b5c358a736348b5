//! Storage plumbing shared by every service's store: how a SQLite database is
//! opened, migrated and used from async code, how a MongoDB database is
//! connected with the write concern we rely on, and the one error type store
//! traits return. Each service still owns its schema and its trait.

mod keyed_locks;
mod mongo;
mod sqlite;

pub use keyed_locks::KeyedLocks;

pub use mongo::{is_duplicate_key, mongo_client_options, mongo_database, ping as mongo_ping, unique_index};
pub use sqlite::{AddedColumn, Migration, SqliteDb, is_unique_violation};

/// Creates `dir` and its missing parents readable by this user alone
/// (0700 on Unix): databases and media are nobody else's business.
pub fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Creates `path` empty and readable by this user alone (0600 on Unix)
/// unless it exists already.
pub fn create_private_file(path: &std::path::Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Where a service keeps its records: a SQLite file of its own (the
/// one-process default), or a MongoDB database of its own. Each service
/// opens its store from this (its `build`), so the choice of backend lives
/// next to the store, not in the binary.
#[derive(Clone)]
pub enum StoreAt {
    /// A SQLite database file (created if missing).
    Sqlite(std::path::PathBuf),
    /// A database on a MongoDB server.
    MongoDb {
        /// The server's URI (may hold credentials: never logged).
        uri: String,
        /// The service's own database.
        database: String,
    },
}

impl std::fmt::Debug for StoreAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreAt::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            StoreAt::MongoDb { database, .. } => f.debug_struct("MongoDb").field("database", database).finish(),
        }
    }
}

/// What went wrong in a backend: the driver's own error (SQLite's,
/// MongoDB's, an I/O error), kept whole so it can be logged with its causes
/// or inspected, or a sentence of ours.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// What a store can fail with. Duplicates are expected and typed; the rest
/// are backend failures the caller reports as internal/unavailable.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique key is taken; names the key (e.g. `email`, `username`).
    #[error("duplicate {0}")]
    Duplicate(&'static str),
    /// The backend failed.
    #[error("storage backend failed: {0}")]
    Backend(Cause),
    /// The backend cannot be reached now (down, restarting, a network
    /// fault): a retry may succeed. A write cut off this way may or may not
    /// have been applied, so only an idempotent write (a `client_id`) is
    /// safe to retry blindly.
    #[error("storage backend unavailable: {0}")]
    Unavailable(Cause),
}

impl StoreError {
    /// A backend failure: a driver's error, or what went wrong in words.
    pub fn backend(cause: impl Into<Cause>) -> Self {
        StoreError::Backend(cause.into())
    }

    /// The backend's own error, when it failed (for logging its causes or
    /// looking at what it was).
    pub fn cause(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        match self {
            StoreError::Duplicate(_) => None,
            StoreError::Backend(cause) | StoreError::Unavailable(cause) => Some(cause.as_ref()),
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Backend(Box::new(e))
    }
}

impl From<mongodb::error::Error> for StoreError {
    fn from(e: mongodb::error::Error) -> Self {
        if mongo::is_outage(&e) { StoreError::Unavailable(Box::new(e)) } else { StoreError::Backend(Box::new(e)) }
    }
}

impl From<StoreError> for chatterbox_errors::Error {
    /// An outage is `unavailable` (503: try again); anything else a service
    /// did not turn into its own answer (a duplicate it did not expect
    /// included) is internal.
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => chatterbox_errors::Error::unavailable(e),
            e => chatterbox_errors::Error::internal(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backend_failure_keeps_the_drivers_error() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let e = StoreError::from(conn.execute("SELECT * FROM nowhere", []).unwrap_err());
        assert!(e.to_string().starts_with("storage backend failed: no such table: nowhere"), "{e}");
        let cause = e.cause().expect("a cause");
        assert!(cause.downcast_ref::<rusqlite::Error>().is_some(), "the driver's error itself");
        assert!(StoreError::Duplicate("email").cause().is_none());
        let ours = StoreError::backend("a sentence");
        assert_eq!(ours.to_string(), "storage backend failed: a sentence");
    }
}
