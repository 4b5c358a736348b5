//! The calls a caller in the same process makes straight into the message
//! service (the one-process gateway's sends and history reads), with the
//! same requests and answers as the gRPC methods, which use them too.

use std::sync::Arc;

use chatterbox_errors::Error;
use chatterbox_events::envelope;
use chatterbox_identity::Actor;
use chatterbox_proto::events::v1::MessageCreated;
use chatterbox_proto::events::v1::envelope::Event;
use chatterbox_proto::message::v1::{ListMessagesRequest, MessagePage, SendMessageRequest, SendMessageResponse};
use chatterbox_types::{ConversationId, MessageKind, Timestamp};
use tracing::Instrument as _;

use crate::domain::Messages;
use crate::grpc::{to_proto, view};
use crate::publish_order::InOrder;

/// Sending (published in `seq` order) and history, for a verified caller.
#[derive(Debug, Clone)]
pub struct MessageCalls {
    messages: Arc<Messages>,
    /// New messages go out in `seq` order, whoever sent them.
    in_order: InOrder,
}

impl MessageCalls {
    /// Calls into `messages`, publishing new messages through `in_order`.
    pub(crate) fn new(messages: Arc<Messages>, in_order: InOrder) -> Self {
        Self { messages, in_order }
    }

    /// Posts a message as `actor` (whose token was verified) and publishes
    /// it; a repeated `client_id` answers the original (`created` false).
    ///
    /// Runs to the end in a task of its own: a caller that goes away (a
    /// closed socket, a cancelled RPC) cannot leave a committed message
    /// unpublished; it learns the outcome by retrying its `client_id`.
    pub async fn send(&self, actor: &Actor, r: SendMessageRequest) -> Result<SendMessageResponse, Error> {
        let (calls, actor) = (self.clone(), actor.clone());
        let send = async move { calls.send_to_the_end(&actor, r).await };
        tokio::spawn(send.instrument(tracing::Span::current())).await.map_err(Error::internal)?
    }

    async fn send_to_the_end(&self, actor: &Actor, r: SendMessageRequest) -> Result<SendMessageResponse, Error> {
        // Its place in the conversation's publishing order, before its seq exists.
        let kind = MessageKind::parse(&r.r#type)?;
        let ticket = ConversationId::parse(&r.conversation_id).ok().map(|c| self.in_order.ticket(c));
        let (message, created) = self
            .messages
            .send(actor, &r.conversation_id, &r.content, kind, &r.attachment_ids, r.client_id.as_deref())
            .await?;
        let message = to_proto(message, Vec::new(), 0);
        if created && let Some(ticket) = ticket {
            let event = Event::MessageCreated(MessageCreated { message: Some(message.clone()) });
            ticket.publish(message.seq, envelope(event, Timestamp::now())).await;
        }
        Ok(SendMessageResponse { message: Some(message), created })
    }

    /// A window of history with read receipts, in ascending `seq`.
    pub async fn history(&self, actor: &Actor, r: ListMessagesRequest) -> Result<MessagePage, Error> {
        let items = self.messages.history(actor, &r.conversation_id, r.before, r.after, r.limit).await?;
        Ok(MessagePage { items: items.into_iter().map(view).collect() })
    }

    /// The version of a conversation's history (`None` when this process
    /// cannot know it), after checking `actor` may read it.
    pub async fn history_version(&self, actor: &Actor, conversation: &str) -> Result<Option<u64>, Error> {
        self.messages.history_version(actor, conversation).await
    }
}
