//! The transport layer: `chatterbox.media.v1.MediaService` over the domain.

use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use chatterbox_errors::Error;
use chatterbox_identity::{Actor, TokenVerifier, authenticate_user};
use chatterbox_proto::media::v1::download_response::Part;
use chatterbox_proto::media::v1::media_service_server::{MediaService, MediaServiceServer};
use chatterbox_proto::media::v1::upload_request::Part as UploadPart;
use chatterbox_proto::media::v1::{
    AttachRequest, AttachResponse, DetachRequest, DetachResponse, DownloadHead, DownloadRequest, DownloadResponse,
    Media as MediaProto, UploadRequest, UseAsAvatarRequest,
};
use chatterbox_runtime::GrpcServer;
use chatterbox_types::{ConversationId, MediaId};
use futures::{Stream, StreamExt as _};
use tonic::server::NamedService;
use tonic::{Request, Response, Status, Streaming};

use crate::domain::{Media, Piece, Source, not_found, not_your_attachment, not_your_avatar};
use crate::store::MediaRecord;

#[derive(Debug, Clone)]
struct MediaGrpc {
    media: Arc<Media>,
    verifier: TokenVerifier,
}

impl MediaGrpc {
    fn actor<T>(&self, request: &Request<T>) -> Result<Actor, Status> {
        Ok(authenticate_user(request, &self.verifier)?)
    }
}

/// A media record on the wire.
pub fn to_proto(m: &MediaRecord) -> MediaProto {
    MediaProto {
        id: m.id.to_string(),
        uploader_id: m.uploader.to_string(),
        content_type: m.content_type.clone(),
        size: m.size,
        filename: m.filename.clone(),
        width: m.width,
        height: m.height,
        has_thumbnail: m.has_thumbnail,
        created_at_ms: m.created_at.millis(),
    }
}

/// The conversation an attach or detach is for.
fn conversation_id(id: &str) -> Result<ConversationId, Error> {
    ConversationId::parse(id).map_err(|_| Error::invalid("conversation_id is not an id"))
}

/// Media ids from the wire; a malformed one gets `refused`.
fn media_ids(ids: &[String], refused: impl Fn() -> Error) -> Result<Vec<MediaId>, Error> {
    ids.iter().map(|id| MediaId::parse(id).map_err(|_| refused())).collect()
}

type DownloadStream = Pin<Box<dyn Stream<Item = Result<DownloadResponse, Status>> + Send>>;

#[tonic::async_trait]
impl MediaService for MediaGrpc {
    async fn upload(&self, request: Request<Streaming<UploadRequest>>) -> Result<Response<MediaProto>, Status> {
        let actor = self.actor(&request)?;
        let mut parts = request.into_inner();
        let filename = match parts.message().await? {
            Some(UploadRequest { part: Some(UploadPart::Start(start)) }) => start.filename,
            _ => return Err(Error::invalid("an upload starts with its file name").into()),
        };
        let chunks = parts.map(|part| match part {
            Ok(UploadRequest { part: Some(UploadPart::Chunk(bytes)) }) => Ok(Piece::Chunk(Bytes::from(bytes))),
            Ok(UploadRequest { part: Some(UploadPart::Finish(finish)) }) => Ok(Piece::Finish(finish.size)),
            Ok(_) => Err(Error::invalid("after its start, an upload is chunks then its finish")),
            Err(status) => Err(Error::from(status)),
        });
        let record = self.media.upload(&actor, &filename, Box::pin(chunks)).await?;
        Ok(Response::new(to_proto(&record)))
    }

    type DownloadStream = DownloadStream;

    async fn download(&self, request: Request<DownloadRequest>) -> Result<Response<DownloadStream>, Status> {
        let actor = self.actor(&request)?;
        let r = request.into_inner();
        // A malformed id names nothing: 404, as for media that does not exist.
        let id = MediaId::parse(&r.id).map_err(|_| not_found())?;
        let d = self.media.download(&actor, id, r.thumbnail).await?;
        let (url, size, body) = match d.source {
            Source::Signed(url) => (url, 0, None),
            Source::Bytes(blob) => (String::new(), blob.size, Some(blob.body)),
        };
        let head = DownloadHead {
            media: Some(to_proto(&d.media)),
            url,
            content_type: d.delivery.content_type,
            content_disposition: d.delivery.content_disposition,
            size,
        };
        let head = futures::stream::once(async move { Ok(DownloadResponse { part: Some(Part::Head(head)) }) });
        let chunks = futures::stream::iter(body).flatten().map(|chunk| match chunk {
            Ok(bytes) => Ok(DownloadResponse { part: Some(Part::Chunk(bytes.to_vec())) }),
            Err(e) => Err(Status::from(Error::unavailable(anyhow::Error::from(e).context("reading a blob")))),
        });
        Ok(Response::new(Box::pin(head.chain(chunks))))
    }

    async fn attach(&self, request: Request<AttachRequest>) -> Result<Response<AttachResponse>, Status> {
        let actor = self.actor(&request)?;
        let r = request.into_inner();
        let conversation = conversation_id(&r.conversation_id)?;
        let media = media_ids(&r.media_ids, not_your_attachment)?;
        let records = self.media.attach(&actor, conversation, &media, r.images_only).await?;
        Ok(Response::new(AttachResponse { media: records.iter().map(to_proto).collect() }))
    }

    async fn detach(&self, request: Request<DetachRequest>) -> Result<Response<DetachResponse>, Status> {
        let actor = self.actor(&request)?;
        let r = request.into_inner();
        let conversation = conversation_id(&r.conversation_id)?;
        let media = media_ids(&r.media_ids, || Error::invalid("media_ids must list media ids"))?;
        self.media.detach(&actor, conversation, &media).await?;
        Ok(Response::new(DetachResponse {}))
    }

    async fn use_as_avatar(&self, request: Request<UseAsAvatarRequest>) -> Result<Response<MediaProto>, Status> {
        let actor = self.actor(&request)?;
        let id = MediaId::parse(&request.into_inner().id).map_err(|_| not_your_avatar())?;
        let record = self.media.use_as_avatar(&actor, id).await?;
        Ok(Response::new(to_proto(&record)))
    }
}

/// The media service, ready for [`chatterbox_runtime::serve_grpc`].
pub fn grpc_server(media: Arc<Media>, verifier: TokenVerifier) -> GrpcServer {
    let handlers = Arc::new(MediaGrpc { media, verifier });
    GrpcServer::new(
        tonic::service::Routes::new(MediaServiceServer::from_arc(handlers.clone())),
        vec![<MediaServiceServer<MediaGrpc> as NamedService>::NAME],
    )
    .with_handlers::<Arc<chatterbox_runtime::calls::MediaHandlers>>(handlers)
}
