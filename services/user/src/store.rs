//! Persistence of profiles: one trait, one file per backend, one conformance
//! suite (`tests/store_conformance.rs`).

mod mongo;
mod sqlite;

use chatterbox_store::StoreError;
use chatterbox_types::{Timestamp, UserId};

pub use mongo::MongoUserStore;
pub use sqlite::SqliteUserStore;

/// Presence as the profile records it.
pub use chatterbox_types::PresenceStatus as Status;

/// Reads a stored spelling; unknown values read as offline.
pub(crate) fn stored_status(s: &str) -> Status {
    Status::parse(s).unwrap_or(Status::Offline)
}

/// A stored profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// The user's id (chosen by the auth service at registration).
    pub id: UserId,
    /// Username as chosen.
    pub username: String,
    /// Lower-cased username, unique; what search runs on.
    pub username_key: String,
    /// Email as given.
    pub email: String,
    /// Lower-cased email, unique.
    pub email_key: String,
    /// Media id of the avatar.
    pub avatar: Option<String>,
    /// Presence status.
    pub status: Status,
    /// When the last connection closed.
    pub last_seen: Option<Timestamp>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

/// A change to a profile; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ProfilePatch {
    /// New username and its key.
    pub username: Option<(String, String)>,
    /// New avatar (`Some(None)` clears it).
    pub avatar: Option<Option<String>>,
}

/// The user service's storage.
#[async_trait::async_trait]
pub trait UserStore: Send + Sync + std::fmt::Debug {
    /// Stores a new profile; `Duplicate("username" | "email" | "id")` when taken.
    async fn create_profile(&self, profile: &Profile) -> Result<(), StoreError>;
    /// A profile by id.
    async fn get_profile(&self, id: UserId) -> Result<Option<Profile>, StoreError>;
    /// Profiles whose username key starts with `prefix`, ordered by key,
    /// starting after `after` (a key), at most `limit`.
    async fn search_profiles(&self, prefix: &str, after: Option<&str>, limit: u32) -> Result<Vec<Profile>, StoreError>;
    /// The profiles whose username key is one of `keys`, in no particular order.
    async fn profiles_by_keys(&self, keys: &[String]) -> Result<Vec<Profile>, StoreError>;
    /// Applies a patch; `None` if there is no such profile.
    async fn update_profile(
        &self,
        id: UserId,
        patch: &ProfilePatch,
        now: Timestamp,
    ) -> Result<Option<Profile>, StoreError>;
    /// Records presence: the status, and `last_seen` when given (else kept).
    /// Not a profile edit: `updated_at` stays. `None` if there is no such profile.
    async fn set_presence(
        &self,
        id: UserId,
        status: Status,
        last_seen: Option<Timestamp>,
    ) -> Result<Option<Profile>, StoreError>;
    /// Removes a profile (a registration rolled back).
    async fn delete_profile(&self, id: UserId) -> Result<(), StoreError>;
}

/// The smallest string greater than every key starting with `prefix`
/// (keys are ASCII), for range scans instead of pattern matching.
pub(crate) fn prefix_end(prefix: &str) -> String {
    format!("{prefix}\u{10FFFF}")
}
