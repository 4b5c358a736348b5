//! What the store tests share.

use chatterbox_message::store::NewMessage;
use chatterbox_types::{ConversationId, MessageId, MessageKind, Timestamp, UserId};

/// A plain text message by `u` in `c`, sent now, without a `client_id`.
pub fn text(c: ConversationId, u: UserId, content: &str) -> NewMessage {
    NewMessage {
        id: MessageId::generate(),
        conversation_id: c,
        sender_id: u,
        kind: MessageKind::Text,
        content: content.into(),
        attachments: Vec::new(),
        client_id: None,
        created_at: Timestamp::now(),
        reply_to: None,
        mentions: Vec::new(),
    }
}
