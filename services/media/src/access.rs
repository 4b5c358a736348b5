//! Asking the conversation service whether a user takes part in a
//! conversation, with that user's own token.

use chatterbox_errors::{Code, Error};
use chatterbox_identity::with_bearer;
use chatterbox_proto::conversation::v1::CheckAccessRequest;
use chatterbox_runtime::calls::ConversationCalls;
use chatterbox_types::ConversationId;

/// A participant's standing in a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// Whether they administer it.
    pub admin: bool,
}

/// Membership, as the conversation service knows it.
#[async_trait::async_trait]
pub trait Participation: Send + Sync + std::fmt::Debug {
    /// The standing of the holder of `token` in `conversation`; `None` if
    /// they take no part in it.
    async fn standing(&self, token: &str, conversation: ConversationId) -> Result<Option<Standing>, Error>;
}

/// The conversation service over gRPC.
#[derive(Debug, Clone)]
pub struct GrpcParticipation {
    client: ConversationCalls,
}

impl GrpcParticipation {
    /// Asks the conversation service behind `channel`.
    pub fn new(calls: ConversationCalls) -> Self {
        Self { client: calls }
    }
}

#[async_trait::async_trait]
impl Participation for GrpcParticipation {
    async fn standing(&self, token: &str, conversation: ConversationId) -> Result<Option<Standing>, Error> {
        let request = with_bearer(CheckAccessRequest { id: conversation.to_string() }, token)?;
        match self.client.check_access(request).await {
            Ok(access) => Ok(Some(Standing { admin: access.into_inner().admin })),
            Err(status) => {
                let e = Error::from(status);
                if e.code() == Code::NotFound { Ok(None) } else { Err(e) }
            }
        }
    }
}
