//! Whether users exist, asked of the user service with the caller's token.

use chatterbox_errors::{Code, Error};
use chatterbox_identity::with_bearer;
use chatterbox_proto::user::v1::{GetUserRequest, GetUsersByUsernameRequest};
use chatterbox_runtime::calls::UserCalls;
use chatterbox_types::UserId;

/// Where users are known.
#[async_trait::async_trait]
pub trait UserDirectory: Send + Sync + std::fmt::Debug {
    /// Whether `user` exists, asked on behalf of the holder of `token`.
    async fn exists(&self, token: &str, user: UserId) -> Result<bool, Error>;

    /// Those of `usernames` that name users, each with the username as its
    /// owner spells it and their id (asked on behalf of the holder of `token`).
    async fn by_usernames(&self, token: &str, usernames: &[String]) -> Result<Vec<(String, UserId)>, Error>;
}

/// The user service over gRPC.
#[derive(Debug, Clone)]
pub struct GrpcUserDirectory {
    client: UserCalls,
}

impl GrpcUserDirectory {
    /// Asks the user service behind `channel`.
    pub fn new(calls: UserCalls) -> Self {
        Self { client: calls }
    }
}

#[async_trait::async_trait]
impl UserDirectory for GrpcUserDirectory {
    async fn exists(&self, token: &str, user: UserId) -> Result<bool, Error> {
        let request = with_bearer(GetUserRequest { id: user.to_string() }, token)?;
        match self.client.get_user(request).await {
            Ok(_) => Ok(true),
            Err(status) => {
                let e = Error::from(status);
                if e.code() == Code::NotFound { Ok(false) } else { Err(e) }
            }
        }
    }

    async fn by_usernames(&self, token: &str, usernames: &[String]) -> Result<Vec<(String, UserId)>, Error> {
        let request = with_bearer(GetUsersByUsernameRequest { usernames: usernames.to_vec() }, token)?;
        let found = self.client.get_users_by_username(request).await?.into_inner();
        found
            .items
            .into_iter()
            .map(|u| {
                let id =
                    UserId::parse(&u.id).map_err(|_| Error::invariant("the user service answered a malformed id"))?;
                Ok((u.username, id))
            })
            .collect()
    }
}
