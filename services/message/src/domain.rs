//! The rules of messages (`api.md`): participants only, sender-only edits,
//! deletions by the sender or an admin, tombstones that keep their `seq`,
//! read watermarks and the read receipts and unread counts derived from them.

use std::sync::Arc;

use chatterbox_errors::{Code, Error};
use chatterbox_events::EventBus;
use chatterbox_identity::Actor;
use chatterbox_types::{ConversationId, MediaId, MessageId, MessageKind, ReactionEmoji, Timestamp, UserId};

use crate::announce::Announcer;
use crate::media::MediaLibrary;
use crate::search::SearchQuery;
use crate::store::{
    Attachment, MentionCursor, Message, MessageStore, NewMessage, PinCursor, Reacted, ReactionCount, ReadMark, Window,
};
use chatterbox_membership::{ConversationAccess, Standing};

/// Longest message, in characters after trimming.
pub const MAX_CONTENT: usize = 4000;
/// Longest client id.
pub const MAX_CLIENT_ID: usize = 128;
/// Longest search query, in characters after trimming.
pub const MAX_QUERY: usize = 200;
/// Most distinct reactions one message may carry.
pub const MAX_REACTIONS: usize = 20;

/// A message with the receipts derived from the conversation's watermarks.
#[derive(Debug, Clone)]
pub struct MessageView {
    /// The message.
    pub message: Message,
    /// Who (besides the sender) has read it, and when their watermark
    /// moved: at most [`READ_BY_LIMIT`] of them, those who have read
    /// furthest first.
    pub read_by: Vec<(UserId, Timestamp)>,
    /// How many (besides the sender) have read it, all of them.
    pub read_count: u64,
    /// Its reactions in order of first use, as the reader sees them.
    pub reactions: Vec<ReactionCount>,
    /// The message it answers, as that message is now.
    pub reply_to: Option<ReplyRef>,
    /// How many messages answer it.
    pub reply_count: u64,
}

impl MessageView {
    /// A message without receipts, reactions or replies.
    pub fn bare(message: Message) -> Self {
        Self { message, read_by: Vec::new(), read_count: 0, reactions: Vec::new(), reply_to: None, reply_count: 0 }
    }
}

/// The message a reply answers, as shown with the reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyRef {
    /// Its id.
    pub id: MessageId,
    /// Its place in the conversation.
    pub seq: u64,
    /// Who wrote it.
    pub sender_id: UserId,
    /// The first [`EXCERPT_CHARS`] characters of its content now (empty
    /// once it is deleted).
    pub excerpt: String,
}

/// Characters of the answered message shown with a reply.
pub const EXCERPT_CHARS: usize = 100;

impl ReplyRef {
    /// How a reply shows `parent`.
    pub fn of(parent: &Message) -> Self {
        let excerpt = if parent.deleted { String::new() } else { parent.content.chars().take(EXCERPT_CHARS).collect() };
        Self { id: parent.id, seq: parent.seq, sender_id: parent.sender_id, excerpt }
    }
}

/// The most readers listed per message: in a room of thousands, every page
/// would otherwise carry every member's receipt on every message.
pub const READ_BY_LIMIT: usize = 100;

/// The latest message and the caller's unread count in one conversation.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Which conversation.
    pub conversation_id: ConversationId,
    /// Its newest message.
    pub last_message: Option<MessageView>,
    /// Others' live messages above the caller's watermark.
    pub unread_count: u64,
    /// Those of them that mention the caller.
    pub mention_count: u64,
}

/// A message as its sender asks to post it, not yet checked.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    /// Where.
    pub conversation_id: ConversationId,
    /// The text (a caption for attachments).
    pub content: &'a str,
    /// Text, images or files.
    pub kind: MessageKind,
    /// Media the sender uploaded.
    pub attachments: &'a [MediaId],
    /// The sender's idempotency key.
    pub client_id: Option<&'a str>,
    /// The message of the same conversation it answers.
    pub reply_to: Option<MessageId>,
}

/// The message domain.
#[derive(Debug, Clone)]
pub struct Messages {
    store: Arc<dyn MessageStore>,
    access: Arc<dyn ConversationAccess>,
    media: Arc<dyn MediaLibrary>,
    /// Tells the conversation's participants of changes.
    announce: Announcer,
}

/// What a conversation id that names nothing the caller can see gets.
pub fn conversation_not_found() -> Error {
    Error::not_found("conversation not found")
}

/// What a message id that names nothing the caller can see gets.
pub fn message_not_found() -> Error {
    Error::not_found("message not found")
}

/// Message text: trimmed, without the bidi controls that would reorder what
/// follows them (stripped, not refused: pasted text often carries them).
fn text(content: &str) -> Result<String, Error> {
    let content = chatterbox_types::without_bidi_overrides(content);
    let content = content.trim();
    let len = content.chars().count();
    if len == 0 || len > MAX_CONTENT {
        return Err(Error::invalid(format!("content must be 1 to {MAX_CONTENT} characters")));
    }
    Ok(content.to_owned())
}

fn client_id(id: Option<&str>) -> Result<Option<String>, Error> {
    match id {
        None => Ok(None),
        Some(id) if !id.is_empty() && id.chars().count() <= MAX_CLIENT_ID && !id.chars().any(char::is_control) => {
            Ok(Some(id.to_owned()))
        }
        Some(_) => Err(Error::invalid(format!("client_id must be 1 to {MAX_CLIENT_ID} printable characters"))),
    }
}

/// The read receipts of a page, worked out once from its conversation's
/// watermarks: sorted furthest first, a message's readers are a prefix.
struct Receipts {
    marks: Vec<ReadMark>,
    /// Each reader's watermark, to leave the sender out in constant time.
    seq_of: std::collections::HashMap<UserId, u64>,
}

impl Receipts {
    fn new(mut marks: Vec<ReadMark>) -> Self {
        marks.sort_unstable_by(|a, b| b.seq.cmp(&a.seq).then(a.read_at.cmp(&b.read_at)));
        let seq_of = marks.iter().map(|m| (m.user_id, m.seq)).collect();
        Self { marks, seq_of }
    }

    /// `message` with who has read it.
    fn view(&self, message: Message) -> MessageView {
        let read = self.marks.partition_point(|m| m.seq >= message.seq);
        let sender_read = self.seq_of.get(&message.sender_id).is_some_and(|seq| *seq >= message.seq);
        let read_by = self.marks[..read]
            .iter()
            .filter(|m| m.user_id != message.sender_id)
            .take(READ_BY_LIMIT)
            .map(|m| (m.user_id, m.read_at))
            .collect();
        let read_count = (read - usize::from(sender_read)) as u64;
        MessageView { read_by, read_count, ..MessageView::bare(message) }
    }
}

/// The cursor of a list ordered by a time, then by message id: `<ms>.<id>`.
fn time_cursor_of(at: Timestamp, id: MessageId) -> String {
    format!("{}.{id}", at.millis())
}

/// A cursor [`time_cursor_of`] made (`None` for the first page); 400 for
/// anything else.
fn time_cursor(cursor: &str) -> Result<Option<(Timestamp, MessageId)>, Error> {
    if cursor.is_empty() {
        return Ok(None);
    }
    let bad = || Error::invalid("invalid cursor");
    let (at, id) = cursor.split_once('.').ok_or_else(bad)?;
    Ok(Some((Timestamp::from_millis(at.parse().map_err(|_| bad())?), MessageId::parse(id).map_err(|_| bad())?)))
}

/// The media a message carries.
fn media_ids(attachments: &[Attachment]) -> Vec<MediaId> {
    attachments.iter().map(|a| a.id).collect()
}

/// Refuses a request naming more conversations than a page holds: the work
/// of one call stays bounded whoever makes it.
pub fn at_most_a_page<T>(conversations: &[T]) -> Result<(), Error> {
    if conversations.len() > chatterbox_types::MAX_PAGE_LIMIT as usize {
        return Err(Error::invalid(format!("at most {} conversations at once", chatterbox_types::MAX_PAGE_LIMIT)));
    }
    Ok(())
}

impl Messages {
    /// The domain over a store, the conversation and media services,
    /// announcing changes on `events` once they are committed.
    pub fn new(
        store: Arc<dyn MessageStore>,
        access: Arc<dyn ConversationAccess>,
        media: Arc<dyn MediaLibrary>,
        events: Arc<dyn EventBus>,
    ) -> Self {
        Self { store, access, media, announce: Announcer::new(events) }
    }

    /// A message in a conversation the actor takes part in; 404 otherwise.
    async fn visible_message(&self, actor: &Actor, id: MessageId) -> Result<(Message, Standing), Error> {
        let message = self.store.get(id).await.map_err(Error::from)?.ok_or_else(message_not_found)?;
        let standing = self
            .access
            .check(actor, message.conversation_id)
            .await
            .map_err(|e| if e.code() == Code::NotFound { message_not_found() } else { e })?;
        Ok((message, standing))
    }

    /// Posts a message; answered once it is durable and announced. A
    /// repeated `client_id` returns the original (second value false) and
    /// announces nothing.
    pub async fn send(&self, actor: &Actor, outgoing: Outgoing<'_>) -> Result<(MessageView, bool), Error> {
        let Outgoing { conversation_id, content, kind, attachments, client_id: client, reply_to } = outgoing;
        // Its place in the conversation's publishing order, before its seq
        // exists (dropped unused if the send fails or repeats).
        let ticket = self.announce.ticket(conversation_id);
        self.access.check(actor, conversation_id).await?.may_write()?;
        let content = match kind {
            MessageKind::Text => text(content)?,
            // A caption is optional: the attachments are the message.
            MessageKind::Image | MessageKind::File if content.trim().is_empty() => String::new(),
            MessageKind::Image | MessageKind::File => text(content)?,
        };
        if kind != MessageKind::Text && attachments.is_empty() {
            return Err(Error::invalid("image and file messages need at least one attachment"));
        }
        let client_id = client_id(client)?;
        let mentions = self.mentioned(actor, conversation_id, &content).await?;
        // What it answers: a message of this conversation (which the sender,
        // taking part, can see), deleted or not.
        let answered = match reply_to {
            None => None,
            Some(parent) => match self.store.get(parent).await.map_err(Error::from)? {
                Some(m) if m.conversation_id == conversation_id => Some(ReplyRef::of(&m)),
                _ => return Err(Error::invalid("reply_to must be a message of this conversation")),
            },
        };
        // The media service checks they are the sender's and lets this
        // conversation see them; a retry attaches them again, harmlessly.
        let attachments = if attachments.is_empty() {
            Vec::new()
        } else {
            self.media.attach(&actor.token, conversation_id, attachments, kind == MessageKind::Image).await?
        };
        let new = NewMessage {
            id: MessageId::generate(),
            conversation_id,
            sender_id: actor.id,
            kind,
            content,
            attachments,
            client_id,
            created_at: Timestamp::now(),
            reply_to,
            mentions,
        };
        let attached = media_ids(&new.attachments);
        // The conversation's last activity moves with the append, not after
        // it: two commits in parallel (each in its own database's group
        // commit) instead of one after the other. A retry of an old
        // `client_id`, or an append that fails, thus also moves it, to now;
        // the list order is all it affects, and only in the sender's own
        // conversation.
        let (appended, activity) =
            tokio::join!(self.store.append(&new), self.access.record_activity(actor, conversation_id, new.created_at));
        if let Err(e) = activity {
            // A stale activity time only misorders a list.
            tracing::warn!(conversation = %conversation_id, error = %e, "could not record activity");
        }
        let (message, created) = appended.map_err(Error::from)?;
        if !created {
            // A retry answered with the original: attach nothing it did not.
            let kept = media_ids(&message.attachments);
            let extra: Vec<MediaId> = attached.into_iter().filter(|id| !kept.contains(id)).collect();
            self.detach(actor, conversation_id, &extra).await;
            // As it is now (reactions and replies may have come since).
            return Ok((self.viewed(actor, MessageView::bare(message)).await?, false));
        }
        // New: no reactions or replies yet; what it answers was just read.
        let view = MessageView { reply_to: answered, ..MessageView::bare(message) };
        self.announce.created(ticket, &view).await;
        Ok((view, true))
    }

    /// Who `content`, written in `conversation`, mentions: the
    /// participants it names with `@username` (asked of the conversation
    /// service only when it names anyone).
    async fn mentioned(
        &self,
        actor: &Actor,
        conversation: ConversationId,
        content: &str,
    ) -> Result<Vec<UserId>, Error> {
        let names = crate::mentions::names_in(content);
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let participants = self.access.mentionable(actor, conversation, &names).await?;
        Ok(crate::mentions::chosen(content, &participants))
    }

    /// A window of history with read receipts, in ascending `seq`.
    pub async fn history(
        &self,
        actor: &Actor,
        id: ConversationId,
        before: Option<u64>,
        after: Option<u64>,
        limit: u32,
    ) -> Result<Vec<MessageView>, Error> {
        self.access.check(actor, id).await?;
        let limit = chatterbox_types::page_limit(limit)?;
        let window = match (before, after) {
            (Some(_), Some(_)) => return Err(Error::invalid("give before or after, not both")),
            (Some(b), None) => Window::Before(b),
            (None, Some(a)) => Window::After(a),
            (None, None) => Window::Latest,
        };
        let (messages, marks) = self.store.page(id, window, limit).await.map_err(Error::from)?;
        let receipts = Receipts::new(marks);
        self.decorated(actor, messages.into_iter().map(|m| receipts.view(m)).collect()).await
    }

    /// `views` with their reactions as the actor sees them, the messages
    /// they answer as those are now, and how many answer them: a few
    /// queries per page, however many messages it holds.
    async fn decorated(&self, actor: &Actor, mut views: Vec<MessageView>) -> Result<Vec<MessageView>, Error> {
        let ids: Vec<MessageId> = views.iter().map(|v| v.message.id).collect();
        let live: Vec<MessageId> = views.iter().filter(|v| !v.message.deleted).map(|v| v.message.id).collect();
        let mut parents: Vec<MessageId> = views.iter().filter_map(|v| v.message.reply_to).collect();
        parents.sort_unstable();
        parents.dedup();
        let (mut reactions, counts, answered) = futures::future::try_join3(
            self.store.reactions(&live, actor.id),
            self.store.reply_counts(&ids),
            self.store.get_many(&parents),
        )
        .await
        .map_err(Error::from)?;
        let answered: std::collections::HashMap<MessageId, Message> = answered.into_iter().map(|m| (m.id, m)).collect();
        for v in &mut views {
            if let Some(found) = reactions.remove(&v.message.id) {
                v.reactions = found;
            }
            v.reply_count = counts.get(&v.message.id).copied().unwrap_or(0);
            v.reply_to = v.message.reply_to.and_then(|p| answered.get(&p)).map(ReplyRef::of);
        }
        Ok(views)
    }

    /// One message with its reactions and replies as the actor sees them.
    async fn viewed(&self, actor: &Actor, view: MessageView) -> Result<MessageView, Error> {
        let mut one = self.decorated(actor, vec![view]).await?;
        one.pop().ok_or_else(|| Error::invariant("a message went missing while its reactions were read"))
    }

    /// The replies to a message the actor can see (404 otherwise), in
    /// ascending `seq`, after `cursor` (a `seq`); with the next cursor.
    pub async fn replies(
        &self,
        actor: &Actor,
        id: MessageId,
        limit: u32,
        cursor: &str,
    ) -> Result<(Vec<MessageView>, Option<String>), Error> {
        let limit = chatterbox_types::page_limit(limit)?;
        let after = match cursor {
            "" => 0,
            c => c.parse::<u64>().map_err(|_| Error::invalid("invalid cursor"))?,
        };
        let (parent, _) = self.visible_message(actor, id).await?;
        let found =
            self.store.replies(parent.conversation_id, parent.id, after, limit + 1).await.map_err(Error::from)?;
        self.listed(actor, found, limit, |last| last.seq.to_string()).await
    }

    /// A list page of messages read one beyond `limit`: at most `limit` of
    /// them as the actor sees them, and, when more follow, the cursor
    /// `cursor_after` makes of the last.
    async fn listed(
        &self,
        actor: &Actor,
        mut found: Vec<Message>,
        limit: u32,
        cursor_after: impl Fn(&Message) -> String,
    ) -> Result<(Vec<MessageView>, Option<String>), Error> {
        let next = (found.len() > limit as usize).then(|| {
            found.truncate(limit as usize);
            cursor_after(&found[found.len() - 1])
        });
        Ok((self.shown(actor, found).await?, next))
    }

    /// Messages of others that mention the actor, in conversations the
    /// actor takes part in now, newest first, after `cursor`; with the next
    /// cursor. A page may hold fewer than `limit` (mentions in conversations
    /// the actor has left are skipped, a bounded number per call) and still
    /// have a next cursor.
    pub async fn mentions(
        &self,
        actor: &Actor,
        limit: u32,
        cursor: &str,
    ) -> Result<(Vec<MessageView>, Option<String>), Error> {
        let limit = chatterbox_types::page_limit(limit)?;
        let after = time_cursor(cursor)?.map(|(created_at, id)| MentionCursor { created_at, id });
        let mut member: std::collections::HashMap<ConversationId, bool> = std::collections::HashMap::new();
        let cursor_of = |m: &Message| MentionCursor { created_at: m.created_at, id: m.id };
        let mut page = Gathering::new(limit, after);
        while let Some(after) = page.next_read() {
            let found = self.store.mentioning(actor.id, after, limit + 1).await.map_err(Error::from)?;
            for m in &found {
                if let std::collections::hash_map::Entry::Vacant(unknown) = member.entry(m.conversation_id) {
                    unknown.insert(self.access.standing(actor, m.conversation_id).await?.is_some());
                }
            }
            page.take(found, cursor_of, |m| member.get(&m.conversation_id).copied().unwrap_or(false));
        }
        let (kept, next) = page.finish();
        Ok((self.shown(actor, kept).await?, next.map(|c| time_cursor_of(c.created_at, c.id))))
    }

    /// Messages of conversations the actor takes part in now (or of the one
    /// named, 404 if they do not) whose text matches `q` (`crate::search`),
    /// newest first, after `cursor` (a message id); with the next cursor.
    pub async fn search(
        &self,
        actor: &Actor,
        q: &str,
        conversation: Option<ConversationId>,
        limit: u32,
        cursor: &str,
    ) -> Result<(Vec<MessageView>, Option<String>), Error> {
        let q = q.trim();
        if !(1..=MAX_QUERY).contains(&q.chars().count()) {
            return Err(Error::invalid(format!("q must be 1 to {MAX_QUERY} characters")));
        }
        let limit = chatterbox_types::page_limit(limit)?;
        let before = match cursor {
            "" => None,
            c => Some(MessageId::parse(c).map_err(|_| Error::invalid("invalid cursor"))?),
        };
        let scope = match conversation {
            Some(id) => {
                self.access.check(actor, id).await?;
                vec![id]
            }
            None => self.access.conversations(actor).await?,
        };
        let query = SearchQuery::parse(q);
        if query.is_empty() {
            // Nothing searchable in it (punctuation only): nothing matches.
            return Ok((Vec::new(), None));
        }
        let mut page = Gathering::new(limit, before);
        while let Some(before) = page.next_read() {
            let found = self.store.search(&query.terms, &scope, before, limit + 1).await.map_err(Error::from)?;
            page.take(found, |m| m.id, |m| query.confirms(&m.content));
        }
        let (found, next) = page.finish();
        Ok((self.shown(actor, found).await?, next.map(|id| id.to_string())))
    }

    /// Messages of any conversations as the actor sees them: with the
    /// receipts their conversations' watermarks give (one read for all) and
    /// their reactions and replies.
    async fn shown(&self, actor: &Actor, messages: Vec<Message>) -> Result<Vec<MessageView>, Error> {
        let mut conversations: Vec<ConversationId> = messages.iter().map(|m| m.conversation_id).collect();
        conversations.sort_unstable();
        conversations.dedup();
        let marks = self.store.read_marks_of(&conversations).await.map_err(Error::from)?;
        let receipts: std::collections::HashMap<ConversationId, Receipts> =
            marks.into_iter().map(|(c, marks)| (c, Receipts::new(marks))).collect();
        let views = messages
            .into_iter()
            .map(|m| match receipts.get(&m.conversation_id) {
                Some(r) => r.view(m),
                None => MessageView::bare(m),
            })
            .collect();
        self.decorated(actor, views).await
    }

    /// Pins (`pin`) or unpins a message: admins of a group or room, either
    /// participant of a direct conversation; idempotent. A change reaches
    /// participants as `message.updated` (what an edit sends).
    pub async fn pin(&self, actor: &Actor, id: MessageId, pin: bool) -> Result<bool, Error> {
        let (message, standing) = self.visible_message(actor, id).await?;
        if !standing.direct && !standing.admin {
            return Err(Error::permission_denied("only admins may pin or unpin messages"));
        }
        if pin {
            standing.may_write()?;
        }
        if message.deleted {
            return Err(Error::invalid("a deleted message cannot be pinned"));
        }
        let at = pin.then(Timestamp::now);
        let (pinned, changed) = self
            .store
            .set_pin(id, at)
            .await
            .map_err(Error::from)?
            .ok_or_else(|| Error::invalid("a deleted message cannot be pinned"))?;
        if changed {
            self.announce_changed(actor, pinned).await?;
        }
        Ok(changed)
    }

    /// Tells participants a message changed (an edit, a pin), with what it
    /// answers, its replies and who reacted how; answers it as the actor
    /// sees it.
    async fn announce_changed(&self, actor: &Actor, changed: Message) -> Result<MessageView, Error> {
        // A failure to read the reactions only leaves the event without them.
        let reactors = self.store.reactors(changed.id).await.unwrap_or_else(|e| {
            tracing::warn!(message = %changed.id, error = %e, "could not read reactions for an event");
            Vec::new()
        });
        let view = self.viewed(actor, MessageView::bare(changed)).await?;
        self.announce.edited(&view, &reactors).await;
        Ok(view)
    }

    /// A conversation's pinned messages, most recently pinned first, after
    /// `cursor`; with the next cursor.
    pub async fn pins(
        &self,
        actor: &Actor,
        conversation: ConversationId,
        limit: u32,
        cursor: &str,
    ) -> Result<(Vec<MessageView>, Option<String>), Error> {
        self.access.check(actor, conversation).await?;
        let limit = chatterbox_types::page_limit(limit)?;
        let after = time_cursor(cursor)?.map(|(pinned_at, id)| PinCursor { pinned_at, id });
        let found = self.store.pins(conversation, after, limit + 1).await.map_err(Error::from)?;
        self.listed(actor, found, limit, |last| {
            time_cursor_of(last.pinned_at.unwrap_or(Timestamp::from_millis(0)), last.id)
        })
        .await
    }

    /// Adds (`add`) or takes back the actor's reaction to a message of a
    /// conversation they take part in (404 otherwise); idempotent either
    /// way. Answers whether it changed anything; a change is announced as
    /// a `reaction` event (the message is not sent again).
    pub async fn react(&self, actor: &Actor, id: MessageId, emoji: &ReactionEmoji, add: bool) -> Result<bool, Error> {
        let (message, standing) = self.visible_message(actor, id).await?;
        if add {
            // Taking a reaction back is always allowed; adding one is writing.
            standing.may_write()?;
        }
        if message.deleted {
            return Err(Error::invalid("a deleted message has no reactions"));
        }
        let outcome = self
            .store
            .react(id, actor.id, emoji.as_str(), add, Timestamp::now(), MAX_REACTIONS)
            .await
            .map_err(Error::from)?;
        match outcome {
            // Deleted meanwhile.
            None => Err(Error::invalid("a deleted message has no reactions")),
            Some(Reacted::TooMany) => {
                Err(Error::invalid(format!("a message has at most {MAX_REACTIONS} different reactions")))
            }
            Some(Reacted::Unchanged(_)) => Ok(false),
            Some(Reacted::Changed(m)) => {
                self.announce.reaction(&m, actor.id, emoji, add).await;
                Ok(true)
            }
        }
    }

    /// The version of a conversation's history the actor may read (see
    /// [`MessageStore::history_version`]); `None` when this process cannot
    /// know it. Take it before reading the page it is to vouch for.
    pub async fn history_version(&self, actor: &Actor, id: ConversationId) -> Result<Option<u64>, Error> {
        // A store that knows no versions vouches for nothing: no check needed
        // (the read that follows checks access itself).
        if self.store.history_version(id).is_none() {
            return Ok(None);
        }
        self.access.check(actor, id).await?;
        Ok(self.store.history_version(id))
    }

    /// Changes the content of the actor's own message.
    pub async fn edit(&self, actor: &Actor, id: MessageId, content: &str) -> Result<MessageView, Error> {
        let (message, standing) = self.visible_message(actor, id).await?;
        if message.sender_id != actor.id {
            return Err(Error::permission_denied("only the sender may edit a message"));
        }
        // Rewriting is writing: not across a block.
        standing.may_write()?;
        if message.deleted {
            return Err(Error::invalid("a deleted message cannot be edited"));
        }
        let content = text(content)?;
        let mentions = self.mentioned(actor, message.conversation_id, &content).await?;
        let edited = self
            .store
            .edit(message.id, &content, &mentions, Timestamp::now())
            .await
            .map_err(Error::from)?
            .ok_or_else(|| Error::invalid("a deleted message cannot be edited"))?;
        // Everyone hears the edit with who reacted how (each reader's own
        // `me` is worked out where it is delivered).
        self.announce_changed(actor, edited).await
    }

    /// Deletes a message (the sender, or an admin of its conversation).
    pub async fn delete(&self, actor: &Actor, id: MessageId) -> Result<Message, Error> {
        let (message, standing) = self.visible_message(actor, id).await?;
        if message.sender_id != actor.id && !standing.admin {
            return Err(Error::permission_denied("only the sender or an admin may delete a message"));
        }
        let deleted = self.store.delete(message.id).await.map_err(Error::from)?.ok_or_else(message_not_found)?;
        // Its attachments go with it: the conversation no longer sees them.
        self.detach(actor, message.conversation_id, &media_ids(&message.attachments)).await;
        self.announce.deleted(&deleted).await;
        Ok(deleted)
    }

    /// Tells the media service `media` is no longer attached in `conversation`;
    /// a failure is logged (the media stays visible to its participants).
    async fn detach(&self, actor: &Actor, conversation: ConversationId, media: &[MediaId]) {
        if media.is_empty() {
            return;
        }
        if let Err(e) = self.media.detach(&actor.token, conversation, media).await {
            tracing::warn!(%conversation, error = %e, "could not detach media");
        }
    }

    /// Marks every message up to `seq` read for the actor.
    pub async fn mark_read(&self, actor: &Actor, id: ConversationId, seq: u64) -> Result<ReadMark, Error> {
        self.access.check(actor, id).await?;
        let last = self.store.latest(id).await.map_err(Error::from)?.map_or(0, |m| m.seq);
        if seq == 0 || seq > last {
            return Err(Error::invalid(format!("seq must be between 1 and {last}")));
        }
        let mark = self.store.mark_read(id, actor.id, seq, Timestamp::now()).await.map_err(Error::from)?;
        self.announce.read(id, actor.id, &mark).await;
        Ok(mark)
    }

    /// Latest message and unread count for each conversation the actor is in;
    /// conversations they are not in are left out.
    pub async fn summaries(&self, actor: &Actor, conversations: &[ConversationId]) -> Result<Vec<Summary>, Error> {
        at_most_a_page(conversations)?;
        let mut found = visible_only(conversations.iter().map(|c| self.summary(actor, *c))).await?;
        // Every last message's reactions and replies in one go, not per conversation.
        let (at, lasts): (Vec<usize>, Vec<MessageView>) =
            found.iter_mut().enumerate().filter_map(|(i, s)| s.last_message.take().map(|m| (i, m))).unzip();
        for (i, view) in at.into_iter().zip(self.decorated(actor, lasts).await?) {
            found[i].last_message = Some(view);
        }
        Ok(found)
    }

    /// The highest `seq` of each listed conversation the actor takes part
    /// in; others are left out, as if they did not exist.
    pub async fn positions(
        &self,
        actor: &Actor,
        conversations: &[ConversationId],
    ) -> Result<Vec<(ConversationId, u64)>, Error> {
        at_most_a_page(conversations)?;
        visible_only(conversations.iter().map(|&id| async move {
            self.access.check(actor, id).await?;
            let latest = self.store.latest(id).await.map_err(Error::from)?;
            Ok((id, latest.map_or(0, |m| m.seq)))
        }))
        .await
    }

    async fn summary(&self, actor: &Actor, id: ConversationId) -> Result<Summary, Error> {
        self.access.check(actor, id).await?;
        let read = self.store.summary(id, actor.id).await.map_err(Error::from)?;
        let last_message = read.latest.map(|m| Receipts::new(read.marks).view(m));
        Ok(Summary { conversation_id: id, last_message, unread_count: read.unread, mention_count: read.mentions })
    }

    /// What changed since the actor saw `after_seq` (edits, deletions,
    /// reactions), in change order, each message in its latest state.
    pub async fn changes(
        &self,
        actor: &Actor,
        id: ConversationId,
        after_seq: u64,
        after_change: u64,
        limit: u32,
    ) -> Result<(Vec<MessageView>, bool), Error> {
        self.access.check(actor, id).await?;
        let limit = chatterbox_types::page_limit(limit)?;
        let mut items = self.store.changes_since(id, after_seq, after_change, limit + 1).await.map_err(Error::from)?;
        let more = items.len() > limit as usize;
        items.truncate(limit as usize);
        let views = self.decorated(actor, items.into_iter().map(MessageView::bare).collect()).await?;
        Ok((views, more))
    }
}

/// Reads of the store one list page makes at most when it skips messages.
const ROUNDS: usize = 4;

/// Gathers a list page of at most `limit` messages, newest first, when
/// some of what the store reads is skipped: each read asks `limit + 1`
/// after a cursor ([`Gathering::next_read`]), [`Gathering::take`] keeps
/// those that count, and at most [`ROUNDS`] reads are made. The next page
/// starts after the last kept message when more follow, after the last one
/// looked at when the reads ran out first (a short page that goes on).
struct Gathering<C> {
    limit: usize,
    after: Option<C>,
    kept: Vec<Message>,
    reads: usize,
    /// Set once the page is complete: where the next one starts, if anywhere.
    finished: Option<Option<C>>,
}

impl<C: Copy> Gathering<C> {
    fn new(limit: u32, after: Option<C>) -> Self {
        Self { limit: limit as usize, after, kept: Vec::new(), reads: 0, finished: None }
    }

    /// The cursor to read after next (`Some(None)`: from the start); `None`
    /// once the page is complete.
    fn next_read(&self) -> Option<Option<C>> {
        (self.finished.is_none() && self.reads < ROUNDS).then_some(self.after)
    }

    /// What one read found, with `keep` saying which count.
    fn take(&mut self, found: Vec<Message>, cursor_of: impl Fn(&Message) -> C, keep: impl Fn(&Message) -> bool) {
        self.reads += 1;
        let exhausted = found.len() <= self.limit;
        for m in found {
            self.after = Some(cursor_of(&m));
            if keep(&m) {
                self.kept.push(m);
                if self.kept.len() > self.limit {
                    self.kept.truncate(self.limit);
                    self.finished = Some(self.kept.last().map(&cursor_of));
                    return;
                }
            }
        }
        if exhausted {
            self.finished = Some(None);
        }
    }

    /// The page and where the next one starts.
    fn finish(self) -> (Vec<Message>, Option<C>) {
        let next = self.finished.unwrap_or(self.after);
        (self.kept, next)
    }
}

/// Runs per-conversation lookups together; conversations the actor is not
/// in (404) are left out, as if they did not exist; any other failure fails all.
async fn visible_only<T>(
    lookups: impl IntoIterator<Item = impl std::future::Future<Output = Result<T, Error>>>,
) -> Result<Vec<T>, Error> {
    let mut out = Vec::new();
    for result in futures::future::join_all(lookups).await {
        match result {
            Ok(found) => out.push(found),
            Err(e) if e.code() == Code::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(seq: u64, sender: UserId) -> Message {
        Message {
            id: MessageId::generate(),
            conversation_id: ConversationId::generate(),
            seq,
            sender_id: sender,
            kind: MessageKind::Text,
            content: "hi".into(),
            attachments: Vec::new(),
            client_id: None,
            created_at: Timestamp::from_millis(0),
            edited_at: None,
            deleted: false,
            created_change: seq,
            change_seq: seq,
            reply_to: None,
            pinned_at: None,
            mentions: Vec::new(),
        }
    }

    #[test]
    fn receipts_list_the_furthest_readers_up_to_the_limit_and_count_them_all() {
        let sender = UserId::generate();
        let readers: Vec<UserId> = (0..250).map(|_| UserId::generate()).collect();
        let mut marks: Vec<ReadMark> = readers
            .iter()
            .enumerate()
            .map(|(i, u)| ReadMark { user_id: *u, seq: i as u64, read_at: Timestamp::from_millis(i as i64) })
            .collect();
        marks.push(ReadMark { user_id: sender, seq: 300, read_at: Timestamp::from_millis(1) });
        let receipts = Receipts::new(marks);

        // Seq 10: readers 10..249 have read it (240), the sender is not counted.
        let view = receipts.view(message(10, sender));
        assert_eq!(view.read_count, 240);
        assert_eq!(view.read_by.len(), READ_BY_LIMIT);
        assert_eq!(view.read_by[0].0, readers[249], "furthest first");
        assert!(view.read_by.iter().all(|(u, _)| *u != sender));

        // Another sender's message: the first sender's mark counts.
        let view = receipts.view(message(245, readers[0]));
        assert_eq!(view.read_count, 6, "readers 245..249 and the first sender");
        assert_eq!(view.read_by.len(), 6);

        // Past every watermark: nobody.
        let view = receipts.view(message(301, sender));
        assert_eq!((view.read_count, view.read_by.len()), (0, 0));
    }
}
