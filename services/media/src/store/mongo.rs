//! Media metadata in MongoDB (distributed mode). Filters are built from
//! typed ids only.

use chatterbox_store::{StoreError, is_duplicate_key, mongo_database};
use chatterbox_types::{ConversationId, MediaId, Timestamp, UserId};
use futures::TryStreamExt as _;
use mongodb::bson::doc;
use mongodb::{Collection, Database};
use serde::{Deserialize, Serialize};

use super::{MediaRecord, MediaStore, ScanCursor, Unattached};

#[derive(Debug, Serialize, Deserialize)]
struct MediaDoc {
    #[serde(rename = "_id")]
    id: String,
    uploader: String,
    content_type: String,
    size: i64,
    filename: String,
    width: Option<i64>,
    height: Option<i64>,
    has_thumbnail: bool,
    public: bool,
    created_at: i64,
}

/// One attachment: `_id` is `<media>/<conversation>`, so repeats collapse.
#[derive(Debug, Serialize, Deserialize)]
struct AttachmentDoc {
    #[serde(rename = "_id")]
    id: String,
    media_id: String,
    conversation_id: String,
}

fn corrupt(what: &str) -> StoreError {
    StoreError::backend(format!("corrupt {what}"))
}

impl From<&MediaRecord> for MediaDoc {
    fn from(m: &MediaRecord) -> Self {
        Self {
            id: m.id.to_string(),
            uploader: m.uploader.to_string(),
            content_type: m.content_type.clone(),
            size: i64::try_from(m.size).unwrap_or(i64::MAX),
            filename: m.filename.clone(),
            width: m.width.map(i64::from),
            height: m.height.map(i64::from),
            has_thumbnail: m.has_thumbnail,
            public: m.public,
            created_at: m.created_at.millis(),
        }
    }
}

impl TryFrom<MediaDoc> for MediaRecord {
    type Error = StoreError;
    fn try_from(d: MediaDoc) -> Result<Self, StoreError> {
        Ok(MediaRecord {
            id: MediaId::parse(&d.id).map_err(|_| corrupt("media id"))?,
            uploader: UserId::parse(&d.uploader).map_err(|_| corrupt("uploader"))?,
            content_type: d.content_type,
            size: u64::try_from(d.size).map_err(|_| corrupt("size"))?,
            filename: d.filename,
            width: d.width.map(u32::try_from).transpose().map_err(|_| corrupt("width"))?,
            height: d.height.map(u32::try_from).transpose().map_err(|_| corrupt("height"))?,
            has_thumbnail: d.has_thumbnail,
            public: d.public,
            created_at: Timestamp::from_millis(d.created_at),
        })
    }
}

/// Media metadata and attachments in two collections.
#[derive(Debug, Clone)]
pub struct MongoMediaStore {
    media: Collection<MediaDoc>,
    attachments: Collection<AttachmentDoc>,
}

impl MongoMediaStore {
    /// Connects and creates the indexes every query relies on.
    pub async fn connect(uri: &str, database: &str) -> Result<Self, StoreError> {
        Self::with_database(mongo_database(uri, database).await?).await
    }

    /// Uses an existing database handle.
    pub async fn with_database(db: Database) -> Result<Self, StoreError> {
        let attachments: Collection<AttachmentDoc> = db.collection("media_attachments");
        attachments
            .create_index(mongodb::IndexModel::builder().keys(doc! {"media_id": 1, "conversation_id": 1}).build())
            .await?;
        let media: Collection<MediaDoc> = db.collection("media");
        media.create_index(mongodb::IndexModel::builder().keys(doc! {"uploader": 1}).build()).await?;
        media.create_index(mongodb::IndexModel::builder().keys(doc! {"created_at": 1, "_id": 1}).build()).await?;
        Ok(Self { media, attachments })
    }
}

#[async_trait::async_trait]
impl MediaStore for MongoMediaStore {
    async fn insert(&self, m: &MediaRecord) -> Result<(), StoreError> {
        self.media.insert_one(MediaDoc::from(m)).await?;
        Ok(())
    }

    async fn get(&self, id: MediaId) -> Result<Option<MediaRecord>, StoreError> {
        self.media.find_one(doc! {"_id": id.to_string()}).await?.map(MediaRecord::try_from).transpose()
    }

    async fn attach(&self, media: &[MediaId], conversation: ConversationId) -> Result<(), StoreError> {
        for m in media {
            let doc = AttachmentDoc {
                id: format!("{m}/{conversation}"),
                media_id: m.to_string(),
                conversation_id: conversation.to_string(),
            };
            match self.attachments.insert_one(doc).await {
                Ok(_) => {}
                // Attached there already.
                Err(e) if is_duplicate_key(&e).is_some() => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    async fn detach(&self, media: &[MediaId], conversation: ConversationId) -> Result<(), StoreError> {
        let ids: Vec<String> = media.iter().map(|m| format!("{m}/{conversation}")).collect();
        self.attachments.delete_many(doc! {"_id": {"$in": ids}}).await?;
        Ok(())
    }

    async fn attached_in(&self, media: MediaId) -> Result<Vec<ConversationId>, StoreError> {
        let docs: Vec<AttachmentDoc> = self
            .attachments
            .find(doc! {"media_id": media.to_string()})
            .sort(doc! {"conversation_id": 1})
            .await?
            .try_collect()
            .await?;
        docs.into_iter()
            .map(|d| ConversationId::parse(&d.conversation_id).map_err(|_| corrupt("conversation id")))
            .collect()
    }

    async fn make_public(&self, media: MediaId) -> Result<bool, StoreError> {
        let updated = self.media.update_one(doc! {"_id": media.to_string()}, doc! {"$set": {"public": true}}).await?;
        Ok(updated.matched_count == 1)
    }

    async fn bytes_of(&self, uploader: UserId) -> Result<u64, StoreError> {
        let pipeline = [
            doc! {"$match": {"uploader": uploader.to_string()}},
            doc! {"$group": {"_id": null, "total": {"$sum": "$size"}}},
        ];
        let mut cursor = self.media.aggregate(pipeline).await?;
        let Some(row) = cursor.try_next().await? else { return Ok(0) };
        let total = match row.get("total") {
            Some(mongodb::bson::Bson::Int64(n)) => *n,
            Some(mongodb::bson::Bson::Int32(n)) => i64::from(*n),
            Some(mongodb::bson::Bson::Double(n)) => *n as i64,
            _ => 0,
        };
        Ok(u64::try_from(total).unwrap_or(0))
    }

    async fn unattached(
        &self,
        before: Timestamp,
        after: Option<ScanCursor>,
        page: usize,
    ) -> Result<Unattached, StoreError> {
        let mut filter = doc! {"public": false, "created_at": {"$lt": before.millis()}};
        if let Some((at, id)) = after {
            filter.insert(
                "$or",
                vec![
                    doc! {"created_at": {"$gt": at.millis()}},
                    doc! {"created_at": at.millis(), "_id": {"$gt": id.to_string()}},
                ],
            );
        }
        let docs: Vec<MediaDoc> = self
            .media
            .find(filter)
            .sort(doc! {"created_at": 1, "_id": 1})
            .limit(page as i64)
            .await?
            .try_collect()
            .await?;
        let ids: Vec<String> = docs.iter().map(|d| d.id.clone()).collect();
        let attached: std::collections::HashSet<String> = self
            .attachments
            .find(doc! {"media_id": {"$in": &ids}})
            .await?
            .try_collect::<Vec<AttachmentDoc>>()
            .await?
            .into_iter()
            .map(|a| a.media_id)
            .collect();
        let scanned = docs
            .iter()
            .map(|d| {
                let id = MediaId::parse(&d.id).map_err(|_| corrupt("media id"))?;
                Ok((Timestamp::from_millis(d.created_at), id, attached.contains(&d.id)))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let found = Unattached::from_scan(scanned, page);
        Ok(found)
    }

    async fn remove_unattached(&self, media: MediaId) -> Result<bool, StoreError> {
        // Checked, then removed: an attachment made in between (a day after
        // the upload, in the instant of the sweep) loses its file; a send
        // that attaches it afterwards is refused, the media being gone.
        if self.attachments.find_one(doc! {"media_id": media.to_string()}).await?.is_some() {
            return Ok(false);
        }
        let removed = self.media.delete_one(doc! {"_id": media.to_string(), "public": false}).await?;
        Ok(removed.deleted_count == 1)
    }
}
