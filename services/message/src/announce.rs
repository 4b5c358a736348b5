//! What the domain tells the conversation's participants once a change is
//! committed: new messages in `seq` order (through [`InOrder`]), edits,
//! deletions and read watermarks as they happen. A failed publish is
//! logged, never the caller's error: clients catch up from history.

use std::sync::Arc;

use chatterbox_events::{EventBus, Topic, envelope, publish_after_commit};
use chatterbox_proto::events::v1::envelope::Event;
use chatterbox_proto::events::v1::{MessageCreated, MessageDeleted, MessageEdited, ReactionChanged, ReadUpdated};
use chatterbox_types::{ConversationId, ReactionEmoji, Timestamp, UserId};

use crate::domain::MessageView;
use crate::publish_order::{InOrder, Ticket};
use crate::store::{Message, Reactors, ReadMark};
use crate::wire::{view, with_reactors};

/// Publishes the message domain's events.
#[derive(Debug, Clone)]
pub(crate) struct Announcer {
    events: Arc<dyn EventBus>,
    /// New messages go out in `seq` order, whoever sent them.
    in_order: InOrder,
}

impl Announcer {
    pub(crate) fn new(events: Arc<dyn EventBus>) -> Self {
        Self { in_order: InOrder::new(events.clone()), events }
    }

    async fn publish(&self, conversation: ConversationId, event: Event) {
        let topics = [Topic::Conversation(conversation)];
        publish_after_commit(self.events.as_ref(), &topics, &envelope(event, Timestamp::now())).await;
    }

    /// A send's place in its conversation's publishing order, taken before
    /// its `seq` exists.
    pub(crate) fn ticket(&self, conversation: ConversationId) -> Ticket {
        self.in_order.ticket(conversation)
    }

    /// A new message, in its place (with what it answers).
    pub(crate) async fn created(&self, ticket: Ticket, message: &MessageView) {
        let event = Event::MessageCreated(MessageCreated { message: Some(view(message.clone())) });
        ticket.publish(message.message.seq, envelope(event, Timestamp::now())).await;
    }

    /// A message's new content, with what it answers, how many answer it,
    /// and who reacted to it how (each reader's `me` is worked out where
    /// it is delivered).
    pub(crate) async fn edited(&self, message: &MessageView, reactors: &[Reactors]) {
        let conversation = message.message.conversation_id;
        let edited =
            with_reactors(view(MessageView { read_by: Vec::new(), read_count: 0, ..message.clone() }), reactors);
        self.publish(conversation, Event::MessageEdited(MessageEdited { message: Some(edited) })).await;
    }

    /// A message turned tombstone.
    pub(crate) async fn deleted(&self, message: &Message) {
        let event = MessageDeleted {
            conversation_id: message.conversation_id.to_string(),
            message_id: message.id.to_string(),
            seq: message.seq,
            change_seq: message.change_seq,
        };
        self.publish(message.conversation_id, Event::MessageDeleted(event)).await;
    }

    /// Someone reacted to `message` (now at its new change number), or took
    /// a reaction back.
    pub(crate) async fn reaction(&self, message: &Message, user: UserId, emoji: &ReactionEmoji, added: bool) {
        let event = ReactionChanged {
            conversation_id: message.conversation_id.to_string(),
            message_id: message.id.to_string(),
            seq: message.seq,
            emoji: emoji.to_string(),
            user_id: user.to_string(),
            added,
            change_seq: message.change_seq,
        };
        self.publish(message.conversation_id, Event::ReactionChanged(event)).await;
    }

    /// A reader's watermark moved.
    pub(crate) async fn read(&self, conversation: ConversationId, reader: UserId, mark: &ReadMark) {
        let event = ReadUpdated {
            conversation_id: conversation.to_string(),
            user_id: reader.to_string(),
            seq: mark.seq,
            read_at_ms: mark.read_at.millis(),
        };
        self.publish(conversation, Event::ReadUpdated(event)).await;
    }
}
