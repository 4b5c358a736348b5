//! The transport layer: `chatterbox.message.v1.MessageService`.

use std::sync::Arc;

use chatterbox_events::{EventBus, Topic, envelope, publish_after_commit};

use chatterbox_identity::{Actor, TokenVerifier, authenticate_user};
use chatterbox_proto::events::v1::envelope::Event;
use chatterbox_proto::events::v1::{MessageDeleted, MessageEdited, ReadUpdated};
use chatterbox_proto::message::v1::message_service_server::{MessageService, MessageServiceServer};
use chatterbox_proto::message::v1::{
    DeleteMessageRequest, DeleteMessageResponse, EditMessageRequest, GetPositionsRequest, GetPositionsResponse,
    GetSummariesRequest, GetSummariesResponse, ListChangesRequest, ListChangesResponse, ListMessagesRequest,
    MarkReadRequest, MarkReadResponse, Message as MessageMsg, MessagePage, Position, ReadReceipt, SendMessageRequest,
    SendMessageResponse, Summary as SummaryMsg,
};
use chatterbox_runtime::GrpcServer;
use chatterbox_types::{ConversationId, Timestamp};
use tonic::server::NamedService;
use tonic::{Request, Response, Status};

use crate::calls::MessageCalls;
use crate::domain::{MessageView, Messages};
use crate::publish_order::InOrder;
use crate::store::{Attachment, Message};

#[derive(Debug, Clone)]
struct MessageGrpc {
    messages: Arc<Messages>,
    verifier: TokenVerifier,
    events: Arc<dyn EventBus>,
    /// Sends and history, shared with in-process callers.
    calls: MessageCalls,
}

impl MessageGrpc {
    /// Publishes on the conversation's topic, after commit.
    async fn publish(&self, conversation: ConversationId, event: Event) {
        let topics = [Topic::Conversation(conversation)];
        publish_after_commit(self.events.as_ref(), &topics, &envelope(event, Timestamp::now())).await;
    }

    fn actor<T>(&self, request: &Request<T>) -> Result<Actor, Status> {
        Ok(authenticate_user(request, &self.verifier)?)
    }
}

/// An attachment as the media service describes it (the sender uploaded it).
fn media_proto(a: Attachment, sender: &str) -> chatterbox_proto::media::v1::Media {
    chatterbox_proto::media::v1::Media {
        id: a.id,
        uploader_id: sender.to_owned(),
        content_type: a.content_type,
        size: a.size,
        filename: a.filename,
        width: a.width,
        height: a.height,
        has_thumbnail: a.has_thumbnail,
        created_at_ms: a.created_at_ms,
    }
}

/// A message on the wire (receipts filled in by the caller when known).
pub(crate) fn to_proto(m: Message, read_by: Vec<ReadReceipt>, read_count: u64) -> MessageMsg {
    MessageMsg {
        id: m.id.to_string(),
        conversation_id: m.conversation_id.to_string(),
        seq: m.seq,
        sender_id: m.sender_id.to_string(),
        r#type: m.kind.as_str().to_owned(),
        content: m.content,
        attachments: m.attachments.into_iter().map(|a| media_proto(a, &m.sender_id.to_string())).collect(),
        client_id: m.client_id,
        read_by,
        read_count,
        created_at_ms: m.created_at.millis(),
        edited_at_ms: m.edited_at.map(Timestamp::millis),
        deleted: m.deleted,
        change_seq: m.change_seq,
    }
}

pub(crate) fn view(v: MessageView) -> MessageMsg {
    let receipts = v
        .read_by
        .into_iter()
        .map(|(user, at)| ReadReceipt { user_id: user.to_string(), read_at_ms: at.millis() })
        .collect();
    to_proto(v.message, receipts, v.read_count)
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
        let edited = self.messages.edit(&actor, &r.message_id, &r.content).await?;
        let conversation = edited.conversation_id;
        let edited = to_proto(edited, Vec::new(), 0);
        self.publish(conversation, Event::MessageEdited(MessageEdited { message: Some(edited.clone()) })).await;
        Ok(Response::new(edited))
    }

    async fn delete_message(
        &self,
        request: Request<DeleteMessageRequest>,
    ) -> Result<Response<DeleteMessageResponse>, Status> {
        let actor = self.actor(&request)?;
        let gone = self.messages.delete(&actor, &request.into_inner().message_id).await?;
        let event = MessageDeleted {
            conversation_id: gone.conversation_id.to_string(),
            message_id: gone.id.to_string(),
            seq: gone.seq,
            change_seq: gone.change_seq,
        };
        self.publish(gone.conversation_id, Event::MessageDeleted(event)).await;
        Ok(Response::new(DeleteMessageResponse {}))
    }

    async fn mark_read(&self, request: Request<MarkReadRequest>) -> Result<Response<MarkReadResponse>, Status> {
        let actor = self.actor(&request)?;
        let r = request.into_inner();
        let (conversation, mark) = self.messages.mark_read(&actor, &r.conversation_id, r.seq).await?;
        let event = ReadUpdated {
            conversation_id: conversation.to_string(),
            user_id: actor.id.to_string(),
            seq: mark.seq,
            read_at_ms: mark.read_at.millis(),
        };
        self.publish(conversation, Event::ReadUpdated(event)).await;
        Ok(Response::new(MarkReadResponse { seq: mark.seq, read_at_ms: mark.read_at.millis() }))
    }

    async fn get_summaries(
        &self,
        request: Request<GetSummariesRequest>,
    ) -> Result<Response<GetSummariesResponse>, Status> {
        let actor = self.actor(&request)?;
        let summaries = self.messages.summaries(&actor, &request.into_inner().conversation_ids).await?;
        Ok(Response::new(GetSummariesResponse {
            summaries: summaries
                .into_iter()
                .map(|s| SummaryMsg {
                    conversation_id: s.conversation_id.to_string(),
                    last_message: s.last_message.map(view),
                    unread_count: s.unread_count,
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
        let (items, has_more) =
            self.messages.changes(&actor, &r.conversation_id, r.after_seq, r.after_change, r.limit).await?;
        Ok(Response::new(ListChangesResponse {
            items: items.into_iter().map(|m| to_proto(m, Vec::new(), 0)).collect(),
            has_more,
        }))
    }

    async fn get_positions(
        &self,
        request: Request<GetPositionsRequest>,
    ) -> Result<Response<GetPositionsResponse>, Status> {
        let actor = self.actor(&request)?;
        let positions = self.messages.positions(&actor, &request.into_inner().conversation_ids).await?;
        Ok(Response::new(GetPositionsResponse {
            positions: positions
                .into_iter()
                .map(|(id, seq)| Position { conversation_id: id.to_string(), seq })
                .collect(),
        }))
    }
}

/// The message service, ready for [`chatterbox_runtime::serve_grpc`], and
/// its sends for callers in the same process.
pub fn grpc_server(
    messages: Arc<Messages>,
    verifier: TokenVerifier,
    events: Arc<dyn EventBus>,
) -> (GrpcServer, MessageCalls) {
    let calls = MessageCalls::new(messages.clone(), InOrder::new(events.clone()));
    let handlers = Arc::new(MessageGrpc { messages, verifier, events, calls: calls.clone() });
    let server = GrpcServer::new(
        tonic::service::Routes::new(MessageServiceServer::from_arc(handlers.clone())),
        vec![<MessageServiceServer<MessageGrpc> as NamedService>::NAME],
    )
    .with_handlers::<Arc<dyn MessageService>>(handlers);
    (server, calls)
}
