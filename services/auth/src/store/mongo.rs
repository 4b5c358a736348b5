//! The auth store on MongoDB (distributed mode). Every filter is built here
//! from typed values; nothing from a request becomes an operator.

use chatterbox_store::{StoreError, is_duplicate_key, mongo_database, unique_index};
use chatterbox_types::{SessionId, Timestamp, UserId};
use mongodb::bson::doc;
use mongodb::{Collection, Database, IndexModel};
use serde::{Deserialize, Serialize};

use super::{AuthStore, Consumed, Credential, LoginSession, TokenHash};

#[derive(Debug, Serialize, Deserialize)]
struct CredentialDoc {
    #[serde(rename = "_id")]
    user_id: String,
    email_key: String,
    password_hash: String,
    active: bool,
    created_at: i64,
}

#[derive(Debug, Serialize, Deserialize)]
struct SessionDoc {
    #[serde(rename = "_id")]
    family_id: String,
    user_id: String,
    created_at: i64,
    expires_at: i64,
    revoked: bool,
    /// Added in 1.1: absent (0) on older sessions, meaning "since it started".
    #[serde(default)]
    last_used_at: i64,
    #[serde(default)]
    user_agent: String,
    #[serde(default)]
    ip: String,
}

/// A spent refresh token: inserting it is the atomic "spend".
#[derive(Debug, Serialize, Deserialize)]
struct SpentDoc {
    #[serde(rename = "_id")]
    token_hash: String,
    spent_at: i64,
}

#[derive(Debug, Serialize, Deserialize)]
struct TokenDoc {
    #[serde(rename = "_id")]
    token_hash: String,
    family_id: String,
    created_at: i64,
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::backend(format!("corrupt document: {e}"))
}

impl TryFrom<CredentialDoc> for Credential {
    type Error = StoreError;
    fn try_from(d: CredentialDoc) -> Result<Self, StoreError> {
        Ok(Credential {
            user_id: UserId::parse(&d.user_id).map_err(corrupt)?,
            email_key: d.email_key,
            password_hash: d.password_hash,
            active: d.active,
            created_at: Timestamp::from_millis(d.created_at),
        })
    }
}

impl TryFrom<SessionDoc> for LoginSession {
    type Error = StoreError;
    fn try_from(d: SessionDoc) -> Result<Self, StoreError> {
        Ok(LoginSession {
            id: SessionId::parse(&d.family_id).map_err(corrupt)?,
            user_id: UserId::parse(&d.user_id).map_err(corrupt)?,
            created_at: Timestamp::from_millis(d.created_at),
            expires_at: Timestamp::from_millis(d.expires_at),
            revoked: d.revoked,
            last_used_at: Timestamp::from_millis(d.last_used_at.max(d.created_at)),
            user_agent: d.user_agent,
            ip: d.ip,
        })
    }
}

/// Credentials, sessions and refresh tokens in three collections.
#[derive(Debug, Clone)]
pub struct MongoAuthStore {
    credentials: Collection<CredentialDoc>,
    sessions: Collection<SessionDoc>,
    tokens: Collection<TokenDoc>,
    spent: Collection<SpentDoc>,
}

impl MongoAuthStore {
    /// Connects and creates the indexes every query relies on.
    pub async fn connect(uri: &str, database: &str) -> Result<Self, StoreError> {
        Self::with_database(mongo_database(uri, database).await?).await
    }

    /// Uses an existing database handle.
    pub async fn with_database(db: Database) -> Result<Self, StoreError> {
        let store = Self {
            credentials: db.collection("auth_credentials"),
            sessions: db.collection("auth_sessions"),
            tokens: db.collection("auth_refresh_tokens"),
            spent: db.collection("auth_spent_refresh_tokens"),
        };
        store.credentials.create_index(unique_index("email_key_unique", doc! {"email_key": 1})).await?;
        store.tokens.create_index(IndexModel::builder().keys(doc! {"family_id": 1}).build()).await?;
        store.sessions.create_index(IndexModel::builder().keys(doc! {"user_id": 1, "created_at": -1}).build()).await?;
        Ok(store)
    }

    async fn session(&self, family: &str) -> Result<LoginSession, StoreError> {
        self.sessions
            .find_one(doc! {"_id": family})
            .await?
            .ok_or_else(|| StoreError::backend(format!("token of missing session {family}")))?
            .try_into()
    }
}

#[async_trait::async_trait]
impl AuthStore for MongoAuthStore {
    async fn create_credential(&self, c: &Credential) -> Result<(), StoreError> {
        let doc = CredentialDoc {
            user_id: c.user_id.to_string(),
            email_key: c.email_key.clone(),
            password_hash: c.password_hash.clone(),
            active: c.active,
            created_at: c.created_at.millis(),
        };
        match self.credentials.insert_one(doc).await {
            Ok(_) => Ok(()),
            Err(e) if is_duplicate_key(&e).is_some() => Err(StoreError::Duplicate("email")),
            Err(e) => Err(e.into()),
        }
    }

    async fn find_credential(&self, email_key: &str) -> Result<Option<Credential>, StoreError> {
        self.credentials.find_one(doc! {"email_key": email_key}).await?.map(Credential::try_from).transpose()
    }

    async fn activate_credential(&self, user: UserId) -> Result<(), StoreError> {
        self.credentials.update_one(doc! {"_id": user.to_string()}, doc! {"$set": {"active": true}}).await?;
        Ok(())
    }

    async fn delete_credential(&self, user: UserId) -> Result<(), StoreError> {
        self.credentials.delete_one(doc! {"_id": user.to_string()}).await?;
        Ok(())
    }

    async fn create_session(&self, s: &LoginSession, first: &TokenHash) -> Result<(), StoreError> {
        // Session first: a token never points at a missing session.
        self.sessions
            .insert_one(SessionDoc {
                family_id: s.id.to_string(),
                user_id: s.user_id.to_string(),
                created_at: s.created_at.millis(),
                expires_at: s.expires_at.millis(),
                revoked: s.revoked,
                last_used_at: s.last_used_at.millis(),
                user_agent: s.user_agent.clone(),
                ip: s.ip.clone(),
            })
            .await?;
        self.add_token(s.id, first, s.created_at).await
    }

    async fn add_token(&self, session: SessionId, token: &TokenHash, now: Timestamp) -> Result<(), StoreError> {
        self.tokens
            .insert_one(TokenDoc {
                token_hash: token.0.clone(),
                family_id: session.to_string(),
                created_at: now.millis(),
            })
            .await?;
        self.sessions
            .update_one(doc! {"_id": session.to_string()}, doc! {"$max": {"last_used_at": now.millis()}})
            .await?;
        Ok(())
    }

    async fn consume_token(&self, token: &TokenHash, now: Timestamp) -> Result<Consumed, StoreError> {
        let Some(t) = self.tokens.find_one(doc! {"_id": &token.0}).await? else {
            return Ok(Consumed::Unknown);
        };
        // Spending is inserting under the token's hash as `_id`: of two
        // concurrent callers exactly one insert succeeds. (A conditional
        // findAndModify would do on MongoDB, but FerretDB does not make it
        // atomic; a unique key is atomic on both.)
        match self.spent.insert_one(SpentDoc { token_hash: token.0.clone(), spent_at: now.millis() }).await {
            Ok(_) => Ok(Consumed::Fresh(self.session(&t.family_id).await?)),
            Err(e) if is_duplicate_key(&e).is_some() => {
                Ok(Consumed::Replayed(SessionId::parse(&t.family_id).map_err(corrupt)?))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn find_session_by_token(&self, token: &TokenHash) -> Result<Option<LoginSession>, StoreError> {
        match self.tokens.find_one(doc! {"_id": &token.0}).await? {
            Some(t) => Ok(Some(self.session(&t.family_id).await?)),
            None => Ok(None),
        }
    }

    async fn find_session(&self, id: SessionId) -> Result<Option<LoginSession>, StoreError> {
        self.sessions.find_one(doc! {"_id": id.to_string()}).await?.map(LoginSession::try_from).transpose()
    }

    async fn live_sessions(&self, user: UserId, now: Timestamp, limit: usize) -> Result<Vec<LoginSession>, StoreError> {
        let mut cursor = self
            .sessions
            .find(doc! {"user_id": user.to_string(), "revoked": false, "expires_at": {"$gt": now.millis()}})
            .sort(doc! {"created_at": -1, "_id": -1})
            .limit(limit as i64)
            .await?;
        let mut sessions = Vec::new();
        while cursor.advance().await? {
            sessions.push(cursor.deserialize_current()?.try_into()?);
        }
        Ok(sessions)
    }

    async fn revoke_session(&self, id: SessionId) -> Result<(), StoreError> {
        self.sessions.update_one(doc! {"_id": id.to_string()}, doc! {"$set": {"revoked": true}}).await?;
        Ok(())
    }
}
