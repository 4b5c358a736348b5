//! The JSON shapes of `api.md`, built from the services' messages.

use chatterbox_proto::auth::v1::{LoginSession, Tokens};
use chatterbox_proto::conversation::v1::{Conversation, ConversationType};
use chatterbox_proto::media::v1::Media;
use chatterbox_proto::message::v1::{Message, Summary};

use chatterbox_proto::user::v1::User;
use chatterbox_types::Timestamp;
use serde::Serialize;

/// `user`: `email` only for its owner.
#[derive(Debug, Serialize)]
pub struct UserView {
    id: String,
    username: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    avatar: Option<String>,
    status: String,
    last_seen: Option<String>,
    created_at: String,
    updated_at: String,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        let time = |ms: i64| Timestamp::from_millis(ms).to_rfc3339();
        Self {
            id: u.id,
            username: u.username,
            email: u.email,
            avatar: u.avatar,
            status: u.status,
            last_seen: u.last_seen_ms.map(time),
            created_at: time(u.created_at_ms),
            updated_at: time(u.updated_at_ms),
        }
    }
}

/// `tokens`.
#[derive(Debug, Serialize)]
pub struct TokensView {
    access_token: String,
    refresh_token: String,
    token_type: &'static str,
    expires_in: i64,
}

impl From<Tokens> for TokensView {
    fn from(t: Tokens) -> Self {
        Self {
            access_token: t.access_token,
            refresh_token: t.refresh_token,
            token_type: "Bearer",
            expires_in: t.expires_in,
        }
    }
}

/// `{items}`: a whole list.
#[derive(Debug, Serialize)]
pub struct ItemsView<T> {
    /// Every item.
    pub items: Vec<T>,
}

/// `session`: a login session.
#[derive(Debug, Serialize)]
pub struct LoginSessionView {
    id: String,
    created_at: String,
    last_used_at: String,
    user_agent: String,
    ip: String,
    current: bool,
}

impl From<LoginSession> for LoginSessionView {
    fn from(s: LoginSession) -> Self {
        let time = |ms: i64| Timestamp::from_millis(ms).to_rfc3339();
        Self {
            id: s.id,
            created_at: time(s.created_at_ms),
            last_used_at: time(s.last_used_at_ms),
            user_agent: s.user_agent,
            ip: s.ip,
            current: s.current,
        }
    }
}

/// `{items, next_cursor}`.
#[derive(Debug, Serialize)]
pub struct ListView<T> {
    /// The page.
    pub items: Vec<T>,
    /// Where the next page starts; null at the end.
    pub next_cursor: Option<String>,
}

impl<T> ListView<T> {
    /// A page as a service answered it: an empty cursor means the end.
    pub fn page(items: Vec<T>, next_cursor: String) -> Self {
        Self { items, next_cursor: Some(next_cursor).filter(|c| !c.is_empty()) }
    }
}

impl ListView<MessageView> {
    /// A page of messages as the message service answered it.
    pub fn messages(items: Vec<Message>, next_cursor: String) -> Self {
        Self::page(items.into_iter().map(MessageView::from).collect(), next_cursor)
    }
}

/// `message`.
#[derive(Debug, Serialize)]
pub struct MessageView {
    id: String,
    conversation_id: String,
    seq: u64,
    sender_id: String,
    #[serde(rename = "type")]
    kind: String,
    content: String,
    attachments: Vec<MediaView>,
    client_id: Option<String>,
    read_by: Vec<ReceiptView>,
    read_count: u64,
    created_at: String,
    edited_at: Option<String>,
    deleted: bool,
    reactions: Vec<ReactionView>,
    reply_to: Option<ReplyView>,
    reply_count: u64,
    pinned: bool,
    mentions: Vec<String>,
}

/// `reply_to`: the message a reply answers, as it is now.
#[derive(Debug, Serialize)]
pub struct ReplyView {
    id: String,
    seq: u64,
    sender_id: String,
    excerpt: String,
}

/// One entry of `reactions`: an emoji, how many reacted with it, and
/// whether the reader did.
#[derive(Debug, Serialize)]
pub struct ReactionView {
    emoji: String,
    count: u64,
    me: bool,
}

impl MessageView {
    /// A message as `reader` sees it, from an event that lists who reacted
    /// (rather than saying `me` for one reader).
    pub fn for_reader(mut m: Message, reader: &str) -> Self {
        for r in &mut m.reactions {
            r.me = r.user_ids.iter().any(|u| u == reader);
        }
        Self::from(m)
    }
}

/// `media`: what was uploaded, and where to fetch it and its thumbnail.
#[derive(Debug, Serialize)]
pub struct MediaView {
    id: String,
    content_type: String,
    size: u64,
    filename: String,
    width: Option<u32>,
    height: Option<u32>,
    url: String,
    thumbnail_url: Option<String>,
    created_at: String,
}

impl From<Media> for MediaView {
    fn from(m: Media) -> Self {
        Self {
            url: format!("/api/v1/media/{}", m.id),
            thumbnail_url: m.has_thumbnail.then(|| format!("/api/v1/media/{}/thumbnail", m.id)),
            id: m.id,
            content_type: m.content_type,
            size: m.size,
            filename: m.filename,
            width: m.width,
            height: m.height,
            created_at: Timestamp::from_millis(m.created_at_ms).to_rfc3339(),
        }
    }
}

/// One entry of `read_by`.
#[derive(Debug, Serialize)]
pub struct ReceiptView {
    user_id: String,
    read_at: String,
}

impl From<Message> for MessageView {
    fn from(m: Message) -> Self {
        let time = |ms: i64| Timestamp::from_millis(ms).to_rfc3339();
        Self {
            id: m.id,
            conversation_id: m.conversation_id,
            seq: m.seq,
            sender_id: m.sender_id,
            kind: m.r#type,
            content: m.content,
            attachments: m.attachments.into_iter().map(MediaView::from).collect(),
            client_id: m.client_id,
            read_by: m
                .read_by
                .into_iter()
                .map(|r| ReceiptView { user_id: r.user_id, read_at: time(r.read_at_ms) })
                .collect(),
            read_count: m.read_count,
            created_at: time(m.created_at_ms),
            edited_at: m.edited_at_ms.map(time),
            deleted: m.deleted,
            reactions: m
                .reactions
                .into_iter()
                .map(|r| ReactionView { emoji: r.emoji, count: r.count, me: r.me })
                .collect(),
            reply_to: m.reply_to.map(|r| ReplyView {
                id: r.id,
                seq: r.seq,
                sender_id: r.sender_id,
                excerpt: r.excerpt,
            }),
            reply_count: m.reply_count,
            pinned: m.pinned,
            mentions: m.mentions,
        }
    }
}

/// `conversation`, with the caller's view of its messages.
#[derive(Debug, Serialize)]
pub struct ConversationView {
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    name: Option<String>,
    description: String,
    participants: Vec<String>,
    admins: Vec<String>,
    created_by: String,
    last_message: Option<MessageView>,
    unread_count: u64,
    mention_count: u64,
    member_count: u32,
    created_at: String,
    updated_at: String,
}

impl ConversationView {
    /// Joins a conversation with its message summary (if any).
    pub fn new(c: Conversation, summary: Option<Summary>) -> Self {
        let time = |ms: i64| Timestamp::from_millis(ms).to_rfc3339();
        let kind = match ConversationType::try_from(c.r#type).unwrap_or(ConversationType::Unspecified) {
            ConversationType::Direct => "direct",
            ConversationType::Group => "group",
            ConversationType::Room => "room",
            ConversationType::Unspecified => "unknown",
        };
        let (last_message, unread_count, mention_count) = match summary {
            Some(s) => (s.last_message.map(MessageView::from), s.unread_count, s.mention_count),
            None => (None, 0, 0),
        };
        Self {
            id: c.id,
            kind,
            name: (!c.name.is_empty()).then_some(c.name),
            description: c.description,
            participants: c.participant_ids,
            admins: c.admin_ids,
            created_by: c.created_by,
            last_message,
            unread_count,
            mention_count,
            member_count: c.member_count,
            created_at: time(c.created_at_ms),
            updated_at: time(c.updated_at_ms),
        }
    }
}
