//! `/api/v1/auth/*`: register, login, refresh, logout.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chatterbox_errors::Error;
use chatterbox_proto::auth::v1::{LoginRequest, LogoutRequest, RefreshRequest, RegisterRequest, Session};
use serde::{Deserialize, Serialize};

use crate::error::ApiResult;
use crate::extract::ApiJson;
use crate::state::GatewayState;
use crate::views::{TokensView, UserView};

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
    pub(crate) fn into_request(self) -> RegisterRequest {
        RegisterRequest { username: self.username, email: self.email, password: self.password }
    }
}

impl LoginBody {
    pub(crate) fn into_request(self) -> LoginRequest {
        LoginRequest { email: self.email, password: self.password }
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
pub(crate) async fn register(State(s): State<GatewayState>, ApiJson(b): ApiJson<RegisterBody>) -> ApiResult<Response> {
    let session = s.auth.clone().register(b.into_request()).await?.into_inner();
    Ok((StatusCode::CREATED, Json(session_view(session)?)).into_response())
}

/// `POST /api/v1/auth/login` → 200 `{user, tokens}`.
pub(crate) async fn login(State(s): State<GatewayState>, ApiJson(b): ApiJson<LoginBody>) -> ApiResult<Response> {
    let session = s.auth.clone().login(b.into_request()).await?.into_inner();
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
