//! The transport layer: `chatterbox.conversation.v1.ConversationService`.
//! Every call's token is verified here and handed to the domain as an actor.

use std::sync::Arc;

use chatterbox_events::{EventBus, Topic, envelope, publish_after_commit};
use chatterbox_identity::{Actor, TokenVerifier, authenticate_user};
use chatterbox_proto::conversation::v1::conversation_service_server::{ConversationService, ConversationServiceServer};
use chatterbox_proto::conversation::v1::{
    Access, CheckAccessRequest, Conversation as ConversationMsg, ConversationPage,
    ConversationRef as ConversationRefMsg, ConversationRefPage, ConversationType, CreateDirectRequest,
    CreateDirectResponse, CreateGroupRequest, CreateRoomRequest, GetConversationRequest, LeaveRoomResponse,
    ListConversationsRequest, ListRoomsRequest, ParticipantRequest, PrivateAmongRequest, PrivateAmongResponse,
    RecordActivityRequest, RecordActivityResponse, RemoveParticipantResponse, RoomRequest, UpdateConversationRequest,
};
use chatterbox_proto::events::v1::envelope::Event;
use chatterbox_proto::events::v1::{ConversationCreated, ConversationUpdated, MemberJoined, MemberLeft};
use chatterbox_runtime::GrpcServer;
use chatterbox_types::{ConversationId, Timestamp, UserId};
use tonic::server::NamedService;
use tonic::{Request, Response, Status};

use crate::domain::{Conversations, Page};
use crate::store::{Conversation, ConversationRef, Kind};

#[derive(Debug, Clone)]
struct ConversationGrpc {
    conversations: Arc<Conversations>,
    verifier: TokenVerifier,
    events: Arc<dyn EventBus>,
}

impl ConversationGrpc {
    /// Publishes after commit, on the given topics.
    async fn publish(&self, topics: &[Topic], event: Event) {
        publish_after_commit(self.events.as_ref(), topics, &envelope(event, Timestamp::now())).await;
    }

    /// Tells every participant about a conversation they are now in.
    async fn created(&self, c: &ConversationMsg) {
        let topics = user_topics(&c.participant_ids);
        self.publish(&topics, Event::ConversationCreated(ConversationCreated { conversation: Some(c.clone()) })).await;
    }

    /// Tells the conversation's participants it changed (and services
    /// that cache membership: its admins may have).
    async fn updated(&self, c: &ConversationMsg) {
        let mut topics = conversation_topic(&c.id);
        topics.push(Topic::Membership);
        self.publish(&topics, Event::ConversationUpdated(ConversationUpdated { conversation: Some(c.clone()) })).await;
    }

    /// Tells a user (and the conversation) that they joined it.
    async fn joined(&self, c: &ConversationMsg, user: &str) {
        let mut topics = conversation_topic(&c.id);
        topics.extend(user_topics(&[user.to_owned()]));
        let event = MemberJoined { conversation: Some(c.clone()), user_id: user.to_owned() };
        self.publish(&topics, Event::MemberJoined(event)).await;
    }

    /// Tells a user (and the conversation, and services that cache
    /// membership) that they left it. Membership first: a cache has dropped
    /// the leaver before anyone else hears of it.
    async fn left(&self, c: &ConversationMsg, user: &str) {
        let mut topics = vec![Topic::Membership];
        topics.extend(conversation_topic(&c.id));
        topics.extend(user_topics(&[user.to_owned()]));
        let event =
            MemberLeft { conversation_id: c.id.clone(), user_id: user.to_owned(), conversation: Some(c.clone()) };
        self.publish(&topics, Event::MemberLeft(event)).await;
    }

    fn actor<T>(&self, request: &Request<T>) -> Result<Actor, Status> {
        Ok(authenticate_user(request, &self.verifier)?)
    }
}

fn user_topics(ids: &[String]) -> Vec<Topic> {
    ids.iter().filter_map(|id| UserId::parse(id).ok()).map(Topic::User).collect()
}

fn conversation_topic(id: &str) -> Vec<Topic> {
    ConversationId::parse(id).ok().map(Topic::Conversation).into_iter().collect()
}

fn kind(k: Kind) -> ConversationType {
    match k {
        Kind::Direct => ConversationType::Direct,
        Kind::Group => ConversationType::Group,
        Kind::Room => ConversationType::Room,
    }
}

/// A conversation on the wire.
pub fn to_proto(c: Conversation) -> ConversationMsg {
    ConversationMsg {
        id: c.id.to_string(),
        r#type: kind(c.kind).into(),
        name: c.name,
        description: c.description,
        member_count: c.participants.len() as u32,
        participant_ids: c.participants.iter().map(ToString::to_string).collect(),
        admin_ids: c.admins.iter().map(ToString::to_string).collect(),
        created_by: c.created_by.to_string(),
        created_at_ms: c.created_at.millis(),
        updated_at_ms: c.updated_at.millis(),
        last_activity_ms: c.last_activity.millis(),
    }
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
    ConversationPage {
        items: p.items.into_iter().map(to_proto).collect(),
        next_cursor: p.next_cursor.unwrap_or_default(),
    }
}

#[tonic::async_trait]
impl ConversationService for ConversationGrpc {
    async fn create_direct(
        &self,
        request: Request<CreateDirectRequest>,
    ) -> Result<Response<CreateDirectResponse>, Status> {
        let actor = self.actor(&request)?;
        let (c, created) = self.conversations.create_direct(&actor, &request.into_inner().other_user_id).await?;
        let c = to_proto(c);
        if created {
            self.created(&c).await;
        }
        Ok(Response::new(CreateDirectResponse { conversation: Some(c), created }))
    }

    async fn create_group(&self, request: Request<CreateGroupRequest>) -> Result<Response<ConversationMsg>, Status> {
        let actor = self.actor(&request)?;
        let r = request.into_inner();
        let c = to_proto(self.conversations.create_group(&actor, &r.name, &r.description, &r.participant_ids).await?);
        self.created(&c).await;
        Ok(Response::new(c))
    }

    async fn create_room(&self, request: Request<CreateRoomRequest>) -> Result<Response<ConversationMsg>, Status> {
        let actor = self.actor(&request)?;
        let r = request.into_inner();
        let c = to_proto(self.conversations.create_room(&actor, &r.name, &r.description).await?);
        self.created(&c).await;
        Ok(Response::new(c))
    }

    async fn get_conversation(
        &self,
        request: Request<GetConversationRequest>,
    ) -> Result<Response<ConversationMsg>, Status> {
        let actor = self.actor(&request)?;
        Ok(Response::new(to_proto(self.conversations.get(&actor, &request.into_inner().id).await?)))
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
        let c = to_proto(self.conversations.update(&actor, &r.id, r.name.as_deref(), r.description.as_deref()).await?);
        self.updated(&c).await;
        Ok(Response::new(c))
    }

    async fn add_participant(&self, request: Request<ParticipantRequest>) -> Result<Response<ConversationMsg>, Status> {
        let actor = self.actor(&request)?;
        let r = request.into_inner();
        let c = to_proto(self.conversations.add_participant(&actor, &r.id, &r.user_id).await?);
        self.joined(&c, &r.user_id).await;
        Ok(Response::new(c))
    }

    async fn remove_participant(
        &self,
        request: Request<ParticipantRequest>,
    ) -> Result<Response<RemoveParticipantResponse>, Status> {
        let actor = self.actor(&request)?;
        let r = request.into_inner();
        let c = to_proto(self.conversations.remove_participant(&actor, &r.id, &r.user_id).await?);
        self.left(&c, &r.user_id).await;
        Ok(Response::new(RemoveParticipantResponse {}))
    }

    async fn add_admin(&self, request: Request<ParticipantRequest>) -> Result<Response<ConversationMsg>, Status> {
        let actor = self.actor(&request)?;
        let r = request.into_inner();
        let c = to_proto(self.conversations.add_admin(&actor, &r.id, &r.user_id).await?);
        self.updated(&c).await;
        Ok(Response::new(c))
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
        let c = to_proto(self.conversations.join_room(&actor, &request.into_inner().id).await?);
        self.joined(&c, &actor.id.to_string()).await;
        Ok(Response::new(c))
    }

    async fn leave_room(&self, request: Request<RoomRequest>) -> Result<Response<LeaveRoomResponse>, Status> {
        let actor = self.actor(&request)?;
        let id = request.into_inner().id;
        let c = to_proto(self.conversations.leave_room(&actor, &id).await?);
        self.left(&c, &actor.id.to_string()).await;
        Ok(Response::new(LeaveRoomResponse {}))
    }

    async fn private_among(
        &self,
        request: Request<PrivateAmongRequest>,
    ) -> Result<Response<PrivateAmongResponse>, Status> {
        let actor = self.actor(&request)?;
        let found = self.conversations.private_among(&actor, &request.into_inner().ids).await?;
        Ok(Response::new(PrivateAmongResponse { ids: found.iter().map(ToString::to_string).collect() }))
    }

    async fn check_access(&self, request: Request<CheckAccessRequest>) -> Result<Response<Access>, Status> {
        let actor = self.actor(&request)?;
        let place = self.conversations.access(&actor, &request.into_inner().id).await?;
        Ok(Response::new(Access { r#type: kind(place.kind).into(), admin: place.admin }))
    }

    async fn record_activity(
        &self,
        request: Request<RecordActivityRequest>,
    ) -> Result<Response<RecordActivityResponse>, Status> {
        let actor = self.actor(&request)?;
        let r = request.into_inner();
        self.conversations.record_activity(&actor, &r.id, Timestamp::from_millis(r.at_ms)).await?;
        Ok(Response::new(RecordActivityResponse {}))
    }
}

/// The conversation service, ready for [`chatterbox_runtime::serve_grpc`].
pub fn grpc_server(
    conversations: Arc<Conversations>,
    verifier: TokenVerifier,
    events: Arc<dyn EventBus>,
) -> GrpcServer {
    let handlers = Arc::new(ConversationGrpc { conversations, verifier, events });
    GrpcServer::new(
        tonic::service::Routes::new(ConversationServiceServer::from_arc(handlers.clone())),
        vec![<ConversationServiceServer<ConversationGrpc> as NamedService>::NAME],
    )
    .with_handlers::<Arc<dyn ConversationService>>(handlers)
}
