//! Avatars are media: the media service checks that the user uploaded the
//! image and makes it visible to every signed-in user.

use chatterbox_errors::Error;
use chatterbox_identity::with_bearer;
use chatterbox_proto::media::v1::UseAsAvatarRequest;
use chatterbox_runtime::calls::MediaCalls;
use chatterbox_types::MediaId;

/// Where avatars come from.
#[async_trait::async_trait]
pub trait Avatars: Send + Sync + std::fmt::Debug {
    /// Makes media `id` the avatar of the holder of `token`, who must have
    /// uploaded it (an image); refused otherwise.
    async fn adopt(&self, token: &str, id: MediaId) -> Result<(), Error>;
}

/// The media service over gRPC.
#[derive(Debug, Clone)]
pub struct GrpcAvatars {
    client: MediaCalls,
}

impl GrpcAvatars {
    /// Asks the media service behind `channel`.
    pub fn new(calls: MediaCalls) -> Self {
        Self { client: calls }
    }
}

#[async_trait::async_trait]
impl Avatars for GrpcAvatars {
    async fn adopt(&self, token: &str, id: MediaId) -> Result<(), Error> {
        let request = with_bearer(UseAsAvatarRequest { id: id.to_string() }, token)?;
        self.client.use_as_avatar(request).await?;
        Ok(())
    }
}
