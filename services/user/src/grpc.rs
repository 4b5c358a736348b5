//! The transport layer: `chatterbox.user.v1.UserService` over the domain.
//! Every call's token is verified here; the domain gets a typed caller.

use std::sync::Arc;

use chatterbox_errors::Error;
use chatterbox_identity::{Caller, TokenVerifier, authenticate_user, authorize_request};
use chatterbox_proto::user::v1::user_service_server::{UserService, UserServiceServer};
use chatterbox_proto::user::v1::{
    CreateUserRequest, DeleteUserRequest, DeleteUserResponse, GetMeRequest, GetUserRequest, GetUsersByUsernameRequest,
    GetUsersByUsernameResponse, SearchUsersRequest, SearchUsersResponse, SetPresenceRequest, UpdateMeRequest, User,
};
use chatterbox_runtime::GrpcServer;
use chatterbox_types::{Email, MediaId, PresenceStatus, Timestamp, UserId, Username};
use tonic::server::NamedService;
use tonic::{Request, Response, Status};

use crate::domain::{Users, no_such_user};
use crate::store::Profile;

#[derive(Debug, Clone)]
struct UserGrpc {
    users: Arc<Users>,
    verifier: TokenVerifier,
}

impl UserGrpc {
    fn caller<T>(&self, request: &Request<T>) -> Result<Caller, Status> {
        Ok(authorize_request(request, &self.verifier)?)
    }
}

/// A profile on the wire; the email only for its owner (or a service).
fn to_proto(p: Profile, with_email: bool) -> User {
    User {
        id: p.id.to_string(),
        username: p.username,
        email: with_email.then_some(p.email),
        avatar: p.avatar,
        status: p.status.as_str().to_owned(),
        last_seen_ms: p.last_seen.map(Timestamp::millis),
        created_at_ms: p.created_at.millis(),
        updated_at_ms: p.updated_at.millis(),
    }
}

#[tonic::async_trait]
impl UserService for UserGrpc {
    async fn create_user(&self, request: Request<CreateUserRequest>) -> Result<Response<User>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        let id = UserId::parse(&r.id).map_err(Error::from)?;
        let (username, email) =
            (Username::parse(&r.username).map_err(Error::from)?, Email::parse(&r.email).map_err(Error::from)?);
        let profile = self.users.create(&caller, id, username, email).await?;
        Ok(Response::new(to_proto(profile, true)))
    }

    async fn delete_user(&self, request: Request<DeleteUserRequest>) -> Result<Response<DeleteUserResponse>, Status> {
        let caller = self.caller(&request)?;
        let id = UserId::parse(&request.into_inner().id).map_err(Error::from)?;
        self.users.delete(&caller, id).await?;
        Ok(Response::new(DeleteUserResponse {}))
    }

    async fn get_me(&self, request: Request<GetMeRequest>) -> Result<Response<User>, Status> {
        let me = self.caller(&request)?.user()?;
        Ok(Response::new(to_proto(self.users.get(me).await?, true)))
    }

    async fn get_user(&self, request: Request<GetUserRequest>) -> Result<Response<User>, Status> {
        let caller = self.caller(&request)?;
        // A malformed id names nobody: 404, as for any absent user.
        let id = UserId::parse(&request.into_inner().id).map_err(|_| no_such_user())?;
        let profile = self.users.get(id).await?;
        let own = caller == Caller::User(profile.id);
        Ok(Response::new(to_proto(profile, own)))
    }

    async fn search_users(
        &self,
        request: Request<SearchUsersRequest>,
    ) -> Result<Response<SearchUsersResponse>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        let page = self.users.search(&r.prefix, r.limit, &r.cursor).await?;
        let items = page
            .items
            .into_iter()
            .map(|p| {
                let own = caller == Caller::User(p.id);
                to_proto(p, own)
            })
            .collect();
        Ok(Response::new(SearchUsersResponse { items, next_cursor: page.next_cursor.unwrap_or_default() }))
    }

    async fn get_users_by_username(
        &self,
        request: Request<GetUsersByUsernameRequest>,
    ) -> Result<Response<GetUsersByUsernameResponse>, Status> {
        let caller = self.caller(&request)?;
        let found = self.users.by_usernames(&request.into_inner().usernames).await?;
        let items = found
            .into_iter()
            .map(|p| {
                let own = caller == Caller::User(p.id);
                to_proto(p, own)
            })
            .collect();
        Ok(Response::new(GetUsersByUsernameResponse { items }))
    }

    async fn update_me(&self, request: Request<UpdateMeRequest>) -> Result<Response<User>, Status> {
        let actor = authenticate_user(&request, &self.verifier)?;
        let r = request.into_inner();
        let username = r.username.as_deref().map(Username::parse).transpose().map_err(Error::from)?;
        let avatar = match r.avatar.as_deref() {
            None => None,
            // Empty: no avatar any more.
            Some("") => Some(None),
            Some(id) => Some(Some(MediaId::parse(id).map_err(|_| Error::invalid("avatar must be a media id"))?)),
        };
        let profile = self.users.update(&actor, username, avatar).await?;
        Ok(Response::new(to_proto(profile, true)))
    }

    async fn set_presence(&self, request: Request<SetPresenceRequest>) -> Result<Response<User>, Status> {
        let me = self.caller(&request)?.user()?;
        let r = request.into_inner();
        let status = PresenceStatus::parse(&r.status).map_err(Error::from)?;
        let profile = self.users.set_presence(me, status, r.last_seen_ms.map(Timestamp::from_millis)).await?;
        Ok(Response::new(to_proto(profile, true)))
    }
}

/// The user service, ready for [`chatterbox_runtime::serve_grpc`].
pub fn grpc_server(users: Arc<Users>, verifier: TokenVerifier) -> GrpcServer {
    let handlers = Arc::new(UserGrpc { users, verifier });
    GrpcServer::new(
        tonic::service::Routes::new(UserServiceServer::from_arc(handlers.clone())),
        vec![<UserServiceServer<UserGrpc> as NamedService>::NAME],
    )
    .with_handlers::<Arc<dyn UserService>>(handlers)
}
