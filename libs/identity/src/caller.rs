//! The caller of a request and how its token crosses gRPC hops.

use chatterbox_errors::Error;
use chatterbox_types::{SessionId, UserId};

use crate::TokenVerifier;

/// Who a verified token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// An end user.
    User(UserId),
    /// One of our own services, by name.
    Service(String),
}

impl Caller {
    /// The user, or 401 for anything else (services act for no user).
    pub fn user(&self) -> Result<UserId, Error> {
        match self {
            Caller::User(id) => Ok(*id),
            Caller::Service(_) => Err(Error::unauthenticated("a user token is required")),
        }
    }

    /// Succeeds only for the named service; end users get 403.
    pub fn require_service(&self, name: &str) -> Result<(), Error> {
        match self {
            Caller::Service(s) if s == name => Ok(()),
            _ => Err(Error::permission_denied("not allowed")),
        }
    }
}

/// The token in an `Authorization: Bearer <token>` value, if well formed.
pub fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()).then(|| token.trim())
}

/// The bearer token in a gRPC request's `authorization` metadata.
fn request_token<T>(request: &tonic::Request<T>) -> Result<&str, Error> {
    let value = request
        .metadata()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| Error::unauthenticated("missing access token"))?;
    bearer_token(value).ok_or_else(|| Error::unauthenticated("malformed authorization"))
}

/// Verifies the token a gRPC request carries in its `authorization` metadata.
pub fn authorize_request<T>(request: &tonic::Request<T>, verifier: &TokenVerifier) -> Result<Caller, Error> {
    verifier.verify(request_token(request)?)
}

/// An end user making a call, with their token to ask other services as them.
#[derive(Debug, Clone)]
pub struct Actor {
    /// Who is calling.
    pub id: UserId,
    /// Their verified access token, relayed on further calls.
    pub token: String,
}

/// The end user a gRPC request speaks for; services acting alone are refused.
pub fn authenticate_user<T>(request: &tonic::Request<T>, verifier: &TokenVerifier) -> Result<Actor, Error> {
    let token = request_token(request)?;
    let id = verifier.verify(token)?.user()?;
    Ok(Actor { id, token: token.to_owned() })
}

/// The end user of a gRPC request and the login session of their token.
pub fn authenticate_login<T>(
    request: &tonic::Request<T>,
    verifier: &TokenVerifier,
) -> Result<(UserId, SessionId), Error> {
    verifier.verify_session(request_token(request)?)?.user_session()
}

/// The end user of a request that only ends something their token opened
/// (closing a connection): the token may have expired up to `grace` ago.
pub fn authenticate_user_expired_within<T>(
    request: &tonic::Request<T>,
    verifier: &TokenVerifier,
    grace: std::time::Duration,
) -> Result<Actor, Error> {
    let token = request_token(request)?;
    let id = verifier.verify_expired_within(token, grace)?.user()?;
    Ok(Actor { id, token: token.to_owned() })
}

/// Wraps a message in a request that carries the caller's token onward.
pub fn with_bearer<T>(message: T, token: &str) -> Result<tonic::Request<T>, Error> {
    let mut request = tonic::Request::new(message);
    let value = format!("Bearer {token}").parse().map_err(|_| Error::unauthenticated("malformed access token"))?;
    request.metadata_mut().insert("authorization", value);
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_parsing_is_strict_about_the_scheme() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer abc"), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("abc"), None);
    }
}
