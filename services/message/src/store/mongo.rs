//! The message store on MongoDB (distributed mode). See the module docs of
//! `store` for why an insert-at-max+1 under a unique index keeps `seq`
//! gap-free and visible in order without transactions.

use chatterbox_store::{KeyedLocks, StoreError, is_duplicate_key, mongo_database, unique_index};
use chatterbox_types::{ConversationId, MessageId, MessageKind, Timestamp, UserId};
use mongodb::bson::{Document, doc};
use mongodb::options::ReturnDocument;
use mongodb::{Collection, Database, IndexModel};
use serde::{Deserialize, Serialize};

use super::{
    Attachment, MentionCursor, Message, MessageStore, NewMessage, PinCursor, Reacted, ReactionCount, Reactors,
    ReadMark, Window,
};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct MessageDoc {
    #[serde(rename = "_id")]
    id: String,
    conversation_id: String,
    seq: i64,
    sender_id: String,
    kind: String,
    content: String,
    attachments: Vec<Attachment>,
    client_id: Option<String>,
    client_key: String,
    created_at: i64,
    edited_at: Option<i64>,
    deleted: bool,
    created_change: i64,
    change_seq: i64,
    /// The message it answers (absent in documents older than replies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reply_to: Option<String>,
    /// When it was pinned (absent when it is not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pinned_at: Option<i64>,
    /// The participants its text mentions (absent for none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    mentions: Vec<String>,
    /// Its search terms (`crate::search`), empty once deleted; written,
    /// never read back (reads leave the field out).
    #[serde(default, skip_deserializing)]
    terms: Vec<String>,
}

/// What reads of messages leave out: the search terms.
fn without_terms() -> Document {
    doc! {"terms": 0}
}

#[derive(Debug, Serialize, Deserialize)]
struct CounterDoc {
    #[serde(rename = "_id")]
    conversation_id: String,
    change_seq: i64,
}

#[derive(Debug, Serialize, Deserialize)]
struct ReadMarkDoc {
    #[serde(rename = "_id")]
    id: String,
    conversation_id: String,
    user_id: String,
    seq: i64,
    read_at: i64,
}

/// One user's reaction to a message: `_id` is `<message>|<emoji>|<user>`,
/// so a reaction is stored once however often it is added.
#[derive(Debug, Serialize, Deserialize)]
struct ReactionDoc {
    #[serde(rename = "_id")]
    id: String,
    message_id: String,
    emoji: String,
    user_id: String,
    created_at: i64,
    /// When this emoji first appeared on the message (shared by its
    /// reactions while any stands): the order reactions are shown in.
    emoji_since: i64,
}

fn reaction_id(message: MessageId, emoji: &str, user: UserId) -> String {
    format!("{message}|{emoji}|{user}")
}

/// Others' live messages above `after_seq`: what `user` has not read.
fn unread(conversation: ConversationId, user: UserId, after_seq: u64) -> Document {
    doc! {
        "conversation_id": conversation.to_string(),
        "seq": {"$gt": after_seq as i64},
        "sender_id": {"$ne": user.to_string()},
        "deleted": false,
    }
}

fn user_ids(users: &[UserId]) -> Vec<String> {
    users.iter().map(ToString::to_string).collect()
}

fn corrupt(what: &str) -> StoreError {
    StoreError::backend(format!("corrupt message document: {what}"))
}

impl TryFrom<MessageDoc> for Message {
    type Error = StoreError;
    fn try_from(d: MessageDoc) -> Result<Self, StoreError> {
        Ok(Message {
            id: MessageId::parse(&d.id).map_err(|_| corrupt("id"))?,
            conversation_id: ConversationId::parse(&d.conversation_id).map_err(|_| corrupt("conversation id"))?,
            seq: d.seq as u64,
            sender_id: UserId::parse(&d.sender_id).map_err(|_| corrupt("sender id"))?,
            kind: MessageKind::parse(&d.kind).map_err(|_| corrupt("kind"))?,
            content: d.content,
            attachments: d.attachments,
            client_id: d.client_id,
            created_at: Timestamp::from_millis(d.created_at),
            edited_at: d.edited_at.map(Timestamp::from_millis),
            deleted: d.deleted,
            created_change: d.created_change as u64,
            change_seq: d.change_seq as u64,
            reply_to: d.reply_to.as_deref().map(MessageId::parse).transpose().map_err(|_| corrupt("reply_to"))?,
            pinned_at: d.pinned_at.map(Timestamp::from_millis),
            mentions: d
                .mentions
                .iter()
                .map(|u| UserId::parse(u))
                .collect::<Result<_, _>>()
                .map_err(|_| corrupt("mentions"))?,
        })
    }
}

/// Messages, change counters and read watermarks in three collections.
#[derive(Debug, Clone)]
pub struct MongoMessageStore {
    /// One turn per conversation written by this instance (appends, edits,
    /// deletes, reactions, pins: each moves its change counter), holding the last seq this
    /// instance wrote there (`None` until it has read it).
    turns: std::sync::Arc<KeyedLocks<ConversationId, Option<u64>>>,
    /// One turn per reader's watermark moved by this instance. MongoDB
    /// applies the conditional raise atomically by itself; FerretDB reads
    /// and then writes, so two devices of one reader marking at once could
    /// lower the mark without this.
    read_turns: std::sync::Arc<KeyedLocks<(ConversationId, UserId), ()>>,
    messages: Collection<MessageDoc>,
    reactions: Collection<ReactionDoc>,
    counters: Collection<CounterDoc>,
    reads: Collection<ReadMarkDoc>,
}

/// Appends that lose the race for a `seq` this many times in a row give up.
const MAX_APPEND_ATTEMPTS: usize = 1000;

impl MongoMessageStore {
    /// Connects and creates the indexes every query relies on.
    pub async fn connect(uri: &str, database: &str) -> Result<Self, StoreError> {
        Self::with_database(mongo_database(uri, database).await?).await
    }

    /// Uses an existing database handle.
    pub async fn with_database(db: Database) -> Result<Self, StoreError> {
        let store = Self {
            turns: std::sync::Arc::default(),
            read_turns: std::sync::Arc::default(),
            messages: db.collection("messages"),
            reactions: db.collection("message_reactions"),
            counters: db.collection("message_change_counters"),
            reads: db.collection("message_read_marks"),
        };
        store
            .messages
            .create_index(unique_index("conversation_seq_unique", doc! {"conversation_id": 1, "seq": 1}))
            .await?;
        store
            .messages
            .create_index(unique_index(
                "idempotency_unique",
                doc! {"conversation_id": 1, "sender_id": 1, "client_key": 1},
            ))
            .await?;
        store
            .messages
            .create_index(IndexModel::builder().keys(doc! {"conversation_id": 1, "change_seq": 1}).build())
            .await?;
        store.reads.create_index(IndexModel::builder().keys(doc! {"conversation_id": 1}).build()).await?;
        store.messages.create_index(IndexModel::builder().keys(doc! {"reply_to": 1, "seq": 1}).build()).await?;
        store
            .messages
            .create_index(IndexModel::builder().keys(doc! {"conversation_id": 1, "pinned_at": -1, "_id": -1}).build())
            .await?;
        // Search: messages holding a term, newest first (multikey indexes),
        // across conversations, or within a few named ones.
        store.messages.create_index(IndexModel::builder().keys(doc! {"terms": 1, "_id": -1}).build()).await?;
        store
            .messages
            .create_index(IndexModel::builder().keys(doc! {"conversation_id": 1, "terms": 1, "_id": -1}).build())
            .await?;
        // Each user's mentions, newest first (a multikey index).
        store
            .messages
            .create_index(IndexModel::builder().keys(doc! {"mentions": 1, "created_at": -1, "_id": -1}).build())
            .await?;
        store
            .reactions
            .create_index(IndexModel::builder().keys(doc! {"message_id": 1, "emoji_since": 1}).build())
            .await?;
        tokio::spawn(index_older_messages(store.messages.clone()));
        Ok(store)
    }

    async fn next_change(&self, conversation: &str) -> Result<i64, StoreError> {
        self.advance_changes(conversation, 1).await
    }

    /// Moves a conversation's change counter on by `by` and returns its new
    /// value (the last of the `by` numbers taken).
    async fn advance_changes(&self, conversation: &str, by: i64) -> Result<i64, StoreError> {
        // Two instances creating a conversation's counter at once: one insert
        // wins, the other gets a duplicate key. MongoDB 4.2+ retries that
        // upsert itself; FerretDB does not, so retry here: the counter now
        // exists and the second try increments it.
        let mut attempts = 0;
        loop {
            attempts += 1;
            let upsert = self
                .counters
                .find_one_and_update(doc! {"_id": conversation}, doc! {"$inc": {"change_seq": by}})
                .upsert(true)
                .return_document(ReturnDocument::After)
                .await;
            match upsert {
                Ok(counter) => {
                    let counter =
                        counter.ok_or_else(|| StoreError::backend("change counter upsert returned nothing"))?;
                    return Ok(counter.change_seq);
                }
                Err(e) if attempts < 3 && is_duplicate_key(&e).is_some() => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    async fn find_many(&self, filter: Document, sort: Document, limit: u32) -> Result<Vec<Message>, StoreError> {
        let mut cursor =
            self.messages.find(filter).sort(sort).limit(i64::from(limit)).projection(without_terms()).await?;
        let mut out = Vec::new();
        while cursor.advance().await? {
            out.push(Message::try_from(cursor.deserialize_current()?)?);
        }
        Ok(out)
    }

    /// The read watermarks `filter` selects, by conversation.
    async fn marks_where(
        &self,
        filter: Document,
    ) -> Result<std::collections::HashMap<ConversationId, Vec<ReadMark>>, StoreError> {
        let mut cursor = self.reads.find(filter).await?;
        let mut found: std::collections::HashMap<ConversationId, Vec<ReadMark>> = std::collections::HashMap::new();
        while cursor.advance().await? {
            let d = cursor.deserialize_current()?;
            let conversation =
                ConversationId::parse(&d.conversation_id).map_err(|_| corrupt("read mark conversation"))?;
            found.entry(conversation).or_default().push(ReadMark {
                user_id: UserId::parse(&d.user_id).map_err(|_| corrupt("read mark user"))?,
                seq: d.seq as u64,
                read_at: Timestamp::from_millis(d.read_at),
            });
        }
        Ok(found)
    }

    async fn by_idempotency_key(&self, m: &NewMessage) -> Result<Option<Message>, StoreError> {
        self.messages
            .find_one(doc! {
                "conversation_id": m.conversation_id.to_string(),
                "sender_id": m.sender_id.to_string(),
                "client_key": m.idempotency_key(),
            })
            .await?
            .map(Message::try_from)
            .transpose()
    }
}

/// Gives the live messages stored before search existed their terms, a
/// batch at a time, in the background (until then search does not find them).
async fn index_older_messages(messages: Collection<MessageDoc>) {
    let run = async {
        let mut indexed = 0u64;
        loop {
            let mut cursor = messages
                .clone_with_type::<Document>()
                .find(doc! {"terms": {"$exists": false}, "deleted": false})
                .projection(doc! {"_id": 1, "conversation_id": 1, "content": 1})
                .limit(500)
                .await?;
            let mut batch = Vec::new();
            while cursor.advance().await? {
                batch.push(cursor.deserialize_current()?);
            }
            if batch.is_empty() {
                break;
            }
            for old in batch {
                let (Ok(id), Ok(conversation)) = (old.get_str("_id"), old.get_str("conversation_id")) else { continue };
                let terms = crate::search::terms(old.get_str("content").unwrap_or_default());
                messages
                    .update_one(
                        doc! {"_id": id, "conversation_id": conversation, "terms": {"$exists": false}},
                        doc! {"$set": {"terms": terms}},
                    )
                    .await?;
                indexed += 1;
            }
        }
        Ok::<u64, mongodb::error::Error>(indexed)
    };
    match run.await {
        Ok(0) => {}
        Ok(n) => tracing::info!(messages = n, "indexed older messages for search"),
        Err(e) => {
            tracing::warn!(error = %e, "could not index older messages for search; they are not found until restart")
        }
    }
}

#[async_trait::async_trait]
impl MessageStore for MongoMessageStore {
    async fn append(&self, m: &NewMessage) -> Result<(Message, bool), StoreError> {
        // Appends to one conversation from this instance take turns, so they
        // do not race each other for the same seq, and the turn remembers the
        // last seq written. Other instances may still race; the unique index
        // settles that.
        let mut last_seq = self.turns.lock(&m.conversation_id).await;
        let conversation = m.conversation_id.to_string();
        let change = self.next_change(&conversation).await?;
        let mut seq = match *last_seq {
            Some(last) => last + 1,
            None => self.latest(m.conversation_id).await?.map_or(0, |l| l.seq) + 1,
        };
        for _ in 0..MAX_APPEND_ATTEMPTS {
            let doc = MessageDoc {
                id: m.id.to_string(),
                conversation_id: conversation.clone(),
                seq: seq as i64,
                sender_id: m.sender_id.to_string(),
                kind: m.kind.as_str().to_owned(),
                content: m.content.clone(),
                attachments: m.attachments.clone(),
                client_id: m.client_id.clone(),
                client_key: m.idempotency_key(),
                created_at: m.created_at.millis(),
                edited_at: None,
                deleted: false,
                created_change: change,
                change_seq: change,
                reply_to: m.reply_to.map(|r| r.to_string()),
                pinned_at: None,
                mentions: user_ids(&m.mentions),
                terms: crate::search::terms(&m.content),
            };
            match self.messages.insert_one(&doc).await {
                Ok(_) => {
                    *last_seq = Some(seq);
                    return Ok((Message::try_from(doc)?, true));
                }
                Err(e) if is_duplicate_key(&e).is_some() => {
                    // A retry of this very send (its client_id is taken)...
                    if let Some(existing) = self.by_idempotency_key(m).await? {
                        return Ok((existing, false));
                    }
                    // ...or another instance took this seq, which is
                    // therefore stored: go past everything stored now.
                    let stored = self.latest(m.conversation_id).await?.map_or(0, |l| l.seq);
                    seq = (seq + 1).max(stored + 1);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::backend("too much contention appending to one conversation"))
    }

    async fn import(&self, conversation: ConversationId, messages: &[NewMessage]) -> Result<(), StoreError> {
        if messages.is_empty() {
            return Ok(());
        }
        let mut last_seq = self.turns.lock(&conversation).await;
        let c = conversation.to_string();
        let first = self.latest(conversation).await?.map_or(0, |l| l.seq) + 1;
        // One counter step for the whole batch: its changes are numbered in a row.
        let last_change = self.advance_changes(&c, messages.len() as i64).await?;
        let first_change = last_change - messages.len() as i64 + 1;
        let docs: Vec<MessageDoc> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| MessageDoc {
                id: m.id.to_string(),
                conversation_id: c.clone(),
                seq: (first + i as u64) as i64,
                sender_id: m.sender_id.to_string(),
                kind: m.kind.as_str().to_owned(),
                content: m.content.clone(),
                attachments: m.attachments.clone(),
                client_id: m.client_id.clone(),
                client_key: m.idempotency_key(),
                created_at: m.created_at.millis(),
                edited_at: None,
                deleted: false,
                created_change: first_change + i as i64,
                change_seq: first_change + i as i64,
                reply_to: m.reply_to.map(|r| r.to_string()),
                pinned_at: None,
                mentions: user_ids(&m.mentions),
                terms: crate::search::terms(&m.content),
            })
            .collect();
        // Ordered: a failure stops the batch where it is, leaving no gap.
        self.messages.insert_many(docs).ordered(true).await?;
        *last_seq = Some(first + messages.len() as u64 - 1);
        Ok(())
    }

    async fn get(&self, id: MessageId) -> Result<Option<Message>, StoreError> {
        self.messages
            .find_one(doc! {"_id": id.to_string()})
            .projection(without_terms())
            .await?
            .map(Message::try_from)
            .transpose()
    }

    async fn list(&self, conversation: ConversationId, window: Window, limit: u32) -> Result<Vec<Message>, StoreError> {
        let c = conversation.to_string();
        let (filter, sort) = match window {
            Window::Latest => (doc! {"conversation_id": c}, doc! {"seq": -1}),
            Window::Before(s) => (doc! {"conversation_id": c, "seq": {"$lt": s as i64}}, doc! {"seq": -1}),
            Window::After(s) => (doc! {"conversation_id": c, "seq": {"$gt": s as i64}}, doc! {"seq": 1}),
        };
        let mut rows = self.find_many(filter, sort, limit).await?;
        rows.sort_by_key(|m| m.seq);
        Ok(rows)
    }

    async fn latest(&self, conversation: ConversationId) -> Result<Option<Message>, StoreError> {
        Ok(self.find_many(doc! {"conversation_id": conversation.to_string()}, doc! {"seq": -1}, 1).await?.pop())
    }

    async fn edit(
        &self,
        id: MessageId,
        content: &str,
        mentions: &[UserId],
        now: Timestamp,
    ) -> Result<Option<Message>, StoreError> {
        let Some(current) = self.get(id).await? else { return Ok(None) };
        if current.deleted {
            return Ok(None);
        }
        // In the conversation's turn: see `KeyedLocks`.
        let _turn = self.turns.lock(&current.conversation_id).await;
        let change = self.next_change(&current.conversation_id.to_string()).await?;
        self.messages
            .find_one_and_update(
                // The conversation too: a filter that names the shard key
                // (see docs/deployment.md) goes to one shard.
                doc! {"_id": id.to_string(), "conversation_id": current.conversation_id.to_string(), "deleted": false},
                doc! {"$set": {
                    "content": content, "edited_at": now.millis(), "change_seq": change, "mentions": user_ids(mentions),
                    "terms": crate::search::terms(content),
                }},
            )
            .return_document(ReturnDocument::After)
            .await?
            .map(Message::try_from)
            .transpose()
    }

    async fn delete(&self, id: MessageId) -> Result<Option<Message>, StoreError> {
        let Some(current) = self.get(id).await? else { return Ok(None) };
        if current.deleted {
            return Ok(Some(current));
        }
        let _turn = self.turns.lock(&current.conversation_id).await;
        let change = self.next_change(&current.conversation_id.to_string()).await?;
        let deleted = self
            .messages
            .find_one_and_update(
                doc! {"_id": id.to_string(), "conversation_id": current.conversation_id.to_string()},
                doc! {
                    "$set": {
                        "content": "", "attachments": [], "deleted": true, "change_seq": change, "mentions": [],
                        "terms": [],
                    },
                    "$unset": {"pinned_at": ""},
                },
            )
            .return_document(ReturnDocument::After)
            .await?
            .map(Message::try_from)
            .transpose()?;
        // Its reactions go with its content.
        self.reactions.delete_many(doc! {"message_id": id.to_string()}).await?;
        Ok(deleted)
    }

    async fn count_unread(
        &self,
        conversation: ConversationId,
        user: UserId,
        after_seq: u64,
    ) -> Result<u64, StoreError> {
        Ok(self.messages.count_documents(unread(conversation, user, after_seq)).await?)
    }

    async fn count_mentions(
        &self,
        conversation: ConversationId,
        user: UserId,
        after_seq: u64,
    ) -> Result<u64, StoreError> {
        let mut filter = unread(conversation, user, after_seq);
        filter.insert("mentions", user.to_string());
        Ok(self.messages.count_documents(filter).await?)
    }

    async fn mentioning(
        &self,
        user: UserId,
        after: Option<MentionCursor>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        let user = user.to_string();
        let mut filter = doc! {"mentions": &user, "sender_id": {"$ne": &user}, "deleted": false};
        if let Some(after) = after {
            let at = after.created_at.millis();
            filter.insert(
                "$or",
                vec![doc! {"created_at": {"$lt": at}}, doc! {"created_at": at, "_id": {"$lt": after.id.to_string()}}],
            );
        }
        self.find_many(filter, doc! {"created_at": -1, "_id": -1}, limit).await
    }

    async fn search(
        &self,
        terms: &[String],
        conversations: &[ConversationId],
        before: Option<MessageId>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        if terms.is_empty() || conversations.is_empty() {
            return Ok(Vec::new());
        }
        let conversations: Vec<String> = conversations.iter().map(ToString::to_string).collect();
        let mut filter = doc! {"terms": {"$all": terms}, "conversation_id": {"$in": conversations}, "deleted": false};
        if let Some(before) = before {
            filter.insert("_id", doc! {"$lt": before.to_string()});
        }
        // Ids are time-ordered: newest first by id.
        self.find_many(filter, doc! {"_id": -1}, limit).await
    }

    async fn read_marks(&self, conversation: ConversationId) -> Result<Vec<ReadMark>, StoreError> {
        Ok(self
            .marks_where(doc! {"conversation_id": conversation.to_string()})
            .await?
            .remove(&conversation)
            .unwrap_or_default())
    }

    async fn read_marks_of(
        &self,
        conversations: &[ConversationId],
    ) -> Result<std::collections::HashMap<ConversationId, Vec<ReadMark>>, StoreError> {
        if conversations.is_empty() {
            return Ok(std::collections::HashMap::new());
        }
        let ids: Vec<String> = conversations.iter().map(ToString::to_string).collect();
        self.marks_where(doc! {"conversation_id": {"$in": ids}}).await
    }

    async fn mark_read(
        &self,
        conversation: ConversationId,
        user: UserId,
        seq: u64,
        now: Timestamp,
    ) -> Result<ReadMark, StoreError> {
        let id = format!("{conversation}:{user}");
        let _turn = self.read_turns.lock(&(conversation, user)).await;
        // Raise the watermark only if it is lower; create it if absent.
        let raised = self
            .reads
            .update_one(
                doc! {"_id": &id, "seq": {"$lt": seq as i64}},
                doc! {"$set": {"seq": seq as i64, "read_at": now.millis()}},
            )
            .await?;
        if raised.matched_count == 0 {
            let fresh = ReadMarkDoc {
                id: id.clone(),
                conversation_id: conversation.to_string(),
                user_id: user.to_string(),
                seq: seq as i64,
                read_at: now.millis(),
            };
            match self.reads.insert_one(fresh).await {
                Ok(_) => {}
                // It exists already, at or above `seq` (or a racer just made it).
                Err(e) if is_duplicate_key(&e).is_some() => {
                    self.reads
                        .update_one(
                            doc! {"_id": &id, "seq": {"$lt": seq as i64}},
                            doc! {"$set": {"seq": seq as i64, "read_at": now.millis()}},
                        )
                        .await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        let d = self.reads.find_one(doc! {"_id": &id}).await?.ok_or_else(|| corrupt("read mark vanished"))?;
        Ok(ReadMark { user_id: user, seq: d.seq as u64, read_at: Timestamp::from_millis(d.read_at) })
    }

    async fn react(
        &self,
        id: MessageId,
        user: UserId,
        emoji: &str,
        add: bool,
        at: Timestamp,
        most: usize,
    ) -> Result<Option<Reacted>, StoreError> {
        let Some(found) = self.get(id).await? else { return Ok(None) };
        // The whole toggle in the conversation's turn, as an edit or a
        // deletion: the limit's check and the insert go together, a deletion
        // cannot slip between them, and the change number is taken before
        // anyone of this instance reads the reaction.
        let _turn = self.turns.lock(&found.conversation_id).await;
        let Some(current) = self.get(id).await?.filter(|m| !m.deleted) else { return Ok(None) };
        let key = reaction_id(id, emoji, user);
        let changed = if add {
            let used = self.reactions.distinct("emoji", doc! {"message_id": id.to_string()}).await?;
            if !used.iter().any(|e| e.as_str() == Some(emoji)) && used.len() >= most {
                return Ok(Some(Reacted::TooMany));
            }
            #[derive(Deserialize)]
            struct Since {
                emoji_since: i64,
            }
            let since = self
                .reactions
                .clone_with_type::<Since>()
                .find_one(doc! {"message_id": id.to_string(), "emoji": emoji})
                .projection(doc! {"emoji_since": 1})
                .sort(doc! {"emoji_since": 1})
                .await?
                .map_or(at.millis(), |s| s.emoji_since);
            let reaction = ReactionDoc {
                id: key,
                message_id: id.to_string(),
                emoji: emoji.to_owned(),
                user_id: user.to_string(),
                created_at: at.millis(),
                emoji_since: since,
            };
            match self.reactions.insert_one(reaction).await {
                Ok(_) => true,
                Err(e) if is_duplicate_key(&e).is_some() => false,
                Err(e) => return Err(e.into()),
            }
        } else {
            self.reactions.delete_one(doc! {"_id": key}).await?.deleted_count > 0
        };
        if !changed {
            return Ok(Some(Reacted::Unchanged(current)));
        }
        // A change number, as an edit takes one: readers resuming get the
        // message's final state from `changes_since`.
        let change = self.next_change(&current.conversation_id.to_string()).await?;
        let updated = self
            .messages
            .find_one_and_update(
                doc! {"_id": id.to_string(), "conversation_id": current.conversation_id.to_string()},
                doc! {"$max": {"change_seq": change}},
            )
            .return_document(ReturnDocument::After)
            .await?
            .map(Message::try_from)
            .transpose()?;
        Ok(updated.map(Reacted::Changed))
    }

    async fn reactions(
        &self,
        messages: &[MessageId],
        viewer: UserId,
    ) -> Result<std::collections::HashMap<MessageId, Vec<ReactionCount>>, StoreError> {
        #[derive(Deserialize)]
        struct Row {
            message_id: String,
            emoji: String,
            user_id: String,
        }
        let mut found: std::collections::HashMap<MessageId, Vec<ReactionCount>> = std::collections::HashMap::new();
        if messages.is_empty() {
            return Ok(found);
        }
        // The rows themselves, by when their emoji first appeared, counted
        // here: FerretDB's `$group` has no `$min` or `$first` to order the
        // groups by, and this keeps to what both servers run. A page's reactions are read
        // in one query, however many messages and emoji.
        let ids: Vec<String> = messages.iter().map(ToString::to_string).collect();
        let viewer = viewer.to_string();
        let mut cursor = self
            .reactions
            .clone_with_type::<Row>()
            .find(doc! {"message_id": {"$in": ids}})
            .projection(doc! {"message_id": 1, "emoji": 1, "user_id": 1})
            .sort(doc! {"emoji_since": 1, "_id": 1})
            .await?;
        while cursor.advance().await? {
            let row = cursor.deserialize_current()?;
            let id = MessageId::parse(&row.message_id).map_err(|_| corrupt("reaction's message id"))?;
            let counts = found.entry(id).or_default();
            let me = row.user_id == viewer;
            match counts.iter_mut().find(|c| c.emoji == row.emoji) {
                Some(c) => {
                    c.count += 1;
                    c.me |= me;
                }
                None => counts.push(ReactionCount { emoji: row.emoji, count: 1, me }),
            }
        }
        Ok(found)
    }

    async fn reactors(&self, id: MessageId) -> Result<Vec<Reactors>, StoreError> {
        // The order reactions are shown in (see `reactions`).
        let mut cursor = self
            .reactions
            .find(doc! {"message_id": id.to_string()})
            .sort(doc! {"emoji_since": 1, "created_at": 1, "_id": 1})
            .await?;
        let mut rows = Vec::new();
        while cursor.advance().await? {
            let r = cursor.deserialize_current()?;
            rows.push((r.emoji, UserId::parse(&r.user_id).map_err(|_| corrupt("reaction's user id"))?));
        }
        Ok(Reactors::grouped(rows))
    }

    async fn set_pin(&self, id: MessageId, at: Option<Timestamp>) -> Result<Option<(Message, bool)>, StoreError> {
        let Some(current) = self.get(id).await? else { return Ok(None) };
        if current.deleted {
            return Ok(None);
        }
        // In the conversation's turn, as an edit: see `KeyedLocks`.
        let _turn = self.turns.lock(&current.conversation_id).await;
        let mut filter =
            doc! {"_id": id.to_string(), "conversation_id": current.conversation_id.to_string(), "deleted": false};
        // Only a change takes a change number: the filter says whether it is one.
        match at {
            Some(_) => filter.insert("pinned_at", doc! {"$exists": false}),
            None => filter.insert("pinned_at", doc! {"$exists": true}),
        };
        if self.messages.count_documents(filter.clone()).await? == 0 {
            let now = self.get(id).await?;
            return Ok(now.filter(|m| !m.deleted).map(|m| (m, false)));
        }
        let change = self.next_change(&current.conversation_id.to_string()).await?;
        let update = match at {
            Some(at) => doc! {"$set": {"pinned_at": at.millis(), "change_seq": change}},
            None => doc! {"$unset": {"pinned_at": ""}, "$set": {"change_seq": change}},
        };
        let updated = self
            .messages
            .find_one_and_update(filter, update)
            .return_document(ReturnDocument::After)
            .await?
            .map(Message::try_from)
            .transpose()?;
        match updated {
            Some(m) => Ok(Some((m, true))),
            // Changed by another instance meanwhile: as it is now.
            None => Ok(self.get(id).await?.filter(|m| !m.deleted).map(|m| (m, false))),
        }
    }

    async fn pins(
        &self,
        conversation: ConversationId,
        after: Option<PinCursor>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        let mut filter = doc! {"conversation_id": conversation.to_string(), "pinned_at": {"$gt": 0_i64}};
        if let Some(a) = after {
            let at = a.pinned_at.millis();
            filter.insert(
                "$or",
                vec![doc! {"pinned_at": {"$lt": at}}, doc! {"pinned_at": at, "_id": {"$lt": a.id.to_string()}}],
            );
        }
        self.find_many(filter, doc! {"pinned_at": -1, "_id": -1}, limit).await
    }

    async fn get_many(&self, ids: &[MessageId]) -> Result<Vec<Message>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
        let mut cursor = self.messages.find(doc! {"_id": {"$in": ids}}).projection(without_terms()).await?;
        let mut out = Vec::new();
        while cursor.advance().await? {
            out.push(Message::try_from(cursor.deserialize_current()?)?);
        }
        Ok(out)
    }

    async fn reply_counts(&self, ids: &[MessageId]) -> Result<std::collections::HashMap<MessageId, u64>, StoreError> {
        let mut counts = std::collections::HashMap::new();
        if ids.is_empty() {
            return Ok(counts);
        }
        let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
        // `$group` with `$sum` runs on FerretDB; the parents' ids come back
        // with their counts.
        let pipeline =
            [doc! {"$match": {"reply_to": {"$in": ids}}}, doc! {"$group": {"_id": "$reply_to", "count": {"$sum": 1}}}];
        let mut cursor = self.messages.aggregate(pipeline).await?;
        while cursor.advance().await? {
            let group = cursor.current();
            let id = group.get_str("_id").map_err(|_| corrupt("reply_to"))?;
            let count = group
                .get_i32("count")
                .map(i64::from)
                .or_else(|_| group.get_i64("count"))
                .map_err(|_| corrupt("reply count"))?;
            counts.insert(MessageId::parse(id).map_err(|_| corrupt("reply_to"))?, count as u64);
        }
        Ok(counts)
    }

    async fn replies(
        &self,
        conversation: ConversationId,
        parent: MessageId,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        self.find_many(
            doc! {"reply_to": parent.to_string(), "conversation_id": conversation.to_string(), "seq": {"$gt": after_seq as i64}},
            doc! {"seq": 1},
            limit,
        )
        .await
    }

    async fn changes_since(
        &self,
        conversation: ConversationId,
        after_seq: u64,
        after_change: u64,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        let c = conversation.to_string();
        let seen = self
            .messages
            .find_one(doc! {"conversation_id": &c, "seq": after_seq as i64})
            .await?
            .map_or(0, |m| m.created_change);
        let from = seen.max(after_change as i64);
        self.find_many(
            doc! {"conversation_id": c, "seq": {"$lte": after_seq as i64}, "change_seq": {"$gt": from}},
            doc! {"change_seq": 1},
            limit,
        )
        .await
    }
}
