//! The claims of an access token.

use serde::{Deserialize, Serialize};

/// Whether a token speaks for an end user or for one of our services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Kind {
    /// `sub` is a user id.
    User,
    /// `sub` is a service name; only used for service-to-service calls.
    Service,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Claims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub exp: u64,
    pub iat: u64,
    pub jti: String,
    pub kind: Kind,
    /// The login session a user token was issued for; none on service tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}
