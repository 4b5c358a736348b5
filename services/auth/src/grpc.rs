//! The transport layer: `chatterbox.auth.v1.AuthService` over the domain.

use std::sync::Arc;

use chatterbox_proto::auth::v1::auth_service_server::{AuthService, AuthServiceServer};
use chatterbox_proto::auth::v1::{
    LoginRequest, LogoutRequest, LogoutResponse, RefreshRequest, RegisterRequest, Session, Tokens,
};
use chatterbox_runtime::GrpcServer;
use tonic::server::NamedService;
use tonic::{Request, Response, Status};

use crate::domain::{Auth, IssuedTokens};

/// The gRPC face of [`Auth`].
#[derive(Debug, Clone)]
struct AuthGrpc {
    auth: Arc<Auth>,
}

fn tokens(t: IssuedTokens) -> Tokens {
    Tokens { access_token: t.access_token, refresh_token: t.refresh_token, expires_in: t.expires_in as i64 }
}

#[tonic::async_trait]
impl AuthService for AuthGrpc {
    async fn register(&self, request: Request<RegisterRequest>) -> Result<Response<Session>, Status> {
        let r = request.into_inner();
        let (user, issued) = self.auth.register(&r.username, &r.email, &r.password).await?;
        Ok(Response::new(Session { user: Some(user), tokens: Some(tokens(issued)) }))
    }

    async fn login(&self, request: Request<LoginRequest>) -> Result<Response<Session>, Status> {
        let r = request.into_inner();
        let (user, issued) = self.auth.login(&r.email, &r.password).await?;
        Ok(Response::new(Session { user: Some(user), tokens: Some(tokens(issued)) }))
    }

    async fn refresh(&self, request: Request<RefreshRequest>) -> Result<Response<Tokens>, Status> {
        Ok(Response::new(tokens(self.auth.refresh(&request.into_inner().refresh_token).await?)))
    }

    async fn logout(&self, request: Request<LogoutRequest>) -> Result<Response<LogoutResponse>, Status> {
        self.auth.logout(&request.into_inner().refresh_token).await?;
        Ok(Response::new(LogoutResponse {}))
    }
}

/// The auth service, ready for [`chatterbox_runtime::serve_grpc`].
pub fn grpc_server(auth: Arc<Auth>) -> GrpcServer {
    GrpcServer {
        routes: tonic::service::Routes::new(AuthServiceServer::new(AuthGrpc { auth })),
        names: vec![<AuthServiceServer<AuthGrpc> as NamedService>::NAME],
    }
}
