//! Messages as protobuf: what the gRPC answers and the events carry.

use chatterbox_proto::message::v1::{Message as MessageMsg, Reaction, ReadReceipt, ReplyRef as ReplyRefMsg};
use chatterbox_types::Timestamp;

use crate::domain::MessageView;
use crate::store::{Attachment, Message, Reactors};

/// An attachment as the media service describes it (the sender uploaded it).
fn media_proto(a: Attachment, sender: &str) -> chatterbox_proto::media::v1::Media {
    chatterbox_proto::media::v1::Media {
        id: a.id.to_string(),
        uploader_id: sender.to_owned(),
        content_type: a.content_type,
        size: a.size,
        filename: a.filename,
        width: a.width,
        height: a.height,
        has_thumbnail: a.has_thumbnail,
        created_at_ms: a.created_at_ms,
    }
}

/// A message on the wire (receipts filled in by the caller when known).
pub fn to_proto(m: Message, read_by: Vec<ReadReceipt>, read_count: u64) -> MessageMsg {
    let sender = m.sender_id.to_string();
    MessageMsg {
        id: m.id.to_string(),
        conversation_id: m.conversation_id.to_string(),
        seq: m.seq,
        r#type: m.kind.as_str().to_owned(),
        content: m.content,
        attachments: m.attachments.into_iter().map(|a| media_proto(a, &sender)).collect(),
        sender_id: sender,
        client_id: m.client_id,
        read_by,
        read_count,
        created_at_ms: m.created_at.millis(),
        edited_at_ms: m.edited_at.map(Timestamp::millis),
        deleted: m.deleted,
        change_seq: m.change_seq,
        reactions: Vec::new(),
        reply_to: None,
        reply_count: 0,
        pinned: m.pinned_at.is_some(),
        mentions: m.mentions.iter().map(ToString::to_string).collect(),
    }
}

/// A message for every reader (an event): who reacted how, each reader's
/// `me` left to whoever delivers it.
pub fn with_reactors(mut message: MessageMsg, reactors: &[Reactors]) -> MessageMsg {
    message.reactions = reactors
        .iter()
        .map(|r| Reaction {
            emoji: r.emoji.clone(),
            count: r.users.len() as u64,
            me: false,
            user_ids: r.users.iter().map(ToString::to_string).collect(),
        })
        .collect();
    message
}

/// A message with its receipts on the wire.
pub fn view(v: MessageView) -> MessageMsg {
    let receipts = v
        .read_by
        .into_iter()
        .map(|(user, at)| ReadReceipt { user_id: user.to_string(), read_at_ms: at.millis() })
        .collect();
    let mut message = to_proto(v.message, receipts, v.read_count);
    message.reactions = v
        .reactions
        .into_iter()
        .map(|r| Reaction { emoji: r.emoji, count: r.count, me: r.me, user_ids: Vec::new() })
        .collect();
    message.reply_to = v.reply_to.map(|r| ReplyRefMsg {
        id: r.id.to_string(),
        seq: r.seq,
        sender_id: r.sender_id.to_string(),
        excerpt: r.excerpt,
    });
    message.reply_count = v.reply_count;
    message
}
