//! Asking the conversation service whether a user takes part in a
//! conversation, with that user's own token.

use chatterbox_errors::{Code, Error};
use chatterbox_identity::with_bearer;
use chatterbox_proto::conversation::v1::CheckAccessRequest;
use chatterbox_proto::conversation::v1::conversation_service_client::ConversationServiceClient;
use chatterbox_runtime::GrpcChannel;
use chatterbox_types::ConversationId;

/// Membership, as the conversation service knows it.
#[async_trait::async_trait]
pub trait Participation: Send + Sync + std::fmt::Debug {
    /// Whether the holder of `token` takes part in `conversation`.
    async fn takes_part(&self, token: &str, conversation: ConversationId) -> Result<bool, Error>;
}

/// The conversation service over gRPC.
#[derive(Debug, Clone)]
pub struct GrpcParticipation {
    client: ConversationServiceClient<GrpcChannel>,
}

impl GrpcParticipation {
    /// Asks the conversation service behind `channel`.
    pub fn new(channel: GrpcChannel) -> Self {
        Self { client: ConversationServiceClient::new(channel) }
    }
}

#[async_trait::async_trait]
impl Participation for GrpcParticipation {
    async fn takes_part(&self, token: &str, conversation: ConversationId) -> Result<bool, Error> {
        let request = with_bearer(CheckAccessRequest { id: conversation.to_string() }, token)?;
        match self.client.clone().check_access(request).await {
            Ok(_) => Ok(true),
            Err(status) => {
                let e = Error::from(status);
                if e.code() == Code::NotFound { Ok(false) } else { Err(e) }
            }
        }
    }
}
