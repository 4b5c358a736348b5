//! The message service from where it keeps its records and the parts it calls.

use std::sync::Arc;

use chatterbox_events::EventBus;
use chatterbox_identity::TokenVerifier;
use chatterbox_runtime::GrpcServer;
use chatterbox_runtime::calls::MediaCalls;
use chatterbox_store::{StoreAt, StoreError};

use crate::{
    CachedAccess, ConversationAccess, GrpcMediaLibrary, MembershipCache, MessageCalls, MessageStore, Messages,
    MongoMessageStore, SqliteMessageStore,
};

/// What the message service needs of the rest of the system.
#[derive(Debug)]
pub struct MessageDeps {
    /// Checks callers' tokens.
    pub verifier: TokenVerifier,
    /// Who takes part in a conversation: over gRPC, or the conversation
    /// domain itself in the one-process mode.
    pub conversation: Arc<dyn ConversationAccess>,
    /// The media service, which says what may be attached.
    pub media: MediaCalls,
    /// Where messages are published, and membership changes heard.
    pub events: Arc<dyn EventBus>,
}

/// Opens the service's store (also used to import history).
pub async fn open_store(store: &StoreAt) -> Result<Arc<dyn MessageStore>, StoreError> {
    Ok(match store {
        StoreAt::Sqlite(path) => Arc::new(SqliteMessageStore::open(path)?),
        StoreAt::MongoDb { uri, database } => Arc::new(MongoMessageStore::connect(uri, database).await?),
    })
}

/// Opens the store at `store` and builds the service's gRPC server, and
/// its sends and history reads for callers in this process.
pub async fn build(store: &StoreAt, deps: MessageDeps) -> anyhow::Result<(GrpcServer, MessageCalls)> {
    let store = open_store(store).await?;
    // Membership answers kept until the bus says they changed.
    let cache = MembershipCache::listening(deps.events.as_ref(), crate::membership_cache::TTL).await?;
    let access = Arc::new(CachedAccess::new(deps.conversation, cache));
    let messages = Messages::new(store, access, Arc::new(GrpcMediaLibrary::new(deps.media)), deps.events);
    Ok(crate::grpc_server(Arc::new(messages), deps.verifier))
}
