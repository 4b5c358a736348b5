//! Persistence of messages: one trait, one file per backend, one conformance
//! suite (`tests/store_conformance.rs`).
//!
//! # Ordering: the visibility guarantee
//! `seq` is per conversation, gap-free and strictly increasing, and once any
//! reader has seen `seq` N, every smaller `seq` of that conversation is
//! already readable. How each backend keeps that:
//! - **SQLite**: one writing connection; an append reads the conversation's
//!   highest `seq` and inserts `seq + 1` in its own savepoint of a group
//!   commit (`chatterbox_store::SqliteDb`). Appends are serialised, each is
//!   atomic, and a group commits at once, so commit order is `seq` order.
//! - **MongoDB** (no multi-document transactions assumed, so FerretDB works):
//!   an append reads the highest stored `seq` N and inserts N + 1 under the
//!   unique index `(conversation_id, seq)`; if another append took N + 1
//!   first, the insert fails and it retries. A document with `seq` N + 1 can
//!   therefore only be written after N was already stored and readable, so
//!   no reader can see N + 1 without N. No counter can run ahead of the
//!   data, and a crashed writer leaves no hole.
//!
//! Edits and deletions take a `change_seq` from a per-conversation counter
//! (`created_change` remembers the one of the creation), so a client that
//! saw up to `seq` P can be sent what changed among messages up to P, in
//! order; what is above P it reads from history. In SQLite the counter and
//! the write share a transaction, so change order is commit order. In
//! MongoDB the number is taken just before the write, so two changes racing
//! within milliseconds may commit out of number order; the real-time resume
//! must subscribe to live events before it reads changes to cover that.

mod mongo;
mod sqlite;
mod versions;

use chatterbox_store::StoreError;
use chatterbox_types::{ConversationId, MediaId, MessageId, MessageKind, Timestamp, UserId};

pub use mongo::MongoMessageStore;
pub use sqlite::SqliteMessageStore;

/// A stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Its id.
    pub id: MessageId,
    /// Where it was posted.
    pub conversation_id: ConversationId,
    /// Its position in the conversation, from 1.
    pub seq: u64,
    /// Who posted it.
    pub sender_id: UserId,
    /// Text, images or files.
    pub kind: MessageKind,
    /// The text (empty once deleted).
    pub content: String,
    /// Attached media (empty once deleted).
    pub attachments: Vec<Attachment>,
    /// The sender's idempotency key, if they gave one.
    pub client_id: Option<String>,
    /// When it was posted.
    pub created_at: Timestamp,
    /// When it was last edited.
    pub edited_at: Option<Timestamp>,
    /// A tombstone: content and attachments are gone, `seq` stays.
    pub deleted: bool,
    /// The change position of its creation.
    pub created_change: u64,
    /// The change position of its latest change (creation, edit or deletion).
    pub change_seq: u64,
    /// The message of the same conversation it answers.
    pub reply_to: Option<MessageId>,
    /// When it was pinned in its conversation, if it is.
    pub pinned_at: Option<Timestamp>,
    /// The participants its text mentions, in the order first mentioned
    /// (empty once deleted).
    pub mentions: Vec<UserId>,
}

/// Where a page of mentions starts: after this message (newest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MentionCursor {
    /// Creation time of the last message of the previous page.
    pub created_at: Timestamp,
    /// Its id, to break ties.
    pub id: MessageId,
}

/// Where a page of pinned messages starts: after this pin time/message
/// (most recently pinned first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinCursor {
    /// Pin time of the last message of the previous page.
    pub pinned_at: Timestamp,
    /// Its id, to break ties.
    pub id: MessageId,
}

/// Attached media as it was when sent: media never changes, so messages
/// keep a copy and history needs no further lookups.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Attachment {
    /// The media id.
    pub id: MediaId,
    /// Decided from the bytes by the media service.
    pub content_type: String,
    /// Bytes.
    pub size: u64,
    /// As the uploader named it.
    pub filename: String,
    /// Pixels, for images.
    pub width: Option<u32>,
    /// Pixels, for images.
    pub height: Option<u32>,
    /// Whether a thumbnail exists.
    pub has_thumbnail: bool,
    /// Upload time (ms since the Unix epoch).
    pub created_at_ms: i64,
}

/// A message to append; the store assigns `seq` and change positions.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// Its id (used unless the client_id repeats).
    pub id: MessageId,
    /// Where.
    pub conversation_id: ConversationId,
    /// Who.
    pub sender_id: UserId,
    /// Text, images or files.
    pub kind: MessageKind,
    /// The text.
    pub content: String,
    /// Attached media.
    pub attachments: Vec<Attachment>,
    /// The sender's idempotency key.
    pub client_id: Option<String>,
    /// When.
    pub created_at: Timestamp,
    /// The message of the same conversation it answers.
    pub reply_to: Option<MessageId>,
    /// The participants its text mentions.
    pub mentions: Vec<UserId>,
}

impl NewMessage {
    /// What makes a send idempotent in both stores: the client's id, or
    /// (without one) the message's own.
    pub(crate) fn idempotency_key(&self) -> String {
        match &self.client_id {
            Some(c) => format!("c:{c}"),
            None => format!("m:{}", self.id),
        }
    }
}

/// Which slice of history to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// The newest messages.
    Latest,
    /// The newest messages below this seq.
    Before(u64),
    /// The oldest messages above this seq.
    After(u64),
}

/// A user's read watermark in a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadMark {
    /// Whose.
    pub user_id: UserId,
    /// Every message up to this seq is read.
    pub seq: u64,
    /// When the watermark last moved.
    pub read_at: Timestamp,
}

/// What a conversation's summary for one reader is made of, read together.
#[derive(Debug, Clone)]
pub struct SummaryRead {
    /// Every read watermark of the conversation.
    pub marks: Vec<ReadMark>,
    /// Its newest message.
    pub latest: Option<Message>,
    /// Others' live messages above the reader's watermark.
    pub unread: u64,
    /// Those of them that mention the reader.
    pub mentions: u64,
}

/// One emoji's reactions to a message, as one reader sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReactionCount {
    /// The emoji or `:shortcode:`.
    pub emoji: String,
    /// How many reacted with it.
    pub count: u64,
    /// Whether the reader is among them.
    pub me: bool,
}

/// Who reacted to a message with one emoji.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reactors {
    /// The emoji or `:shortcode:`.
    pub emoji: String,
    /// Who, first first.
    pub users: Vec<UserId>,
}

impl Reactors {
    /// Reactions read one at a time in the order they are shown (by when
    /// their emoji first appeared, then by time), grouped by emoji.
    pub(crate) fn grouped(rows: impl IntoIterator<Item = (String, UserId)>) -> Vec<Self> {
        let mut found: Vec<Self> = Vec::new();
        for (emoji, user) in rows {
            match found.iter_mut().find(|r| r.emoji == emoji) {
                Some(r) => r.users.push(user),
                None => found.push(Self { emoji, users: vec![user] }),
            }
        }
        found
    }
}

/// What a reaction request did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reacted {
    /// It changed; the message as it is now (a new `change_seq`).
    Changed(Message),
    /// It was already so; the message, untouched.
    Unchanged(Message),
    /// Adding it would give the message more distinct reactions than allowed.
    TooMany,
}

/// The message service's storage.
#[async_trait::async_trait]
pub trait MessageStore: Send + Sync + std::fmt::Debug {
    /// Appends a message with the next `seq`, or returns the message already
    /// stored under the same (conversation, sender, client_id); the flag says
    /// whether it was created now.
    async fn append(&self, message: &NewMessage) -> Result<(Message, bool), StoreError>;
    /// Appends a batch of messages to one conversation in the given order,
    /// numbered after whatever it holds (bulk import of existing history).
    /// Client ids must be new; a clash fails the batch.
    async fn import(&self, conversation: ConversationId, messages: &[NewMessage]) -> Result<(), StoreError>;
    /// A message by id.
    async fn get(&self, id: MessageId) -> Result<Option<Message>, StoreError>;

    /// A window of history, in ascending `seq`.
    async fn list(&self, conversation: ConversationId, window: Window, limit: u32) -> Result<Vec<Message>, StoreError>;
    /// A window of history and the conversation's read watermarks, as read
    /// together (one trip to the store where the backend allows).
    async fn page(
        &self,
        conversation: ConversationId,
        window: Window,
        limit: u32,
    ) -> Result<(Vec<Message>, Vec<ReadMark>), StoreError> {
        futures::future::try_join(self.list(conversation, window, limit), self.read_marks(conversation)).await
    }
    /// The watermarks of each of `conversations` (one trip to the store
    /// where the backend allows); conversations without any are left out.
    async fn read_marks_of(
        &self,
        conversations: &[ConversationId],
    ) -> Result<std::collections::HashMap<ConversationId, Vec<ReadMark>>, StoreError> {
        let marks = futures::future::try_join_all(conversations.iter().map(|c| self.read_marks(*c))).await?;
        Ok(conversations.iter().copied().zip(marks).filter(|(_, m)| !m.is_empty()).collect())
    }
    /// What `reader`'s summary of `conversation` needs: its watermarks, its
    /// newest message, and the reader's unread messages and mentions above
    /// their watermark (one trip to the store where the backend allows).
    async fn summary(&self, conversation: ConversationId, reader: UserId) -> Result<SummaryRead, StoreError> {
        let marks = self.read_marks(conversation).await?;
        let mine = marks.iter().find(|m| m.user_id == reader).map_or(0, |m| m.seq);
        let (latest, unread, mentions) = futures::future::try_join3(
            self.latest(conversation),
            self.count_unread(conversation, reader, mine),
            self.count_mentions(conversation, reader, mine),
        )
        .await?;
        Ok(SummaryRead { marks, latest, unread, mentions })
    }
    /// The newest message.
    async fn latest(&self, conversation: ConversationId) -> Result<Option<Message>, StoreError>;
    /// Replaces a live message's content and who it mentions; `None` if
    /// absent or deleted.
    async fn edit(
        &self,
        id: MessageId,
        content: &str,
        mentions: &[UserId],
        now: Timestamp,
    ) -> Result<Option<Message>, StoreError>;
    /// Turns a message into a tombstone (idempotent); `None` if absent.
    async fn delete(&self, id: MessageId) -> Result<Option<Message>, StoreError>;
    /// Live messages above `after_seq` not sent by `user`.
    async fn count_unread(&self, conversation: ConversationId, user: UserId, after_seq: u64)
    -> Result<u64, StoreError>;
    /// Live messages above `after_seq` not sent by `user` that mention them.
    async fn count_mentions(
        &self,
        conversation: ConversationId,
        user: UserId,
        after_seq: u64,
    ) -> Result<u64, StoreError>;
    /// Live messages of others that mention `user`, in every conversation,
    /// newest first (by creation time, then id), after `after`.
    async fn mentioning(
        &self,
        user: UserId,
        after: Option<MentionCursor>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError>;
    /// Live messages of `conversations` holding every one of `terms`
    /// (`crate::search`), newest first (in the order they were stored),
    /// after message `before`.
    async fn search(
        &self,
        terms: &[String],
        conversations: &[ConversationId],
        before: Option<MessageId>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError>;
    /// Every read watermark of a conversation.
    async fn read_marks(&self, conversation: ConversationId) -> Result<Vec<ReadMark>, StoreError>;
    /// Moves `user`'s watermark up to `seq` (never down); returns it.
    async fn mark_read(
        &self,
        conversation: ConversationId,
        user: UserId,
        seq: u64,
        now: Timestamp,
    ) -> Result<ReadMark, StoreError>;
    /// A number that changes whenever anything a page of `conversation`'s
    /// history shows may have changed (a message added, edited or deleted, a
    /// read watermark moved), before that write is acknowledged; `None` when
    /// this process cannot know every write (other processes share the
    /// database). Read it *before* a page: if it is the same later, nothing
    /// acknowledged since has changed that page.
    fn history_version(&self, conversation: ConversationId) -> Option<u64> {
        let _ = conversation;
        None
    }
    /// Adds (`add`) or removes `user`'s reaction `emoji` to a live message,
    /// refusing a new emoji past `most` distinct ones; a change moves the
    /// message's `change_seq` (so resuming readers get its final state).
    /// `None` when the message is absent or deleted.
    async fn react(
        &self,
        message: MessageId,
        user: UserId,
        emoji: &str,
        add: bool,
        at: Timestamp,
        most: usize,
    ) -> Result<Option<Reacted>, StoreError>;
    /// The reactions to each of `messages` (those that have any), in order
    /// of first use, as `viewer` sees them.
    async fn reactions(
        &self,
        messages: &[MessageId],
        viewer: UserId,
    ) -> Result<std::collections::HashMap<MessageId, Vec<ReactionCount>>, StoreError>;
    /// Who reacted to `message` with what, in order of first use.
    async fn reactors(&self, message: MessageId) -> Result<Vec<Reactors>, StoreError>;
    /// Those of `ids` that exist, in no particular order.
    async fn get_many(&self, ids: &[MessageId]) -> Result<Vec<Message>, StoreError>;
    /// How many messages answer each of `ids` (those with none left out).
    async fn reply_counts(&self, ids: &[MessageId]) -> Result<std::collections::HashMap<MessageId, u64>, StoreError>;
    /// Pins a live message from `at` (`Some`) or unpins it (`None`); a change
    /// takes the message's next change position. The message as it is
    /// afterwards and whether it changed; `None` when it is absent or deleted.
    async fn set_pin(&self, id: MessageId, at: Option<Timestamp>) -> Result<Option<(Message, bool)>, StoreError>;
    /// A conversation's pinned messages, most recently pinned first, after `after`.
    async fn pins(
        &self,
        conversation: ConversationId,
        after: Option<PinCursor>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError>;
    /// The messages answering `parent` (of `conversation`), above `after_seq`, ascending.
    async fn replies(
        &self,
        conversation: ConversationId,
        parent: MessageId,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError>;
    /// Messages up to `after_seq` edited or deleted since `after_seq` was
    /// created (and after change `after_change`), in change order. Messages
    /// above `after_seq` are new to such a reader: history has them.
    async fn changes_since(
        &self,
        conversation: ConversationId,
        after_seq: u64,
        after_change: u64,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError>;
}
