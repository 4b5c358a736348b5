//! The auth service's view of the user service: the profile half of
//! registration, and fetching the profile returned at login.

use std::fmt::Debug;

use chatterbox_errors::{Code, Error};
use chatterbox_identity::{TokenSigner, with_bearer};
use chatterbox_proto::user::v1::{CreateUserRequest, DeleteUserRequest, GetMeRequest, User};
use chatterbox_runtime::calls::UserCalls;
use chatterbox_types::{Email, UserId, Username};

/// Why creating a profile failed.
#[derive(Debug)]
pub enum CreateProfileError {
    /// The username is taken.
    UsernameTaken,
    /// Anything else; the profile may or may not exist.
    Failed(Error),
}

/// Where profiles live. The gRPC implementation is the real one; the trait
/// keeps the domain free of transport types.
#[async_trait::async_trait]
pub trait Profiles: Send + Sync + Debug {
    /// Creates the profile of a registering user.
    async fn create(&self, id: UserId, username: &Username, email: &Email) -> Result<User, CreateProfileError>;
    /// Removes a profile whose registration failed.
    async fn delete(&self, id: UserId) -> Result<(), Error>;
    /// The profile of the user an access token speaks for.
    async fn me(&self, access_token: &str) -> Result<User, Error>;
}

/// Profiles through the user service's gRPC API, as the `auth` service.
#[derive(Debug, Clone)]
pub struct GrpcProfiles {
    client: UserCalls,
    signer: TokenSigner,
}

/// The service name auth signs its own calls with.
pub const AUTH_SERVICE_NAME: &str = "auth";

impl GrpcProfiles {
    /// Calls the user service over `channel`, authenticating as `auth`.
    pub fn new(calls: UserCalls, signer: TokenSigner) -> Self {
        Self { client: calls, signer }
    }

    fn as_service<T>(&self, message: T) -> Result<tonic::Request<T>, Error> {
        with_bearer(message, &self.signer.issue_service(AUTH_SERVICE_NAME)?)
    }
}

#[async_trait::async_trait]
impl Profiles for GrpcProfiles {
    async fn create(&self, id: UserId, username: &Username, email: &Email) -> Result<User, CreateProfileError> {
        let request = self
            .as_service(CreateUserRequest {
                id: id.to_string(),
                username: username.to_string(),
                email: email.to_string(),
            })
            .map_err(CreateProfileError::Failed)?;
        match self.client.create_user(request).await {
            Ok(r) => Ok(r.into_inner()),
            Err(status) => {
                let e = Error::from(status);
                Err(if e.code() == Code::AlreadyExists {
                    CreateProfileError::UsernameTaken
                } else {
                    CreateProfileError::Failed(e)
                })
            }
        }
    }

    async fn delete(&self, id: UserId) -> Result<(), Error> {
        let request = self.as_service(DeleteUserRequest { id: id.to_string() })?;
        self.client.delete_user(request).await?;
        Ok(())
    }

    async fn me(&self, access_token: &str) -> Result<User, Error> {
        let request = with_bearer(GetMeRequest {}, access_token)?;
        Ok(self.client.get_me(request).await?.into_inner())
    }
}
