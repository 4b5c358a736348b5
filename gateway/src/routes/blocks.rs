//! `/api/v1/users/{id}/block` and `/api/v1/users/me/blocks`: whom the caller
//! blocks. The conversation service keeps and enforces blocks (no new
//! direct conversation, no message in an existing one, either way round);
//! the user service says who the blocked users are.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chatterbox_errors::Code;
use chatterbox_proto::conversation::v1::{BlockRequest, ListBlocksRequest};
use chatterbox_proto::user::v1::{GetUserRequest, User};

use crate::error::ApiResult;
use crate::extract::{ApiQuery, CurrentUser};
use crate::routes::PageQuery;
use crate::routes::presence::with_presence;
use crate::state::GatewayState;
use crate::views::{ListView, UserView};

/// `POST /api/v1/users/{id}/block`: 204, whether or not it was blocked before.
pub(crate) async fn block(
    State(s): State<GatewayState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.conversations.clone().block(user.request(BlockRequest { user_id: id })?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/v1/users/{id}/block`: 204, whether or not it was blocked.
pub(crate) async fn unblock(
    State(s): State<GatewayState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.conversations.clone().unblock(user.request(BlockRequest { user_id: id })?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/users/me/blocks?limit=&cursor=`: the public profiles of the
/// users the caller blocks, most recently blocked first. A blocked user
/// whose account is gone is left out of the page.
pub(crate) async fn list(
    State(s): State<GatewayState>,
    user: CurrentUser,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<ListView<UserView>>> {
    let request = user.request(ListBlocksRequest { limit: q.limit()?, cursor: q.cursor.clone() })?;
    let page = s.conversations.clone().list_blocks(request).await?.into_inner();
    let lookups = page.items.iter().map(|b| {
        let users = s.users.clone();
        let request = user.request(GetUserRequest { id: b.user_id.clone() });
        async move {
            match users.get_user(request?).await {
                Ok(found) => Ok(Some(found.into_inner())),
                Err(status) => {
                    let e = chatterbox_errors::Error::from(status);
                    if e.code() == Code::NotFound { Ok(None) } else { Err(crate::error::ApiError::from(e)) }
                }
            }
        }
    });
    let mut profiles: Vec<User> = Vec::with_capacity(page.items.len());
    for found in futures::future::join_all(lookups).await {
        profiles.extend(found?);
    }
    with_presence(&s, &user, &mut profiles).await;
    Ok(Json(ListView::page(profiles.into_iter().map(UserView::from).collect(), page.next_cursor)))
}
