//! The message service's hot calls (sending, history), as the gateway asks
//! them: over gRPC in general (the caller's token relayed and checked again
//! there), or, in the one-process mode, a function call into the message
//! service of the same process with the caller this gateway verified (no
//! tonic, no protobuf encoding, no second token check). Same requests, same
//! answers.

use chatterbox_errors::Error;
use chatterbox_identity::{Actor, with_bearer};
use chatterbox_proto::message::v1::{ListMessagesRequest, MessagePage, SendMessageRequest, SendMessageResponse};
use chatterbox_runtime::calls::MessageCalls;

/// Where the gateway's sends and history reads go.
#[async_trait::async_trait]
pub trait MessageApi: Send + Sync + std::fmt::Debug {
    /// Sends as `caller`, whose token this gateway verified.
    async fn send_message(&self, caller: &Actor, request: SendMessageRequest) -> Result<SendMessageResponse, Error>;
    /// A window of history, as `caller`.
    async fn list_messages(&self, caller: &Actor, request: ListMessagesRequest) -> Result<MessagePage, Error>;
    /// The version of a conversation's history, after checking `caller` may
    /// read it: a number that changes, before the write is acknowledged, with
    /// every write that may change a page of it. `None` when it cannot be
    /// known here (the message service in another process, or a database
    /// other processes write), and then nothing is checked.
    async fn history_version(&self, caller: &Actor, conversation_id: &str) -> Result<Option<u64>, Error> {
        let _ = (caller, conversation_id);
        Ok(None)
    }
}

/// The message service over gRPC, through the same calls as the gateway's
/// other message calls.
#[derive(Debug, Clone)]
pub struct GrpcMessageApi(MessageCalls);

impl GrpcMessageApi {
    /// Calls through `calls`.
    pub fn new(calls: MessageCalls) -> Self {
        Self(calls)
    }
}

#[async_trait::async_trait]
impl MessageApi for GrpcMessageApi {
    async fn send_message(&self, caller: &Actor, request: SendMessageRequest) -> Result<SendMessageResponse, Error> {
        let request = with_bearer(request, &caller.token)?;
        Ok(self.0.send_message(request).await?.into_inner())
    }

    async fn list_messages(&self, caller: &Actor, request: ListMessagesRequest) -> Result<MessagePage, Error> {
        let request = with_bearer(request, &caller.token)?;
        Ok(self.0.list_messages(request).await?.into_inner())
    }
}
