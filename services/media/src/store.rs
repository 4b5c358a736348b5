//! Media metadata and where media is attached: one trait, SQLite and
//! MongoDB, one conformance suite (`tests/store_conformance.rs`).

mod mongo;
mod sqlite;

use chatterbox_store::StoreError;
use chatterbox_types::{ConversationId, MediaId, Timestamp, UserId};

pub use mongo::MongoMediaStore;
pub use sqlite::SqliteMediaStore;

/// One uploaded file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaRecord {
    /// Its id, also its blobs' key.
    pub id: MediaId,
    /// Who uploaded it.
    pub uploader: UserId,
    /// Decided from the bytes.
    pub content_type: String,
    /// Bytes.
    pub size: u64,
    /// As the client named it.
    pub filename: String,
    /// Pixels, for images.
    pub width: Option<u32>,
    /// Pixels, for images.
    pub height: Option<u32>,
    /// Whether a thumbnail blob exists.
    pub has_thumbnail: bool,
    /// Whether every signed-in user may see it (avatars).
    pub public: bool,
    /// Upload time.
    pub created_at: Timestamp,
}

/// Where a scan of old media stopped: after this upload time and id.
pub type ScanCursor = (Timestamp, MediaId);

/// One page of a scan for media nothing refers to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unattached {
    /// Media of the page attached nowhere and not public.
    pub ids: Vec<MediaId>,
    /// Where the next page starts; `None` once the scan reached its end.
    pub next: Option<ScanCursor>,
}

impl Unattached {
    /// The page a scan of `page` rows found: (upload time, id, attached
    /// somewhere) in scan order. A short page is the scan's end.
    pub(crate) fn from_scan(rows: impl IntoIterator<Item = (Timestamp, MediaId, bool)>, page: usize) -> Self {
        let mut found = Unattached::default();
        let mut scanned = 0;
        for (at, id, attached) in rows {
            scanned += 1;
            found.next = Some((at, id));
            if !attached {
                found.ids.push(id);
            }
        }
        if scanned < page {
            found.next = None;
        }
        found
    }
}

/// The media service's storage.
#[async_trait::async_trait]
pub trait MediaStore: Send + Sync + std::fmt::Debug {
    /// Records a new upload.
    async fn insert(&self, media: &MediaRecord) -> Result<(), StoreError>;
    /// Media by id.
    async fn get(&self, id: MediaId) -> Result<Option<MediaRecord>, StoreError>;
    /// Records that `media` is attached in `conversation` (again is fine).
    async fn attach(&self, media: &[MediaId], conversation: ConversationId) -> Result<(), StoreError>;
    /// Forgets that `media` is attached in `conversation` (a deleted message).
    async fn detach(&self, media: &[MediaId], conversation: ConversationId) -> Result<(), StoreError>;
    /// The conversations where `media` is attached.
    async fn attached_in(&self, media: MediaId) -> Result<Vec<ConversationId>, StoreError>;
    /// Makes `media` visible to every signed-in user; `false` if there is none.
    async fn make_public(&self, media: MediaId) -> Result<bool, StoreError>;
    /// Bytes of every upload of `uploader` still kept.
    async fn bytes_of(&self, uploader: UserId) -> Result<u64, StoreError>;
    /// Looks at up to `page` media that are not public and were uploaded
    /// before `before`, oldest first, after `after`; returns those attached
    /// nowhere.
    async fn unattached(
        &self,
        before: Timestamp,
        after: Option<ScanCursor>,
        page: usize,
    ) -> Result<Unattached, StoreError>;
    /// Removes the record of `media` if it is still attached nowhere and not
    /// public; whether it did.
    async fn remove_unattached(&self, media: MediaId) -> Result<bool, StoreError>;
}
