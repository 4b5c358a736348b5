//! The transport layer: `chatterbox.conversation.v1.ConversationService`.
//! Every call's token is verified here and handed to the domain as an actor.

use std::sync::Arc;

use chatterbox_errors::Error;
use chatterbox_identity::{Actor, TokenVerifier, authenticate_user};
use chatterbox_proto::conversation::v1::conversation_service_server::{ConversationService, ConversationServiceServer};
use chatterbox_proto::conversation::v1::{
    Access, BlockPage, BlockRequest, BlockResponse, Blocked, CheckAccessRequest, Conversation as ConversationMsg,
    ConversationIds, ConversationPage, ConversationRef as ConversationRefMsg, ConversationRefPage, CreateDirectRequest,
    CreateDirectResponse, CreateGroupRequest, CreateRoomRequest, GetConversationRequest, LeaveRoomResponse,
    ListBlocksRequest, ListConversationIdsRequest, ListConversationsRequest, ListRoomsRequest, Mentionable,
    ParticipantRequest, PrivateAmongRequest, PrivateAmongResponse, RecordActivityRequest, RecordActivityResponse,
    RemoveParticipantResponse, ResolveMentionsRequest, ResolveMentionsResponse, RoomRequest, UpdateConversationRequest,
};
use chatterbox_runtime::GrpcServer;
use chatterbox_types::{ConversationId, Description, DisplayName, Timestamp, UserId};
use tonic::server::NamedService;
use tonic::{Request, Response, Status};

use crate::domain::{Conversations, Page, no_such_user, not_found};
use crate::store::ConversationRef;
use crate::wire::{kind, to_proto};

#[derive(Debug, Clone)]
struct ConversationGrpc {
    conversations: Arc<Conversations>,
    verifier: TokenVerifier,
}

impl ConversationGrpc {
    fn actor<T>(&self, request: &Request<T>) -> Result<Actor, Status> {
        Ok(authenticate_user(request, &self.verifier)?)
    }
}

/// A conversation id from the wire: a malformed one names nothing the
/// caller can see.
fn conversation_id(id: &str) -> Result<ConversationId, Error> {
    ConversationId::parse(id).map_err(|_| not_found())
}

/// A user id from the wire: a malformed one names no user.
fn user_id(id: &str) -> Result<UserId, Error> {
    UserId::parse(id).map_err(|_| no_such_user(id))
}

fn ref_page(p: Page<ConversationRef>) -> ConversationRefPage {
    ConversationRefPage {
        items: p
            .items
            .into_iter()
            .map(|c| ConversationRefMsg { id: c.id.to_string(), r#type: kind(c.kind).into() })
            .collect(),
        next_cursor: p.next_cursor.unwrap_or_default(),
    }
}

fn page(p: Page) -> ConversationPage {
    ConversationPage { items: p.items.iter().map(to_proto).collect(), next_cursor: p.next_cursor.unwrap_or_default() }
}

#[tonic::async_trait]
impl ConversationService for ConversationGrpc {
    async fn create_direct(
        &self,
        request: Request<CreateDirectRequest>,
    ) -> Result<Response<CreateDirectResponse>, Status> {
        let actor = self.actor(&request)?;
        let other = user_id(&request.into_inner().other_user_id)?;
        let (c, created) = self.conversations.create_direct(&actor, other).await?;
        Ok(Response::new(CreateDirectResponse { conversation: Some(to_proto(&c)), created }))
    }

    async fn create_group(&self, request: Request<CreateGroupRequest>) -> Result<Response<ConversationMsg>, Status> {
        let actor = self.actor(&request)?;
        let r = request.into_inner();
        let (name, description) = (
            DisplayName::parse(&r.name).map_err(Error::from)?,
            Description::parse(&r.description).map_err(Error::from)?,
        );
        let participants = r.participant_ids.iter().map(|id| user_id(id)).collect::<Result<Vec<_>, _>>()?;
        let c = self.conversations.create_group(&actor, name, description, &participants).await?;
        Ok(Response::new(to_proto(&c)))
    }

    async fn create_room(&self, request: Request<CreateRoomRequest>) -> Result<Response<ConversationMsg>, Status> {
        let actor = self.actor(&request)?;
        let r = request.into_inner();
        let (name, description) = (
            DisplayName::parse(&r.name).map_err(Error::from)?,
            Description::parse(&r.description).map_err(Error::from)?,
        );
        Ok(Response::new(to_proto(&self.conversations.create_room(&actor, name, description).await?)))
    }

    async fn get_conversation(
        &self,
        request: Request<GetConversationRequest>,
    ) -> Result<Response<ConversationMsg>, Status> {
        let actor = self.actor(&request)?;
        let id = conversation_id(&request.into_inner().id)?;
        Ok(Response::new(to_proto(&self.conversations.get(&actor, id).await?)))
    }

    async fn list_conversations(
        &self,
        request: Request<ListConversationsRequest>,
    ) -> Result<Response<ConversationPage>, Status> {
        let actor = self.actor(&request)?;
        let r = request.into_inner();
        Ok(Response::new(page(self.conversations.list(&actor, r.limit, &r.cursor).await?)))
    }

    async fn list_conversation_refs(
        &self,
        request: Request<ListConversationsRequest>,
    ) -> Result<Response<ConversationRefPage>, Status> {
        let actor = self.actor(&request)?;
        let r = request.into_inner();
        Ok(Response::new(ref_page(self.conversations.list_refs(&actor, r.limit, &r.cursor).await?)))
    }

    async fn update_conversation(
        &self,
        request: Request<UpdateConversationRequest>,
    ) -> Result<Response<ConversationMsg>, Status> {
        let actor = self.actor(&request)?;
        let r = request.into_inner();
        let id = conversation_id(&r.id)?;
        let name = r.name.as_deref().map(DisplayName::parse).transpose().map_err(Error::from)?;
        let description = r.description.as_deref().map(Description::parse).transpose().map_err(Error::from)?;
        Ok(Response::new(to_proto(&self.conversations.update(&actor, id, name, description).await?)))
    }

    async fn add_participant(&self, request: Request<ParticipantRequest>) -> Result<Response<ConversationMsg>, Status> {
        let actor = self.actor(&request)?;
        let r = request.into_inner();
        let (id, user) = (conversation_id(&r.id)?, user_id(&r.user_id)?);
        Ok(Response::new(to_proto(&self.conversations.add_participant(&actor, id, user).await?)))
    }

    async fn remove_participant(
        &self,
        request: Request<ParticipantRequest>,
    ) -> Result<Response<RemoveParticipantResponse>, Status> {
        let actor = self.actor(&request)?;
        let r = request.into_inner();
        let (id, user) = (conversation_id(&r.id)?, user_id(&r.user_id)?);
        self.conversations.remove_participant(&actor, id, user).await?;
        Ok(Response::new(RemoveParticipantResponse {}))
    }

    async fn add_admin(&self, request: Request<ParticipantRequest>) -> Result<Response<ConversationMsg>, Status> {
        let actor = self.actor(&request)?;
        let r = request.into_inner();
        let (id, user) = (conversation_id(&r.id)?, user_id(&r.user_id)?);
        Ok(Response::new(to_proto(&self.conversations.add_admin(&actor, id, user).await?)))
    }

    async fn list_rooms(&self, request: Request<ListRoomsRequest>) -> Result<Response<ConversationPage>, Status> {
        let viewer = self.actor(&request)?.id;
        let r = request.into_inner();
        let mut found = page(self.conversations.list_rooms(&r.search, r.limit, &r.cursor).await?);
        // Someone outside a room learns how many are in it, not who.
        let viewer = viewer.to_string();
        for room in &mut found.items {
            if !room.participant_ids.contains(&viewer) {
                room.participant_ids.clear();
            }
        }
        Ok(Response::new(found))
    }

    async fn join_room(&self, request: Request<RoomRequest>) -> Result<Response<ConversationMsg>, Status> {
        let actor = self.actor(&request)?;
        let id = conversation_id(&request.into_inner().id)?;
        Ok(Response::new(to_proto(&self.conversations.join_room(&actor, id).await?)))
    }

    async fn leave_room(&self, request: Request<RoomRequest>) -> Result<Response<LeaveRoomResponse>, Status> {
        let actor = self.actor(&request)?;
        let id = conversation_id(&request.into_inner().id)?;
        self.conversations.leave_room(&actor, id).await?;
        Ok(Response::new(LeaveRoomResponse {}))
    }

    async fn private_among(
        &self,
        request: Request<PrivateAmongRequest>,
    ) -> Result<Response<PrivateAmongResponse>, Status> {
        let actor = self.actor(&request)?;
        let ids = request
            .into_inner()
            .ids
            .iter()
            .map(|id| ConversationId::parse(id).map_err(|_| Error::invalid("ids must be conversation ids")))
            .collect::<Result<Vec<_>, _>>()?;
        let found = self.conversations.private_among(&actor, &ids).await?;
        Ok(Response::new(PrivateAmongResponse { ids: found.iter().map(ToString::to_string).collect() }))
    }

    async fn check_access(&self, request: Request<CheckAccessRequest>) -> Result<Response<Access>, Status> {
        let actor = self.actor(&request)?;
        let place = self.conversations.access(&actor, conversation_id(&request.into_inner().id)?).await?;
        Ok(Response::new(Access { r#type: kind(place.kind).into(), admin: place.admin, blocked: place.blocked }))
    }

    async fn record_activity(
        &self,
        request: Request<RecordActivityRequest>,
    ) -> Result<Response<RecordActivityResponse>, Status> {
        let actor = self.actor(&request)?;
        let r = request.into_inner();
        self.conversations.record_activity(&actor, conversation_id(&r.id)?, Timestamp::from_millis(r.at_ms)).await?;
        Ok(Response::new(RecordActivityResponse {}))
    }

    async fn block(&self, request: Request<BlockRequest>) -> Result<Response<BlockResponse>, Status> {
        let actor = self.actor(&request)?;
        let user = user_id(&request.into_inner().user_id)?;
        Ok(Response::new(BlockResponse { changed: self.conversations.block(&actor, user).await? }))
    }

    async fn unblock(&self, request: Request<BlockRequest>) -> Result<Response<BlockResponse>, Status> {
        let actor = self.actor(&request)?;
        let user = user_id(&request.into_inner().user_id)?;
        Ok(Response::new(BlockResponse { changed: self.conversations.unblock(&actor, user).await? }))
    }

    async fn resolve_mentions(
        &self,
        request: Request<ResolveMentionsRequest>,
    ) -> Result<Response<ResolveMentionsResponse>, Status> {
        let actor = self.actor(&request)?;
        let r = request.into_inner();
        let found = self.conversations.resolve_mentions(&actor, conversation_id(&r.id)?, &r.usernames).await?;
        Ok(Response::new(ResolveMentionsResponse {
            participants: found
                .into_iter()
                .map(|(username, user)| Mentionable { username, user_id: user.to_string() })
                .collect(),
        }))
    }

    async fn list_conversation_ids(
        &self,
        request: Request<ListConversationIdsRequest>,
    ) -> Result<Response<ConversationIds>, Status> {
        let actor = self.actor(&request)?;
        let ids = self.conversations.ids(&actor).await?;
        Ok(Response::new(ConversationIds { ids: ids.iter().map(ToString::to_string).collect() }))
    }

    async fn list_blocks(&self, request: Request<ListBlocksRequest>) -> Result<Response<BlockPage>, Status> {
        let actor = self.actor(&request)?;
        let r = request.into_inner();
        let found = self.conversations.blocks(&actor, r.limit, &r.cursor).await?;
        Ok(Response::new(BlockPage {
            items: found
                .items
                .iter()
                .map(|b| Blocked { user_id: b.blocked.to_string(), blocked_at_ms: b.at.millis() })
                .collect(),
            next_cursor: found.next_cursor.unwrap_or_default(),
        }))
    }
}

/// The conversation service, ready for [`chatterbox_runtime::serve_grpc`].
pub fn grpc_server(conversations: Arc<Conversations>, verifier: TokenVerifier) -> GrpcServer {
    let handlers = Arc::new(ConversationGrpc { conversations, verifier });
    GrpcServer::new(
        tonic::service::Routes::new(ConversationServiceServer::from_arc(handlers.clone())),
        vec![<ConversationServiceServer<ConversationGrpc> as NamedService>::NAME],
    )
    .with_handlers::<Arc<dyn ConversationService>>(handlers)
}
