//! The transport layer: `chatterbox.auth.v1.AuthService` over the domain.

use std::sync::Arc;

use chatterbox_errors::Error;
use chatterbox_identity::{TokenVerifier, authenticate_login};
use chatterbox_proto::auth::v1::auth_service_server::{AuthService, AuthServiceServer};
use chatterbox_proto::auth::v1::{
    EndSessionRequest, EndSessionResponse, ListSessionsRequest, ListSessionsResponse, LoginRequest, LoginSession,
    LogoutRequest, LogoutResponse, RefreshRequest, RegisterRequest, Session, Tokens,
};
use chatterbox_runtime::GrpcServer;
use chatterbox_types::{Email, Password, SessionId, Username};
use tonic::server::NamedService;
use tonic::{Request, Response, Status};

use crate::domain::{Auth, Client, IssuedTokens, ListedSession, no_such_session};

/// The gRPC face of [`Auth`].
#[derive(Debug, Clone)]
struct AuthGrpc {
    auth: Arc<Auth>,
    verifier: TokenVerifier,
}

fn client(c: Option<chatterbox_proto::auth::v1::Client>) -> Client {
    c.map(|c| Client { user_agent: c.user_agent, ip: c.ip }).unwrap_or_default()
}

fn listed(l: ListedSession) -> LoginSession {
    LoginSession {
        id: l.session.id.to_string(),
        created_at_ms: l.session.created_at.millis(),
        last_used_at_ms: l.session.last_used_at.millis(),
        user_agent: l.session.user_agent,
        ip: l.session.ip,
        current: l.current,
    }
}

fn tokens(t: IssuedTokens) -> Tokens {
    Tokens { access_token: t.access_token, refresh_token: t.refresh_token, expires_in: t.expires_in as i64 }
}

#[tonic::async_trait]
impl AuthService for AuthGrpc {
    async fn register(&self, request: Request<RegisterRequest>) -> Result<Response<Session>, Status> {
        let r = request.into_inner();
        let username = Username::parse(&r.username).map_err(Error::from)?;
        let email = Email::parse(&r.email).map_err(Error::from)?;
        let password = Password::parse(&r.password).map_err(Error::from)?;
        let (user, issued) = self.auth.register(username, email, password, &client(r.client)).await?;
        Ok(Response::new(Session { user: Some(user.to_wire()), tokens: Some(tokens(issued)) }))
    }

    async fn login(&self, request: Request<LoginRequest>) -> Result<Response<Session>, Status> {
        let r = request.into_inner();
        let (user, issued) = self.auth.login(&r.email, &r.password, &client(r.client)).await?;
        Ok(Response::new(Session { user: Some(user.to_wire()), tokens: Some(tokens(issued)) }))
    }

    async fn refresh(&self, request: Request<RefreshRequest>) -> Result<Response<Tokens>, Status> {
        Ok(Response::new(tokens(self.auth.refresh(&request.into_inner().refresh_token).await?)))
    }

    async fn logout(&self, request: Request<LogoutRequest>) -> Result<Response<LogoutResponse>, Status> {
        self.auth.logout(&request.into_inner().refresh_token).await?;
        Ok(Response::new(LogoutResponse {}))
    }

    async fn list_sessions(
        &self,
        request: Request<ListSessionsRequest>,
    ) -> Result<Response<ListSessionsResponse>, Status> {
        let (user, current) = authenticate_login(&request, &self.verifier)?;
        let sessions = self.auth.sessions(user, current).await?;
        Ok(Response::new(ListSessionsResponse { sessions: sessions.into_iter().map(listed).collect() }))
    }

    async fn end_session(&self, request: Request<EndSessionRequest>) -> Result<Response<EndSessionResponse>, Status> {
        let (user, _) = authenticate_login(&request, &self.verifier)?;
        let session = SessionId::parse(&request.into_inner().id).map_err(|_| no_such_session())?;
        self.auth.end_session(user, session).await?;
        Ok(Response::new(EndSessionResponse {}))
    }
}

/// The auth service, ready for [`chatterbox_runtime::serve_grpc`].
pub fn grpc_server(auth: Arc<Auth>, verifier: TokenVerifier) -> GrpcServer {
    let handlers = Arc::new(AuthGrpc { auth, verifier });
    GrpcServer::new(
        tonic::service::Routes::new(AuthServiceServer::from_arc(handlers.clone())),
        vec![<AuthServiceServer<AuthGrpc> as NamedService>::NAME],
    )
    .with_handlers::<Arc<dyn AuthService>>(handlers)
}
