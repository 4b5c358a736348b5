//! The transport layer: `chatterbox.presence.v1.PresenceService` over the
//! domain. Every call's token is verified here.

use std::sync::Arc;

use std::future::Future;
use std::time::Duration;

use chatterbox_errors::Error;
use chatterbox_identity::{
    Actor, TokenVerifier, authenticate_user, authenticate_user_expired_within, authorize_request,
};
use chatterbox_proto::presence::v1::presence_service_server::{PresenceService, PresenceServiceServer};
use chatterbox_proto::presence::v1::{
    ConnectionAliveRequest, ConnectionClosedRequest, ConnectionOpenedRequest, GetPresenceRequest, GetPresenceResponse,
    PresenceState, SetStatusRequest,
};
use chatterbox_runtime::GrpcServer;
use chatterbox_types::{ConnectionId, ConversationId, PresenceStatus, UserId};
use tonic::server::NamedService;
use tonic::{Request, Response, Status};

use crate::domain::{Presence, PresenceView};

#[derive(Debug, Clone)]
struct PresenceGrpc {
    presence: Arc<Presence>,
    verifier: TokenVerifier,
}

impl PresenceGrpc {
    fn actor<T>(&self, request: &Request<T>) -> Result<Actor, Status> {
        Ok(authenticate_user(request, &self.verifier)?)
    }
}

fn to_proto(view: PresenceView) -> PresenceState {
    PresenceState {
        user_id: view.user.to_string(),
        status: view.status.as_str().to_owned(),
        last_seen_ms: view.last_seen_ms,
    }
}

type Answer = Result<Response<PresenceState>, Status>;

/// A gateway's connection id.
fn connection_id(id: &str) -> Result<ConnectionId, Error> {
    ConnectionId::parse(id).map_err(|_| Error::invalid("connection_id must be a connection id"))
}

/// The conversations that hear a connection's changes.
fn audience(ids: &[String]) -> Result<Vec<ConversationId>, Error> {
    ids.iter()
        .map(|id| ConversationId::parse(id).map_err(|_| Error::invalid("audience must list conversation ids")))
        .collect()
}

/// The users a presence query names.
fn user_ids(ids: &[String]) -> Result<Vec<UserId>, Error> {
    ids.iter().map(|id| UserId::parse(id).map_err(|_| Error::invalid("user_ids must list user ids"))).collect()
}

/// How long after its token expired a session may still report its close
/// (sessions end when their token does).
const CLOSE_GRACE: Duration = Duration::from_secs(600);

/// Runs a change to completion even if the caller gives up waiting: a
/// status decided and marked announced must also be published and recorded.
async fn to_completion(work: impl Future<Output = Result<PresenceView, Error>> + Send + 'static) -> Answer {
    match tokio::spawn(work).await {
        Ok(outcome) => Ok(Response::new(to_proto(outcome?))),
        Err(e) => Err(Error::internal(e).into()),
    }
}

#[tonic::async_trait]
impl PresenceService for PresenceGrpc {
    async fn connection_opened(&self, request: Request<ConnectionOpenedRequest>) -> Answer {
        let actor = self.actor(&request)?;
        let (presence, r) = (self.presence.clone(), request.into_inner());
        let (connection, audience) = (connection_id(&r.connection_id)?, audience(&r.audience)?);
        to_completion(async move { presence.connect(&actor, connection, &audience).await }).await
    }

    async fn connection_alive(&self, request: Request<ConnectionAliveRequest>) -> Answer {
        let actor = self.actor(&request)?;
        let (presence, r) = (self.presence.clone(), request.into_inner());
        let connection = connection_id(&r.connection_id)?;
        to_completion(async move { presence.heartbeat(&actor, connection, r.active).await }).await
    }

    async fn connection_closed(&self, request: Request<ConnectionClosedRequest>) -> Answer {
        let actor = authenticate_user_expired_within(&request, &self.verifier, CLOSE_GRACE)?;
        let (presence, r) = (self.presence.clone(), request.into_inner());
        let connection = connection_id(&r.connection_id)?;
        to_completion(async move { presence.disconnect(&actor, connection).await }).await
    }

    async fn set_status(&self, request: Request<SetStatusRequest>) -> Answer {
        let actor = self.actor(&request)?;
        let (presence, r) = (self.presence.clone(), request.into_inner());
        let status = PresenceStatus::parse(&r.status).map_err(Error::from)?;
        to_completion(async move { presence.set_status(&actor, status).await }).await
    }

    async fn get_presence(
        &self,
        request: Request<GetPresenceRequest>,
    ) -> Result<Response<GetPresenceResponse>, Status> {
        // Any signed-in user or service: status is public, like the profile's.
        authorize_request(&request, &self.verifier)?;
        let users = user_ids(&request.into_inner().user_ids)?;
        let items = self.presence.get(&users).await?;
        Ok(Response::new(GetPresenceResponse { items: items.into_iter().map(to_proto).collect() }))
    }
}

/// The presence service, ready for [`chatterbox_runtime::serve_grpc`].
pub fn grpc_server(presence: Arc<Presence>, verifier: TokenVerifier) -> GrpcServer {
    let handlers = Arc::new(PresenceGrpc { presence, verifier });
    GrpcServer::new(
        tonic::service::Routes::new(PresenceServiceServer::from_arc(handlers.clone())),
        vec![<PresenceServiceServer<PresenceGrpc> as NamedService>::NAME],
    )
    .with_handlers::<Arc<dyn PresenceService>>(handlers)
}

#[cfg(test)]
mod tests {
    use chatterbox_errors::Code;

    use super::*;

    #[test]
    fn ids_from_the_wire_are_checked() {
        assert_eq!(connection_id("../../etc").unwrap_err().code(), Code::InvalidArgument);
        let fresh = ConnectionId::generate();
        assert_eq!(connection_id(&fresh.to_string()).unwrap(), fresh);
        assert_eq!(audience(&["nope".into()]).unwrap_err().code(), Code::InvalidArgument);
        let c = ConversationId::generate();
        assert_eq!(audience(&[c.to_string()]).unwrap(), [c]);
        assert_eq!(user_ids(&["{\"$ne\":1}".into()]).unwrap_err().code(), Code::InvalidArgument);
    }
}
