//! The media service's decisions: what an upload is and whether it is
//! kept, who may download what and how, and what may be attached.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chatterbox_errors::{Code, Error};
use chatterbox_identity::Actor;
use chatterbox_store::StoreError;
use chatterbox_types::{ConversationId, Timestamp};
use futures::{Stream, StreamExt as _};
use tokio::io::AsyncWriteExt as _;

use crate::access::Participation;
use crate::blob::{BlobKey, BlobStore, ByteStream, Delivery};
use crate::picture;
use crate::sniff::{self, Kind};
use crate::store::{MediaRecord, MediaStore};

/// Longest signed-URL life the service hands out.
pub const MAX_URL_TTL: Duration = Duration::from_secs(300);
/// Most media one message may attach.
pub const MAX_ATTACHMENTS: usize = 10;
/// Longest file name kept, in characters.
const MAX_FILENAME: usize = 255;

/// How the service treats uploads and downloads.
#[derive(Debug, Clone)]
pub struct MediaSettings {
    /// Upload cap in bytes.
    pub max_bytes: u64,
    /// Life of signed download URLs (at most [`MAX_URL_TTL`]).
    pub url_ttl: Duration,
    /// Where uploads are spooled while they stream in.
    pub spool_dir: PathBuf,
}

/// How a download is served.
#[derive(Debug)]
pub struct Download {
    /// The media object.
    pub media: MediaRecord,
    /// A signed URL, or `None` to stream through [`Media::read`].
    pub url: Option<String>,
    /// Response headers.
    pub delivery: Delivery,
    /// Bytes, when known (originals).
    pub size: Option<u64>,
}

/// The media domain.
#[derive(Debug)]
pub struct Media {
    store: Arc<dyn MediaStore>,
    blobs: Arc<dyn BlobStore>,
    participation: Arc<dyn Participation>,
    settings: MediaSettings,
}

fn storage(e: StoreError) -> Error {
    Error::internal(e)
}

fn blob_failure(e: anyhow::Error) -> Error {
    Error::unavailable(e.context("blob store"))
}

fn not_found() -> Error {
    Error::not_found("media not found")
}

/// A file name fit to show and to put in `Content-Disposition`: the last
/// path component, printable characters only, bounded; never a storage key.
pub fn clean_filename(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let clean: String = last
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '"' | '\\'))
        .take(MAX_FILENAME)
        .collect::<String>()
        .trim()
        .to_owned();
    if clean.is_empty() || clean == "." || clean == ".." { "file".to_owned() } else { clean }
}

/// `attachment; filename="..."; filename*=UTF-8''...` (RFC 6266 / 5987).
fn attachment_disposition(filename: &str) -> String {
    let ascii: String = filename.chars().map(|c| if c.is_ascii() && c != '%' { c } else { '_' }).collect();
    let mut encoded = String::new();
    for b in filename.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// An upload spooled to a temporary file (deleted when dropped).
struct Spooled {
    path: tempfile::TempPath,
    size: u64,
    head: Vec<u8>,
}

impl Media {
    /// The domain over its metadata store, blob store and the conversation service.
    pub fn new(
        store: Arc<dyn MediaStore>,
        blobs: Arc<dyn BlobStore>,
        participation: Arc<dyn Participation>,
        mut settings: MediaSettings,
    ) -> anyhow::Result<Self> {
        settings.url_ttl = settings.url_ttl.clamp(Duration::from_secs(1), MAX_URL_TTL);
        std::fs::create_dir_all(&settings.spool_dir)?;
        Ok(Self { store, blobs, participation, settings })
    }

    /// Streams `chunks` to a temporary file, refusing (413) as soon as they
    /// pass the cap; nothing of a refused upload is kept.
    async fn spool(&self, mut chunks: impl Stream<Item = Result<Bytes, Error>> + Unpin) -> Result<Spooled, Error> {
        let file = tempfile::NamedTempFile::new_in(&self.settings.spool_dir).map_err(Error::internal)?;
        let (file, path) = file.into_parts();
        let mut file = tokio::fs::File::from_std(file);
        let mut size: u64 = 0;
        let mut head = Vec::with_capacity(sniff::HEAD);
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk?;
            size += chunk.len() as u64;
            if size > self.settings.max_bytes {
                return Err(Error::new(
                    Code::PayloadTooLarge,
                    format!("files are limited to {} bytes", self.settings.max_bytes),
                ));
            }
            if head.len() < sniff::HEAD {
                let take = (sniff::HEAD - head.len()).min(chunk.len());
                head.extend_from_slice(&chunk[..take]);
            }
            file.write_all(&chunk).await.map_err(Error::internal)?;
        }
        file.flush().await.map_err(Error::internal)?;
        file.sync_all().await.map_err(Error::internal)?;
        Ok(Spooled { path, size, head })
    }

    /// Takes an upload: streamed in under the cap, its type decided from its
    /// bytes, images measured before they are decoded and given a
    /// thumbnail; stored under keys made from a fresh id.
    pub async fn upload(
        &self,
        actor: &Actor,
        filename: &str,
        chunks: impl Stream<Item = Result<Bytes, Error>> + Unpin,
    ) -> Result<MediaRecord, Error> {
        let filename = clean_filename(filename);
        let spooled = self.spool(chunks).await?;
        if spooled.size == 0 {
            return Err(Error::invalid("the file is empty"));
        }
        let complete = spooled.size <= spooled.head.len() as u64;
        let kind = sniff::sniff(&spooled.head, complete).ok_or_else(|| {
            Error::new(
                Code::UnsupportedMediaType,
                "accepted: PNG, JPEG, GIF and WebP images, PDF, ZIP, MP4, MP3, Ogg and plain text",
            )
        })?;
        let id = ulid::Ulid::new();
        let mut record = MediaRecord {
            id,
            uploader: actor.id,
            content_type: kind.content_type().to_owned(),
            size: spooled.size,
            filename,
            width: None,
            height: None,
            has_thumbnail: false,
            public: false,
            created_at: Timestamp::now(),
        };
        let thumbnail = match kind.image_format() {
            Some(format) => {
                let (width, height, thumbnail) = self.inspect_image(&spooled.path, format).await?;
                record.width = Some(width);
                record.height = Some(height);
                record.has_thumbnail = true;
                Some(thumbnail)
            }
            None => None,
        };
        self.keep(&record, &spooled.path, thumbnail.as_deref(), kind).await?;
        Ok(record)
    }

    /// Dimensions (from the header), then a thumbnail (a bounded decode).
    async fn inspect_image(
        &self,
        path: &Path,
        format: image::ImageFormat,
    ) -> Result<(u32, u32, tempfile::TempPath), Error> {
        let source = path.to_path_buf();
        let out = tempfile::NamedTempFile::new_in(&self.settings.spool_dir).map_err(Error::internal)?.into_temp_path();
        let target = out.to_path_buf();
        let (width, height) = tokio::task::spawn_blocking(move || {
            let dims = picture::dimensions(&source, format)?;
            picture::thumbnail(&source, format, &target)?;
            Ok::<_, Error>(dims)
        })
        .await
        .map_err(Error::internal)??;
        Ok((width, height, out))
    }

    /// Stores the blobs, then the record; undoes the blobs if the record fails.
    async fn keep(
        &self,
        record: &MediaRecord,
        original: &Path,
        thumbnail: Option<&Path>,
        kind: Kind,
    ) -> Result<(), Error> {
        let original_key = BlobKey::original(record.id);
        let thumbnail_key = BlobKey::thumbnail(record.id);
        let stored = async {
            self.blobs.put_file(&original_key, original, kind.content_type()).await?;
            if let Some(thumbnail) = thumbnail {
                self.blobs.put_file(&thumbnail_key, thumbnail, "image/png").await?;
            }
            Ok::<_, anyhow::Error>(())
        }
        .await
        .map_err(blob_failure);
        let recorded = match stored {
            Ok(()) => self.store.insert(record).await.map_err(storage),
            Err(e) => Err(e),
        };
        if recorded.is_err() {
            for key in [&original_key, &thumbnail_key] {
                if let Err(e) = self.blobs.delete(key).await {
                    tracing::warn!(key = key.as_str(), error = %e, "could not remove the blob of a failed upload");
                }
            }
        }
        recorded
    }

    /// The media `id` if `actor` may see it; 404 otherwise, as for media
    /// that does not exist.
    async fn visible(&self, actor: &Actor, id: &str) -> Result<MediaRecord, Error> {
        let id = ulid::Ulid::from_string(id).map_err(|_| not_found())?;
        let record = self.store.get(id).await.map_err(storage)?.ok_or_else(not_found)?;
        if record.uploader == actor.id || record.public {
            return Ok(record);
        }
        for conversation in self.store.attached_in(id).await.map_err(storage)? {
            if self.participation.takes_part(&actor.token, conversation).await? {
                return Ok(record);
            }
        }
        Err(not_found())
    }

    /// How `actor` gets media `id` (or its thumbnail).
    pub async fn open_download(&self, actor: &Actor, id: &str, thumbnail: bool) -> Result<Download, Error> {
        let media = self.visible(actor, id).await?;
        if thumbnail && !media.has_thumbnail {
            return Err(Error::not_found("this media has no thumbnail"));
        }
        let (key, delivery, size) = if thumbnail {
            let delivery = Delivery { content_type: "image/png".into(), content_disposition: "inline".into() };
            (BlobKey::thumbnail(media.id), delivery, None)
        } else {
            let content_disposition = if sniff::is_safe_image(&media.content_type) {
                "inline".to_owned()
            } else {
                attachment_disposition(&media.filename)
            };
            let delivery = Delivery { content_type: media.content_type.clone(), content_disposition };
            (BlobKey::original(media.id), delivery, Some(media.size))
        };
        let url = self.blobs.presigned_url(&key, self.settings.url_ttl, &delivery).await.map_err(blob_failure)?;
        Ok(Download { media, url, delivery, size })
    }

    /// The bytes of media `id` (or its thumbnail), for `actor`.
    pub async fn read(&self, actor: &Actor, id: &str, thumbnail: bool) -> Result<ByteStream, Error> {
        let media = self.visible(actor, id).await?;
        if thumbnail && !media.has_thumbnail {
            return Err(Error::not_found("this media has no thumbnail"));
        }
        let key = if thumbnail { BlobKey::thumbnail(media.id) } else { BlobKey::original(media.id) };
        let blob = self.blobs.get(&key).await.map_err(blob_failure)?;
        // Recorded but gone from the store: as absent to the caller.
        Ok(blob.ok_or_else(not_found)?.body)
    }

    /// Attaches media `actor` uploaded (images only, if so asked) to
    /// `conversation`; the records, in order. Refused, nothing is attached.
    pub async fn attach(
        &self,
        actor: &Actor,
        conversation: &str,
        media: &[String],
        images_only: bool,
    ) -> Result<Vec<MediaRecord>, Error> {
        let conversation =
            ConversationId::parse(conversation).map_err(|_| Error::invalid("conversation_id is not an id"))?;
        if media.len() > MAX_ATTACHMENTS {
            return Err(Error::invalid(format!("at most {MAX_ATTACHMENTS} attachments per message")));
        }
        let not_yours = || Error::invalid("attachments must be media you uploaded");
        let mut records: Vec<MediaRecord> = Vec::with_capacity(media.len());
        for id in media {
            let id = ulid::Ulid::from_string(id).map_err(|_| not_yours())?;
            if records.iter().any(|r| r.id == id) {
                return Err(Error::invalid("an attachment is listed twice"));
            }
            let record = self.store.get(id).await.map_err(storage)?.filter(|r| r.uploader == actor.id);
            let record = record.ok_or_else(not_yours)?;
            if images_only && !sniff::is_safe_image(&record.content_type) {
                return Err(Error::invalid("image messages attach images only"));
            }
            records.push(record);
        }
        let ids: Vec<ulid::Ulid> = records.iter().map(|r| r.id).collect();
        self.store.attach(&ids, conversation).await.map_err(storage)?;
        Ok(records)
    }

    /// Makes an image `actor` uploaded their avatar (visible to everyone signed in).
    pub async fn use_as_avatar(&self, actor: &Actor, id: &str) -> Result<MediaRecord, Error> {
        let not_yours = || Error::invalid("avatar must be an image you uploaded");
        let id = ulid::Ulid::from_string(id).map_err(|_| not_yours())?;
        let mut record =
            self.store.get(id).await.map_err(storage)?.filter(|r| r.uploader == actor.id).ok_or_else(not_yours)?;
        if !sniff::is_safe_image(&record.content_type) {
            return Err(not_yours());
        }
        if !record.public {
            self.store.make_public(id).await.map_err(storage)?;
            record.public = true;
        }
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_lose_paths_and_unsafe_characters() {
        assert_eq!(clean_filename("../../etc/passwd"), "passwd");
        assert_eq!(clean_filename("C:\\Users\\x\\photo.png"), "photo.png");
        assert_eq!(clean_filename("a\"b\r\n.txt"), "ab.txt");
        assert_eq!(clean_filename(".."), "file");
        assert_eq!(clean_filename(""), "file");
        assert_eq!(clean_filename(&"x".repeat(400)).len(), MAX_FILENAME);
    }

    #[test]
    fn dispositions_quote_and_encode_the_name() {
        assert_eq!(
            attachment_disposition("notes.txt"),
            "attachment; filename=\"notes.txt\"; filename*=UTF-8''notes.txt"
        );
        assert_eq!(
            attachment_disposition("r\u{e9}sum\u{e9} 1.pdf"),
            "attachment; filename=\"r_sum_ 1.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9%201.pdf"
        );
    }
}
