//! Attachments come from the media service: it checks that the sender
//! uploaded them (with the sender's own token), lets the conversation's
//! participants download them, and describes them.

use chatterbox_errors::Error;
use chatterbox_identity::with_bearer;
use chatterbox_proto::media::v1::{AttachRequest, DetachRequest};
use chatterbox_runtime::calls::MediaCalls;
use chatterbox_types::{ConversationId, MediaId};

use crate::store::Attachment;

/// Where attachments come from.
#[async_trait::async_trait]
pub trait MediaLibrary: Send + Sync + std::fmt::Debug {
    /// Attaches `media`, which the holder of `token` must have uploaded (and
    /// which must all be images when `images_only`), to `conversation`;
    /// their descriptions, in order. Refused, nothing is attached.
    async fn attach(
        &self,
        token: &str,
        conversation: ConversationId,
        media: &[MediaId],
        images_only: bool,
    ) -> Result<Vec<Attachment>, Error>;
    /// Undoes [`MediaLibrary::attach`] (the holder of `token` is their
    /// uploader or an admin of `conversation`).
    async fn detach(&self, token: &str, conversation: ConversationId, media: &[MediaId]) -> Result<(), Error>;
}

/// The media service over gRPC.
#[derive(Debug, Clone)]
pub struct GrpcMediaLibrary {
    client: MediaCalls,
}

impl GrpcMediaLibrary {
    /// Asks the media service behind `channel`.
    pub fn new(calls: MediaCalls) -> Self {
        Self { client: calls }
    }
}

#[async_trait::async_trait]
impl MediaLibrary for GrpcMediaLibrary {
    async fn attach(
        &self,
        token: &str,
        conversation: ConversationId,
        media: &[MediaId],
        images_only: bool,
    ) -> Result<Vec<Attachment>, Error> {
        let media_ids = media.iter().map(ToString::to_string).collect();
        let request = AttachRequest { conversation_id: conversation.to_string(), media_ids, images_only };
        let request = with_bearer(request, token)?;
        let attached = self.client.attach(request).await?.into_inner();
        attached
            .media
            .into_iter()
            .map(|m| {
                Ok(Attachment {
                    id: MediaId::parse(&m.id)
                        .map_err(|_| Error::invariant("the media service answered a malformed media id"))?,
                    content_type: m.content_type,
                    size: m.size,
                    filename: m.filename,
                    width: m.width,
                    height: m.height,
                    has_thumbnail: m.has_thumbnail,
                    created_at_ms: m.created_at_ms,
                })
            })
            .collect()
    }

    async fn detach(&self, token: &str, conversation: ConversationId, media: &[MediaId]) -> Result<(), Error> {
        let media_ids = media.iter().map(ToString::to_string).collect();
        let request = DetachRequest { conversation_id: conversation.to_string(), media_ids };
        self.client.detach(with_bearer(request, token)?).await?;
        Ok(())
    }
}
