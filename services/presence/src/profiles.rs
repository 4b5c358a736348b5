//! Recording presence in the user service, which owns profiles (their
//! `status` and `last_seen`). Calls relay the user's own token: a service
//! cannot speak for a user by itself.

use chatterbox_errors::Error;
use chatterbox_identity::with_bearer;
use chatterbox_proto::user::v1::SetPresenceRequest;
use chatterbox_runtime::calls::UserCalls;

use crate::Status;

/// Where profiles live.
#[async_trait::async_trait]
pub trait Profiles: Send + Sync + std::fmt::Debug {
    /// Records the status of the user whose `token` this is, and `last_seen`
    /// when given.
    async fn record(&self, token: &str, status: Status, last_seen_ms: Option<i64>) -> Result<(), Error>;
}

/// The user service over gRPC.
#[derive(Debug, Clone)]
pub struct GrpcProfiles {
    client: UserCalls,
}

impl GrpcProfiles {
    /// Asks the user service behind `channel`.
    pub fn new(calls: UserCalls) -> Self {
        Self { client: calls }
    }
}

#[async_trait::async_trait]
impl Profiles for GrpcProfiles {
    async fn record(&self, token: &str, status: Status, last_seen_ms: Option<i64>) -> Result<(), Error> {
        let request = with_bearer(SetPresenceRequest { status: status.as_str().to_owned(), last_seen_ms }, token)?;
        self.client.set_presence(request).await?;
        Ok(())
    }
}
