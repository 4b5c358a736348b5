//! The presence service from where it keeps connections and the parts it calls.

use std::sync::Arc;

use chatterbox_events::EventBus;
use chatterbox_identity::TokenVerifier;
use chatterbox_runtime::GrpcServer;
use chatterbox_runtime::calls::{ConversationCalls, UserCalls};

use crate::{
    GrpcCircles, GrpcProfiles, MemoryPresenceStore, Presence, PresenceSettings, PresenceStore, RedisPresenceStore,
};

/// Where the service keeps who is connected.
#[derive(Clone)]
pub enum PresenceAt {
    /// In this process (one instance only).
    Memory,
    /// In Redis, shared by every instance.
    Redis {
        /// An open connection.
        connection: chatterbox_redis::Connection,
        /// Prefix of every key it writes.
        prefix: String,
    },
}

impl std::fmt::Debug for PresenceAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PresenceAt::Memory => f.write_str("Memory"),
            PresenceAt::Redis { prefix, .. } => f.debug_struct("Redis").field("prefix", prefix).finish(),
        }
    }
}

/// What the presence service needs of the rest of the system.
#[derive(Debug)]
pub struct PresenceDeps {
    /// Checks callers' tokens.
    pub verifier: TokenVerifier,
    /// The user service, which keeps last-seen times.
    pub user: UserCalls,
    /// The conversation service, which says whose presence a user may hear.
    pub conversation: ConversationCalls,
    /// Where presence changes are published.
    pub events: Arc<dyn EventBus>,
}

/// Builds the service's gRPC server, and the domain whose sweeper must run
/// beside it (`Presence::run_sweeper`).
pub fn build(at: PresenceAt, settings: PresenceSettings, deps: PresenceDeps) -> (GrpcServer, Arc<Presence>) {
    let store: Arc<dyn PresenceStore> = match at {
        PresenceAt::Memory => Arc::new(MemoryPresenceStore::new()),
        PresenceAt::Redis { connection, prefix } => Arc::new(RedisPresenceStore::new(connection, &prefix)),
    };
    let presence = Arc::new(Presence::new(
        store,
        Arc::new(GrpcProfiles::new(deps.user)),
        Arc::new(GrpcCircles::new(deps.conversation)),
        deps.events,
        settings,
    ));
    (crate::grpc_server(presence.clone(), deps.verifier), presence)
}
