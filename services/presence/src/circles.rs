//! Who may hear a user's presence: the members of the direct and group
//! conversations the user takes part in. A caller names the conversations
//! (a gateway knows which its session follows); the conversation service,
//! which owns membership, says which of them really are the caller's.

use chatterbox_errors::Error;
use chatterbox_identity::with_bearer;
use chatterbox_proto::conversation::v1::PrivateAmongRequest;
use chatterbox_runtime::calls::ConversationCalls;
use chatterbox_types::ConversationId;

/// Where membership is known.
#[async_trait::async_trait]
pub trait Circles: Send + Sync + std::fmt::Debug {
    /// Of `conversations`, the direct and group ones the user whose `token`
    /// this is takes part in.
    async fn private_among(&self, token: &str, conversations: &[ConversationId]) -> Result<Vec<ConversationId>, Error>;
}

/// The conversation service over gRPC.
#[derive(Debug, Clone)]
pub struct GrpcCircles {
    client: ConversationCalls,
}

impl GrpcCircles {
    /// Asks the conversation service behind `channel`.
    pub fn new(calls: ConversationCalls) -> Self {
        Self { client: calls }
    }
}

#[async_trait::async_trait]
impl Circles for GrpcCircles {
    async fn private_among(&self, token: &str, conversations: &[ConversationId]) -> Result<Vec<ConversationId>, Error> {
        let ids = conversations.iter().map(ToString::to_string).collect();
        let found = self.client.private_among(with_bearer(PrivateAmongRequest { ids }, token)?).await?;
        found
            .into_inner()
            .ids
            .iter()
            .map(|id| {
                ConversationId::parse(id).map_err(|_| Error::invariant("the conversation service named a bad id"))
            })
            .collect()
    }
}
