//! What the domain tells others once a change is committed: participants
//! (on their user topics and the conversation's), and services that cache
//! membership (on [`Topic::Membership`]). A failed publish is logged, never
//! the caller's error: clients catch up from their conversation list.

use std::sync::Arc;

use chatterbox_events::{EventBus, Topic, envelope, publish_after_commit};
use chatterbox_proto::events::v1::envelope::Event;
use chatterbox_proto::events::v1::{AccessChanged, ConversationCreated, ConversationUpdated, MemberJoined, MemberLeft};
use chatterbox_types::{ConversationId, Timestamp, UserId};

use crate::store::Conversation;
use crate::wire::to_proto;

/// Publishes the conversation domain's events.
#[derive(Debug, Clone)]
pub(crate) struct Announcer {
    events: Arc<dyn EventBus>,
}

impl Announcer {
    pub(crate) fn new(events: Arc<dyn EventBus>) -> Self {
        Self { events }
    }

    async fn publish(&self, topics: &[Topic], event: Event) {
        publish_after_commit(self.events.as_ref(), topics, &envelope(event, Timestamp::now())).await;
    }

    /// Tells every participant about a conversation they are now in.
    pub(crate) async fn created(&self, c: &Conversation) {
        let topics: Vec<Topic> = c.participants.iter().copied().map(Topic::User).collect();
        self.publish(&topics, Event::ConversationCreated(ConversationCreated { conversation: Some(to_proto(c)) }))
            .await;
    }

    /// Tells the conversation's participants it changed (and services
    /// that cache membership: its admins may have).
    pub(crate) async fn updated(&self, c: &Conversation) {
        let topics = [Topic::Conversation(c.id), Topic::Membership];
        self.publish(&topics, Event::ConversationUpdated(ConversationUpdated { conversation: Some(to_proto(c)) }))
            .await;
    }

    /// Tells a user (and the conversation) that they joined it.
    pub(crate) async fn joined(&self, c: &Conversation, user: UserId) {
        let topics = [Topic::Conversation(c.id), Topic::User(user)];
        let event = MemberJoined { conversation: Some(to_proto(c)), user_id: user.to_string() };
        self.publish(&topics, Event::MemberJoined(event)).await;
    }

    /// Tells a user (and the conversation, and services that cache
    /// membership) that they left it. Membership first: a cache has dropped
    /// the leaver before anyone else hears of it.
    pub(crate) async fn left(&self, c: &Conversation, user: UserId) {
        let topics = [Topic::Membership, Topic::Conversation(c.id), Topic::User(user)];
        let event = MemberLeft {
            conversation_id: c.id.to_string(),
            user_id: user.to_string(),
            conversation: Some(to_proto(c)),
        };
        self.publish(&topics, Event::MemberLeft(event)).await;
    }

    /// Tells services that cache standings that what participants may do
    /// in `conversation` changed (a block between a direct pair).
    pub(crate) async fn access_changed(&self, conversation: ConversationId) {
        let event = AccessChanged { conversation_id: conversation.to_string() };
        self.publish(&[Topic::Membership], Event::AccessChanged(event)).await;
    }
}
