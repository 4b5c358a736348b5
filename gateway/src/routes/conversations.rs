//! `/api/v1/conversations*`: direct conversations and groups, participants
//! and admins. Every conversation is answered with the caller's view of its
//! messages (last message, unread count) from the message service.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chatterbox_errors::Error;
use chatterbox_proto::conversation::v1::{
    Conversation, CreateDirectRequest, CreateGroupRequest, GetConversationRequest, ListConversationsRequest,
    ParticipantRequest, UpdateConversationRequest,
};
use chatterbox_proto::message::v1::GetSummariesRequest;
use serde::Deserialize;

use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiQuery, CurrentUser};
use crate::routes::PageQuery;
use crate::state::GatewayState;
use crate::views::{ConversationView, ListView};

/// Conversations joined with their message summaries for `user`.
pub(crate) async fn views(
    s: &GatewayState,
    user: &CurrentUser,
    conversations: Vec<Conversation>,
) -> ApiResult<Vec<ConversationView>> {
    let ids = conversations.iter().map(|c| c.id.clone()).collect();
    let request = user.request(GetSummariesRequest { conversation_ids: ids })?;
    let mut summaries = s.messages.clone().get_summaries(request).await?.into_inner().summaries;
    Ok(conversations
        .into_iter()
        .map(|c| {
            let summary = summaries.iter().position(|m| m.conversation_id == c.id).map(|i| summaries.swap_remove(i));
            ConversationView::new(c, summary)
        })
        .collect())
}

/// One conversation joined with its summary.
pub(crate) async fn view(s: &GatewayState, user: &CurrentUser, c: Conversation) -> ApiResult<ConversationView> {
    let mut one = views(s, user, vec![c]).await?;
    one.pop().ok_or_else(|| Error::invariant("summary join lost the conversation").into())
}

#[derive(Debug, Deserialize)]
pub(crate) struct CreateBody {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    participant_ids: Vec<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
}

/// `POST /api/v1/conversations`: 201 new, or 200 with the pair's existing
/// direct conversation.
pub(crate) async fn create(
    State(s): State<GatewayState>,
    user: CurrentUser,
    ApiJson(b): ApiJson<CreateBody>,
) -> ApiResult<Response> {
    let (conversation, created) = match b.kind.as_str() {
        "direct" => {
            let [other] = b.participant_ids.as_slice() else {
                return Err(Error::invalid("a direct conversation takes exactly one other participant").into());
            };
            let request = user.request(CreateDirectRequest { other_user_id: other.clone() })?;
            let r = s.conversations.clone().create_direct(request).await?.into_inner();
            (r.conversation.ok_or_else(|| Error::invariant("CreateDirect answered without a conversation"))?, r.created)
        }
        "group" => {
            let request = user.request(CreateGroupRequest {
                name: b.name,
                description: b.description,
                participant_ids: b.participant_ids,
            })?;
            (s.conversations.clone().create_group(request).await?.into_inner(), true)
        }
        "room" => return Err(Error::invalid("rooms are created with POST /api/v1/rooms").into()),
        _ => return Err(Error::invalid("type must be direct or group").into()),
    };
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(view(&s, &user, conversation).await?)).into_response())
}

/// `GET /api/v1/conversations`: mine, most recent activity first.
pub(crate) async fn list(
    State(s): State<GatewayState>,
    user: CurrentUser,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<ListView<ConversationView>>> {
    let request = user.request(ListConversationsRequest { limit: q.limit()?, cursor: q.cursor })?;
    let page = s.conversations.clone().list_conversations(request).await?.into_inner();
    Ok(Json(ListView::page(views(&s, &user, page.items).await?, page.next_cursor)))
}

/// `GET /api/v1/conversations/{id}`.
pub(crate) async fn get(
    State(s): State<GatewayState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<Json<ConversationView>> {
    let c = s.conversations.clone().get_conversation(user.request(GetConversationRequest { id })?).await?.into_inner();
    Ok(Json(view(&s, &user, c).await?))
}

#[derive(Debug, Deserialize)]
pub(crate) struct UpdateBody {
    name: Option<String>,
    description: Option<String>,
}

/// `PATCH /api/v1/conversations/{id}` (admins).
pub(crate) async fn update(
    State(s): State<GatewayState>,
    user: CurrentUser,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<UpdateBody>,
) -> ApiResult<Json<ConversationView>> {
    let request = user.request(UpdateConversationRequest { id, name: b.name, description: b.description })?;
    let c = s.conversations.clone().update_conversation(request).await?.into_inner();
    Ok(Json(view(&s, &user, c).await?))
}

#[derive(Debug, Deserialize)]
pub(crate) struct UserBody {
    user_id: String,
}

/// `POST /api/v1/conversations/{id}/participants` (admins).
pub(crate) async fn add_participant(
    State(s): State<GatewayState>,
    user: CurrentUser,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<UserBody>,
) -> ApiResult<Json<ConversationView>> {
    let request = user.request(ParticipantRequest { id, user_id: b.user_id })?;
    let c = s.conversations.clone().add_participant(request).await?.into_inner();
    Ok(Json(view(&s, &user, c).await?))
}

/// `DELETE /api/v1/conversations/{id}/participants/{user_id}` (admins, or leaving).
pub(crate) async fn remove_participant(
    State(s): State<GatewayState>,
    user: CurrentUser,
    Path((id, user_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    s.conversations.clone().remove_participant(user.request(ParticipantRequest { id, user_id })?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/conversations/{id}/admins` (admins).
pub(crate) async fn add_admin(
    State(s): State<GatewayState>,
    user: CurrentUser,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<UserBody>,
) -> ApiResult<Json<ConversationView>> {
    let c = s.conversations.clone().add_admin(user.request(ParticipantRequest { id, user_id: b.user_id })?).await?;
    Ok(Json(view(&s, &user, c.into_inner()).await?))
}
