//! `/api/v1/users*`: the caller's profile, others' public profiles, search.

use axum::Json;
use axum::extract::{Path, State};
use chatterbox_proto::user::v1::{GetMeRequest, GetUserRequest, SearchUsersRequest, UpdateMeRequest, User};
use serde::{Deserialize, Deserializer};

use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiQuery, CurrentUser};
use crate::routes::presence::with_presence;
use crate::state::GatewayState;
use crate::views::{ListView, UserView};

/// `GET /api/v1/users/me`.
pub(crate) async fn me(State(s): State<GatewayState>, user: CurrentUser) -> ApiResult<Json<UserView>> {
    let profile = s.users.clone().get_me(user.request(GetMeRequest {})?).await?.into_inner();
    Ok(Json(one(&s, &user, profile).await))
}

/// One profile as the API shows it, presence included.
async fn one(s: &GatewayState, user: &CurrentUser, profile: User) -> UserView {
    let mut one = [profile];
    with_presence(s, user, &mut one).await;
    let [profile] = one;
    profile.into()
}

/// A field that may be absent (leave it), null (clear it) or a value.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize)]
pub(crate) struct UpdateBody {
    #[serde(default)]
    username: Option<String>,
    #[serde(default, deserialize_with = "present")]
    avatar: Option<Option<String>>,
}

/// `PATCH /api/v1/users/me` `{username?, avatar?}`; `avatar: null` clears it.
pub(crate) async fn update_me(
    State(s): State<GatewayState>,
    user: CurrentUser,
    ApiJson(b): ApiJson<UpdateBody>,
) -> ApiResult<Json<UserView>> {
    let avatar = b.avatar.map(Option::unwrap_or_default);
    let request = user.request(UpdateMeRequest { username: b.username, avatar })?;
    let profile = s.users.clone().update_me(request).await?.into_inner();
    Ok(Json(one(&s, &user, profile).await))
}

/// `GET /api/v1/users/{id}`: public profile (no email unless it is yours).
pub(crate) async fn get(
    State(s): State<GatewayState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<Json<UserView>> {
    let profile = s.users.clone().get_user(user.request(GetUserRequest { id })?).await?.into_inner();
    Ok(Json(one(&s, &user, profile).await))
}

#[derive(Debug, Deserialize)]
pub(crate) struct SearchQuery {
    #[serde(default)]
    search: String,
    limit: Option<u32>,
    #[serde(default)]
    cursor: String,
}

/// `GET /api/v1/users?search=<prefix>&limit=&cursor=`.
pub(crate) async fn search(
    State(s): State<GatewayState>,
    user: CurrentUser,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> ApiResult<Json<ListView<UserView>>> {
    let limit = crate::routes::checked_limit(q.limit)?;
    let request = user.request(SearchUsersRequest { prefix: q.search, limit, cursor: q.cursor })?;
    let mut page = s.users.clone().search_users(request).await?.into_inner();
    with_presence(&s, &user, &mut page.items).await;
    Ok(Json(ListView::page(page.items.into_iter().map(UserView::from).collect(), page.next_cursor)))
}
