//! Who takes part in a conversation, as the conversation service decides:
//! the one port the message and media services ask it through, always
//! with the caller's own token. Distributed mode implements it over gRPC
//! ([`GrpcConversationAccess`]); the one-process mode over the conversation
//! domain itself (a function call); the message service keeps answers a
//! while (`chatterbox_message::membership_cache`).

use chatterbox_errors::{Code, Error};
use chatterbox_identity::{Actor, with_bearer};
use chatterbox_proto::conversation::v1::{
    CheckAccessRequest, ConversationType, ListConversationIdsRequest, RecordActivityRequest, ResolveMentionsRequest,
};
use chatterbox_runtime::calls::ConversationCalls;
use chatterbox_types::{ConversationId, Timestamp, UserId};

/// The most conversations [`ConversationAccess::conversations`] lists: a
/// search looks in up to this many of a caller's conversations.
pub const MOST_LISTED: usize = 10_000;

/// A participant's standing in a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// Whether they administer it.
    pub admin: bool,
    /// Whether it is a direct conversation (of two, without admins).
    pub direct: bool,
    /// A direct conversation whose two participants are separated by a
    /// block, either way round: readable, but nobody may write in it.
    pub blocked: bool,
}

impl Standing {
    /// Refuses writing (sending, reacting, pinning) where a block forbids it.
    pub fn may_write(&self) -> Result<(), Error> {
        if self.blocked {
            return Err(Error::permission_denied("one of you has blocked the other"));
        }
        Ok(())
    }
}

/// Where membership is decided.
#[async_trait::async_trait]
pub trait ConversationAccess: Send + Sync + std::fmt::Debug {
    /// The caller's standing; NOT_FOUND when they take no part.
    async fn check(&self, actor: &Actor, conversation: ConversationId) -> Result<Standing, Error>;

    /// Moves the conversation's last activity forward (only a
    /// participant's activity counts).
    async fn record_activity(&self, actor: &Actor, conversation: ConversationId, at: Timestamp) -> Result<(), Error>;

    /// Which of `usernames` (at most 100, matched case-insensitively) are
    /// participants of a conversation the caller takes part in, each with
    /// the username as its owner spells it; NOT_FOUND when the caller
    /// takes no part.
    async fn mentionable(
        &self,
        actor: &Actor,
        conversation: ConversationId,
        usernames: &[String],
    ) -> Result<Vec<(String, UserId)>, Error>;

    /// The conversations the caller takes part in now, at most
    /// [`MOST_LISTED`], in no particular order.
    async fn conversations(&self, actor: &Actor) -> Result<Vec<ConversationId>, Error>;

    /// The caller's standing, `None` when they take no part; any other
    /// failure is an error.
    async fn standing(&self, actor: &Actor, conversation: ConversationId) -> Result<Option<Standing>, Error> {
        match self.check(actor, conversation).await {
            Ok(standing) => Ok(Some(standing)),
            Err(e) if e.code() == Code::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// The conversation service over gRPC (or its handlers, in one process).
#[derive(Debug, Clone)]
pub struct GrpcConversationAccess {
    calls: ConversationCalls,
}

impl GrpcConversationAccess {
    /// Asks the conversation service through `calls`.
    pub fn new(calls: ConversationCalls) -> Self {
        Self { calls }
    }
}

#[async_trait::async_trait]
impl ConversationAccess for GrpcConversationAccess {
    async fn check(&self, actor: &Actor, conversation: ConversationId) -> Result<Standing, Error> {
        let request = with_bearer(CheckAccessRequest { id: conversation.to_string() }, &actor.token)?;
        let access = self.calls.check_access(request).await?.into_inner();
        Ok(Standing {
            admin: access.admin,
            direct: access.r#type() == ConversationType::Direct,
            blocked: access.blocked,
        })
    }

    async fn record_activity(&self, actor: &Actor, conversation: ConversationId, at: Timestamp) -> Result<(), Error> {
        let request =
            with_bearer(RecordActivityRequest { id: conversation.to_string(), at_ms: at.millis() }, &actor.token)?;
        self.calls.record_activity(request).await?;
        Ok(())
    }

    async fn mentionable(
        &self,
        actor: &Actor,
        conversation: ConversationId,
        usernames: &[String],
    ) -> Result<Vec<(String, UserId)>, Error> {
        let request = with_bearer(
            ResolveMentionsRequest { id: conversation.to_string(), usernames: usernames.to_vec() },
            &actor.token,
        )?;
        let found = self.calls.resolve_mentions(request).await?.into_inner();
        found_participants(found)
    }

    async fn conversations(&self, actor: &Actor) -> Result<Vec<ConversationId>, Error> {
        let request = with_bearer(ListConversationIdsRequest {}, &actor.token)?;
        let found = self.calls.list_conversation_ids(request).await?.into_inner();
        found
            .ids
            .iter()
            .take(MOST_LISTED)
            .map(|id| {
                ConversationId::parse(id)
                    .map_err(|_| Error::invariant("the conversation service answered a malformed conversation id"))
            })
            .collect()
    }
}

/// The participants a mention lookup answered.
fn found_participants(
    found: chatterbox_proto::conversation::v1::ResolveMentionsResponse,
) -> Result<Vec<(String, UserId)>, Error> {
    found
        .participants
        .into_iter()
        .map(|p| {
            let id = UserId::parse(&p.user_id)
                .map_err(|_| Error::invariant("the conversation service answered a malformed user id"))?;
            Ok((p.username, id))
        })
        .collect()
}
