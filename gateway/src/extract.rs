//! Extractors whose rejections are the contract's errors: malformed JSON or
//! query strings are 400 `invalid_argument`, oversized bodies 413, and a
//! missing or bad access token 401, always with the JSON body.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use chatterbox_errors::{Code, Error};
use chatterbox_identity::bearer_token;
use http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::state::GatewayState;

/// The gateway as the client named it: `Host` in HTTP/1.1, the URI's
/// authority in HTTP/2.
pub(crate) fn request_host<'a>(headers: &'a http::HeaderMap, uri: &'a http::Uri) -> Option<&'a str> {
    headers.get(http::header::HOST).and_then(|h| h.to_str().ok()).or_else(|| uri.authority().map(|a| a.as_str()))
}

/// A JSON body.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError(json_error(&rejection))),
        }
    }
}

/// A `multipart/form-data` body; a request that is not one gets the
/// contract's JSON error, not the framework's plain-text one.
pub struct ApiMultipart(pub axum::extract::Multipart);

impl<S: Send + Sync> FromRequest<S> for ApiMultipart {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Multipart::from_request(req, state).await.map(Self).map_err(|rejection| {
            ApiError(Error::new(
                Code::UnsupportedMediaType,
                format!("expected a multipart/form-data body with a boundary ({})", rejection.body_text()),
            ))
        })
    }
}

fn json_error(rejection: &JsonRejection) -> Error {
    match rejection {
        JsonRejection::JsonDataError(e) => Error::invalid(format!("invalid request body: {}", e.body_text())),
        JsonRejection::JsonSyntaxError(_) => Error::invalid("request body is not valid JSON"),
        JsonRejection::MissingJsonContentType(_) => Error::invalid("expected Content-Type: application/json"),
        other if other.status() == http::StatusCode::PAYLOAD_TOO_LARGE => {
            Error::new(Code::PayloadTooLarge, "request body is too large")
        }
        _ => Error::invalid("could not read the request body"),
    }
}

/// A query string.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => {
                Err(ApiError(Error::invalid(format!("invalid query: {}", e.body_text()))))
            }
            Err(_) => Err(ApiError(Error::invalid("invalid query"))),
        }
    }
}

/// The authenticated caller: a user whose access token verified here. The
/// token is relayed to the services, which verify it again and decide.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    /// Who they are, as their token says.
    id: chatterbox_types::UserId,
    /// Their access token, relayed over gRPC.
    token: String,
}

impl CurrentUser {
    /// Wraps a gRPC message so that it carries this user's token.
    pub fn request<T>(&self, message: T) -> Result<tonic::Request<T>, ApiError> {
        Ok(chatterbox_identity::with_bearer(message, &self.token)?)
    }

    /// The verified caller, for a service called in this process.
    pub fn actor(&self) -> chatterbox_identity::Actor {
        chatterbox_identity::Actor { id: self.id, token: self.token.clone() }
    }
}

impl FromRequestParts<GatewayState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &GatewayState) -> Result<Self, Self::Rejection> {
        let value = parts
            .headers
            .get(http::header::AUTHORIZATION)
            .ok_or_else(|| Error::unauthenticated("missing access token"))?
            .to_str()
            .map_err(|_| Error::unauthenticated("malformed authorization header"))?;
        let token = bearer_token(value).ok_or_else(|| Error::unauthenticated("malformed authorization header"))?;
        let id = state.verifier.verify(token)?.user()?;
        tracing::Span::current().record("user_id", tracing::field::display(id));
        Ok(Self { id, token: token.to_owned() })
    }
}

/// Where a login comes from: the client's address (as the rate limit sees
/// it) and its `User-Agent`, kept with the session it starts.
#[derive(Debug, Clone)]
pub struct ClientOrigin(pub chatterbox_proto::auth::v1::Client);

impl FromRequestParts<GatewayState> for ClientOrigin {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &GatewayState) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| state.trusted_proxies.client_ip(c.0, &parts.headers).to_string())
            .unwrap_or_default();
        let user_agent =
            parts.headers.get(http::header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        Ok(Self(chatterbox_proto::auth::v1::Client { user_agent, ip }))
    }
}
