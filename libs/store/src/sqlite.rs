//! SQLite for the embedded mode, in WAL mode with `synchronous=FULL`, used
//! so async threads never wait on disk.
//!
//! Writes go to one writer thread that owns the one writing connection and
//! commits them in groups: it takes every write waiting in its queue (up to
//! [`MAX_GROUP`]), runs each in a savepoint of one transaction (a write that
//! fails is rolled back alone), commits once (one fsync for the group), and
//! only then answers each caller. Under load many writes share a commit;
//! alone, a write commits at once. Writes run in queue order, so what one
//! write sees is what the writes before it left.
//!
//! Reads use a few read-only connections on tokio's blocking pool; in WAL
//! mode they read committed snapshots while the writer works.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError, TryLockError};

use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

use crate::StoreError;

/// A SQLite database shared by a store's methods.
#[derive(Debug, Clone)]
pub struct SqliteDb {
    /// The writer thread's queue.
    writes: mpsc::Sender<Box<dyn Write>>,
    /// Read-only connections; empty for in-memory databases, which cannot
    /// share data between connections (reads then go to the writer).
    readers: Arc<[Mutex<Connection>]>,
    /// Round-robin position over the readers.
    next_reader: Arc<AtomicUsize>,
}

/// Reader connections per file database.
const READERS: usize = 4;

/// Most writes in one commit: bounds how long the first of them waits.
pub const MAX_GROUP: usize = 256;

/// Prepared statements kept per connection (every store's SQL is constant).
const STATEMENT_CACHE: usize = 64;

/// A write waiting for the writer thread.
trait Write: Send {
    /// Runs it on the connection inside the group's transaction; says
    /// whether it failed (its savepoint is then rolled back) and gives what
    /// answers its caller once the group's commit is known.
    fn run(self: Box<Self>, conn: &Connection) -> (bool, Answer);
    /// Answers its caller that it could not run.
    fn refuse(self: Box<Self>, why: &str);
}

/// Answers a write's caller once the group's fate is known (`Err` holds why
/// the commit failed).
type Answer = Box<dyn FnOnce(Result<(), &str>) + Send>;

/// A write, what runs once its outcome is known, and the channel its caller
/// waits on.
struct Pending<F, A, T> {
    f: F,
    then: A,
    answer: oneshot::Sender<Result<T, StoreError>>,
}

impl<F, A, T> Write for Pending<F, A, T>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    A: FnOnce(&Result<T, StoreError>) + Send + 'static,
{
    fn run(self: Box<Self>, conn: &Connection) -> (bool, Answer) {
        let Pending { f, then, answer } = *self;
        let outcome = f(conn);
        let failed = outcome.is_err();
        let deliver: Answer = Box::new(move |commit| {
            let result = match (outcome, commit) {
                (Err(e), _) => Err(e),
                (Ok(value), Ok(())) => Ok(value),
                (Ok(_), Err(why)) => Err(StoreError::backend(format!("sqlite group abandoned: {why}"))),
            };
            then(&result);
            // The caller may have gone; the write stands either way.
            let _ = answer.send(result);
        });
        (failed, deliver)
    }

    fn refuse(self: Box<Self>, why: &str) {
        let Pending { then, answer, .. } = *self;
        let result = Err(StoreError::backend(format!("sqlite write not run: {why}")));
        then(&result);
        let _ = answer.send(result);
    }
}

/// What every connection gets: a busy timeout, room for every constant
/// statement in its cache, and a query plan that does not depend on bound
/// values. Without the last, SQLite (with STAT4, as bundled) marks a
/// statement with `LIMIT ?n` for re-preparing whenever `?n` is bound anew,
/// and the statement cache clears bindings on every return, so each page
/// read parsed and planned its SQL again.
fn tune(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    Ok(())
}

/// A column added to a table after databases with the table were made:
/// added on open where missing (`ALTER TABLE ... ADD COLUMN`), so a data dir
/// from an earlier version opens.
#[derive(Debug, Clone, Copy)]
pub struct AddedColumn {
    /// The table.
    pub table: &'static str,
    /// The column's name.
    pub name: &'static str,
    /// Its type and default, as in `CREATE TABLE` (a default is required
    /// for the rows already there).
    pub definition: &'static str,
    /// An index over it (`CREATE INDEX IF NOT EXISTS ...`), made once the
    /// column exists: a schema cannot name a column older files lack.
    pub index: Option<&'static str>,
}

/// A one-off change to the rows of an older file, run on open.
pub type Migration = fn(&Connection) -> rusqlite::Result<()>;

fn add_missing_columns(conn: &Connection, columns: &[AddedColumn]) -> rusqlite::Result<()> {
    for column in columns {
        let present: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2)",
            [column.table, column.name],
            |r| r.get(0),
        )?;
        if !present {
            conn.execute_batch(&format!(
                "ALTER TABLE {} ADD COLUMN {} {}",
                column.table, column.name, column.definition
            ))?;
        }
        if let Some(index) = column.index {
            conn.execute_batch(index)?;
        }
    }
    Ok(())
}

impl SqliteDb {
    /// Opens (creating if needed) `path` and applies `schema` (idempotent DDL).
    pub fn open(path: &Path, schema: &str) -> Result<Self, StoreError> {
        Self::open_adding(path, schema, &[])
    }

    /// [`SqliteDb::open`], then adds the `added` columns where missing.
    pub fn open_adding(path: &Path, schema: &str, added: &[AddedColumn]) -> Result<Self, StoreError> {
        Self::open_migrating(path, schema, added, |_| Ok(()))
    }

    /// [`SqliteDb::open_adding`], then runs `migrate` on the writing
    /// connection before any other write: what a schema alone cannot do to
    /// an older file (filling a new index from the rows already there). It
    /// must be idempotent and cheap once done.
    pub fn open_migrating(
        path: &Path,
        schema: &str,
        added: &[AddedColumn],
        migrate: Migration,
    ) -> Result<Self, StoreError> {
        let io = |at: &Path, e: std::io::Error| StoreError::backend(format!("{}: {e}", at.display()));
        if let Some(dir) = path.parent() {
            crate::create_private_dir(dir).map_err(|e| io(dir, e))?;
        }
        // Made owner-only before SQLite opens it: its WAL and shared-memory
        // files take the database file's permissions.
        crate::create_private_file(path).map_err(|e| io(path, e))?;
        let mut db = Self::init(Connection::open(path)?, schema, added, migrate, &path.display().to_string())?;
        let readers = (0..READERS)
            .map(|_| {
                let conn = Connection::open_with_flags(
                    path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
                )?;
                tune(&conn)?;
                Ok(Mutex::new(conn))
            })
            .collect::<Result<Vec<_>, rusqlite::Error>>()?;
        db.readers = readers.into();
        Ok(db)
    }

    /// A private in-memory database, for tests.
    pub fn in_memory(schema: &str) -> Result<Self, StoreError> {
        Self::in_memory_adding(schema, &[])
    }

    /// [`SqliteDb::in_memory`] with the `added` columns, for tests.
    pub fn in_memory_adding(schema: &str, added: &[AddedColumn]) -> Result<Self, StoreError> {
        Self::in_memory_migrating(schema, added, |_| Ok(()))
    }

    /// [`SqliteDb::in_memory_adding`] with a migration, for tests.
    pub fn in_memory_migrating(schema: &str, added: &[AddedColumn], migrate: Migration) -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory()?, schema, added, migrate, ":memory:")
    }

    fn init(
        conn: Connection,
        schema: &str,
        added: &[AddedColumn],
        migrate: Migration,
        name: &str,
    ) -> Result<Self, StoreError> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // FULL: a write is on disk before it is acknowledged.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        tune(&conn)?;
        conn.execute_batch(schema)?;
        add_missing_columns(&conn, added)?;
        migrate(&conn)?;
        let (writes, queue) = mpsc::channel();
        std::thread::Builder::new()
            .name(format!("sqlite-writer {name}"))
            .spawn(move || write_groups(&conn, &queue))
            .map_err(|e| StoreError::backend(format!("starting the writer of {name}: {e}")))?;
        Ok(Self { writes, readers: Arc::new([]), next_reader: Arc::default() })
    }

    /// Runs the write `f` on the writer connection and answers once it is
    /// committed. `f` runs inside a transaction (a savepoint of the group's):
    /// an `Err` undoes what it wrote and nothing else. It must not begin or
    /// end transactions itself.
    pub async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.call_then(f, |_| ()).await
    }

    /// Like [`call`](Self::call), and `then` runs on the writer thread with
    /// the write's outcome as soon as it is known (after the group's commit,
    /// or its failure), before the caller is answered, and whether or not the
    /// caller still waits: what must follow every committed write (dropping
    /// what a cache holds of it) cannot be skipped by a cancelled caller.
    pub async fn call_then<T, F, A>(&self, f: F, then: A) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
        A: FnOnce(&Result<T, StoreError>) + Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        let write: Box<dyn Write> = Box::new(Pending { f, then, answer });
        self.writes.send(write).map_err(|_| StoreError::backend("the sqlite writer has stopped"))?;
        answered.await.map_err(|_| StoreError::backend("a sqlite write panicked"))?
    }

    /// Runs a read-only `f` on a reader connection (the writer when there
    /// are none). It sees every write committed before it starts.
    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        if self.readers.is_empty() {
            return self.call(f).await;
        }
        let (readers, start) = (self.readers.clone(), self.next_reader.fetch_add(1, Ordering::Relaxed));
        tokio::task::spawn_blocking(move || {
            // Take a free reader if there is one, else wait for ours. A read
            // that panicked poisoned its reader's lock, but left the
            // connection sound (statements reset, snapshots rolled back as
            // they dropped): take it all the same.
            let count = readers.len();
            let free = (0..count).find_map(|i| match readers[(start + i) % count].try_lock() {
                Ok(guard) => Some(guard),
                Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
                Err(TryLockError::WouldBlock) => None,
            });
            let guard = free.unwrap_or_else(|| readers[start % count].lock().unwrap_or_else(PoisonError::into_inner));
            f(&guard)
        })
        .await
        .map_err(|e| StoreError::backend(format!("sqlite task failed: {e}")))?
    }

    /// Like [`read`](Self::read), with every statement of `f` reading the
    /// same snapshot (a savepoint, which also works inside the writer's
    /// transaction, where in-memory databases read). The snapshot is closed
    /// on every path, an error or a panic included, so a reader connection
    /// never keeps an old one open.
    pub async fn read_snapshot<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.read(move |conn| {
            let snapshot = Snapshot::open(conn)?;
            let value = f(conn);
            snapshot.release()?;
            value
        })
        .await
    }
}

/// The writer thread: until every handle is gone, commits what is queued in
/// groups.
fn write_groups(conn: &Connection, queue: &mpsc::Receiver<Box<dyn Write>>) {
    while let Ok(first) = queue.recv() {
        let mut group = Vec::with_capacity(16);
        group.push(first);
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(write) => group.push(write),
                Err(_) => break,
            }
        }
        commit_group(conn, group);
    }
}

fn commit_group(conn: &Connection, group: Vec<Box<dyn Write>>) {
    if let Err(e) = run(conn, "BEGIN IMMEDIATE") {
        let why = e.to_string();
        group.into_iter().for_each(|write| write.refuse(&why));
        return;
    }
    let mut answers = Vec::with_capacity(group.len());
    let mut queued = group.into_iter();
    while let Some(write) = queued.next() {
        if let Err(e) = run(conn, "SAVEPOINT write") {
            return abandon(conn, answers, queued, Some(write), &format!("opening a savepoint: {e}"));
        }
        // A panic drops the write's answer: its caller hears of a failure.
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| write.run(conn)));
        let failed = match ran {
            Ok((failed, answer)) => {
                answers.push(answer);
                failed
            }
            Err(_) => true,
        };
        // A write that ended the transaction itself broke the contract of
        // `call`: what the group wrote so far is no longer known.
        let ended = if conn.is_autocommit() {
            Err("a write ended the group's transaction (whether the group's writes stand is unknown)".to_owned())
        } else {
            let rolled_back = if failed { run(conn, "ROLLBACK TO write") } else { Ok(()) };
            rolled_back.and_then(|()| run(conn, "RELEASE write")).map_err(|e| format!("ending a savepoint: {e}"))
        };
        if let Err(why) = ended {
            return abandon(conn, answers, queued, None, &why);
        }
    }
    match run(conn, "COMMIT") {
        Ok(()) => answers.into_iter().for_each(|answer| answer(Ok(()))),
        Err(e) => abandon(conn, answers, queued, None, &format!("commit failed: {e}")),
    }
}

/// Runs one constant statement, prepared once per connection (these run
/// around every write: parsing them each time showed in profiles).
fn run(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

/// A read snapshot held across several statements until released, or
/// rolled back when dropped unreleased.
struct Snapshot<'c> {
    conn: &'c Connection,
    open: bool,
}

impl<'c> Snapshot<'c> {
    fn open(conn: &'c Connection) -> rusqlite::Result<Self> {
        run(conn, "SAVEPOINT snapshot")?;
        Ok(Self { conn, open: true })
    }

    fn release(mut self) -> rusqlite::Result<()> {
        self.open = false;
        run(self.conn, "RELEASE snapshot")
    }
}

impl Drop for Snapshot<'_> {
    fn drop(&mut self) {
        if self.open {
            let _ = run(self.conn, "ROLLBACK TO snapshot").and_then(|()| run(self.conn, "RELEASE snapshot"));
        }
    }
}

/// Gives the group up: rolls back what is still open, tells every write
/// that ran why its outcome is not a success, and refuses those that did
/// not run (`next`, then the rest of the queue).
fn abandon(
    conn: &Connection,
    answers: Vec<Answer>,
    rest: impl Iterator<Item = Box<dyn Write>>,
    next: Option<Box<dyn Write>>,
    why: &str,
) {
    // Rolling back a transaction SQLite already ended fails harmlessly.
    let _ = conn.execute_batch("ROLLBACK");
    answers.into_iter().for_each(|answer| answer(Err(why)));
    next.into_iter().chain(rest).for_each(|write| write.refuse(why));
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

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v INTEGER NOT NULL);";

    #[tokio::test]
    async fn a_column_added_later_appears_in_an_older_database_with_its_default() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sqlite3");
        let old = SqliteDb::open(&path, SCHEMA).unwrap();
        old.call(|c| Ok(c.execute("INSERT INTO t (k, v) VALUES ('a', 1)", [])?)).await.unwrap();
        drop(old);
        let added = [AddedColumn {
            table: "t",
            name: "note",
            definition: "TEXT NOT NULL DEFAULT 'none'",
            index: Some("CREATE INDEX IF NOT EXISTS t_by_note ON t(note)"),
        }];
        for _ in 0..2 {
            let db = SqliteDb::open_adding(&path, SCHEMA, &added).unwrap();
            let note: String =
                db.read(|c| Ok(c.query_row("SELECT note FROM t WHERE k = 'a'", [], |r| r.get(0))?)).await.unwrap();
            assert_eq!(note, "none");
        }
    }

    fn insert(k: &'static str, v: i64) -> impl FnOnce(&Connection) -> Result<(), StoreError> + Send + 'static {
        move |conn| {
            conn.prepare_cached("INSERT INTO t (k, v) VALUES (?1, ?2)")?.execute(rusqlite::params![k, v])?;
            Ok(())
        }
    }

    async fn count(db: &SqliteDb) -> i64 {
        db.read(|conn| Ok(conn.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))?)).await.unwrap()
    }

    #[tokio::test]
    async fn a_failed_write_in_a_group_undoes_itself_alone() {
        let dir = tempfile::tempdir().unwrap();
        let db = SqliteDb::open(&dir.path().join("t.sqlite3"), SCHEMA).unwrap();
        // Many at once so they share groups; the duplicate fails, its neighbours stand.
        let writes = (0..200).map(|i| {
            let db = db.clone();
            async move {
                let key: &'static str = Box::leak(format!("k{}", i % 150).into_boxed_str());
                db.call(move |conn| {
                    insert(key, i)(conn)?;
                    // A write that fails after writing leaves nothing behind.
                    if i % 7 == 0 {
                        return Err(StoreError::backend("refused"));
                    }
                    Ok(())
                })
                .await
            }
        });
        let results = futures_join(writes).await;
        let ok = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(count(&db).await, i64::try_from(ok).unwrap());
        assert!((150 - 150 / 7 - 1..200).contains(&ok), "{ok} writes stood");
    }

    #[tokio::test]
    async fn what_follows_a_write_runs_after_its_commit_even_when_the_caller_has_gone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sqlite3");
        let db = SqliteDb::open(&path, SCHEMA).unwrap();
        let (seen, saw) = std::sync::mpsc::channel();
        // The writer is held up, so the caller gives up before its write runs.
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let writer = db.clone();
        let blocker = async move {
            writer
                .call(move |_| {
                    let _ = hold.recv();
                    Ok(())
                })
                .await
        };
        let write = db.call_then(insert("a", 1), move |outcome: &Result<(), StoreError>| {
            // Runs on the writer thread once the commit is known: another
            // connection already sees the row.
            let conn = Connection::open(&path).unwrap();
            let visible = conn.query_row("SELECT COUNT(*) FROM t", [], |r| r.get::<_, i64>(0)).unwrap();
            let _ = seen.send((outcome.is_ok(), visible));
        });
        let blocked = tokio::spawn(blocker);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        // The caller goes away before the write has run.
        drop(tokio::time::timeout(std::time::Duration::from_millis(1), write).await);
        release.send(()).unwrap();
        blocked.await.unwrap().unwrap();
        let (ok, visible) = saw.recv_timeout(std::time::Duration::from_secs(5)).expect("then ran");
        assert!(ok);
        assert_eq!(visible, 1, "then ran after the commit");
        assert_eq!(count(&db).await, 1);
    }

    #[tokio::test]
    async fn a_panicking_write_fails_alone_and_the_writer_goes_on() {
        let db = SqliteDb::in_memory(SCHEMA).unwrap();
        let panicked = db
            .call(|conn| -> Result<(), StoreError> {
                insert("a", 1)(conn)?;
                panic!("a bug in a write");
            })
            .await;
        assert!(panicked.is_err());
        db.call(insert("b", 2)).await.unwrap();
        assert_eq!(count(&db).await, 1, "the panicking write left nothing");
    }

    #[tokio::test]
    async fn a_write_that_ends_the_transaction_gives_its_group_up_and_the_writer_goes_on() {
        let db = SqliteDb::in_memory(SCHEMA).unwrap();
        let broken = db
            .call(|conn| {
                insert("a", 1)(conn)?;
                conn.execute_batch("COMMIT")?;
                Ok(())
            })
            .await;
        let message = broken.unwrap_err().to_string();
        assert!(message.contains("ended the group's transaction"), "{message}");
        db.call(insert("b", 2)).await.unwrap();
        db.call(insert("c", 3)).await.unwrap();
        assert_eq!(count(&db).await, 3, "later writes commit as usual");
    }

    #[tokio::test]
    async fn a_write_is_visible_to_readers_once_answered() {
        let dir = tempfile::tempdir().unwrap();
        let db = SqliteDb::open(&dir.path().join("t.sqlite3"), SCHEMA).unwrap();
        for i in 0..20 {
            let key: &'static str = Box::leak(format!("k{i}").into_boxed_str());
            db.call(insert(key, i)).await.unwrap();
            assert_eq!(count(&db).await, i + 1);
        }
    }

    /// A cached statement with `LIMIT ?n`, run with changing limits, is
    /// planned once per connection (readers and the writer alike).
    #[tokio::test]
    async fn a_cached_statement_with_bound_limits_is_not_prepared_again() {
        use rusqlite::StatementStatus::RePrepare;
        let page = |limit: i64| {
            move |conn: &Connection| {
                let mut stmt = conn.prepare_cached("SELECT k FROM t WHERE v >= ?1 ORDER BY k LIMIT ?2")?;
                let keys = stmt.query_map(rusqlite::params![0, limit], |r| r.get::<_, String>(0))?.count();
                Ok((keys, stmt.get_status(RePrepare)))
            }
        };
        let dir = tempfile::tempdir().unwrap();
        let db = SqliteDb::open(&dir.path().join("t.sqlite3"), SCHEMA).unwrap();
        for i in 0..5 {
            db.call(insert(["a", "b", "c", "d", "e"][i], i as i64)).await.unwrap();
        }
        for limit in [2, 3, 2, 5, 1, 4, 2, 3] {
            // Enough reads that every reader connection serves several.
            for _ in 0..READERS {
                let (rows, reprepared) = db.read(page(limit)).await.unwrap();
                assert_eq!((rows, reprepared), (limit as usize, 0), "limit {limit} on a reader");
            }
            let (rows, reprepared) = db.call(page(limit)).await.unwrap();
            assert_eq!((rows, reprepared), (limit as usize, 0), "limit {limit} on the writer");
        }
    }

    /// A snapshot read that fails or panics closes its snapshot: later
    /// reads on every reader see later writes.
    #[tokio::test]
    async fn a_snapshot_read_that_fails_leaves_no_snapshot_open() {
        let dir = tempfile::tempdir().unwrap();
        let db = SqliteDb::open(&dir.path().join("t.sqlite3"), SCHEMA).unwrap();
        db.call(insert("a", 1)).await.unwrap();
        for _ in 0..READERS {
            let failed = db
                .read_snapshot(|conn| {
                    conn.query_row("SELECT COUNT(*) FROM t", [], |r| r.get::<_, i64>(0))?;
                    Err::<(), _>(StoreError::backend("refused"))
                })
                .await;
            assert!(failed.is_err());
            let panicked = db
                .read_snapshot(|conn| -> Result<(), StoreError> {
                    conn.query_row("SELECT COUNT(*) FROM t", [], |r| r.get::<_, i64>(0))?;
                    panic!("a reader that panics")
                })
                .await;
            assert!(panicked.is_err());
        }
        db.call(insert("b", 2)).await.unwrap();
        for _ in 0..READERS * 2 {
            let (outer, inner) = db
                .read_snapshot(|conn| {
                    let count =
                        |conn: &Connection| conn.query_row("SELECT COUNT(*) FROM t", [], |r| r.get::<_, i64>(0));
                    Ok((count(conn)?, count(conn)?))
                })
                .await
                .unwrap();
            assert_eq!((outer, inner), (2, 2), "every reader sees the later write");
        }
    }

    async fn futures_join<F: std::future::Future + Send + 'static>(
        futures: impl IntoIterator<Item = F>,
    ) -> Vec<F::Output>
    where
        F::Output: Send + 'static,
    {
        let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
        let mut out = Vec::new();
        for h in handles {
            out.push(h.await.unwrap());
        }
        out
    }
}
