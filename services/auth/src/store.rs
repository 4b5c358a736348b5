//! Persistence of credentials and login sessions: one trait, one file per
//! backend, one conformance suite (`tests/store_conformance.rs`).

mod mongo;
mod sqlite;

use chatterbox_store::StoreError;
use chatterbox_types::{SessionId, Timestamp, UserId};

pub use crate::refresh_token::TokenHash;
pub use mongo::MongoAuthStore;
pub use sqlite::SqliteAuthStore;

/// A user's login credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// The user they belong to.
    pub user_id: UserId,
    /// The lower-cased email, unique.
    pub email_key: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// False while registration is still creating the profile; inactive
    /// credentials cannot log in.
    pub active: bool,
    /// When they were created.
    pub created_at: Timestamp,
}

/// A login session: the family of refresh tokens rotated from one login
/// (or registration), and the access tokens issued from them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginSession {
    /// The session's id (access tokens carry it as `sid`).
    pub id: SessionId,
    /// Whose session it is.
    pub user_id: UserId,
    /// When the user logged in.
    pub created_at: Timestamp,
    /// Absolute end: no rotation extends it.
    pub expires_at: Timestamp,
    /// Set by logout, by ending it from the session list, or by detected
    /// token reuse.
    pub revoked: bool,
    /// When one of its refresh tokens was last spent (its start, until then).
    pub last_used_at: Timestamp,
    /// The client that started it, as it named itself (`User-Agent`).
    pub user_agent: String,
    /// The address it started from, as the gateway saw it.
    pub ip: String,
}

/// What presenting a refresh token found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Consumed {
    /// The token was current; it is now spent. Its session as stored.
    Fresh(LoginSession),
    /// The token had already been spent: someone is replaying it.
    Replayed(SessionId),
    /// No such token.
    Unknown,
}

/// The auth service's storage.
#[async_trait::async_trait]
pub trait AuthStore: Send + Sync + std::fmt::Debug {
    /// Stores new credentials; `Duplicate("email")` if the email is taken.
    async fn create_credential(&self, credential: &Credential) -> Result<(), StoreError>;
    /// The credentials for an email (active or not).
    async fn find_credential(&self, email_key: &str) -> Result<Option<Credential>, StoreError>;
    /// Marks credentials usable once the profile exists.
    async fn activate_credential(&self, user: UserId) -> Result<(), StoreError>;
    /// Removes credentials (registration rolled back).
    async fn delete_credential(&self, user: UserId) -> Result<(), StoreError>;

    /// Starts a login session with its first refresh token.
    async fn create_session(&self, session: &LoginSession, first: &TokenHash) -> Result<(), StoreError>;
    /// Adds the next refresh token of a session (after a rotation) and
    /// marks the session used at `now`.
    async fn add_token(&self, session: SessionId, token: &TokenHash, now: Timestamp) -> Result<(), StoreError>;
    /// Atomically spends a token: of two concurrent callers, one gets `Fresh`.
    async fn consume_token(&self, token: &TokenHash, now: Timestamp) -> Result<Consumed, StoreError>;
    /// The session a token (spent or not) belongs to.
    async fn find_session_by_token(&self, token: &TokenHash) -> Result<Option<LoginSession>, StoreError>;
    /// A session by its id.
    async fn find_session(&self, session: SessionId) -> Result<Option<LoginSession>, StoreError>;
    /// A user's sessions that are neither revoked nor expired at `now`,
    /// most recently started first, at most `limit`.
    async fn live_sessions(&self, user: UserId, now: Timestamp, limit: usize) -> Result<Vec<LoginSession>, StoreError>;
    /// Revokes a whole session: every token of the family stops working.
    async fn revoke_session(&self, session: SessionId) -> Result<(), StoreError>;
}
