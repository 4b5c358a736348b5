//! The user store on MongoDB (distributed mode). Filters are built here from
//! typed values only; search is a range on the key, never a pattern.

use chatterbox_store::{StoreError, is_duplicate_key, mongo_database, unique_index};
use chatterbox_types::{Timestamp, UserId};
use mongodb::bson::{Bson, Document, doc};
use mongodb::options::ReturnDocument;
use mongodb::{Collection, Database};
use serde::{Deserialize, Serialize};

use super::{Profile, ProfilePatch, Status, UserStore, prefix_end, stored_status};

#[derive(Debug, Serialize, Deserialize)]
struct ProfileDoc {
    #[serde(rename = "_id")]
    id: String,
    username: String,
    username_key: String,
    email: String,
    email_key: String,
    avatar: Option<String>,
    status: String,
    last_seen: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

impl From<&Profile> for ProfileDoc {
    fn from(p: &Profile) -> Self {
        Self {
            id: p.id.to_string(),
            username: p.username.clone(),
            username_key: p.username_key.clone(),
            email: p.email.clone(),
            email_key: p.email_key.clone(),
            avatar: p.avatar.clone(),
            status: p.status.as_str().to_owned(),
            last_seen: p.last_seen.map(Timestamp::millis),
            created_at: p.created_at.millis(),
            updated_at: p.updated_at.millis(),
        }
    }
}

impl TryFrom<ProfileDoc> for Profile {
    type Error = StoreError;
    fn try_from(d: ProfileDoc) -> Result<Self, StoreError> {
        Ok(Profile {
            id: UserId::parse(&d.id).map_err(|e| StoreError::backend(format!("corrupt profile: {e}")))?,
            username: d.username,
            username_key: d.username_key,
            email: d.email,
            email_key: d.email_key,
            avatar: d.avatar,
            status: stored_status(&d.status),
            last_seen: d.last_seen.map(Timestamp::from_millis),
            created_at: Timestamp::from_millis(d.created_at),
            updated_at: Timestamp::from_millis(d.updated_at),
        })
    }
}

/// Profiles in one collection, unique on the username and email keys.
#[derive(Debug, Clone)]
pub struct MongoUserStore {
    profiles: Collection<ProfileDoc>,
}

impl MongoUserStore {
    /// Connects and creates the indexes every query relies on.
    pub async fn connect(uri: &str, database: &str) -> Result<Self, StoreError> {
        Self::with_database(mongo_database(uri, database).await?).await
    }

    /// Uses an existing database handle.
    pub async fn with_database(db: Database) -> Result<Self, StoreError> {
        let profiles = db.collection("user_profiles");
        profiles.create_index(unique_index("username_key_unique", doc! {"username_key": 1})).await?;
        profiles.create_index(unique_index("email_key_unique", doc! {"email_key": 1})).await?;
        Ok(Self { profiles })
    }

    /// Turns a duplicate-key failure into the name of the key that clashed,
    /// found by asking which value is taken by another profile.
    async fn duplicate(&self, e: mongodb::error::Error, p: &ProfileDoc) -> StoreError {
        if is_duplicate_key(&e).is_none() {
            return e.into();
        }
        let others = doc! {"_id": {"$ne": &p.id}};
        for (field, value, name) in
            [("username_key", &p.username_key, "username"), ("email_key", &p.email_key, "email")]
        {
            let mut filter = others.clone();
            filter.insert(field, value.as_str());
            match self.profiles.count_documents(filter).await {
                Ok(n) if n > 0 => return StoreError::Duplicate(name),
                Ok(_) => {}
                Err(e) => return e.into(),
            }
        }
        StoreError::Duplicate("id")
    }
}

#[async_trait::async_trait]
impl UserStore for MongoUserStore {
    async fn create_profile(&self, p: &Profile) -> Result<(), StoreError> {
        let doc = ProfileDoc::from(p);
        match self.profiles.insert_one(&doc).await {
            Ok(_) => Ok(()),
            Err(e) => Err(self.duplicate(e, &doc).await),
        }
    }

    async fn get_profile(&self, id: UserId) -> Result<Option<Profile>, StoreError> {
        self.profiles.find_one(doc! {"_id": id.to_string()}).await?.map(Profile::try_from).transpose()
    }

    async fn search_profiles(&self, prefix: &str, after: Option<&str>, limit: u32) -> Result<Vec<Profile>, StoreError> {
        let mut range = doc! {"$gte": prefix, "$lt": prefix_end(prefix)};
        if let Some(after) = after {
            // Both bounds sit on one field; `$gt` tightens the lower one.
            range.insert("$gt", after);
        }
        let mut cursor = self
            .profiles
            .find(doc! {"username_key": range})
            .sort(doc! {"username_key": 1})
            .limit(i64::from(limit))
            .await?;
        let mut out = Vec::new();
        while cursor.advance().await? {
            out.push(Profile::try_from(cursor.deserialize_current()?)?);
        }
        Ok(out)
    }

    async fn profiles_by_keys(&self, keys: &[String]) -> Result<Vec<Profile>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut cursor = self.profiles.find(doc! {"username_key": {"$in": keys}}).await?;
        let mut out = Vec::new();
        while cursor.advance().await? {
            out.push(Profile::try_from(cursor.deserialize_current()?)?);
        }
        Ok(out)
    }

    async fn update_profile(
        &self,
        id: UserId,
        patch: &ProfilePatch,
        now: Timestamp,
    ) -> Result<Option<Profile>, StoreError> {
        let mut set = Document::new();
        if let Some((username, key)) = &patch.username {
            set.insert("username", username.as_str());
            set.insert("username_key", key.as_str());
        }
        if let Some(avatar) = &patch.avatar {
            set.insert("avatar", avatar.clone().map_or(Bson::Null, Bson::String));
        }
        set.insert("updated_at", now.millis());
        let updated = self
            .profiles
            .find_one_and_update(doc! {"_id": id.to_string()}, doc! {"$set": set})
            .return_document(ReturnDocument::After)
            .await;
        match updated {
            Ok(found) => found.map(Profile::try_from).transpose(),
            // The username is the only unique key a patch can change.
            Err(e) if is_duplicate_key(&e).is_some() => Err(StoreError::Duplicate("username")),
            Err(e) => Err(e.into()),
        }
    }

    async fn set_presence(
        &self,
        id: UserId,
        status: Status,
        last_seen: Option<Timestamp>,
    ) -> Result<Option<Profile>, StoreError> {
        let mut set = doc! {"status": status.as_str()};
        if let Some(at) = last_seen {
            set.insert("last_seen", at.millis());
        }
        let updated = self
            .profiles
            .find_one_and_update(doc! {"_id": id.to_string()}, doc! {"$set": set})
            .return_document(ReturnDocument::After)
            .await?;
        updated.map(Profile::try_from).transpose()
    }

    async fn delete_profile(&self, id: UserId) -> Result<(), StoreError> {
        self.profiles.delete_one(doc! {"_id": id.to_string()}).await?;
        Ok(())
    }
}
