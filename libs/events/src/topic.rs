//! Typed topics: the only way to name where an event goes.

use std::fmt;

use chatterbox_types::{ConversationId, UserId};

/// Where an event is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    /// Everything that happens inside one conversation.
    Conversation(ConversationId),
    /// What concerns one user across conversations (joins, leaves).
    User(UserId),
    /// Every change that can take away access to a conversation or change
    /// who administers it (leaves, removals, admin changes), for services
    /// that cache membership.
    Membership,
}

impl Topic {
    /// The Redis channel of this topic under `prefix`.
    pub(crate) fn channel(&self, prefix: &str) -> String {
        format!("{prefix}:events:{self}")
    }

    /// Reads a Redis channel name back into a topic.
    pub(crate) fn from_channel(prefix: &str, channel: &str) -> Option<Topic> {
        let rest = channel.strip_prefix(prefix)?.strip_prefix(":events:")?;
        if rest == "membership" {
            return Some(Topic::Membership);
        }
        let (kind, id) = rest.split_once(':')?;
        match kind {
            "conversation" => ConversationId::parse(id).ok().map(Topic::Conversation),
            "user" => UserId::parse(id).ok().map(Topic::User),
            _ => None,
        }
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Topic::Conversation(id) => write!(f, "conversation:{id}"),
            Topic::User(id) => write!(f, "user:{id}"),
            Topic::Membership => f.write_str("membership"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_round_trip_through_channel_names() {
        for topic in
            [Topic::Conversation(ConversationId::generate()), Topic::User(UserId::generate()), Topic::Membership]
        {
            assert_eq!(Topic::from_channel("cb", &topic.channel("cb")), Some(topic));
        }
        assert_eq!(Topic::from_channel("cb", "cb:events:room:x"), None);
        assert_eq!(Topic::from_channel("other", &Topic::User(UserId::generate()).channel("cb")), None);
    }
}
