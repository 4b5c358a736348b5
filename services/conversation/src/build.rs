//! The conversation service from where it keeps its records and the parts it calls.

use std::sync::Arc;

use chatterbox_events::EventBus;
use chatterbox_identity::TokenVerifier;
use chatterbox_runtime::GrpcServer;
use chatterbox_runtime::calls::UserCalls;
use chatterbox_store::StoreAt;

use crate::{ConversationStore, Conversations, GrpcUserDirectory, MongoConversationStore, SqliteConversationStore};

/// What the conversation service needs of the rest of the system.
#[derive(Debug)]
pub struct ConversationDeps {
    /// Checks callers' tokens.
    pub verifier: TokenVerifier,
    /// The user service, which says who exists.
    pub user: UserCalls,
    /// Where membership changes are published.
    pub events: Arc<dyn EventBus>,
}

/// Opens the store at `store` and builds the service's gRPC server, and
/// the domain (which the one-process mode calls directly).
pub async fn build(store: &StoreAt, deps: ConversationDeps) -> anyhow::Result<(GrpcServer, Arc<Conversations>)> {
    let store: Arc<dyn ConversationStore> = match store {
        StoreAt::Sqlite(path) => Arc::new(SqliteConversationStore::open(path)?),
        StoreAt::MongoDb { uri, database } => Arc::new(MongoConversationStore::connect(uri, database).await?),
    };
    let users = Arc::new(GrpcUserDirectory::new(deps.user));
    let conversations = Arc::new(Conversations::new(store, users, deps.events));
    Ok((crate::grpc_server(conversations.clone(), deps.verifier), conversations))
}
