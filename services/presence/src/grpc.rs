//! The transport layer: `chatterbox.presence.v1.PresenceService` over the
//! domain. Every call's token is verified here.

use std::sync::Arc;

use chatterbox_identity::{Actor, TokenVerifier, authenticate_user, authorize_request};
use chatterbox_proto::presence::v1::presence_service_server::{PresenceService, PresenceServiceServer};
use chatterbox_proto::presence::v1::{
    ConnectionAliveRequest, ConnectionClosedRequest, ConnectionOpenedRequest, GetPresenceRequest, GetPresenceResponse,
    PresenceState, SetStatusRequest,
};
use chatterbox_runtime::GrpcServer;
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

#[tonic::async_trait]
impl PresenceService for PresenceGrpc {
    async fn connection_opened(&self, request: Request<ConnectionOpenedRequest>) -> Answer {
        let actor = self.actor(&request)?;
        let r = request.into_inner();
        Ok(Response::new(to_proto(self.presence.connect(&actor, &r.connection_id, &r.audience).await?)))
    }

    async fn connection_alive(&self, request: Request<ConnectionAliveRequest>) -> Answer {
        let actor = self.actor(&request)?;
        let r = request.into_inner();
        Ok(Response::new(to_proto(self.presence.heartbeat(&actor, &r.connection_id, r.active).await?)))
    }

    async fn connection_closed(&self, request: Request<ConnectionClosedRequest>) -> Answer {
        let actor = self.actor(&request)?;
        let r = request.into_inner();
        Ok(Response::new(to_proto(self.presence.disconnect(&actor, &r.connection_id).await?)))
    }

    async fn set_status(&self, request: Request<SetStatusRequest>) -> Answer {
        let actor = self.actor(&request)?;
        let r = request.into_inner();
        Ok(Response::new(to_proto(self.presence.set_status(&actor, &r.status).await?)))
    }

    async fn get_presence(
        &self,
        request: Request<GetPresenceRequest>,
    ) -> Result<Response<GetPresenceResponse>, Status> {
        // Any signed-in user or service: status is public, like the profile's.
        authorize_request(&request, &self.verifier)?;
        let items = self.presence.get(&request.into_inner().user_ids).await?;
        Ok(Response::new(GetPresenceResponse { items: items.into_iter().map(to_proto).collect() }))
    }
}

/// The presence service, ready for [`chatterbox_runtime::serve_grpc`].
pub fn grpc_server(presence: Arc<Presence>, verifier: TokenVerifier) -> GrpcServer {
    GrpcServer {
        routes: tonic::service::Routes::new(PresenceServiceServer::new(PresenceGrpc { presence, verifier })),
        names: vec![<PresenceServiceServer<PresenceGrpc> as NamedService>::NAME],
    }
}
