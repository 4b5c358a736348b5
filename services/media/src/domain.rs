//! The media service's decisions: what an upload is and whether it is
//! kept, who may download what and how, and what may be attached.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chatterbox_errors::{Code, Error};
use chatterbox_identity::Actor;
use chatterbox_types::{ConversationId, MediaId, Timestamp};
use futures::{Stream, StreamExt as _};
use tokio::io::AsyncWriteExt as _;

use crate::blob::{BlobKey, BlobStore, Delivery};
use crate::picture;
use crate::sniff::{self, Kind};
use crate::store::{MediaRecord, MediaStore};
use chatterbox_membership::ConversationAccess;

/// Longest signed-URL life the service hands out.
pub const MAX_URL_TTL: Duration = Duration::from_secs(300);
/// Most media one message may attach.
pub const MAX_ATTACHMENTS: usize = 10;
/// Longest file name kept, in characters.
const MAX_FILENAME: usize = 255;
/// Images decoded at once (each may take ~170 MiB).
const DECODES: usize = 2;
/// Conversations asked about per download (media attached in more is seen
/// through the first ones only: a bound on what one request costs).
const MAX_CHECKED: usize = 32;

/// What an upload stream carries after its start.
#[derive(Debug)]
pub enum Piece {
    /// The next bytes.
    Chunk(Bytes),
    /// The end: this many bytes were sent.
    Finish(u64),
}

/// How the service treats uploads and downloads.
#[derive(Debug, Clone)]
pub struct MediaSettings {
    /// Upload cap in bytes.
    pub max_bytes: u64,
    /// Life of signed download URLs (at most [`MAX_URL_TTL`]).
    pub url_ttl: Duration,
    /// Where uploads are spooled while they stream in.
    pub spool_dir: PathBuf,
    /// Bytes one user's kept uploads may add up to; 0: no quota.
    pub quota_bytes: u64,
    /// Uploads are refused while the spool's file system has less free than
    /// this; 0: no floor.
    pub min_free_bytes: u64,
    /// How long an upload may wait to be attached (or made an avatar)
    /// before it is removed.
    pub unattached_grace: Duration,
}

/// Media looked at per round trip of a sweep.
const SWEEP_PAGE: usize = 500;

/// How a download is served: from a signed URL, or by these bytes.
#[derive(Debug)]
pub struct Download {
    /// The media object.
    pub media: MediaRecord,
    /// Response headers.
    pub delivery: Delivery,
    /// Where the store serves it, or the bytes to stream.
    pub source: Source,
}

/// Where a download's bytes come from.
#[derive(Debug)]
pub enum Source {
    /// A URL the store signed for a few minutes.
    Signed(String),
    /// The bytes, streamed by whoever asked.
    Bytes(crate::blob::Blob),
}

/// The media domain.
#[derive(Debug)]
pub struct Media {
    store: Arc<dyn MediaStore>,
    blobs: Arc<dyn BlobStore>,
    conversations: Arc<dyn ConversationAccess>,
    settings: MediaSettings,
    decodes: Arc<tokio::sync::Semaphore>,
}

fn blob_failure(e: anyhow::Error) -> Error {
    Error::unavailable(e.context("blob store"))
}

pub fn not_found() -> Error {
    Error::not_found("media not found")
}

/// What an attachment that is not an upload of the sender's gets.
pub fn not_your_attachment() -> Error {
    Error::invalid("attachments must be media you uploaded")
}

/// What an avatar that is not an image of the caller's gets.
pub fn not_your_avatar() -> Error {
    Error::invalid("avatar must be an image you uploaded")
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

/// Bytes an unprivileged writer may still use on the file system of `dir`.
fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    let stats = rustix::fs::statvfs(dir)?;
    Ok(stats.f_bavail.saturating_mul(stats.f_frsize))
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
        conversations: Arc<dyn ConversationAccess>,
        mut settings: MediaSettings,
    ) -> anyhow::Result<Self> {
        settings.url_ttl = settings.url_ttl.clamp(Duration::from_secs(1), MAX_URL_TTL);
        chatterbox_store::create_private_dir(&settings.spool_dir)?;
        Ok(Self { store, blobs, conversations, settings, decodes: Arc::new(tokio::sync::Semaphore::new(DECODES)) })
    }

    /// Streams `pieces` to a temporary file, refusing (413) as soon as they
    /// pass the cap; only a stream that says it finished, with the size it
    /// sent, counts. Nothing of a refused or abandoned upload is kept.
    async fn spool(&self, mut pieces: impl Stream<Item = Result<Piece, Error>> + Unpin) -> Result<Spooled, Error> {
        let file = tempfile::NamedTempFile::new_in(&self.settings.spool_dir).map_err(Error::internal)?;
        let (file, path) = file.into_parts();
        let mut file = tokio::fs::File::from_std(file);
        let mut size: u64 = 0;
        let mut head = Vec::with_capacity(sniff::HEAD);
        let finished = loop {
            let chunk = match pieces.next().await {
                Some(Ok(Piece::Chunk(chunk))) => chunk,
                Some(Ok(Piece::Finish(sent))) => break sent,
                Some(Err(e)) => return Err(e),
                None => return Err(Error::invalid("the upload ended before it finished")),
            };
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
        };
        if finished != size {
            return Err(Error::invalid(format!("the upload says {finished} bytes but sent {size}")));
        }
        file.flush().await.map_err(Error::internal)?;
        file.sync_all().await.map_err(Error::internal)?;
        Ok(Spooled { path, size, head })
    }

    /// Takes an upload: streamed in under the cap, its type decided from its
    /// bytes, images measured before they are decoded and given a
    /// thumbnail; stored under keys made from a fresh id.
    pub async fn upload(
        self: &Arc<Self>,
        actor: &Actor,
        filename: &str,
        pieces: impl Stream<Item = Result<Piece, Error>> + Unpin,
    ) -> Result<MediaRecord, Error> {
        let filename = clean_filename(filename);
        self.enough_disk()?;
        let spooled = self.spool(pieces).await?;
        self.within_quota(actor, spooled.size).await?;
        // Complete: from here the work runs to its end even if the caller
        // leaves, so blobs, thumbnail and record are all kept or all undone.
        let media = self.clone();
        let uploader = actor.id;
        tokio::spawn(async move { media.store_upload(uploader, filename, spooled).await })
            .await
            .map_err(Error::internal)?
    }

    async fn store_upload(
        &self,
        uploader: chatterbox_types::UserId,
        filename: String,
        spooled: Spooled,
    ) -> Result<MediaRecord, Error> {
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
        let id = MediaId::generate();
        let mut record = MediaRecord {
            id,
            uploader,
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

    /// Refuses uploads while the disk they spool to (in one process, where
    /// the databases live too) is nearly full: a full disk stops everything.
    fn enough_disk(&self) -> Result<(), Error> {
        if self.settings.min_free_bytes == 0 {
            return Ok(());
        }
        let free = free_bytes(&self.settings.spool_dir).map_err(Error::internal)?;
        if free < self.settings.min_free_bytes {
            metrics::counter!("media_uploads_refused_total", "reason" => "disk").increment(1);
            tracing::warn!(free, floor = self.settings.min_free_bytes, "refusing uploads: the disk is nearly full");
            return Err(Error::new(Code::Unavailable, "the server is short of disk space: try again later"));
        }
        Ok(())
    }

    /// Refuses an upload that would take its uploader past the quota
    /// (checked once the size is known; uploads finishing at the same
    /// instant may pass together).
    async fn within_quota(&self, actor: &Actor, size: u64) -> Result<(), Error> {
        let quota = self.settings.quota_bytes;
        if quota == 0 {
            return Ok(());
        }
        let used = self.store.bytes_of(actor.id).await.map_err(Error::from)?;
        if used.saturating_add(size) > quota {
            metrics::counter!("media_uploads_refused_total", "reason" => "quota").increment(1);
            return Err(Error::new(
                Code::PayloadTooLarge,
                format!(
                    "your uploads would take {} of your {quota} bytes: uploads attached nowhere are removed after a while, \
                     and so are the files of deleted messages",
                    used.saturating_add(size)
                ),
            ));
        }
        Ok(())
    }

    /// Removes uploads attached nowhere (never sent, or whose messages were
    /// deleted) once older than the grace period: their record, then their
    /// blobs. Returns how many went.
    pub async fn sweep_unattached(&self) -> Result<usize, Error> {
        let grace = i64::try_from(self.settings.unattached_grace.as_millis()).unwrap_or(i64::MAX);
        let before = Timestamp::from_millis(Timestamp::now().millis().saturating_sub(grace));
        let mut after = None;
        let mut removed = 0;
        loop {
            let page = self.store.unattached(before, after, SWEEP_PAGE).await.map_err(Error::from)?;
            for id in page.ids {
                if !self.store.remove_unattached(id).await.map_err(Error::from)? {
                    continue;
                }
                removed += 1;
                for key in [BlobKey::original(id), BlobKey::thumbnail(id)] {
                    if let Err(e) = self.blobs.delete(&key).await {
                        tracing::warn!(key = key.as_str(), error = %e, "could not remove the blob of an unattached upload");
                    }
                }
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        if removed > 0 {
            metrics::counter!("media_unattached_removed_total").increment(removed as u64);
            tracing::info!(removed, "removed uploads attached nowhere");
        }
        Ok(removed)
    }

    /// Sweeps now and then (a quarter of the grace period, between a second
    /// and ten minutes) until `shutdown`.
    pub async fn run_sweeper(self: Arc<Self>, shutdown: chatterbox_runtime::Shutdown) {
        let period = (self.settings.unattached_grace / 4).clamp(Duration::from_secs(1), Duration::from_secs(600));
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.requested() => return,
                _ = tick.tick() => {}
            }
            if let Err(e) = self.sweep_unattached().await {
                tracing::warn!(error = %e, "media sweep failed");
            }
        }
    }

    /// Dimensions (from the header), then a thumbnail (a bounded decode).
    async fn inspect_image(
        &self,
        path: &Path,
        format: image::ImageFormat,
    ) -> Result<(u32, u32, tempfile::TempPath), Error> {
        let source = path.to_path_buf();
        let out = tempfile::NamedTempFile::new_in(&self.settings.spool_dir).map_err(Error::internal)?.into_temp_path();
        let _decoding = self.decodes.acquire().await.map_err(Error::internal)?;
        // The blocking work owns the thumbnail's path until it is done.
        let (dims, out) = tokio::task::spawn_blocking(move || {
            let dims = picture::dimensions(&source, format).and_then(|dims| {
                picture::thumbnail(&source, format, &out)?;
                Ok(dims)
            });
            (dims, out)
        })
        .await
        .map_err(Error::internal)?;
        let (width, height) = dims?;
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
            Ok(()) => self.store.insert(record).await.map_err(Error::from),
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
    async fn visible(&self, actor: &Actor, id: MediaId) -> Result<MediaRecord, Error> {
        let record = self.store.get(id).await.map_err(Error::from)?.ok_or_else(not_found)?;
        if record.uploader == actor.id || record.public {
            return Ok(record);
        }
        for conversation in self.store.attached_in(id).await.map_err(Error::from)?.into_iter().take(MAX_CHECKED) {
            if self.conversations.standing(actor, conversation).await?.is_some() {
                return Ok(record);
            }
        }
        Err(not_found())
    }

    /// Media `id` (or its thumbnail) for `actor`, after one access check:
    /// a signed URL when the store can make one, else its bytes.
    pub async fn download(&self, actor: &Actor, id: MediaId, thumbnail: bool) -> Result<Download, Error> {
        let media = self.visible(actor, id).await?;
        if thumbnail && !media.has_thumbnail {
            return Err(Error::not_found("this media has no thumbnail"));
        }
        let (key, delivery) = if thumbnail {
            let delivery = Delivery { content_type: "image/png".into(), content_disposition: "inline".into() };
            (BlobKey::thumbnail(media.id), delivery)
        } else {
            let content_disposition = if sniff::is_safe_image(&media.content_type) {
                "inline".to_owned()
            } else {
                attachment_disposition(&media.filename)
            };
            (BlobKey::original(media.id), Delivery { content_type: media.content_type.clone(), content_disposition })
        };
        let source = match self.blobs.presigned_url(&key, self.settings.url_ttl, &delivery).await {
            Ok(Some(url)) => Source::Signed(url),
            Ok(None) => match self.blobs.get(&key).await.map_err(blob_failure)? {
                Some(blob) => Source::Bytes(blob),
                // Recorded but gone from the store: as absent to the caller.
                None => return Err(not_found()),
            },
            Err(e) => return Err(blob_failure(e)),
        };
        Ok(Download { media, delivery, source })
    }

    /// Attaches media `actor` uploaded (images only, if so asked) to
    /// `conversation`; the records, in order. Refused, nothing is attached.
    pub async fn attach(
        &self,
        actor: &Actor,
        conversation: ConversationId,
        media: &[MediaId],
        images_only: bool,
    ) -> Result<Vec<MediaRecord>, Error> {
        if media.len() > MAX_ATTACHMENTS {
            return Err(Error::invalid(format!("at most {MAX_ATTACHMENTS} attachments per message")));
        }
        let mut records: Vec<MediaRecord> = Vec::with_capacity(media.len());
        for &id in media {
            if records.iter().any(|r| r.id == id) {
                return Err(Error::invalid("an attachment is listed twice"));
            }
            let record = self.store.get(id).await.map_err(Error::from)?.filter(|r| r.uploader == actor.id);
            let record = record.ok_or_else(not_your_attachment)?;
            if images_only && !sniff::is_safe_image(&record.content_type) {
                return Err(Error::invalid("image messages attach images only"));
            }
            records.push(record);
        }
        let ids: Vec<MediaId> = records.iter().map(|r| r.id).collect();
        self.store.attach(&ids, conversation).await.map_err(Error::from)?;
        Ok(records)
    }

    /// Forgets `media` attached in `conversation` (a deleted message): by
    /// their uploader, or an admin of the conversation.
    pub async fn detach(&self, actor: &Actor, conversation: ConversationId, media: &[MediaId]) -> Result<(), Error> {
        if media.len() > MAX_ATTACHMENTS {
            return Err(Error::invalid(format!("at most {MAX_ATTACHMENTS} attachments per message")));
        }
        let mut ids = Vec::with_capacity(media.len());
        let mut admin = None;
        for &id in media {
            let Some(record) = self.store.get(id).await.map_err(Error::from)? else { continue };
            if record.uploader != actor.id {
                if admin.is_none() {
                    let standing = self.conversations.standing(actor, conversation).await?;
                    admin = Some(standing.is_some_and(|s| s.admin));
                }
                if admin != Some(true) {
                    return Err(Error::not_found("media not found"));
                }
            }
            ids.push(id);
        }
        self.store.detach(&ids, conversation).await.map_err(Error::from)
    }

    /// Makes an image `actor` uploaded their avatar (visible to everyone signed in).
    pub async fn use_as_avatar(&self, actor: &Actor, id: MediaId) -> Result<MediaRecord, Error> {
        let mut record = self
            .store
            .get(id)
            .await
            .map_err(Error::from)?
            .filter(|r| r.uploader == actor.id)
            .ok_or_else(not_your_avatar)?;
        if !sniff::is_safe_image(&record.content_type) {
            return Err(not_your_avatar());
        }
        if !record.public {
            self.store.make_public(id).await.map_err(Error::from)?;
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
