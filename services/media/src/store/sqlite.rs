//! Media metadata in SQLite (embedded mode).

use std::path::Path;

use chatterbox_store::{SqliteDb, StoreError};
use chatterbox_types::{ConversationId, MediaId, Timestamp, UserId};
use rusqlite::{OptionalExtension, Row, params};

use super::{MediaRecord, MediaStore, ScanCursor, Unattached};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS media (
    id TEXT PRIMARY KEY,
    uploader TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    filename TEXT NOT NULL,
    width INTEGER,
    height INTEGER,
    has_thumbnail INTEGER NOT NULL,
    public INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS attachments (
    media_id TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    PRIMARY KEY (media_id, conversation_id)
);
CREATE INDEX IF NOT EXISTS media_by_uploader ON media(uploader);
CREATE INDEX IF NOT EXISTS media_by_age ON media(created_at, id);
";

const COLUMNS: &str = "id, uploader, content_type, size, filename, width, height, has_thumbnail, public, created_at";

/// Media metadata in a SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteMediaStore {
    db: SqliteDb,
}

impl SqliteMediaStore {
    /// Opens the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Ok(Self { db: SqliteDb::open(path, SCHEMA)? })
    }

    /// A throwaway in-memory store, for tests.
    pub fn in_memory() -> Result<Self, StoreError> {
        Ok(Self { db: SqliteDb::in_memory(SCHEMA)? })
    }
}

fn corrupt(what: &str) -> rusqlite::Error {
    rusqlite::Error::InvalidColumnType(0, format!("corrupt {what}"), rusqlite::types::Type::Text)
}

fn record(row: &Row<'_>) -> rusqlite::Result<MediaRecord> {
    let id: String = row.get(0)?;
    let uploader: String = row.get(1)?;
    Ok(MediaRecord {
        id: MediaId::parse(&id).map_err(|_| corrupt("media id"))?,
        uploader: UserId::parse(&uploader).map_err(|_| corrupt("uploader"))?,
        content_type: row.get(2)?,
        size: row.get(3)?,
        filename: row.get(4)?,
        width: row.get(5)?,
        height: row.get(6)?,
        has_thumbnail: row.get(7)?,
        public: row.get(8)?,
        created_at: Timestamp::from_millis(row.get(9)?),
    })
}

#[async_trait::async_trait]
impl MediaStore for SqliteMediaStore {
    async fn insert(&self, m: &MediaRecord) -> Result<(), StoreError> {
        let m = m.clone();
        self.db
            .call(move |conn| {
                conn.execute(
                    &format!("INSERT INTO media ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"),
                    params![
                        m.id.to_string(),
                        m.uploader.to_string(),
                        m.content_type,
                        m.size,
                        m.filename,
                        m.width,
                        m.height,
                        m.has_thumbnail,
                        m.public,
                        m.created_at.millis()
                    ],
                )?;
                Ok(())
            })
            .await
    }

    async fn get(&self, id: MediaId) -> Result<Option<MediaRecord>, StoreError> {
        self.db
            .read(move |conn| {
                Ok(conn
                    .query_row(&format!("SELECT {COLUMNS} FROM media WHERE id = ?1"), [id.to_string()], record)
                    .optional()?)
            })
            .await
    }

    async fn attach(&self, media: &[MediaId], conversation: ConversationId) -> Result<(), StoreError> {
        let media = media.to_vec();
        self.db
            .call(move |conn| {
                {
                    let mut insert = conn.prepare_cached(
                        "INSERT OR IGNORE INTO attachments (media_id, conversation_id) VALUES (?1, ?2)",
                    )?;
                    for m in &media {
                        insert.execute(params![m.to_string(), conversation.to_string()])?;
                    }
                }
                Ok(())
            })
            .await
    }

    async fn detach(&self, media: &[MediaId], conversation: ConversationId) -> Result<(), StoreError> {
        let media = media.to_vec();
        self.db
            .call(move |conn| {
                {
                    let mut delete =
                        conn.prepare_cached("DELETE FROM attachments WHERE media_id = ?1 AND conversation_id = ?2")?;
                    for m in &media {
                        delete.execute(params![m.to_string(), conversation.to_string()])?;
                    }
                }
                Ok(())
            })
            .await
    }

    async fn attached_in(&self, media: MediaId) -> Result<Vec<ConversationId>, StoreError> {
        self.db
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT conversation_id FROM attachments WHERE media_id = ?1 ORDER BY conversation_id",
                )?;
                let ids = stmt.query_map([media.to_string()], |r| r.get::<_, String>(0))?;
                let mut out = Vec::new();
                for id in ids {
                    out.push(ConversationId::parse(&id?).map_err(|_| corrupt("conversation id"))?);
                }
                Ok(out)
            })
            .await
    }

    async fn make_public(&self, media: MediaId) -> Result<bool, StoreError> {
        self.db
            .call(move |conn| Ok(conn.execute("UPDATE media SET public = 1 WHERE id = ?1", [media.to_string()])? == 1))
            .await
    }

    async fn bytes_of(&self, uploader: UserId) -> Result<u64, StoreError> {
        self.db
            .read(move |conn| {
                let total: i64 = conn
                    .prepare_cached("SELECT COALESCE(SUM(size), 0) FROM media WHERE uploader = ?1")?
                    .query_row([uploader.to_string()], |r| r.get(0))?;
                Ok(u64::try_from(total).unwrap_or(0))
            })
            .await
    }

    async fn unattached(
        &self,
        before: Timestamp,
        after: Option<ScanCursor>,
        page: usize,
    ) -> Result<Unattached, StoreError> {
        let (after_at, after_id) = after.map_or((i64::MIN, String::new()), |(at, id)| (at.millis(), id.to_string()));
        self.db
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT m.id, m.created_at,
                            EXISTS (SELECT 1 FROM attachments a WHERE a.media_id = m.id)
                     FROM media m
                     WHERE m.public = 0 AND m.created_at < ?1 AND (m.created_at, m.id) > (?2, ?3)
                     ORDER BY m.created_at, m.id LIMIT ?4",
                )?;
                let rows = stmt.query_map(params![before.millis(), after_at, after_id, page as i64], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, bool>(2)?))
                })?;
                let mut scanned = Vec::new();
                for row in rows {
                    let (id, at, attached) = row?;
                    let id = MediaId::parse(&id).map_err(|_| corrupt("media id"))?;
                    scanned.push((Timestamp::from_millis(at), id, attached));
                }
                let found = Unattached::from_scan(scanned, page);
                Ok(found)
            })
            .await
    }

    async fn remove_unattached(&self, media: MediaId) -> Result<bool, StoreError> {
        self.db
            .call(move |conn| {
                let removed = conn.execute(
                    "DELETE FROM media WHERE id = ?1 AND public = 0
                     AND NOT EXISTS (SELECT 1 FROM attachments WHERE media_id = ?1)",
                    [media.to_string()],
                )?;
                Ok(removed == 1)
            })
            .await
    }
}
