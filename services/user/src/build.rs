//! The user service from where it keeps its records and the parts it calls.

use std::sync::Arc;

use chatterbox_identity::TokenVerifier;
use chatterbox_runtime::GrpcServer;
use chatterbox_runtime::calls::MediaCalls;
use chatterbox_store::StoreAt;

use crate::{GrpcAvatars, MongoUserStore, SqliteUserStore, UserStore, Users};

/// What the user service needs of the rest of the system.
#[derive(Debug)]
pub struct UserDeps {
    /// Checks callers' tokens.
    pub verifier: TokenVerifier,
    /// The media service, which owns avatar pictures.
    pub media: MediaCalls,
}

/// Opens the store at `store` and builds the service's gRPC server.
pub async fn build(store: &StoreAt, deps: UserDeps) -> anyhow::Result<GrpcServer> {
    let store: Arc<dyn UserStore> = match store {
        StoreAt::Sqlite(path) => Arc::new(SqliteUserStore::open(path)?),
        StoreAt::MongoDb { uri, database } => Arc::new(MongoUserStore::connect(uri, database).await?),
    };
    let users = Users::new(store, Arc::new(GrpcAvatars::new(deps.media)));
    Ok(crate::grpc_server(Arc::new(users), deps.verifier))
}
