//! `/api/v1/auth/*`: register, login, refresh, logout, and the caller's
//! login sessions.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chatterbox_errors::Error;
use chatterbox_proto::auth::v1::{
    Client, EndSessionRequest, ListSessionsRequest, LoginRequest, LogoutRequest, RefreshRequest, RegisterRequest,
    Session,
};
use serde::{Deserialize, Serialize};

use crate::error::ApiResult;
use crate::extract::{ApiJson, ClientOrigin, CurrentUser};
use crate::state::GatewayState;
use crate::views::{ItemsView, LoginSessionView, TokensView, UserView};

#[derive(Debug, Deserialize)]
pub(crate) struct RegisterBody {
    username: String,
    email: String,
    password: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginBody {
    email: String,
    password: String,
}

impl RegisterBody {
    pub(crate) fn into_request(self, client: Client) -> RegisterRequest {
        RegisterRequest { username: self.username, email: self.email, password: self.password, client: Some(client) }
    }
}

impl LoginBody {
    pub(crate) fn into_request(self, client: Client) -> LoginRequest {
        LoginRequest { email: self.email, password: self.password, client: Some(client) }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct RefreshBody {
    refresh_token: String,
}

#[derive(Debug, Serialize)]
struct SessionView {
    user: UserView,
    tokens: TokensView,
}

#[derive(Debug, Serialize)]
struct TokensOnly {
    tokens: TokensView,
}

fn session_view(session: Session) -> ApiResult<SessionView> {
    let missing = || Error::invariant("the auth service answered without user or tokens");
    Ok(SessionView {
        user: session.user.ok_or_else(missing)?.into(),
        tokens: session.tokens.ok_or_else(missing)?.into(),
    })
}

/// `POST /api/v1/auth/register` → 201 `{user, tokens}`.
pub(crate) async fn register(
    State(s): State<GatewayState>,
    ClientOrigin(client): ClientOrigin,
    ApiJson(b): ApiJson<RegisterBody>,
) -> ApiResult<Response> {
    let session = s.auth.clone().register(b.into_request(client)).await?.into_inner();
    Ok((StatusCode::CREATED, Json(session_view(session)?)).into_response())
}

/// `POST /api/v1/auth/login` → 200 `{user, tokens}`.
pub(crate) async fn login(
    State(s): State<GatewayState>,
    ClientOrigin(client): ClientOrigin,
    ApiJson(b): ApiJson<LoginBody>,
) -> ApiResult<Response> {
    let session = s.auth.clone().login(b.into_request(client)).await?.into_inner();
    Ok(Json(session_view(session)?).into_response())
}

/// `POST /api/v1/auth/refresh` → 200 `{tokens}`.
pub(crate) async fn refresh(State(s): State<GatewayState>, ApiJson(b): ApiJson<RefreshBody>) -> ApiResult<Response> {
    let tokens = s.auth.clone().refresh(RefreshRequest { refresh_token: b.refresh_token }).await?.into_inner();
    Ok(Json(TokensOnly { tokens: tokens.into() }).into_response())
}

/// `POST /api/v1/auth/logout` → 204.
pub(crate) async fn logout(State(s): State<GatewayState>, ApiJson(b): ApiJson<RefreshBody>) -> ApiResult<StatusCode> {
    s.auth.clone().logout(LogoutRequest { refresh_token: b.refresh_token }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/auth/sessions` → 200 `{items: [session]}`.
pub(crate) async fn sessions(State(s): State<GatewayState>, me: CurrentUser) -> ApiResult<Response> {
    let listed = s.auth.clone().list_sessions(me.request(ListSessionsRequest {})?).await?.into_inner();
    let items: Vec<LoginSessionView> = listed.sessions.into_iter().map(Into::into).collect();
    Ok(Json(ItemsView { items }).into_response())
}

/// `DELETE /api/v1/auth/sessions/{id}` → 204: that session ends everywhere.
pub(crate) async fn end_session(
    State(s): State<GatewayState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.auth.clone().end_session(me.request(EndSessionRequest { id })?).await?;
    Ok(StatusCode::NO_CONTENT)
}
