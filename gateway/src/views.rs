//! The JSON shapes of `api.md`, built from the services' messages.

use chatterbox_proto::auth::v1::Tokens;
use chatterbox_proto::user::v1::User;
use chatterbox_types::Timestamp;
use serde::Serialize;

/// `user`: `email` only for its owner.
#[derive(Debug, Serialize)]
pub struct UserView {
    id: String,
    username: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    avatar: Option<String>,
    status: String,
    last_seen: Option<String>,
    created_at: String,
    updated_at: String,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        let time = |ms: i64| Timestamp::from_millis(ms).to_rfc3339();
        Self {
            id: u.id,
            username: u.username,
            email: u.email,
            avatar: u.avatar,
            status: u.status,
            last_seen: u.last_seen_ms.map(time),
            created_at: time(u.created_at_ms),
            updated_at: time(u.updated_at_ms),
        }
    }
}

/// `tokens`.
#[derive(Debug, Serialize)]
pub struct TokensView {
    access_token: String,
    refresh_token: String,
    token_type: &'static str,
    expires_in: i64,
}

impl From<Tokens> for TokensView {
    fn from(t: Tokens) -> Self {
        Self {
            access_token: t.access_token,
            refresh_token: t.refresh_token,
            token_type: "Bearer",
            expires_in: t.expires_in,
        }
    }
}

/// `{items, next_cursor}`.
#[derive(Debug, Serialize)]
pub struct ListView<T> {
    /// The page.
    pub items: Vec<T>,
    /// Where the next page starts; null at the end.
    pub next_cursor: Option<String>,
}
