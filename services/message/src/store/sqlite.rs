//! The message store on SQLite (embedded mode). Appends run one after
//! another on the one writing connection (each in its savepoint of a group
//! commit), so `seq` order is commit order.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use chatterbox_store::{AddedColumn, SqliteDb, StoreError};
use chatterbox_types::{ConversationId, MessageId, MessageKind, Timestamp, UserId};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::versions::HistoryVersions;
use super::{
    Attachment, MentionCursor, Message, MessageStore, NewMessage, PinCursor, Reacted, ReactionCount, Reactors,
    ReadMark, SummaryRead, Window,
};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    sender_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    content TEXT NOT NULL,
    attachments TEXT NOT NULL,
    client_id TEXT,
    client_key TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    edited_at INTEGER,
    deleted INTEGER NOT NULL DEFAULT 0,
    created_change INTEGER NOT NULL,
    change_seq INTEGER NOT NULL,
    UNIQUE (conversation_id, seq),
    UNIQUE (conversation_id, sender_id, client_key)
);
-- Also where each conversation's change counter stands: its highest
-- `change_seq` (see `next_change`).
CREATE INDEX IF NOT EXISTS messages_by_change ON messages(conversation_id, change_seq);
-- The counter as a table of its own (older files): no longer kept.
DROP TABLE IF EXISTS change_counters;
CREATE TABLE IF NOT EXISTS reactions (
    message_id TEXT NOT NULL,
    emoji TEXT NOT NULL,
    user_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    -- When this emoji first appeared on the message (shared by its rows
    -- while any stands): the order reactions are shown in.
    emoji_since INTEGER NOT NULL,
    PRIMARY KEY (message_id, emoji, user_id)
);
-- Who each live message mentions (its sender left out): unread mention
-- counts and each user's mentions, newest first, by index.
CREATE TABLE IF NOT EXISTS mentions (
    user_id TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    message_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, conversation_id, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS mentions_newest ON mentions(user_id, created_at, message_id);
CREATE INDEX IF NOT EXISTS mentions_of_message ON mentions(message_id);
-- Each live message's search terms (`crate::search`), by the message's
-- rowid (stable: messages has no INTEGER PRIMARY KEY, and nothing here
-- runs VACUUM): terms only, no copy of the text; the ascii tokenizer splits
-- on ASCII spaces and punctuation only, so every term stays one token.
CREATE VIRTUAL TABLE IF NOT EXISTS message_terms USING fts5(
    terms, content = '', contentless_delete = 1, detail = none, tokenize = 'ascii'
);
-- How far `message_terms` has caught up with `messages`: every message up
-- to this rowid is indexed (rowids only grow: messages are never removed,
-- a deletion keeps a tombstone).
CREATE TABLE IF NOT EXISTS search_progress (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    upto INTEGER NOT NULL
);
-- One-off migrations done to this file.
CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS read_marks (
    conversation_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    read_at INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, user_id)
);
";

/// Columns added since the first schema (existing databases gain them).
const ADDED: &[AddedColumn] = &[
    AddedColumn {
        table: "messages",
        name: "reply_to",
        definition: "TEXT",
        index: Some(
            "CREATE INDEX IF NOT EXISTS messages_by_reply ON messages(reply_to, seq) WHERE reply_to IS NOT NULL",
        ),
    },
    AddedColumn {
        table: "messages",
        name: "pinned_at",
        definition: "INTEGER",
        index: Some(
            "CREATE INDEX IF NOT EXISTS messages_pinned ON messages(conversation_id, pinned_at, id) WHERE pinned_at IS NOT NULL",
        ),
    },
    // A JSON array of user ids; NULL for none.
    AddedColumn { table: "messages", name: "mentions", definition: "TEXT", index: None },
];

const COLUMNS: &str = "id, conversation_id, seq, sender_id, kind, content, attachments, client_id, created_at, edited_at, deleted, created_change, change_seq, reply_to, pinned_at, mentions";

/// Messages in a SQLite file. Its one writing connection sees every write,
/// so it knows each conversation's history version exactly.
///
/// Search terms are indexed behind the appends, in batches (see
/// [`TermsBehind`]), not in each append's transaction.
#[derive(Debug, Clone)]
pub struct SqliteMessageStore {
    db: SqliteDb,
    versions: Arc<HistoryVersions>,
    terms: Arc<TermsBehind>,
}

/// The full-text index kept a little behind the messages. An FTS5 table
/// costs about 200 µs of the writer's time per transaction that touches it
/// (its in-memory terms are flushed as a new segment, its structure record
/// rewritten, segments merged), whatever the rows: indexing each append in
/// its own group commit made a lone append cost the writer about three
/// times as much, on the one thread every write of the file waits for. So appends
/// only count themselves here; the terms of what was appended are written
/// in one transaction [`CATCH_UP_AFTER`] later, or before a search reads
/// (a search finds every message acknowledged before it began), or when
/// the file next opens (after a crash). Edits and deletions still re-index
/// in their own transaction: they are rare, and must not be overtaken.
#[derive(Debug, Default)]
struct TermsBehind {
    /// Appends (and imports) committed so far.
    appended: AtomicU64,
    /// `appended` as it stood when the newest committed catch-up began:
    /// those are all indexed.
    indexed: AtomicU64,
    /// A catch-up is waiting to run.
    scheduled: AtomicBool,
}

/// How long after an append its terms are written (those of every append in
/// between go in the same transaction).
const CATCH_UP_AFTER: Duration = Duration::from_millis(100);

/// Most messages a catch-up indexes in one call of the writer thread (a
/// catch-up over many, as after an import, takes several, so other writes
/// go between). It holds up every append queued behind it: under 30,000
/// appends/s (`chatterbox-bench store`) a batch of 2,000 put the appends'
/// p99 at 17-38 ms, one of 250 at 8-19 ms, with no more CPU per append
/// (26-29 µs against 29-32 µs, within the runs' spread).
const CATCH_UP_BATCH: usize = 250;

/// The same when the file opens (nothing waits then; each batch is a commit).
const OPEN_BATCH: usize = 2_000;

impl SqliteMessageStore {
    /// Opens the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Ok(Self::over(SqliteDb::open_migrating(path, SCHEMA, ADDED, catch_up_on_open)?))
    }

    /// A throwaway in-memory store, for tests.
    pub fn in_memory() -> Result<Self, StoreError> {
        Ok(Self::over(SqliteDb::in_memory_migrating(SCHEMA, ADDED, catch_up_on_open)?))
    }

    fn over(db: SqliteDb) -> Self {
        Self { db, versions: Arc::default(), terms: Arc::default() }
    }

    /// Counts `count` messages just committed, and has their terms indexed
    /// shortly on `runtime` (one catch-up for all that come meanwhile).
    fn appended(&self, runtime: &tokio::runtime::Handle, count: u64) {
        self.terms.appended.fetch_add(count, Ordering::AcqRel);
        if self.terms.scheduled.swap(true, Ordering::AcqRel) {
            return;
        }
        let store = self.clone();
        runtime.spawn(async move {
            tokio::time::sleep(CATCH_UP_AFTER).await;
            store.terms.scheduled.store(false, Ordering::Release);
            if let Err(e) = store.catch_up().await {
                // Done by the next search, or when the file next opens.
                tracing::warn!(error = %e, "indexing the search terms of new messages failed");
            }
        });
    }

    /// Indexes the terms of every message committed before this call.
    async fn catch_up(&self) -> Result<(), StoreError> {
        let wanted = self.terms.appended.load(Ordering::Acquire);
        if self.terms.indexed.load(Ordering::Acquire) >= wanted {
            return Ok(());
        }
        while self.db.call(|conn| Ok(index_behind(conn, CATCH_UP_BATCH)?)).await? {}
        self.terms.indexed.fetch_max(wanted, Ordering::AcqRel);
        Ok(())
    }

    /// Runs the write `f` to `conversation`; its history version moves once
    /// the outcome is known, before anyone is told of it.
    async fn write_to<T, F>(&self, conversation: ConversationId, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.write_adding(conversation, f, |_| 0).await
    }

    /// [`write_to`](Self::write_to) for a write that adds messages (`added`
    /// says how many, from its outcome). They are counted for the search
    /// index's catch-up on the writer thread, once committed and before the
    /// caller is answered, so a search that follows finds them, and so are
    /// those of a caller that has gone meanwhile.
    async fn write_adding<T, F, N>(&self, conversation: ConversationId, f: F, added: N) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
        N: FnOnce(&T) -> u64 + Send + 'static,
    {
        let (store, runtime) = (self.clone(), tokio::runtime::Handle::current());
        self.db
            .call_then(f, move |outcome| {
                store.versions.bump(conversation);
                if let Some(count) = outcome.as_ref().ok().map(added).filter(|&n| n > 0) {
                    store.appended(&runtime, count);
                }
            })
            .await
    }

    /// Runs the write `f` to one message (an edit, a deletion): the version
    /// of the message's conversation moves, or every one when a failure
    /// hides which conversation it was.
    async fn write_to_message<F>(&self, f: F) -> Result<Option<Message>, StoreError>
    where
        F: FnOnce(&Connection) -> Result<Option<Message>, StoreError> + Send + 'static,
    {
        let versions = self.versions.clone();
        self.db
            .call_then(f, move |outcome| match outcome {
                Ok(Some(m)) => versions.bump(m.conversation_id),
                Ok(None) => {}
                Err(_) => versions.bump_all(),
            })
            .await
    }
}

fn conversion(what: &'static str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Text,
        Box::new(chatterbox_types::InvalidValue::new(what)),
    )
}

/// Message ids as a JSON array, for `json_each` (one statement, however many).
fn json_ids(ids: &[MessageId]) -> Result<String, StoreError> {
    serde_json::to_string(&ids.iter().map(ToString::to_string).collect::<Vec<_>>()).map_err(StoreError::backend)
}

fn attachments_column(attachments: &[Attachment]) -> String {
    if attachments.is_empty() { String::new() } else { serde_json::to_string(attachments).unwrap_or_default() }
}

fn message(r: &Row<'_>) -> rusqlite::Result<Message> {
    // Ids and attachments are read in place (no owned copy of the text).
    let text = |i: usize| r.get_ref(i).and_then(|v| v.as_str().map_err(rusqlite::Error::from));
    // Stored as a JSON array; empty for none.
    let attachments = text(6)?;
    let attachments: Vec<Attachment> = if attachments.is_empty() {
        Vec::new()
    } else {
        serde_json::from_str(attachments).map_err(|_| conversion("attachments"))?
    };
    Ok(Message {
        id: MessageId::parse(text(0)?).map_err(|_| conversion("message id"))?,
        conversation_id: ConversationId::parse(text(1)?).map_err(|_| conversion("conversation id"))?,
        seq: r.get(2)?,
        sender_id: UserId::parse(text(3)?).map_err(|_| conversion("sender id"))?,
        kind: MessageKind::parse(text(4)?).map_err(|_| conversion("message kind"))?,
        content: r.get(5)?,
        attachments,
        client_id: r.get(7)?,
        created_at: Timestamp::from_millis(r.get(8)?),
        edited_at: r.get::<_, Option<i64>>(9)?.map(Timestamp::from_millis),
        deleted: r.get(10)?,
        created_change: r.get(11)?,
        change_seq: r.get(12)?,
        reply_to: match r.get_ref(13)?.as_str_or_null()? {
            Some(id) => Some(MessageId::parse(id).map_err(|_| conversion("reply_to"))?),
            None => None,
        },
        pinned_at: r.get::<_, Option<i64>>(14)?.map(Timestamp::from_millis),
        mentions: match r.get_ref(15)?.as_str_or_null()? {
            Some(ids) => serde_json::from_str::<Vec<UserId>>(ids).map_err(|_| conversion("mentions"))?,
            None => Vec::new(),
        },
    })
}

/// On open: where the index stands (for a file of a version that indexed
/// each append, or knew no search, where its data says), then indexes
/// whatever it lacks, such as the last appends before a crash.
fn catch_up_on_open(conn: &Connection) -> rusqlite::Result<()> {
    let known: bool = conn.query_row("SELECT EXISTS (SELECT 1 FROM search_progress)", [], |r| r.get(0))?;
    if !known {
        // "search terms": indexed when appended (the version before this
        // one), so all of it; a file without it predates search.
        let indexed: bool =
            conn.query_row("SELECT EXISTS (SELECT 1 FROM migrations WHERE name = 'search terms')", [], |r| r.get(0))?;
        conn.execute(
            "INSERT INTO search_progress (id, upto)
             VALUES (0, CASE WHEN ?1 THEN (SELECT COALESCE(MAX(rowid), 0) FROM messages) ELSE 0 END)",
            [indexed],
        )?;
    }
    while index_behind(conn, OPEN_BATCH)? {}
    Ok(())
}

/// Indexes the terms of the live messages past `search_progress`, at most
/// `batch` of them, and moves it past them; says whether more remain.
/// Deleted ones are passed over (a deletion removes their terms itself).
fn index_behind(conn: &Connection, batch: usize) -> rusqlite::Result<bool> {
    let upto: i64 =
        conn.prepare_cached("SELECT upto FROM search_progress WHERE id = 0")?.query_row([], |r| r.get(0))?;
    let mut last = upto;
    let mut seen = 0;
    {
        let mut behind = conn.prepare_cached(
            "SELECT rowid, conversation_id, content, deleted FROM messages WHERE rowid > ?1 ORDER BY rowid LIMIT ?2",
        )?;
        let mut rows = behind.query(params![upto, batch])?;
        while let Some(row) = rows.next()? {
            last = row.get(0)?;
            seen += 1;
            if !row.get::<_, bool>(3)? {
                index_terms(conn, last, row.get_ref(1)?.as_str()?, &words_of(row.get_ref(2)?.as_str()?))?;
            }
        }
    }
    if last > upto {
        conn.prepare_cached("UPDATE search_progress SET upto = ?1 WHERE id = 0")?.execute([last])?;
    }
    Ok(seen == batch)
}

/// The term that stands for a conversation in `message_terms`: `§` and its
/// id. No text gives it (`§` is punctuation to `crate::search`, which never
/// puts it in a term), and the ascii tokenizer keeps it in the token.
fn conversation_term(conversation: &str) -> String {
    format!("§{}", conversation.to_ascii_lowercase())
}

/// Searches of at most this many conversations name them in the full-text
/// query, so only their messages are read; wider ones read the matches
/// newest first and keep those of the conversations searched (a caller in
/// many conversations usually has matches in them).
const NAMED_CONVERSATIONS: usize = 50;

/// The search terms of `content` as `message_terms` keeps them (empty for
/// none). An edit works them out before it queues for the writer thread;
/// the catch-up, which reads what it indexes, on it.
fn words_of(content: &str) -> String {
    crate::search::terms(content).join(" ")
}

/// Keeps the search terms (`words`, from [`words_of`]) of the message at
/// `rowid` of `conversation` (replacing any).
fn index_terms(conn: &Connection, rowid: i64, conversation: &str, words: &str) -> rusqlite::Result<()> {
    if words.is_empty() {
        return unindex_terms(conn, rowid);
    }
    let text = format!("{} {words}", conversation_term(conversation));
    conn.prepare_cached("INSERT OR REPLACE INTO message_terms (rowid, terms) VALUES (?1, ?2)")?
        .execute(params![rowid, text])?;
    Ok(())
}

fn unindex_terms(conn: &Connection, rowid: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM message_terms WHERE rowid = ?1")?.execute([rowid])?;
    Ok(())
}

fn rowid_of(conn: &Connection, id: &str) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT rowid FROM messages WHERE id = ?1")?.query_row([id], |r| r.get(0)).optional()
}

/// Mentioned users as stored with the message: a JSON array, NULL for none.
fn mentions_column(mentions: &[UserId]) -> Option<String> {
    (!mentions.is_empty()).then(|| serde_json::to_string(mentions).unwrap_or_default())
}

/// Indexes who a live message mentions (its sender left out), replacing
/// what was indexed for it before.
fn index_mentions(conn: &Connection, m: &Message) -> rusqlite::Result<()> {
    let id = m.id.to_string();
    conn.prepare_cached("DELETE FROM mentions WHERE message_id = ?1")?.execute([&id])?;
    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO mentions (user_id, conversation_id, seq, message_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for user in m.mentions.iter().filter(|u| **u != m.sender_id) {
        insert.execute(params![user.to_string(), m.conversation_id.to_string(), m.seq, id, m.created_at.millis()])?;
    }
    Ok(())
}

/// The next number of `conversation`'s change counter: one past its
/// highest `change_seq`, read from the end of `messages_by_change`. Every
/// number taken is written into the `change_seq` of a message in the same
/// transaction, and messages are never removed (a deletion leaves a
/// tombstone), so the highest one stored is the last one taken. A counter
/// row of its own cost each append another page rewritten in the group's
/// commit (a random one of the table's, under many conversations).
fn next_change(conn: &Connection, conversation: &str) -> rusqlite::Result<u64> {
    conn.prepare_cached("SELECT COALESCE(MAX(change_seq), 0) + 1 FROM messages WHERE conversation_id = ?1")?
        .query_row([conversation], |r| r.get(0))
}

fn by_id(conn: &Connection, id: &str) -> Result<Option<Message>, StoreError> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM messages WHERE id = ?1"))?
        .query_row([id], message)
        .optional()?)
}

/// A window of history, in ascending `seq`.
fn list_in(
    conn: &Connection,
    conversation: ConversationId,
    window: Window,
    limit: u32,
) -> Result<Vec<Message>, StoreError> {
    let c = conversation.to_string();
    let (sql, bound) = match window {
        Window::Latest => ("conversation_id = ?1 ORDER BY seq DESC", None),
        Window::Before(s) => ("conversation_id = ?1 AND seq < ?3 ORDER BY seq DESC", Some(s)),
        Window::After(s) => ("conversation_id = ?1 AND seq > ?3 ORDER BY seq ASC", Some(s)),
    };
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM messages WHERE {sql} LIMIT ?2"))?;
    let mut rows = match bound {
        Some(b) => stmt.query_map(params![c, limit, b], message)?.collect::<Result<Vec<_>, _>>()?,
        None => stmt.query_map(params![c, limit], message)?.collect::<Result<Vec<_>, _>>()?,
    };
    rows.sort_by_key(|m| m.seq);
    Ok(rows)
}

/// Others' live messages above `after_seq`, as `user` counts them unread.
fn unread_in(conn: &Connection, conversation: ConversationId, user: UserId, after_seq: u64) -> rusqlite::Result<u64> {
    conn.prepare_cached(
        "SELECT COUNT(*) FROM messages WHERE conversation_id = ?1 AND seq > ?2 AND sender_id != ?3 AND deleted = 0",
    )?
    .query_row(params![conversation.to_string(), after_seq, user.to_string()], |r| r.get(0))
}

/// Those of them that mention `user`.
fn mentions_in(conn: &Connection, conversation: ConversationId, user: UserId, after_seq: u64) -> rusqlite::Result<u64> {
    conn.prepare_cached("SELECT COUNT(*) FROM mentions WHERE user_id = ?1 AND conversation_id = ?2 AND seq > ?3")?
        .query_row(params![user.to_string(), conversation.to_string(), after_seq], |r| r.get(0))
}

/// Every read watermark of a conversation.
fn marks_in(conn: &Connection, conversation: ConversationId) -> Result<Vec<ReadMark>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT user_id, seq, read_at FROM read_marks WHERE conversation_id = ?1")?;
    let rows = stmt.query_map([conversation.to_string()], |r| {
        Ok(ReadMark {
            user_id: UserId::parse(&r.get::<_, String>(0)?).map_err(|_| conversion("user id"))?,
            seq: r.get(1)?,
            read_at: Timestamp::from_millis(r.get(2)?),
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

#[async_trait::async_trait]
impl MessageStore for SqliteMessageStore {
    async fn append(&self, m: &NewMessage) -> Result<(Message, bool), StoreError> {
        // Everything that needs no database is worked out here, not on the
        // writer thread, which every write of the file queues for.
        let m = m.clone();
        let conversation = m.conversation_id.to_string();
        let (id, sender, key) = (m.id.to_string(), m.sender_id.to_string(), m.idempotency_key());
        let (attachments, mentions) = (attachments_column(&m.attachments), mentions_column(&m.mentions));
        let reply_to = m.reply_to.map(|r| r.to_string());
        let conversation_id = m.conversation_id;
        self.write_adding(conversation_id, move |conn| {
            let existing = conn
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM messages WHERE conversation_id = ?1 AND sender_id = ?2 AND client_key = ?3"
                ))?
                .query_row(params![conversation, sender, key], message)
                .optional()?;
            if let Some(existing) = existing {
                return Ok((existing, false));
            }
            let seq: u64 = conn
                .prepare_cached("SELECT COALESCE(MAX(seq), 0) + 1 FROM messages WHERE conversation_id = ?1")?
                .query_row([&conversation], |r| r.get(0))?;
            let change = next_change(conn, &conversation)?;
            conn.prepare_cached(&format!(
                "INSERT INTO messages ({COLUMNS}, client_key) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, NULL, 0, ?10, ?10, ?12, NULL, ?13, ?11)"
            ))?
            .execute(params![
                id,
                conversation,
                seq,
                sender,
                m.kind.as_str(),
                m.content,
                attachments,
                m.client_id,
                m.created_at.millis(),
                change,
                key,
                reply_to,
                mentions
            ])?;
            let stored = Message {
                id: m.id,
                conversation_id: m.conversation_id,
                seq,
                sender_id: m.sender_id,
                kind: m.kind,
                content: m.content,
                attachments: m.attachments,
                client_id: m.client_id,
                created_at: m.created_at,
                edited_at: None,
                deleted: false,
                created_change: change,
                change_seq: change,
                reply_to: m.reply_to,
                pinned_at: None,
                mentions: m.mentions,
            };
            if !stored.mentions.is_empty() {
                index_mentions(conn, &stored)?;
            }
            Ok((stored, true))
        }, |(_, created)| u64::from(*created))
        .await
    }

    async fn import(&self, conversation: ConversationId, messages: &[NewMessage]) -> Result<(), StoreError> {
        let (messages, count) = (messages.to_vec(), u64::try_from(messages.len()).unwrap_or(u64::MAX));
        self.write_adding(conversation, move |conn| {
                let c = conversation.to_string();
                let mut seq: u64 = conn.prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM messages WHERE conversation_id = ?1")?.query_row([&c],
                    |r| r.get(0),
                )?;
                {
                    let mut insert = conn.prepare_cached(&format!(
                        "INSERT INTO messages ({COLUMNS}, client_key) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, NULL, 0, ?10, ?10, ?12, NULL, ?13, ?11)"
                    ))?;
                    for m in &messages {
                        seq += 1;
                        let change = next_change(conn, &c)?;
                        insert.execute(params![
                            m.id.to_string(),
                            c,
                            seq,
                            m.sender_id.to_string(),
                            m.kind.as_str(),
                            m.content,
                            attachments_column(&m.attachments),
                            m.client_id,
                            m.created_at.millis(),
                            change,
                            m.idempotency_key(),
                            m.reply_to.map(|r| r.to_string()),
                            mentions_column(&m.mentions)
                        ])?;
                        if !m.mentions.is_empty() {
                            let imported = by_id(conn, &m.id.to_string())?
                                .ok_or_else(|| StoreError::backend("an imported message vanished"))?;
                            index_mentions(conn, &imported)?;
                        }
                    }
                }
                Ok(())
            }, move |()| count)
            .await
    }

    async fn get(&self, id: MessageId) -> Result<Option<Message>, StoreError> {
        self.db.read(move |conn| by_id(conn, &id.to_string())).await
    }

    async fn list(&self, conversation: ConversationId, window: Window, limit: u32) -> Result<Vec<Message>, StoreError> {
        self.db.read(move |conn| list_in(conn, conversation, window, limit)).await
    }

    async fn page(
        &self,
        conversation: ConversationId,
        window: Window,
        limit: u32,
    ) -> Result<(Vec<Message>, Vec<ReadMark>), StoreError> {
        // One snapshot, one trip to the blocking pool.
        self.db
            .read_snapshot(move |conn| {
                let messages = list_in(conn, conversation, window, limit)?;
                Ok((messages, marks_in(conn, conversation)?))
            })
            .await
    }

    async fn read_marks_of(
        &self,
        conversations: &[ConversationId],
    ) -> Result<std::collections::HashMap<ConversationId, Vec<ReadMark>>, StoreError> {
        let conversations = conversations.to_vec();
        self.db
            .read_snapshot(move |conn| {
                let mut found = std::collections::HashMap::new();
                for c in conversations {
                    let marks = marks_in(conn, c)?;
                    if !marks.is_empty() {
                        found.insert(c, marks);
                    }
                }
                Ok(found)
            })
            .await
    }

    async fn summary(&self, conversation: ConversationId, reader: UserId) -> Result<SummaryRead, StoreError> {
        // One snapshot, one trip to the blocking pool.
        self.db
            .read_snapshot(move |conn| {
                let marks = marks_in(conn, conversation)?;
                let mine = marks.iter().find(|m| m.user_id == reader).map_or(0, |m| m.seq);
                let latest = list_in(conn, conversation, Window::Latest, 1)?.pop();
                let unread = unread_in(conn, conversation, reader, mine)?;
                let mentions = mentions_in(conn, conversation, reader, mine)?;
                Ok(SummaryRead { marks, latest, unread, mentions })
            })
            .await
    }

    async fn latest(&self, conversation: ConversationId) -> Result<Option<Message>, StoreError> {
        Ok(self.list(conversation, Window::Latest, 1).await?.pop())
    }

    async fn edit(
        &self,
        id: MessageId,
        content: &str,
        mentions: &[UserId],
        now: Timestamp,
    ) -> Result<Option<Message>, StoreError> {
        let (content, mentions) = (content.to_owned(), mentions.to_vec());
        let words = words_of(&content);
        self.write_to_message(move |conn| {
            let Some(current) = by_id(conn, &id.to_string())? else { return Ok(None) };
            if current.deleted {
                return Ok(None);
            }
            let change = next_change(conn, &current.conversation_id.to_string())?;
            conn.prepare_cached(
                "UPDATE messages SET content = ?2, edited_at = ?3, change_seq = ?4, mentions = ?5 WHERE id = ?1",
            )?
            .execute(params![
                id.to_string(),
                content,
                now.millis(),
                change,
                mentions_column(&mentions)
            ])?;
            let updated = by_id(conn, &id.to_string())?;
            if let Some(updated) = &updated {
                index_mentions(conn, updated)?;
            }
            if let Some(rowid) = rowid_of(conn, &id.to_string())? {
                index_terms(conn, rowid, &current.conversation_id.to_string(), &words)?;
            }
            Ok(updated)
        })
        .await
    }

    async fn delete(&self, id: MessageId) -> Result<Option<Message>, StoreError> {
        self.write_to_message(move |conn| {
            let Some(current) = by_id(conn, &id.to_string())? else { return Ok(None) };
            if current.deleted {
                return Ok(Some(current));
            }
            let change = next_change(conn, &current.conversation_id.to_string())?;
            conn.prepare_cached(
                "UPDATE messages SET content = '', attachments = '', deleted = 1, pinned_at = NULL, mentions = NULL,
                        change_seq = ?2 WHERE id = ?1",
            )?
            .execute(params![id.to_string(), change])?;
            // Its reactions and mentions go with its content.
            conn.prepare_cached("DELETE FROM reactions WHERE message_id = ?1")?.execute([id.to_string()])?;
            conn.prepare_cached("DELETE FROM mentions WHERE message_id = ?1")?.execute([id.to_string()])?;
            if let Some(rowid) = rowid_of(conn, &id.to_string())? {
                unindex_terms(conn, rowid)?;
            }
            let updated = by_id(conn, &id.to_string())?;
            Ok(updated)
        })
        .await
    }

    async fn count_unread(
        &self,
        conversation: ConversationId,
        user: UserId,
        after_seq: u64,
    ) -> Result<u64, StoreError> {
        self.db.read(move |conn| Ok(unread_in(conn, conversation, user, after_seq)?)).await
    }

    async fn count_mentions(
        &self,
        conversation: ConversationId,
        user: UserId,
        after_seq: u64,
    ) -> Result<u64, StoreError> {
        self.db.read(move |conn| Ok(mentions_in(conn, conversation, user, after_seq)?)).await
    }

    async fn mentioning(
        &self,
        user: UserId,
        after: Option<MentionCursor>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        self.db
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM messages WHERE id IN (
                       SELECT message_id FROM mentions WHERE user_id = ?1
                         AND (?2 IS NULL OR (created_at, message_id) < (?2, ?3))
                       ORDER BY created_at DESC, message_id DESC LIMIT ?4)"
                ))?;
                let rows = stmt.query_map(
                    params![
                        user.to_string(),
                        after.map(|a| a.created_at.millis()),
                        after.map(|a| a.id.to_string()),
                        limit
                    ],
                    message,
                )?;
                let mut found = rows.collect::<Result<Vec<_>, _>>()?;
                found.sort_unstable_by_key(|m| std::cmp::Reverse((m.created_at, m.id)));
                Ok(found)
            })
            .await
    }

    async fn search(
        &self,
        terms: &[String],
        conversations: &[ConversationId],
        before: Option<MessageId>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        if terms.is_empty() || conversations.is_empty() {
            return Ok(Vec::new());
        }
        // What was acknowledged before this search is found by it.
        self.catch_up().await?;
        // Every term quoted (none holds a quote: terms are letters and digits).
        let mut matching = terms.iter().map(|t| format!("\"{t}\"")).collect::<Vec<_>>().join(" AND ");
        if conversations.len() <= NAMED_CONVERSATIONS {
            let named: Vec<String> =
                conversations.iter().map(|c| format!("\"{}\"", conversation_term(&c.to_string()))).collect();
            matching = format!("({matching}) AND ({})", named.join(" OR "));
        }
        let conversations = serde_json::to_string(&conversations.iter().map(ToString::to_string).collect::<Vec<_>>())
            .map_err(StoreError::backend)?;
        self.db
            .read(move |conn| {
                // Below the cursor's message (in the order messages were stored).
                let below = match before {
                    None => i64::MAX,
                    Some(id) => match rowid_of(conn, &id.to_string())? {
                        Some(rowid) => rowid,
                        None => return Ok(Vec::new()),
                    },
                };
                let mut stmt = conn.prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM messages WHERE rowid IN (
                       SELECT t.rowid FROM message_terms t JOIN messages m ON m.rowid = t.rowid
                       WHERE message_terms MATCH ?1 AND t.rowid < ?3
                         AND m.conversation_id IN (SELECT value FROM json_each(?2))
                       ORDER BY t.rowid DESC LIMIT ?4)
                     ORDER BY rowid DESC"
                ))?;
                let rows = stmt.query_map(params![matching, conversations, below, limit], message)?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await
    }

    async fn read_marks(&self, conversation: ConversationId) -> Result<Vec<ReadMark>, StoreError> {
        self.db.read(move |conn| marks_in(conn, conversation)).await
    }

    async fn mark_read(
        &self,
        conversation: ConversationId,
        user: UserId,
        seq: u64,
        now: Timestamp,
    ) -> Result<ReadMark, StoreError> {
        self.write_to(conversation, move |conn| {
            let (seq, read_at): (u64, i64) = conn
                .prepare_cached(
                    "INSERT INTO read_marks (conversation_id, user_id, seq, read_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(conversation_id, user_id) DO UPDATE SET
                        read_at = CASE WHEN excluded.seq > seq THEN excluded.read_at ELSE read_at END,
                        seq = MAX(seq, excluded.seq)
                     RETURNING seq, read_at",
                )?
                .query_row(params![conversation.to_string(), user.to_string(), seq, now.millis()], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?;
            Ok(ReadMark { user_id: user, seq, read_at: Timestamp::from_millis(read_at) })
        })
        .await
    }

    fn history_version(&self, conversation: ConversationId) -> Option<u64> {
        Some(self.versions.current(conversation))
    }

    async fn react(
        &self,
        id: MessageId,
        user: UserId,
        emoji: &str,
        add: bool,
        at: Timestamp,
        most: usize,
    ) -> Result<Option<Reacted>, StoreError> {
        let emoji = emoji.to_owned();
        let versions = self.versions.clone();
        self.db
            .call_then(
                move |conn| {
                    let (message, user) = (id.to_string(), user.to_string());
                    let Some(current) = by_id(conn, &message)? else { return Ok(None) };
                    if current.deleted {
                        return Ok(None);
                    }
                    let changed = if add {
                        let (distinct, used): (u64, bool) = conn
                            .prepare_cached(
                                "SELECT COUNT(DISTINCT emoji), COALESCE(MAX(emoji = ?2), 0) FROM reactions
                                 WHERE message_id = ?1",
                            )?
                            .query_row(params![message, emoji], |r| Ok((r.get(0)?, r.get(1)?)))?;
                        if !used && distinct >= most as u64 {
                            return Ok(Some(Reacted::TooMany));
                        }
                        conn.prepare_cached(
                            "INSERT OR IGNORE INTO reactions (message_id, emoji, user_id, created_at, emoji_since)
                             VALUES (?1, ?2, ?3, ?4, COALESCE((SELECT MIN(emoji_since) FROM reactions
                                                               WHERE message_id = ?1 AND emoji = ?2), ?4))",
                        )?
                        .execute(params![message, emoji, user, at.millis()])?
                            > 0
                    } else {
                        conn.prepare_cached(
                            "DELETE FROM reactions WHERE message_id = ?1 AND emoji = ?2 AND user_id = ?3",
                        )?
                        .execute(params![message, emoji, user])?
                            > 0
                    };
                    if !changed {
                        return Ok(Some(Reacted::Unchanged(current)));
                    }
                    let change = next_change(conn, &current.conversation_id.to_string())?;
                    conn.prepare_cached("UPDATE messages SET change_seq = ?2 WHERE id = ?1")?
                        .execute(params![message, change])?;
                    let updated =
                        by_id(conn, &message)?.ok_or_else(|| StoreError::backend("a reacted message vanished"))?;
                    Ok(Some(Reacted::Changed(updated)))
                },
                move |outcome| match outcome {
                    Ok(Some(Reacted::Changed(m))) => versions.bump(m.conversation_id),
                    Ok(_) => {}
                    Err(_) => versions.bump_all(),
                },
            )
            .await
    }

    async fn reactions(
        &self,
        messages: &[MessageId],
        viewer: UserId,
    ) -> Result<std::collections::HashMap<MessageId, Vec<ReactionCount>>, StoreError> {
        if messages.is_empty() {
            return Ok(std::collections::HashMap::new());
        }
        let ids = json_ids(messages)?;
        self.db
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT message_id, emoji, COUNT(*), MAX(user_id = ?2), MIN(emoji_since) AS first, MIN(rowid) AS tie
                     FROM reactions WHERE message_id IN (SELECT value FROM json_each(?1))
                     GROUP BY message_id, emoji ORDER BY message_id, first, tie",
                )?;
                let rows = stmt.query_map(params![ids, viewer.to_string()], |r| {
                    let id: String = r.get(0)?;
                    let count = ReactionCount { emoji: r.get(1)?, count: r.get(2)?, me: r.get(3)? };
                    Ok((id, count))
                })?;
                let mut found: std::collections::HashMap<MessageId, Vec<ReactionCount>> =
                    std::collections::HashMap::new();
                for row in rows {
                    let (id, count) = row?;
                    let id = MessageId::parse(&id).map_err(|_| conversion("message id"))?;
                    found.entry(id).or_default().push(count);
                }
                Ok(found)
            })
            .await
    }

    async fn reactors(&self, id: MessageId) -> Result<Vec<Reactors>, StoreError> {
        self.db
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT emoji, user_id FROM reactions WHERE message_id = ?1 ORDER BY emoji_since, created_at, rowid",
                )?;
                let rows = stmt.query_map([id.to_string()], |r| {
                    let user: String = r.get(1)?;
                    Ok((r.get::<_, String>(0)?, UserId::parse(&user).map_err(|_| conversion("user id"))?))
                })?;
                Ok(Reactors::grouped(rows.collect::<Result<Vec<_>, _>>()?))
            })
            .await
    }

    async fn set_pin(&self, id: MessageId, at: Option<Timestamp>) -> Result<Option<(Message, bool)>, StoreError> {
        let versions = self.versions.clone();
        self.db
            .call_then(
                move |conn| {
                    let message = id.to_string();
                    let Some(current) = by_id(conn, &message)? else { return Ok(None) };
                    if current.deleted {
                        return Ok(None);
                    }
                    if current.pinned_at.is_some() == at.is_some() {
                        return Ok(Some((current, false)));
                    }
                    let change = next_change(conn, &current.conversation_id.to_string())?;
                    conn.prepare_cached("UPDATE messages SET pinned_at = ?2, change_seq = ?3 WHERE id = ?1")?
                        .execute(params![message, at.map(Timestamp::millis), change])?;
                    let updated =
                        by_id(conn, &message)?.ok_or_else(|| StoreError::backend("a pinned message vanished"))?;
                    Ok(Some((updated, true)))
                },
                move |outcome| match outcome {
                    Ok(Some((m, true))) => versions.bump(m.conversation_id),
                    Ok(_) => {}
                    Err(_) => versions.bump_all(),
                },
            )
            .await
    }

    async fn pins(
        &self,
        conversation: ConversationId,
        after: Option<PinCursor>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        self.db
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM messages WHERE conversation_id = ?1 AND pinned_at IS NOT NULL
                       AND (?2 IS NULL OR (pinned_at, id) < (?2, ?3))
                     ORDER BY pinned_at DESC, id DESC LIMIT ?4"
                ))?;
                let rows = stmt.query_map(
                    params![
                        conversation.to_string(),
                        after.map(|a| a.pinned_at.millis()),
                        after.map(|a| a.id.to_string()),
                        limit
                    ],
                    message,
                )?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await
    }

    async fn get_many(&self, ids: &[MessageId]) -> Result<Vec<Message>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids = json_ids(ids)?;
        self.db
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM messages WHERE id IN (SELECT value FROM json_each(?1))"
                ))?;
                let rows = stmt.query_map([ids], message)?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await
    }

    async fn reply_counts(&self, ids: &[MessageId]) -> Result<std::collections::HashMap<MessageId, u64>, StoreError> {
        if ids.is_empty() {
            return Ok(std::collections::HashMap::new());
        }
        let ids = json_ids(ids)?;
        self.db
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT reply_to, COUNT(*) FROM messages WHERE reply_to IN (SELECT value FROM json_each(?1))
                     GROUP BY reply_to",
                )?;
                let rows = stmt.query_map([ids], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u64>(1)?)))?;
                let mut counts = std::collections::HashMap::new();
                for row in rows {
                    let (id, n) = row?;
                    counts.insert(MessageId::parse(&id).map_err(|_| conversion("reply_to"))?, n);
                }
                Ok(counts)
            })
            .await
    }

    async fn replies(
        &self,
        conversation: ConversationId,
        parent: MessageId,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        self.db
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM messages WHERE reply_to = ?1 AND conversation_id = ?2 AND seq > ?3
                     ORDER BY seq LIMIT ?4"
                ))?;
                let rows =
                    stmt.query_map(params![parent.to_string(), conversation.to_string(), after_seq, limit], message)?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await
    }

    async fn changes_since(
        &self,
        conversation: ConversationId,
        after_seq: u64,
        after_change: u64,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        self.db
            .read(move |conn| {
                let c = conversation.to_string();
                let seen: u64 = conn
                    .prepare_cached("SELECT created_change FROM messages WHERE conversation_id = ?1 AND seq = ?2")?
                    .query_row(params![c, after_seq], |r| r.get(0))
                    .optional()?
                    .unwrap_or(0);
                let mut stmt = conn.prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM messages WHERE conversation_id = ?1 AND seq <= ?4 AND change_seq > ?2
                     ORDER BY change_seq LIMIT ?3"
                ))?;
                let rows = stmt.query_map(params![c, seen.max(after_change), limit, after_seq], message)?;

                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await
    }
}
