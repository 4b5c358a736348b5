//! Turning a bus event into what sockets receive: the JSON text, rendered
//! once per gateway however many sockets it goes to, and what a session
//! needs to know to order, de-duplicate and filter it.

use axum::extract::ws::Utf8Bytes;
use chatterbox_events::{EVENT_VERSION, Topic};
use chatterbox_proto::conversation::v1::ConversationType;
use chatterbox_proto::events::v1::Envelope;
use chatterbox_proto::events::v1::envelope::Event;
use chatterbox_types::{ConversationId, UserId};

use super::frames::{ServerFrame, conversation_view, message_changed, message_new, message_updated_for, time};

/// What an event means to a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `message.new` of `seq`: delivered in `seq` order, once.
    NewMessage { conversation: ConversationId, seq: u64 },
    /// `message.updated` / `message.deleted` of `message` (`seq`) with its change number.
    Changed { conversation: ConversationId, message: String, seq: u64, change: u64 },
    /// `typing`: never back to its author.
    Typing { user: UserId },
    /// Someone else joined or left: `conversation.updated` (the member
    /// concerned hears it on their own topic instead).
    MemberChanged { user: UserId },
    /// The session's user is now in `conversation` (a public room or not):
    /// subscribe, then tell.
    Joined { conversation: ConversationId, room: bool },
    /// `presence`: the same change arrives once per conversation shared with
    /// its user; the envelope id (a ULID, as a number) tells the copies apart.
    Presence { id: u128 },
    /// The session's user left `conversation`: tell, then unsubscribe.
    Left { conversation: ConversationId },
    /// Anything else for every subscriber as it is (`read`, `conversation.updated`).
    Plain,
    /// The bus may have lost events: catch up from history.
    Gap,
}

/// One event, ready for any number of sockets.
#[derive(Debug, Clone)]
pub(crate) struct Outbound {
    pub kind: Kind,
    /// The frame, for every reader (for an edit of a message with
    /// reactions: as seen by someone who did not react).
    pub text: Utf8Bytes,
    /// An edited message with who reacted how: its readers among those get
    /// a frame of their own (their `me` set), rendered when sent.
    pub reacted: Option<std::sync::Arc<chatterbox_proto::message::v1::Message>>,
}

impl Outbound {
    /// The gap marker.
    pub(crate) fn gap() -> Self {
        Self { kind: Kind::Gap, text: Utf8Bytes::from_static(""), reacted: None }
    }

    /// The frame as `reader` gets it: the shared one, unless they are
    /// among those who reacted to an edited message.
    pub(crate) fn text_for(&self, reader: UserId) -> Utf8Bytes {
        let Some(m) = &self.reacted else { return self.text.clone() };
        let reader = reader.to_string();
        if m.reactions.iter().any(|r| r.user_ids.contains(&reader)) {
            message_updated_for(m.as_ref().clone(), &reader)
        } else {
            self.text.clone()
        }
    }
}

/// Whether `c` is a public room (whose members do not hear each other's presence).
pub(crate) fn is_room(c: &chatterbox_proto::conversation::v1::Conversation) -> bool {
    c.r#type() == ConversationType::Room
}

/// The socket form of `envelope`, received on `topic`; `None` for what
/// sockets do not get (unknown versions, malformed events).
pub(crate) fn outbound(topic: Topic, envelope: &Envelope) -> Option<Outbound> {
    if envelope.version != EVENT_VERSION {
        tracing::debug!(version = envelope.version, "event of an unknown version skipped");
        return None;
    }
    let conversation = |id: &str| ConversationId::parse(id).ok();
    let user = |id: &str| UserId::parse(id).ok();
    let (kind, text) = match (topic, envelope.event.clone()?) {
        (Topic::Conversation(_), Event::MessageCreated(e)) => {
            let m = e.message?;
            let kind = Kind::NewMessage { conversation: conversation(&m.conversation_id)?, seq: m.seq };
            (kind, message_new(m))
        }
        (Topic::Conversation(_), Event::MessageEdited(e)) => {
            let m = e.message?;
            let kind = Kind::Changed {
                conversation: conversation(&m.conversation_id)?,
                message: m.id.clone(),
                seq: m.seq,
                change: m.change_seq,
            };
            let reacted = (!m.reactions.is_empty() && !m.deleted).then(|| std::sync::Arc::new(m.clone()));
            return Some(Outbound { kind, text: message_changed(m), reacted });
        }
        (Topic::Conversation(_), Event::ReactionChanged(e)) => {
            let kind = Kind::Changed {
                conversation: conversation(&e.conversation_id)?,
                message: e.message_id.clone(),
                seq: e.seq,
                change: e.change_seq,
            };
            let frame = ServerFrame::Reaction {
                conversation_id: &e.conversation_id,
                message_id: &e.message_id,
                seq: e.seq,
                emoji: &e.emoji,
                user_id: &e.user_id,
                action: if e.added { "added" } else { "removed" },
            };
            (kind, frame.text())
        }
        (Topic::Conversation(_), Event::MessageDeleted(e)) => {
            let kind = Kind::Changed {
                conversation: conversation(&e.conversation_id)?,
                message: e.message_id.clone(),
                seq: e.seq,
                change: e.change_seq,
            };
            let frame = ServerFrame::MessageDeleted {
                conversation_id: &e.conversation_id,
                message_id: &e.message_id,
                seq: e.seq,
            };
            (kind, frame.text())
        }
        (Topic::Conversation(_), Event::ReadUpdated(e)) => {
            let frame = ServerFrame::Read {
                conversation_id: &e.conversation_id,
                user_id: &e.user_id,
                seq: e.seq,
                read_at: time(e.read_at_ms),
            };
            (Kind::Plain, frame.text())
        }
        (Topic::Conversation(_), Event::Typing(e)) => {
            let frame =
                ServerFrame::Typing { conversation_id: &e.conversation_id, user_id: &e.user_id, state: &e.state };
            (Kind::Typing { user: user(&e.user_id)? }, frame.text())
        }
        (Topic::Conversation(_), Event::ConversationUpdated(e)) => {
            (Kind::Plain, ServerFrame::ConversationUpdated { conversation: conversation_view(e.conversation?) }.text())
        }
        (Topic::Conversation(_), Event::MemberJoined(e)) => {
            let frame = ServerFrame::ConversationUpdated { conversation: conversation_view(e.conversation?) };
            (Kind::MemberChanged { user: user(&e.user_id)? }, frame.text())
        }
        (Topic::Conversation(_), Event::MemberLeft(e)) => {
            let frame = ServerFrame::ConversationUpdated { conversation: conversation_view(e.conversation?) };
            (Kind::MemberChanged { user: user(&e.user_id)? }, frame.text())
        }
        (Topic::Conversation(_), Event::PresenceChanged(e)) => {
            let frame =
                ServerFrame::Presence { user_id: &e.user_id, status: &e.status, last_seen: e.last_seen_ms.map(time) };
            let id = ulid::Ulid::from_string(&envelope.id).ok()?.0;
            (Kind::Presence { id }, frame.text())
        }
        (Topic::User(_), Event::ConversationCreated(e)) => joined(e.conversation?)?,
        (Topic::User(_), Event::MemberJoined(e)) => joined(e.conversation?)?,
        (Topic::User(_), Event::MemberLeft(e)) => {
            let frame = ServerFrame::ConversationLeft { conversation_id: &e.conversation_id };
            (Kind::Left { conversation: conversation(&e.conversation_id)? }, frame.text())
        }
        (topic, _) => {
            tracing::debug!(%topic, "event not meant for sockets on this topic");
            return None;
        }
    };
    Some(Outbound { kind, text, reacted: None })
}

fn joined(c: chatterbox_proto::conversation::v1::Conversation) -> Option<(Kind, Utf8Bytes)> {
    let kind = Kind::Joined { conversation: ConversationId::parse(&c.id).ok()?, room: is_room(&c) };
    Some((kind, ServerFrame::ConversationJoined { conversation: conversation_view(c) }.text()))
}
