//! Sessions of the web client. The page never holds a refresh token: these
//! routes call the auth service for it and keep the refresh token in a
//! cookie that page scripts cannot read (`HttpOnly`), that is sent only to
//! these routes (`Path=/web/session`) and only by our own pages
//! (`SameSite=Strict`, plus a header a cross-site form cannot set and an
//! `Origin` check). The page gets the access token alone and keeps it in
//! memory; on load it asks `refresh` for a new one, which rotates the cookie.
//!
//! A script injected into the page could still use the session while the
//! page is open (any design allows that), but it cannot carry the refresh
//! token away to use later.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use chatterbox_errors::Error;
use chatterbox_proto::auth::v1::{LogoutRequest, RefreshRequest, Session, Tokens};
use serde::Serialize;

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ClientOrigin, request_host};
use crate::routes::auth::{LoginBody, RegisterBody};
use crate::state::GatewayState;
use crate::views::UserView;

/// The cookie holding the refresh token.
pub(crate) const COOKIE: &str = "chatterbox_refresh";
/// Where the browser sends it.
const COOKIE_PATH: &str = "/web/session";
/// The header every session call must carry: a page of another site can
/// neither send it with a form nor add it to a fetch without a CORS
/// preflight, which the gateway never grants.
pub(crate) const CSRF_HEADER: &str = "x-chatterbox-web";

/// What the page learns: never the refresh token.
#[derive(Debug, Serialize)]
struct AccessView {
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<UserView>,
    access_token: String,
    token_type: &'static str,
    expires_in: i64,
}

impl AccessView {
    fn new(user: Option<UserView>, tokens: &Tokens) -> Self {
        Self { user, access_token: tokens.access_token.clone(), token_type: "Bearer", expires_in: tokens.expires_in }
    }
}

/// Refuses calls that do not come from our own page.
fn same_site_only(s: &GatewayState, headers: &HeaderMap, uri: &Uri) -> ApiResult<()> {
    if headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()) != Some("1") {
        return Err(Error::permission_denied(format!("session calls must carry `{CSRF_HEADER}: 1`")).into());
    }
    if !crate::realtime::origin_allowed(
        &s.realtime.allowed_origins,
        headers.get(header::ORIGIN),
        request_host(headers, uri),
    ) {
        return Err(Error::permission_denied("this origin may not use web sessions here").into());
    }
    Ok(())
}

/// The refresh token the browser sent, if any.
fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
        .filter(|value| !value.is_empty())
}

/// Loopback hosts are reached over plain HTTP (`make run`); everywhere else
/// the cookie is `Secure`, so it never crosses the network in clear.
fn loopback(host: Option<&str>) -> bool {
    let host = host.unwrap_or("");
    let name = match host.rsplit_once(':') {
        Some((name, port)) if !port.contains(']') => name,
        _ => host,
    };
    matches!(name, "localhost" | "127.0.0.1" | "[::1]") || name.ends_with(".localhost")
}

fn set_cookie(host: Option<&str>, value: &str, max_age: u64) -> ApiResult<HeaderValue> {
    let secure = if loopback(host) { "" } else { "; Secure" };
    let cookie = format!("{COOKIE}={value}; Path={COOKIE_PATH}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}");
    HeaderValue::from_str(&cookie).map_err(|_| Error::invariant("the auth service issued an unusable token").into())
}

/// What a session call knows of its request.
pub(crate) struct Call<'a> {
    s: &'a GatewayState,
    headers: &'a HeaderMap,
    uri: &'a Uri,
}

impl<'a> Call<'a> {
    /// A call from our own page, or the refusal.
    fn checked(s: &'a GatewayState, headers: &'a HeaderMap, uri: &'a Uri) -> ApiResult<Self> {
        same_site_only(s, headers, uri)?;
        Ok(Self { s, headers, uri })
    }

    fn host(&self) -> Option<&str> {
        request_host(self.headers, self.uri)
    }

    /// 200/201 with the access token; the refresh token goes into the cookie.
    fn with_tokens(&self, status: StatusCode, user: Option<UserView>, tokens: &Tokens) -> ApiResult<Response> {
        let cookie = set_cookie(self.host(), &tokens.refresh_token, self.s.web.session_ttl_secs)?;
        let no_store = HeaderValue::from_static("no-store");
        let body = Json(AccessView::new(user, tokens));
        Ok((status, [(header::SET_COOKIE, cookie), (header::CACHE_CONTROL, no_store)], body).into_response())
    }

    fn started(&self, status: StatusCode, session: Session) -> ApiResult<Response> {
        let missing = || Error::invariant("the auth service answered without user or tokens");
        let tokens = session.tokens.ok_or_else(missing)?;
        let user = session.user.ok_or_else(missing)?;
        self.with_tokens(status, Some(user.into()), &tokens)
    }

    /// A response that also forgets the cookie.
    fn forgetting(&self, response: impl IntoResponse) -> Response {
        let mut response = response.into_response();
        if let Ok(cookie) = set_cookie(self.host(), "", 0) {
            response.headers_mut().append(header::SET_COOKIE, cookie);
        }
        response
    }

    /// Ends the session the cookie names, if any (a new sign-in replaces it).
    async fn end_previous(&self) {
        if let Some(refresh_token) = cookie_token(self.headers)
            && let Err(status) = self.s.auth.clone().logout(LogoutRequest { refresh_token }).await
            && status.code() != tonic::Code::Unauthenticated
        {
            tracing::warn!(error = %status, "the previous web session could not be ended");
        }
    }
}

/// `POST /web/session/register` → 201 `{user, access_token, …}` and the cookie.
pub(crate) async fn register(
    State(s): State<GatewayState>,
    uri: Uri,
    headers: HeaderMap,
    ClientOrigin(client): ClientOrigin,
    ApiJson(b): ApiJson<RegisterBody>,
) -> ApiResult<Response> {
    let call = Call::checked(&s, &headers, &uri)?;
    let session = s.auth.clone().register(b.into_request(client)).await?.into_inner();
    call.end_previous().await;
    call.started(StatusCode::CREATED, session)
}

/// `POST /web/session/login` → 200 `{user, access_token, …}` and the cookie.
pub(crate) async fn login(
    State(s): State<GatewayState>,
    uri: Uri,
    headers: HeaderMap,
    ClientOrigin(client): ClientOrigin,
    ApiJson(b): ApiJson<LoginBody>,
) -> ApiResult<Response> {
    let call = Call::checked(&s, &headers, &uri)?;
    let session = s.auth.clone().login(b.into_request(client)).await?.into_inner();
    call.end_previous().await;
    call.started(StatusCode::OK, session)
}

/// `POST /web/session/refresh` (no body) → 200 `{access_token, …}`; the
/// cookie rotates. No cookie, or one the auth service refuses: 401, and the
/// cookie is forgotten.
pub(crate) async fn refresh(State(s): State<GatewayState>, uri: Uri, headers: HeaderMap) -> ApiResult<Response> {
    let call = Call::checked(&s, &headers, &uri)?;
    let Some(refresh_token) = cookie_token(&headers) else {
        return Ok(call.forgetting(ApiError(Error::unauthenticated("not signed in"))));
    };
    match s.auth.clone().refresh(RefreshRequest { refresh_token }).await {
        Ok(tokens) => call.with_tokens(StatusCode::OK, None, &tokens.into_inner()),
        Err(status) if status.code() == tonic::Code::Unauthenticated => Ok(call.forgetting(ApiError::from(status))),
        Err(status) => Err(status.into()),
    }
}

/// `POST /web/session/logout` → 204: the session ends at the auth service
/// (its refresh tokens stop working) and the cookie is forgotten. The cookie
/// is forgotten even when the auth service cannot be reached (the answer
/// then says so): this browser is signed out either way.
pub(crate) async fn logout(State(s): State<GatewayState>, uri: Uri, headers: HeaderMap) -> ApiResult<Response> {
    let call = Call::checked(&s, &headers, &uri)?;
    if let Some(refresh_token) = cookie_token(&headers) {
        match s.auth.clone().logout(LogoutRequest { refresh_token }).await {
            Ok(_) => {}
            // Already ended (rotated away, expired): nothing left to end.
            Err(status) if status.code() == tonic::Code::Unauthenticated => {}
            Err(status) => return Ok(call.forgetting(ApiError::from(status))),
        }
    }
    Ok(call.forgetting(StatusCode::NO_CONTENT))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let h = headers(&[("cookie", "a=1; chatterbox_refresh=tok.en; b=2")]);
        assert_eq!(cookie_token(&h).as_deref(), Some("tok.en"));
        let h = headers(&[("cookie", "a=1"), ("cookie", "chatterbox_refresh=x")]);
        assert_eq!(cookie_token(&h).as_deref(), Some("x"));
        assert_eq!(cookie_token(&headers(&[("cookie", "chatterbox_refresh=")])), None);
        assert_eq!(cookie_token(&headers(&[("cookie", "xchatterbox_refresh=1")])), None);
    }

    #[test]
    fn cookies_are_secure_except_on_loopback() {
        for host in ["127.0.0.1:8080", "localhost", "[::1]:80", "app.localhost:3000"] {
            let value = set_cookie(Some(host), "t", 60).unwrap();
            assert!(!value.to_str().unwrap().contains("Secure"), "{host}");
        }
        for host in ["chat.example.com", "10.0.0.1:8080", "127.0.0.1.nip.io"] {
            let value = set_cookie(Some(host), "t", 60).unwrap();
            let value = value.to_str().unwrap();
            assert!(value.ends_with("; Secure"), "{host}: {value}");
            assert!(value.contains("HttpOnly; SameSite=Strict") && value.contains("Path=/web/session"), "{value}");
        }
    }
}
