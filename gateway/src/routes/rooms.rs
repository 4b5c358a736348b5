//! `/api/v1/rooms*`: the public room directory.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chatterbox_proto::conversation::v1::{CreateRoomRequest, ListRoomsRequest, RoomRequest};
use serde::Deserialize;

use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiQuery, CurrentUser};
use crate::routes::conversations::view;
use crate::state::GatewayState;
use crate::views::{ConversationView, ListView};

#[derive(Debug, Deserialize)]
pub(crate) struct CreateBody {
    name: String,
    #[serde(default)]
    description: String,
}

/// `POST /api/v1/rooms` → 201.
pub(crate) async fn create(
    State(s): State<GatewayState>,
    user: CurrentUser,
    ApiJson(b): ApiJson<CreateBody>,
) -> ApiResult<Response> {
    let request = user.request(CreateRoomRequest { name: b.name, description: b.description })?;
    let room = s.conversations.clone().create_room(request).await?.into_inner();
    Ok((StatusCode::CREATED, Json(view(&s, &user, room).await?)).into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct DirectoryQuery {
    #[serde(default)]
    search: String,
    limit: Option<u32>,
    #[serde(default)]
    cursor: String,
}

/// `GET /api/v1/rooms?search=&limit=&cursor=`: rooms by name.
pub(crate) async fn list(
    State(s): State<GatewayState>,
    user: CurrentUser,
    ApiQuery(q): ApiQuery<DirectoryQuery>,
) -> ApiResult<Json<ListView<ConversationView>>> {
    let limit = crate::routes::checked_limit(q.limit)?;
    let request = user.request(ListRoomsRequest { search: q.search, limit, cursor: q.cursor })?;
    let page = s.conversations.clone().list_rooms(request).await?.into_inner();
    // Non-members see the room itself, not its messages.
    let items = page.items.into_iter().map(|c| ConversationView::new(c, None)).collect();
    Ok(Json(ListView::page(items, page.next_cursor)))
}

/// `POST /api/v1/rooms/{id}/join` → 200.
pub(crate) async fn join(
    State(s): State<GatewayState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<Json<ConversationView>> {
    let room = s.conversations.clone().join_room(user.request(RoomRequest { id })?).await?.into_inner();
    Ok(Json(view(&s, &user, room).await?))
}

/// `POST /api/v1/rooms/{id}/leave` → 204.
pub(crate) async fn leave(
    State(s): State<GatewayState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.conversations.clone().leave_room(user.request(RoomRequest { id })?).await?;
    Ok(StatusCode::NO_CONTENT)
}
