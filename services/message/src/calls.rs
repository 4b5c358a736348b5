//! The calls a caller in the same process makes straight into the message
//! service (the one-process gateway's sends and history reads), with the
//! same requests and answers as the gRPC methods, which use them too.

use std::sync::Arc;

use chatterbox_errors::Error;
use chatterbox_identity::Actor;
use chatterbox_proto::message::v1::{ListMessagesRequest, MessagePage, SendMessageRequest, SendMessageResponse};
use chatterbox_types::{ConversationId, MediaId, MessageId, MessageKind};
use tracing::Instrument as _;

use crate::domain::{Messages, Outgoing, conversation_not_found};
use crate::wire::view;

/// A conversation id from the wire: a malformed one names nothing the
/// caller can see.
pub(crate) fn conversation_id(id: &str) -> Result<ConversationId, Error> {
    ConversationId::parse(id).map_err(|_| conversation_not_found())
}

/// Sending and history, for a verified caller.
#[derive(Debug, Clone)]
pub struct MessageCalls {
    messages: Arc<Messages>,
}

impl MessageCalls {
    /// Calls into `messages`.
    pub(crate) fn new(messages: Arc<Messages>) -> Self {
        Self { messages }
    }

    /// Posts a message as `actor` (whose token was verified); the domain
    /// publishes it. A repeated `client_id` answers the original (`created`
    /// false).
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
        let kind = MessageKind::parse(&r.r#type)?;
        let conversation = conversation_id(&r.conversation_id)?;
        // A malformed id cannot be an upload of the sender's: the media
        // service's own answer to it.
        let attachments = r
            .attachment_ids
            .iter()
            .map(|id| MediaId::parse(id).map_err(|_| Error::invalid("attachments must be media you uploaded")))
            .collect::<Result<Vec<_>, _>>()?;
        let reply_to = r
            .reply_to
            .as_deref()
            .map(|id| {
                MessageId::parse(id).map_err(|_| Error::invalid("reply_to must be a message of this conversation"))
            })
            .transpose()?;
        let outgoing = Outgoing {
            conversation_id: conversation,
            content: &r.content,
            kind,
            attachments: &attachments,
            client_id: r.client_id.as_deref(),
            reply_to,
        };
        let (message, created) = self.messages.send(actor, outgoing).await?;
        Ok(SendMessageResponse { message: Some(view(message)), created })
    }

    /// A window of history with read receipts, in ascending `seq`.
    pub async fn history(&self, actor: &Actor, r: ListMessagesRequest) -> Result<MessagePage, Error> {
        let conversation = conversation_id(&r.conversation_id)?;
        let items = self.messages.history(actor, conversation, r.before, r.after, r.limit).await?;
        Ok(MessagePage { items: items.into_iter().map(view).collect() })
    }

    /// The version of a conversation's history (`None` when this process
    /// cannot know it), after checking `actor` may read it.
    pub async fn history_version(&self, actor: &Actor, conversation: &str) -> Result<Option<u64>, Error> {
        // A malformed id has no version; the read that follows says 404.
        let Ok(conversation) = ConversationId::parse(conversation) else { return Ok(None) };
        self.messages.history_version(actor, conversation).await
    }
}
