//! `/api/v1/media*`: uploads streamed through to the media service under
//! the size cap, and downloads (a redirect to a short-lived signed URL, or
//! the bytes streamed from the media service), always `nosniff`.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chatterbox_errors::{Code, Error};
use chatterbox_proto::media::v1::upload_request::Part;
use chatterbox_proto::media::v1::{
    DownloadRequest, DownloadResponse, UploadFinish, UploadRequest, UploadStart, download_response,
};
use futures::StreamExt as _;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiMultipart, CurrentUser};
use crate::state::GatewayState;
use crate::views::MediaView;

/// Largest piece of a file in one gRPC message.
const CHUNK: usize = 64 * 1024;

/// Most bytes a multipart body may add around the file itself.
pub(crate) const MULTIPART_OVERHEAD: usize = 64 * 1024;

/// A spawned call that is cancelled when dropped unfinished.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> AbortOnDrop<T> {
    async fn finish(mut self) -> Result<T, ApiError> {
        (&mut self.0).await.map_err(|e| ApiError::from(Error::internal(e)))
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn too_large(max: u64) -> ApiError {
    Error::new(Code::PayloadTooLarge, format!("files are limited to {max} bytes")).into()
}

/// A multipart body that cannot be read: too long, or malformed.
fn unreadable(e: &axum::extract::multipart::MultipartError, max: u64) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large(max)
    } else {
        Error::invalid(format!("unreadable multipart body: {}", e.body_text())).into()
    }
}

/// `POST /api/v1/media` (multipart, field `file`) → 201 media.
pub(crate) async fn upload(
    State(s): State<GatewayState>,
    user: CurrentUser,
    ApiMultipart(mut multipart): ApiMultipart,
) -> ApiResult<(StatusCode, Json<MediaView>)> {
    let max = s.media_max_bytes;
    let mut field = loop {
        match multipart.next_field().await.map_err(|e| unreadable(&e, max))? {
            Some(field) if field.name() == Some("file") => break field,
            Some(_) => continue,
            None => return Err(Error::invalid("the multipart field `file` is required").into()),
        }
    };
    let filename = field.file_name().unwrap_or("file").to_owned();
    let (parts, stream) = mpsc::channel(4);
    let start = UploadRequest { part: Some(Part::Start(UploadStart { filename })) };
    parts.send(start).await.map_err(|_| Error::invariant("the upload stream closed before it began"))?;
    // The call runs as its own task (it must move bytes while this one
    // reads the body) and is cancelled if this one stops early.
    let mut uploads = s.media_uploads.clone();
    let request = user.request(ReceiverStream::new(stream))?;
    let call = AbortOnDrop(tokio::spawn(async move { uploads.upload(request).await }));
    // Pass the file through as it arrives, counting; the media service
    // counts too, and keeps nothing unless the stream ends with `finish`.
    let mut sent: u64 = 0;
    'body: while let Some(chunk) = field.chunk().await.map_err(|e| unreadable(&e, max))? {
        sent += chunk.len() as u64;
        if sent > max {
            return Err(too_large(max));
        }
        // Small gRPC messages, whatever sizes the body came in.
        for piece in chunk.chunks(CHUNK) {
            let piece = UploadRequest { part: Some(Part::Chunk(piece.to_vec())) };
            if parts.send(piece).await.is_err() {
                // The service answered early (a refusal): take its answer.
                break 'body;
            }
        }
    }
    let finish = UploadRequest { part: Some(Part::Finish(UploadFinish { size: sent })) };
    let _ = parts.send(finish).await;
    drop(parts);
    let media = call.finish().await??.into_inner();
    Ok((StatusCode::CREATED, Json(MediaView::from(media))))
}

/// `GET /api/v1/media/{id}`.
pub(crate) async fn download(
    s: State<GatewayState>,
    user: CurrentUser,
    id: Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    serve(s, user, id, false, wants_link(&headers)).await
}

/// A client that sends `Accept: application/json` (a web page, which cannot
/// follow a redirect to another origin with its token) is answered 200
/// `{url, expires_in}` instead of 302 when media lives in S3. On disk there
/// is no such URL: the bytes come as usual.
fn wants_link(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.trim() == "application/json")
}

#[derive(Debug, serde::Serialize)]
struct LinkView {
    url: String,
    /// Seconds the URL stays valid.
    expires_in: u64,
}

/// `GET /api/v1/media/{id}/thumbnail`.
pub(crate) async fn thumbnail(
    s: State<GatewayState>,
    user: CurrentUser,
    id: Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    serve(s, user, id, true, wants_link(&headers)).await
}

async fn serve(
    State(s): State<GatewayState>,
    user: CurrentUser,
    Path(id): Path<String>,
    thumbnail: bool,
    link: bool,
) -> ApiResult<Response> {
    let mut parts = s.media.clone().download(user.request(DownloadRequest { id, thumbnail })?).await?.into_inner();
    let download = match parts.message().await? {
        Some(DownloadResponse { part: Some(download_response::Part::Head(head)) }) => head,
        _ => return Err(Error::invariant("a download without its head").into()),
    };
    let nosniff = (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if !download.url.is_empty() && link {
        let view = LinkView { url: download.url, expires_in: s.web.media_link_ttl_secs };
        return Ok(
            ([(header::CACHE_CONTROL, HeaderValue::from_static("no-store")), nosniff], Json(view)).into_response()
        );
    }
    if !download.url.is_empty() {
        let location = HeaderValue::from_str(&download.url).map_err(|_| Error::invariant("unusable signed URL"))?;
        let headers =
            [(header::LOCATION, location), nosniff, (header::CACHE_CONTROL, HeaderValue::from_static("no-store"))];
        return Ok((StatusCode::FOUND, headers).into_response());
    }
    let body = Body::from_stream(parts.map(|part| match part {
        Ok(DownloadResponse { part: Some(download_response::Part::Chunk(chunk)) }) => Ok(bytes::Bytes::from(chunk)),
        Ok(_) => Err(tonic::Status::internal("a download's bytes came out of order")),
        Err(status) => Err(status),
    }));
    let value = |v: &str| HeaderValue::from_str(v).map_err(|_| ApiError::from(Error::invariant("unusable header")));
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, value(&download.content_type)?);
    headers.insert(header::CONTENT_DISPOSITION, value(&download.content_disposition)?);
    headers.insert(nosniff.0, nosniff.1);
    // User content never runs as a page of ours, even if opened directly.
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; sandbox"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=300"));
    if download.size > 0 {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(download.size));
    }
    Ok(response)
}
