//! The auth service's view of the user service: the profile half of
//! registration, and fetching the profile returned at login.

use std::fmt::Debug;

use chatterbox_errors::{Code, Error};
use chatterbox_identity::{TokenSigner, with_bearer};
use chatterbox_proto::user::v1::{CreateUserRequest, DeleteUserRequest, GetMeRequest, User};
use chatterbox_runtime::calls::UserCalls;
use chatterbox_types::{Email, PresenceStatus, Timestamp, UserId, Username};

/// A user's profile as the user service keeps it: what registration and
/// login answer with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// The user.
    pub id: UserId,
    /// Their username.
    pub username: String,
    /// Their email (only ever their own profile's).
    pub email: Option<String>,
    /// Their avatar's media id.
    pub avatar: Option<String>,
    /// Their presence.
    pub status: PresenceStatus,
    /// When they were last seen, if ever.
    pub last_seen: Option<Timestamp>,
    /// When the profile was created.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}

impl Profile {
    /// From the user service's answer.
    fn from_wire(u: User) -> Result<Self, Error> {
        Ok(Self {
            id: UserId::parse(&u.id).map_err(|_| Error::invariant("the user service answered a malformed user id"))?,
            status: PresenceStatus::parse(&u.status)
                .map_err(|_| Error::invariant("the user service answered an unknown presence status"))?,
            username: u.username,
            email: u.email,
            avatar: u.avatar,
            last_seen: u.last_seen_ms.map(Timestamp::from_millis),
            created_at: Timestamp::from_millis(u.created_at_ms),
            updated_at: Timestamp::from_millis(u.updated_at_ms),
        })
    }

    /// As the auth service answers it.
    pub fn to_wire(&self) -> User {
        User {
            id: self.id.to_string(),
            username: self.username.clone(),
            email: self.email.clone(),
            avatar: self.avatar.clone(),
            status: self.status.as_str().to_owned(),
            last_seen_ms: self.last_seen.map(Timestamp::millis),
            created_at_ms: self.created_at.millis(),
            updated_at_ms: self.updated_at.millis(),
        }
    }
}

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
    async fn create(&self, id: UserId, username: &Username, email: &Email) -> Result<Profile, CreateProfileError>;
    /// Removes a profile whose registration failed.
    async fn delete(&self, id: UserId) -> Result<(), Error>;
    /// The profile of the user an access token speaks for.
    async fn me(&self, access_token: &str) -> Result<Profile, Error>;
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
    async fn create(&self, id: UserId, username: &Username, email: &Email) -> Result<Profile, CreateProfileError> {
        let request = self
            .as_service(CreateUserRequest {
                id: id.to_string(),
                username: username.to_string(),
                email: email.to_string(),
            })
            .map_err(CreateProfileError::Failed)?;
        match self.client.create_user(request).await {
            Ok(r) => Profile::from_wire(r.into_inner()).map_err(CreateProfileError::Failed),
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

    async fn me(&self, access_token: &str) -> Result<Profile, Error> {
        let request = with_bearer(GetMeRequest {}, access_token)?;
        Profile::from_wire(self.client.get_me(request).await?.into_inner())
    }
}
