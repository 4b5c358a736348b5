//! The conversation store on MongoDB (distributed mode): one document per
//! conversation with its participant and admin ids, indexed for "my
//! conversations by activity" and the room directory. Filters are built
//! here from typed values only.

use chatterbox_store::{KeyedLocks, StoreError, is_duplicate_key, mongo_database, unique_index};
use chatterbox_types::{ConversationId, Timestamp, UserId};
use mongodb::bson::{Document, doc};
use mongodb::options::ReturnDocument;
use mongodb::{Collection, Database, IndexModel};
use serde::{Deserialize, Serialize};

use super::{
    ActivityCursor, Block, BlockCursor, Conversation, ConversationRef, ConversationStore, Kind, Membership, NameCursor,
    Rename, prefix_end,
};

#[derive(Debug, Serialize, Deserialize)]
struct ConversationDoc {
    #[serde(rename = "_id")]
    id: String,
    kind: String,
    name: String,
    description: String,
    unique_key: String,
    name_key: String,
    participant_ids: Vec<String>,
    admin_ids: Vec<String>,
    created_by: String,
    created_at: i64,
    updated_at: i64,
    last_activity: i64,
}

/// One user blocking another: `_id` is `<blocker>:<blocked>`, so a block
/// is stored once however often it is asked for.
#[derive(Debug, Serialize, Deserialize)]
struct BlockDoc {
    #[serde(rename = "_id")]
    id: String,
    blocker: String,
    blocked: String,
    created_at: i64,
}

fn block_id(blocker: UserId, blocked: UserId) -> String {
    format!("{blocker}:{blocked}")
}

/// The fields of a conversation document a [`ConversationRef`] needs.
#[derive(Debug, Deserialize)]
struct RefDoc {
    #[serde(rename = "_id")]
    id: String,
    kind: String,
    last_activity: i64,
}

/// A user's conversations after `after`, in the order of [`by_activity`].
fn user_filter(user: UserId, after: Option<&ActivityCursor>) -> Document {
    let mut filter = doc! {"participant_ids": user.to_string()};
    if let Some(a) = after {
        let activity = a.last_activity.millis();
        filter.insert(
            "$or",
            vec![
                doc! {"last_activity": {"$lt": activity}},
                doc! {"last_activity": activity, "_id": {"$lt": a.id.to_string()}},
            ],
        );
    }
    filter
}

/// Most recent activity first, ties by id.
fn by_activity() -> Document {
    doc! {"last_activity": -1, "_id": -1}
}

fn corrupt(what: &str) -> StoreError {
    StoreError::backend(format!("corrupt conversation document: {what}"))
}

fn users(ids: &[String]) -> Result<Vec<UserId>, StoreError> {
    ids.iter().map(|s| UserId::parse(s).map_err(|_| corrupt("user id"))).collect()
}

impl From<&Conversation> for ConversationDoc {
    fn from(c: &Conversation) -> Self {
        Self {
            id: c.id.to_string(),
            kind: c.kind.as_str().to_owned(),
            name: c.name.clone(),
            description: c.description.clone(),
            unique_key: c.unique_key.clone(),
            name_key: c.name_key.clone(),
            participant_ids: c.participants.iter().map(ToString::to_string).collect(),
            admin_ids: c.admins.iter().map(ToString::to_string).collect(),
            created_by: c.created_by.to_string(),
            created_at: c.created_at.millis(),
            updated_at: c.updated_at.millis(),
            last_activity: c.last_activity.millis(),
        }
    }
}

impl TryFrom<ConversationDoc> for Conversation {
    type Error = StoreError;
    fn try_from(d: ConversationDoc) -> Result<Self, StoreError> {
        Ok(Conversation {
            id: ConversationId::parse(&d.id).map_err(|_| corrupt("id"))?,
            kind: Kind::parse(&d.kind).ok_or_else(|| corrupt("kind"))?,
            name: d.name,
            description: d.description,
            unique_key: d.unique_key,
            name_key: d.name_key,
            participants: users(&d.participant_ids)?,
            admins: users(&d.admin_ids)?,
            created_by: UserId::parse(&d.created_by).map_err(|_| corrupt("created_by"))?,
            created_at: Timestamp::from_millis(d.created_at),
            updated_at: Timestamp::from_millis(d.updated_at),
            last_activity: Timestamp::from_millis(d.last_activity),
        })
    }
}

/// Conversations in one collection.
#[derive(Debug, Clone)]
pub struct MongoConversationStore {
    conversations: Collection<ConversationDoc>,
    /// Updates of one conversation from this instance take turns (see
    /// [`KeyedLocks`]: on FerretDB a join and an activity write at once
    /// could otherwise undo one another).
    writes: std::sync::Arc<KeyedLocks<ConversationId, ()>>,
    blocks: Collection<BlockDoc>,
}

impl MongoConversationStore {
    /// Connects and creates the indexes every query relies on.
    pub async fn connect(uri: &str, database: &str) -> Result<Self, StoreError> {
        Self::with_database(mongo_database(uri, database).await?).await
    }

    /// Uses an existing database handle.
    pub async fn with_database(db: Database) -> Result<Self, StoreError> {
        let conversations = db.collection::<ConversationDoc>("conversations");
        conversations.create_index(unique_index("unique_key_unique", doc! {"unique_key": 1})).await?;
        conversations
            .create_index(
                IndexModel::builder().keys(doc! {"participant_ids": 1, "last_activity": -1, "_id": -1}).build(),
            )
            .await?;
        conversations
            .create_index(IndexModel::builder().keys(doc! {"kind": 1, "name_key": 1, "_id": 1}).build())
            .await?;
        let blocks = db.collection::<BlockDoc>("blocks");
        blocks
            .create_index(IndexModel::builder().keys(doc! {"blocker": 1, "created_at": -1, "blocked": -1}).build())
            .await?;
        Ok(Self { conversations, writes: std::sync::Arc::default(), blocks })
    }

    async fn many(&self, filter: Document, sort: Document, limit: u32) -> Result<Vec<Conversation>, StoreError> {
        let mut cursor = self.conversations.find(filter).sort(sort).limit(i64::from(limit)).await?;
        let mut out = Vec::new();
        while cursor.advance().await? {
            out.push(Conversation::try_from(cursor.deserialize_current()?)?);
        }
        Ok(out)
    }

    /// Applies `update` and returns the result; a clash on the unique key
    /// (a room renamed to a taken name) is `Duplicate`.
    async fn update(&self, id: ConversationId, update: Document) -> Result<Option<Conversation>, StoreError> {
        let _turn = self.writes.lock(&id).await;
        let updated = self
            .conversations
            .find_one_and_update(doc! {"_id": id.to_string()}, update)
            .return_document(ReturnDocument::After)
            .await;
        match updated {
            Ok(found) => found.map(Conversation::try_from).transpose(),
            Err(e) if is_duplicate_key(&e).is_some() => Err(StoreError::Duplicate("unique_key")),
            Err(e) => Err(e.into()),
        }
    }
}

#[async_trait::async_trait]
impl ConversationStore for MongoConversationStore {
    async fn create(&self, c: &Conversation) -> Result<(), StoreError> {
        match self.conversations.insert_one(ConversationDoc::from(c)).await {
            Ok(_) => Ok(()),
            Err(e) if is_duplicate_key(&e).is_some() => Err(StoreError::Duplicate("unique_key")),
            Err(e) => Err(e.into()),
        }
    }

    async fn get(&self, id: ConversationId) -> Result<Option<Conversation>, StoreError> {
        self.conversations.find_one(doc! {"_id": id.to_string()}).await?.map(Conversation::try_from).transpose()
    }

    async fn membership(&self, id: ConversationId, user: UserId) -> Result<Option<Membership>, StoreError> {
        #[derive(Deserialize)]
        struct Place {
            kind: String,
            admin_ids: Vec<String>,
        }
        // The participant list stays on the server: only the kind and the
        // (short) admin list come back.
        let found = self
            .conversations
            .clone_with_type::<Place>()
            .find_one(doc! {"_id": id.to_string(), "participant_ids": user.to_string()})
            .projection(doc! {"kind": 1, "admin_ids": 1})
            .await?;
        found
            .map(|p| {
                let kind = Kind::parse(&p.kind).ok_or_else(|| corrupt("kind"))?;
                Ok(Membership { kind, admin: p.admin_ids.iter().any(|a| *a == user.to_string()) })
            })
            .transpose()
    }

    async fn private_among(&self, user: UserId, ids: &[ConversationId]) -> Result<Vec<ConversationId>, StoreError> {
        #[derive(Deserialize)]
        struct Id {
            #[serde(rename = "_id")]
            id: String,
        }
        let mut found = Vec::new();
        for chunk in ids.chunks(500) {
            let chunk: Vec<String> = chunk.iter().map(ToString::to_string).collect();
            let mut cursor = self
                .conversations
                .clone_with_type::<Id>()
                .find(doc! {"_id": {"$in": chunk}, "participant_ids": user.to_string(), "kind": {"$ne": "room"}})
                .projection(doc! {"_id": 1})
                .await?;
            while cursor.advance().await? {
                let id = cursor.deserialize_current()?.id;
                found.push(ConversationId::parse(&id).map_err(|_| corrupt("id"))?);
            }
        }
        Ok(found)
    }

    async fn get_by_unique_key(&self, key: &str) -> Result<Option<Conversation>, StoreError> {
        self.conversations.find_one(doc! {"unique_key": key}).await?.map(Conversation::try_from).transpose()
    }

    async fn list_for_user(
        &self,
        user: UserId,
        after: Option<&ActivityCursor>,
        limit: u32,
    ) -> Result<Vec<Conversation>, StoreError> {
        self.many(user_filter(user, after), by_activity(), limit).await
    }

    async fn list_refs_for_user(
        &self,
        user: UserId,
        after: Option<&ActivityCursor>,
        limit: u32,
    ) -> Result<Vec<ConversationRef>, StoreError> {
        let mut cursor = self
            .conversations
            .clone_with_type::<RefDoc>()
            .find(user_filter(user, after))
            .projection(doc! {"_id": 1, "kind": 1, "last_activity": 1})
            .sort(by_activity())
            .limit(i64::from(limit))
            .await?;
        let mut out = Vec::new();
        while cursor.advance().await? {
            let d = cursor.deserialize_current()?;
            out.push(ConversationRef {
                id: ConversationId::parse(&d.id).map_err(|_| corrupt("id"))?,
                kind: Kind::parse(&d.kind).ok_or_else(|| corrupt("kind"))?,
                last_activity: Timestamp::from_millis(d.last_activity),
            });
        }
        Ok(out)
    }

    async fn conversation_ids_of(&self, user: UserId, limit: u32) -> Result<Vec<ConversationId>, StoreError> {
        let mut cursor = self
            .conversations
            .clone_with_type::<Document>()
            .find(doc! {"participant_ids": user.to_string()})
            .projection(doc! {"_id": 1})
            .limit(i64::from(limit))
            .await?;
        let mut out = Vec::new();
        while cursor.advance().await? {
            let d = cursor.deserialize_current()?;
            out.push(ConversationId::parse(d.get_str("_id").map_err(|_| corrupt("id"))?).map_err(|_| corrupt("id"))?);
        }
        Ok(out)
    }

    async fn list_rooms(
        &self,
        prefix: &str,
        after: Option<&NameCursor>,
        limit: u32,
    ) -> Result<Vec<Conversation>, StoreError> {
        let mut filter = doc! {"kind": "room", "name_key": {"$gte": prefix, "$lt": prefix_end(prefix)}};
        if let Some(a) = after {
            filter.insert(
                "$or",
                vec![
                    doc! {"name_key": {"$gt": &a.name_key}},
                    doc! {"name_key": &a.name_key, "_id": {"$gt": a.id.to_string()}},
                ],
            );
        }
        self.many(filter, doc! {"name_key": 1, "_id": 1}, limit).await
    }

    async fn update_details(
        &self,
        id: ConversationId,
        rename: Option<&Rename>,
        description: Option<&str>,
        now: Timestamp,
    ) -> Result<Option<Conversation>, StoreError> {
        let mut set = doc! {"updated_at": now.millis()};
        if let Some(r) = rename {
            set.insert("name", &r.name);
            set.insert("name_key", &r.name_key);
            set.insert("unique_key", &r.unique_key);
        }
        if let Some(d) = description {
            set.insert("description", d);
        }
        self.update(id, doc! {"$set": set}).await
    }

    async fn add_participant(
        &self,
        id: ConversationId,
        user: UserId,
        now: Timestamp,
    ) -> Result<Option<Conversation>, StoreError> {
        self.update(id, doc! {"$addToSet": {"participant_ids": user.to_string()}, "$set": {"updated_at": now.millis()}})
            .await
    }

    async fn remove_participant(
        &self,
        id: ConversationId,
        user: UserId,
        now: Timestamp,
    ) -> Result<Option<Conversation>, StoreError> {
        let user = user.to_string();
        self.update(
            id,
            doc! {"$pull": {"participant_ids": &user, "admin_ids": &user}, "$set": {"updated_at": now.millis()}},
        )
        .await
    }

    async fn add_admin(
        &self,
        id: ConversationId,
        user: UserId,
        now: Timestamp,
    ) -> Result<Option<Conversation>, StoreError> {
        // Only a participant can become an admin: the filter says so.
        let user = user.to_string();
        let held = self.writes.lock(&id).await;
        self.conversations
            .update_one(
                doc! {"_id": id.to_string(), "participant_ids": &user},
                doc! {"$addToSet": {"admin_ids": &user}, "$set": {"updated_at": now.millis()}},
            )
            .await?;
        drop(held);
        self.get(id).await
    }

    async fn record_activity(&self, id: ConversationId, by: UserId, at: Timestamp) -> Result<(), StoreError> {
        let _turn = self.writes.lock(&id).await;
        self.conversations
            .update_one(
                doc! {"_id": id.to_string(), "participant_ids": by.to_string(), "last_activity": {"$lt": at.millis()}},
                doc! {"$set": {"last_activity": at.millis()}},
            )
            .await?;
        Ok(())
    }

    async fn block(&self, blocker: UserId, blocked: UserId, at: Timestamp) -> Result<bool, StoreError> {
        let block = BlockDoc {
            id: block_id(blocker, blocked),
            blocker: blocker.to_string(),
            blocked: blocked.to_string(),
            created_at: at.millis(),
        };
        match self.blocks.insert_one(block).await {
            Ok(_) => Ok(true),
            Err(e) if is_duplicate_key(&e).is_some() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    async fn unblock(&self, blocker: UserId, blocked: UserId) -> Result<bool, StoreError> {
        let removed = self.blocks.delete_one(doc! {"_id": block_id(blocker, blocked)}).await?;
        Ok(removed.deleted_count > 0)
    }

    async fn blocked_between(&self, a: UserId, b: UserId) -> Result<bool, StoreError> {
        let either = doc! {"_id": {"$in": [block_id(a, b), block_id(b, a)]}};
        Ok(self.blocks.count_documents(either).limit(1).await? > 0)
    }

    async fn blocks_of(
        &self,
        blocker: UserId,
        after: Option<&BlockCursor>,
        limit: u32,
    ) -> Result<Vec<Block>, StoreError> {
        let mut filter = doc! {"blocker": blocker.to_string()};
        if let Some(a) = after {
            let at = a.at.millis();
            filter.insert(
                "$or",
                vec![
                    doc! {"created_at": {"$lt": at}},
                    doc! {"created_at": at, "blocked": {"$lt": a.blocked.to_string()}},
                ],
            );
        }
        let mut cursor =
            self.blocks.find(filter).sort(doc! {"created_at": -1, "blocked": -1}).limit(i64::from(limit)).await?;
        let mut out = Vec::new();
        while cursor.advance().await? {
            let d = cursor.deserialize_current()?;
            out.push(Block {
                blocked: UserId::parse(&d.blocked).map_err(|_| StoreError::backend("corrupt block: user id"))?,
                at: Timestamp::from_millis(d.created_at),
            });
        }
        Ok(out)
    }
}
