//! Membership, asked of the conversation service with the caller's token
//! (answers kept a while by [`crate::membership_cache`], dropped as soon as
//! membership changes).

use chatterbox_errors::Error;
use chatterbox_identity::{Actor, with_bearer};
use chatterbox_proto::conversation::v1::{CheckAccessRequest, RecordActivityRequest};
use chatterbox_runtime::calls::ConversationCalls;
use chatterbox_types::{ConversationId, Timestamp};

/// The caller's standing in a conversation they take part in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// Whether they administer it.
    pub admin: bool,
}

/// Where membership is decided.
#[async_trait::async_trait]
pub trait ConversationAccess: Send + Sync + std::fmt::Debug {
    /// The caller's standing; NOT_FOUND when they take no part.
    async fn check(&self, actor: &Actor, conversation: ConversationId) -> Result<Standing, Error>;
    /// Moves the conversation's last activity forward.
    async fn record_activity(&self, actor: &Actor, conversation: ConversationId, at: Timestamp) -> Result<(), Error>;
}

/// The conversation service over gRPC.
#[derive(Debug, Clone)]
pub struct GrpcConversationAccess {
    client: ConversationCalls,
}

impl GrpcConversationAccess {
    /// Asks the conversation service behind `channel`.
    pub fn new(calls: ConversationCalls) -> Self {
        Self { client: calls }
    }
}

#[async_trait::async_trait]
impl ConversationAccess for GrpcConversationAccess {
    async fn check(&self, actor: &Actor, conversation: ConversationId) -> Result<Standing, Error> {
        let request = with_bearer(CheckAccessRequest { id: conversation.to_string() }, &actor.token)?;
        let access = self.client.check_access(request).await?.into_inner();
        Ok(Standing { admin: access.admin })
    }

    async fn record_activity(&self, actor: &Actor, conversation: ConversationId, at: Timestamp) -> Result<(), Error> {
        let request =
            with_bearer(RecordActivityRequest { id: conversation.to_string(), at_ms: at.millis() }, &actor.token)?;
        self.client.record_activity(request).await?;
        Ok(())
    }
}
