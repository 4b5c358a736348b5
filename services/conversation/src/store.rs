//! Persistence of conversations: one trait, one file per backend, one
//! conformance suite (`tests/store_conformance.rs`).

mod mongo;
mod sqlite;

use chatterbox_store::StoreError;
use chatterbox_types::{ConversationId, Timestamp, UserId};

pub use mongo::MongoConversationStore;
pub use sqlite::SqliteConversationStore;

/// What kind of conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Exactly two users, one conversation per pair.
    Direct,
    /// Named, with admins.
    Group,
    /// A public group anyone can find and join; unique name.
    Room,
}

impl Kind {
    /// The API and storage spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Direct => "direct",
            Kind::Group => "group",
            Kind::Room => "room",
        }
    }

    /// Reads a stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "direct" => Some(Kind::Direct),
            "group" => Some(Kind::Group),
            "room" => Some(Kind::Room),
            _ => None,
        }
    }
}

/// A stored conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    /// Its id.
    pub id: ConversationId,
    /// Direct, group or room.
    pub kind: Kind,
    /// Name (empty for direct conversations).
    pub name: String,
    /// Free text.
    pub description: String,
    /// Unique across all conversations: `direct:<a>:<b>` (ordered pair),
    /// `room:<lower-cased name>`, `group:<id>`. This one key makes a direct
    /// conversation per pair and a room per name unique, in every backend.
    pub unique_key: String,
    /// Lower-cased name, for the room directory.
    pub name_key: String,
    /// Participants in joining order.
    pub participants: Vec<UserId>,
    /// Admins (always participants).
    pub admins: Vec<UserId>,
    /// Who created it.
    pub created_by: UserId,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change of name, description or membership.
    pub updated_at: Timestamp,
    /// Last message (or creation): what "most recent activity first" sorts by.
    pub last_activity: Timestamp,
}

impl Conversation {
    /// Whether `user` takes part.
    pub fn has_participant(&self, user: UserId) -> bool {
        self.participants.contains(&user)
    }

    /// Whether `user` administers it.
    pub fn has_admin(&self, user: UserId) -> bool {
        self.admins.contains(&user)
    }
}

/// A conversation a user is in, as far as following it needs: no
/// participants, however many there are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConversationRef {
    /// Its id.
    pub id: ConversationId,
    /// Direct, group or room.
    pub kind: Kind,
    /// Its last activity (the listing's order and cursor).
    pub last_activity: Timestamp,
}

/// A participant's place in a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Membership {
    /// The conversation's kind.
    pub kind: Kind,
    /// Whether they administer it.
    pub admin: bool,
}

/// Where a page of a user's conversations starts: after this activity/id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityCursor {
    /// Activity of the last conversation of the previous page.
    pub last_activity: Timestamp,
    /// Its id, to break ties.
    pub id: ConversationId,
}

/// Where a page of rooms starts: after this name key/id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameCursor {
    /// Name key of the last room of the previous page.
    pub name_key: String,
    /// Its id, to break ties.
    pub id: ConversationId,
}

/// A user someone blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    /// Who is blocked.
    pub blocked: UserId,
    /// Since when.
    pub at: Timestamp,
}

/// Where a page of someone's blocks starts: after this time/user (most
/// recent first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockCursor {
    /// Time of the last block of the previous page.
    pub at: Timestamp,
    /// Its user, to break ties.
    pub blocked: UserId,
}

/// A new name with the keys derived from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rename {
    /// The name.
    pub name: String,
    /// Its lower-cased key.
    pub name_key: String,
    /// The conversation's new unique key (rooms: `room:<name_key>`).
    pub unique_key: String,
}

/// The conversation service's storage.
#[async_trait::async_trait]
pub trait ConversationStore: Send + Sync + std::fmt::Debug {
    /// Stores a new conversation; `Duplicate("unique_key")` if its unique key is taken.
    async fn create(&self, c: &Conversation) -> Result<(), StoreError>;
    /// A conversation by id.
    async fn get(&self, id: ConversationId) -> Result<Option<Conversation>, StoreError>;
    /// `user`'s place in a conversation, without loading its participants;
    /// `None` when they take no part (or it does not exist).
    async fn membership(&self, id: ConversationId, user: UserId) -> Result<Option<Membership>, StoreError>;
    /// Of `ids`, the direct and group conversations `user` takes part in.
    async fn private_among(&self, user: UserId, ids: &[ConversationId]) -> Result<Vec<ConversationId>, StoreError>;
    /// A conversation by its unique key.
    async fn get_by_unique_key(&self, key: &str) -> Result<Option<Conversation>, StoreError>;
    /// A user's conversations, most recent activity first, after `after`.
    async fn list_for_user(
        &self,
        user: UserId,
        after: Option<&ActivityCursor>,
        limit: u32,
    ) -> Result<Vec<Conversation>, StoreError>;
    /// The same list as [`ConversationStore::list_for_user`], without
    /// loading participants: what a session needs to follow them.
    async fn list_refs_for_user(
        &self,
        user: UserId,
        after: Option<&ActivityCursor>,
        limit: u32,
    ) -> Result<Vec<ConversationRef>, StoreError>;
    /// Rooms whose name key starts with `prefix`, by name key, after `after`.
    /// Every conversation `user` takes part in, at most `limit`, in no
    /// particular order (one indexed read, no sorting).
    async fn conversation_ids_of(&self, user: UserId, limit: u32) -> Result<Vec<ConversationId>, StoreError>;
    async fn list_rooms(
        &self,
        prefix: &str,
        after: Option<&NameCursor>,
        limit: u32,
    ) -> Result<Vec<Conversation>, StoreError>;
    /// Changes name (with its keys) and/or description; `Duplicate` when a
    /// room's new name is taken.
    async fn update_details(
        &self,
        id: ConversationId,
        rename: Option<&Rename>,
        description: Option<&str>,
        now: Timestamp,
    ) -> Result<Option<Conversation>, StoreError>;
    /// Adds a participant (no-op if present).
    async fn add_participant(
        &self,
        id: ConversationId,
        user: UserId,
        now: Timestamp,
    ) -> Result<Option<Conversation>, StoreError>;
    /// Removes a participant, and their admin role.
    async fn remove_participant(
        &self,
        id: ConversationId,
        user: UserId,
        now: Timestamp,
    ) -> Result<Option<Conversation>, StoreError>;
    /// Makes a participant an admin; a non-participant is left alone.
    async fn add_admin(
        &self,
        id: ConversationId,
        user: UserId,
        now: Timestamp,
    ) -> Result<Option<Conversation>, StoreError>;
    /// Moves the last activity forward to `at` (never back), if `by` takes part.
    async fn record_activity(&self, id: ConversationId, by: UserId, at: Timestamp) -> Result<(), StoreError>;
    /// `blocker` blocks `blocked` from `at`; false (and the first time kept)
    /// if they already did.
    async fn block(&self, blocker: UserId, blocked: UserId, at: Timestamp) -> Result<bool, StoreError>;
    /// Lifts a block; false if there was none.
    async fn unblock(&self, blocker: UserId, blocked: UserId) -> Result<bool, StoreError>;
    /// Whether either of `a` and `b` blocks the other.
    async fn blocked_between(&self, a: UserId, b: UserId) -> Result<bool, StoreError>;
    /// Whom `blocker` blocks, most recent first, after `after`.
    async fn blocks_of(
        &self,
        blocker: UserId,
        after: Option<&BlockCursor>,
        limit: u32,
    ) -> Result<Vec<Block>, StoreError>;
}

/// The smallest string above every key starting with `prefix`.
pub(crate) fn prefix_end(prefix: &str) -> String {
    format!("{prefix}\u{10FFFF}")
}
