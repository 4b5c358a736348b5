//! The auth service from where it keeps its records and the parts it calls.

use std::sync::Arc;

use chatterbox_identity::{TokenSigner, TokenVerifier};
use chatterbox_ratelimit::RateLimiter;
use chatterbox_runtime::GrpcServer;
use chatterbox_runtime::calls::UserCalls;
use chatterbox_store::StoreAt;
use chatterbox_types::Clock;

use crate::domain::AuthParts;
use crate::{Auth, AuthSettings, AuthStore, GrpcProfiles, MongoAuthStore, SqliteAuthStore};

/// What the auth service needs of the rest of the system.
#[derive(Debug)]
pub struct AuthDeps {
    /// Signs the tokens it issues (only this service holds the private key).
    pub signer: TokenSigner,
    /// Checks the tokens of callers asking about their sessions; its
    /// revocations are where ended sessions are announced.
    pub verifier: TokenVerifier,
    /// The user service, which keeps profiles.
    pub user: UserCalls,
    /// Failed logins per account (`None`: unlimited).
    pub failed_logins: Option<Arc<dyn RateLimiter>>,
    /// When things happen (the system's clock but in tests of expiry).
    pub clock: Arc<dyn Clock>,
}

/// Opens the store at `store` and builds the service's gRPC server.
pub async fn build(store: &StoreAt, settings: AuthSettings, deps: AuthDeps) -> anyhow::Result<GrpcServer> {
    let store: Arc<dyn AuthStore> = match store {
        StoreAt::Sqlite(path) => Arc::new(SqliteAuthStore::open(path)?),
        StoreAt::MongoDb { uri, database } => Arc::new(MongoAuthStore::connect(uri, database).await?),
    };
    let parts = AuthParts {
        profiles: Arc::new(GrpcProfiles::new(deps.user, deps.signer.clone())),
        signer: deps.signer,
        revocations: deps.verifier.revocations().clone(),
        failed_logins: deps.failed_logins,
        clock: deps.clock,
    };
    let auth = Auth::new(store, parts, settings).await?;
    Ok(crate::grpc_server(Arc::new(auth), deps.verifier))
}
