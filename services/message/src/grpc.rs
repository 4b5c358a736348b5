//! The transport layer: `chatterbox.message.v1.MessageService`.

use std::sync::Arc;

use chatterbox_errors::Error;
use chatterbox_identity::{Actor, TokenVerifier, authenticate_user};
use chatterbox_proto::message::v1::message_service_server::{MessageService, MessageServiceServer};
use chatterbox_proto::message::v1::{
    DeleteMessageRequest, DeleteMessageResponse, EditMessageRequest, GetPositionsRequest, GetPositionsResponse,
    GetSummariesRequest, GetSummariesResponse, ListChangesRequest, ListChangesResponse, ListMentionsRequest,
    ListMessagesRequest, ListPinsRequest, ListRepliesRequest, MarkReadRequest, MarkReadResponse, MentionPage,
    Message as MessageMsg, MessagePage, PinPage, PinRequest, PinResponse, Position, ReactRequest, ReactResponse,
    ReplyPage, SearchMessagesRequest, SearchPage, SendMessageRequest, SendMessageResponse, Summary as SummaryMsg,
};
use chatterbox_runtime::GrpcServer;
use chatterbox_types::{ConversationId, MessageId, ReactionEmoji};
use tonic::server::NamedService;
use tonic::{Request, Response, Status};

use crate::calls::{MessageCalls, conversation_id};
use crate::domain::{Messages, at_most_a_page, message_not_found};
use crate::wire::view;

#[derive(Debug, Clone)]
struct MessageGrpc {
    messages: Arc<Messages>,
    verifier: TokenVerifier,
    /// Sends and history, shared with in-process callers.
    calls: MessageCalls,
}

impl MessageGrpc {
    fn actor<T>(&self, request: &Request<T>) -> Result<Actor, Status> {
        Ok(authenticate_user(request, &self.verifier)?)
    }
}

/// A message id from the wire: a malformed one names no message.
fn message_id(id: &str) -> Result<MessageId, Error> {
    MessageId::parse(id).map_err(|_| message_not_found())
}

/// The conversations a batch call names (a page of them at most); malformed
/// ids are left out, as conversations the caller is not in are.
fn listed_conversations(ids: &[String]) -> Result<Vec<ConversationId>, Error> {
    at_most_a_page(ids)?;
    Ok(ids.iter().filter_map(|id| ConversationId::parse(id).ok()).collect())
}

#[tonic::async_trait]
impl MessageService for MessageGrpc {
    async fn send_message(
        &self,
        request: Request<SendMessageRequest>,
    ) -> Result<Response<SendMessageResponse>, Status> {
        let actor = self.actor(&request)?;
        Ok(Response::new(self.calls.send(&actor, request.into_inner()).await?))
    }

    async fn list_messages(&self, request: Request<ListMessagesRequest>) -> Result<Response<MessagePage>, Status> {
        let actor = self.actor(&request)?;
        Ok(Response::new(self.calls.history(&actor, request.into_inner()).await?))
    }

    async fn edit_message(&self, request: Request<EditMessageRequest>) -> Result<Response<MessageMsg>, Status> {
        let actor = self.actor(&request)?;
        let r = request.into_inner();
        let edited = self.messages.edit(&actor, message_id(&r.message_id)?, &r.content).await?;
        Ok(Response::new(view(edited)))
    }

    async fn delete_message(
        &self,
        request: Request<DeleteMessageRequest>,
    ) -> Result<Response<DeleteMessageResponse>, Status> {
        let actor = self.actor(&request)?;
        self.messages.delete(&actor, message_id(&request.into_inner().message_id)?).await?;
        Ok(Response::new(DeleteMessageResponse {}))
    }

    async fn mark_read(&self, request: Request<MarkReadRequest>) -> Result<Response<MarkReadResponse>, Status> {
        let actor = self.actor(&request)?;
        let r = request.into_inner();
        let mark = self.messages.mark_read(&actor, conversation_id(&r.conversation_id)?, r.seq).await?;
        Ok(Response::new(MarkReadResponse { seq: mark.seq, read_at_ms: mark.read_at.millis() }))
    }

    async fn get_summaries(
        &self,
        request: Request<GetSummariesRequest>,
    ) -> Result<Response<GetSummariesResponse>, Status> {
        let actor = self.actor(&request)?;
        let conversations = listed_conversations(&request.into_inner().conversation_ids)?;
        let summaries = self.messages.summaries(&actor, &conversations).await?;
        Ok(Response::new(GetSummariesResponse {
            summaries: summaries
                .into_iter()
                .map(|s| SummaryMsg {
                    conversation_id: s.conversation_id.to_string(),
                    last_message: s.last_message.map(view),
                    unread_count: s.unread_count,
                    mention_count: s.mention_count,
                })
                .collect(),
        }))
    }

    async fn list_changes(
        &self,
        request: Request<ListChangesRequest>,
    ) -> Result<Response<ListChangesResponse>, Status> {
        let actor = self.actor(&request)?;
        let r = request.into_inner();
        let conversation = conversation_id(&r.conversation_id)?;
        let (items, has_more) =
            self.messages.changes(&actor, conversation, r.after_seq, r.after_change, r.limit).await?;
        Ok(Response::new(ListChangesResponse { items: items.into_iter().map(view).collect(), has_more }))
    }

    async fn get_positions(
        &self,
        request: Request<GetPositionsRequest>,
    ) -> Result<Response<GetPositionsResponse>, Status> {
        let actor = self.actor(&request)?;
        let conversations = listed_conversations(&request.into_inner().conversation_ids)?;
        let positions = self.messages.positions(&actor, &conversations).await?;
        Ok(Response::new(GetPositionsResponse {
            positions: positions
                .into_iter()
                .map(|(id, seq)| Position { conversation_id: id.to_string(), seq })
                .collect(),
        }))
    }

    async fn list_replies(&self, request: Request<ListRepliesRequest>) -> Result<Response<ReplyPage>, Status> {
        let actor = self.actor(&request)?;
        let r = request.into_inner();
        let (items, next) = self.messages.replies(&actor, message_id(&r.message_id)?, r.limit, &r.cursor).await?;
        Ok(Response::new(ReplyPage {
            items: items.into_iter().map(view).collect(),
            next_cursor: next.unwrap_or_default(),
        }))
    }

    async fn pin(&self, request: Request<PinRequest>) -> Result<Response<PinResponse>, Status> {
        let actor = self.actor(&request)?;
        let r = request.into_inner();
        Ok(Response::new(PinResponse { changed: self.messages.pin(&actor, message_id(&r.message_id)?, r.pin).await? }))
    }

    async fn list_pins(&self, request: Request<ListPinsRequest>) -> Result<Response<PinPage>, Status> {
        let actor = self.actor(&request)?;
        let r = request.into_inner();
        let conversation = conversation_id(&r.conversation_id)?;
        let (items, next) = self.messages.pins(&actor, conversation, r.limit, &r.cursor).await?;
        Ok(Response::new(PinPage {
            items: items.into_iter().map(view).collect(),
            next_cursor: next.unwrap_or_default(),
        }))
    }

    async fn list_mentions(&self, request: Request<ListMentionsRequest>) -> Result<Response<MentionPage>, Status> {
        let actor = self.actor(&request)?;
        let r = request.into_inner();
        let (items, next) = self.messages.mentions(&actor, r.limit, &r.cursor).await?;
        Ok(Response::new(MentionPage {
            items: items.into_iter().map(view).collect(),
            next_cursor: next.unwrap_or_default(),
        }))
    }

    async fn search_messages(&self, request: Request<SearchMessagesRequest>) -> Result<Response<SearchPage>, Status> {
        let actor = self.actor(&request)?;
        let r = request.into_inner();
        // A malformed conversation id names no conversation of the caller's.
        let conversation = r.conversation_id.as_deref().map(conversation_id).transpose()?;
        let (items, next) = self.messages.search(&actor, &r.q, conversation, r.limit, &r.cursor).await?;
        Ok(Response::new(SearchPage {
            items: items.into_iter().map(view).collect(),
            next_cursor: next.unwrap_or_default(),
        }))
    }

    async fn react(&self, request: Request<ReactRequest>) -> Result<Response<ReactResponse>, Status> {
        let actor = self.actor(&request)?;
        let r = request.into_inner();
        let id = message_id(&r.message_id)?;
        let emoji = ReactionEmoji::parse(&r.emoji).map_err(Error::from)?;
        Ok(Response::new(ReactResponse { changed: self.messages.react(&actor, id, &emoji, r.add).await? }))
    }
}

/// The message service, ready for [`chatterbox_runtime::serve_grpc`], and
/// its sends for callers in the same process.
pub fn grpc_server(messages: Arc<Messages>, verifier: TokenVerifier) -> (GrpcServer, MessageCalls) {
    let calls = MessageCalls::new(messages.clone());
    let handlers = Arc::new(MessageGrpc { messages, verifier, calls: calls.clone() });
    let server = GrpcServer::new(
        tonic::service::Routes::new(MessageServiceServer::from_arc(handlers.clone())),
        vec![<MessageServiceServer<MessageGrpc> as NamedService>::NAME],
    )
    .with_handlers::<Arc<dyn MessageService>>(handlers);
    (server, calls)
}
