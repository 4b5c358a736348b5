//! Conversations as protobuf: what the gRPC answers and the events carry.

use chatterbox_proto::conversation::v1::{Conversation as ConversationMsg, ConversationType};

use crate::store::{Conversation, Kind};

/// A conversation kind on the wire.
pub(crate) fn kind(k: Kind) -> ConversationType {
    match k {
        Kind::Direct => ConversationType::Direct,
        Kind::Group => ConversationType::Group,
        Kind::Room => ConversationType::Room,
    }
}

/// A conversation on the wire.
pub fn to_proto(c: &Conversation) -> ConversationMsg {
    ConversationMsg {
        id: c.id.to_string(),
        r#type: kind(c.kind).into(),
        name: c.name.clone(),
        description: c.description.clone(),
        member_count: c.participants.len() as u32,
        participant_ids: c.participants.iter().map(ToString::to_string).collect(),
        admin_ids: c.admins.iter().map(ToString::to_string).collect(),
        created_by: c.created_by.to_string(),
        created_at_ms: c.created_at.millis(),
        updated_at_ms: c.updated_at.millis(),
        last_activity_ms: c.last_activity.millis(),
    }
}
