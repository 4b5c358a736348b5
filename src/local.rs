//! The one-process mode's shortcuts: a trait one service uses of another,
//! implemented over the other's domain, so the call is a function call (no
//! tonic, no protobuf, no second check of the caller's token, which the
//! calling service has verified). Distributed mode implements the same
//! traits over gRPC; the domains cannot tell the difference.

use std::sync::Arc;

use chatterbox_conversation::Conversations;
use chatterbox_errors::Error;
use chatterbox_identity::Actor;
use chatterbox_membership::{ConversationAccess, Standing};
use chatterbox_types::{ConversationId, Timestamp, UserId};

/// The message and media services' view of membership, straight from the
/// conversation domain of this process.
#[derive(Debug)]
pub(crate) struct LocalConversationAccess(pub(crate) Arc<Conversations>);

#[async_trait::async_trait]
impl ConversationAccess for LocalConversationAccess {
    async fn check(&self, actor: &Actor, conversation: ConversationId) -> Result<Standing, Error> {
        let place = self.0.access(actor, conversation).await?;
        Ok(Standing {
            admin: place.admin,
            direct: place.kind == chatterbox_conversation::store::Kind::Direct,
            blocked: place.blocked,
        })
    }

    async fn record_activity(&self, actor: &Actor, conversation: ConversationId, at: Timestamp) -> Result<(), Error> {
        self.0.record_activity(actor, conversation, at).await
    }

    async fn mentionable(
        &self,
        actor: &Actor,
        conversation: ConversationId,
        usernames: &[String],
    ) -> Result<Vec<(String, UserId)>, Error> {
        self.0.resolve_mentions(actor, conversation, usernames).await
    }

    async fn conversations(&self, actor: &Actor) -> Result<Vec<ConversationId>, Error> {
        self.0.ids(actor).await
    }
}

/// The gateway's sends and history reads, straight into the message service
/// of this process.
#[derive(Debug)]
pub(crate) struct LocalMessageApi(pub(crate) chatterbox_message::MessageCalls);

#[async_trait::async_trait]
impl chatterbox_gateway::MessageApi for LocalMessageApi {
    async fn send_message(
        &self,
        caller: &Actor,
        request: chatterbox_proto::message::v1::SendMessageRequest,
    ) -> Result<chatterbox_proto::message::v1::SendMessageResponse, Error> {
        self.0.send(caller, request).await
    }

    async fn list_messages(
        &self,
        caller: &Actor,
        request: chatterbox_proto::message::v1::ListMessagesRequest,
    ) -> Result<chatterbox_proto::message::v1::MessagePage, Error> {
        self.0.history(caller, request).await
    }

    async fn history_version(&self, caller: &Actor, conversation_id: &str) -> Result<Option<u64>, Error> {
        self.0.history_version(caller, conversation_id).await
    }
}
