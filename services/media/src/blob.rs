//! Where the bytes live: one trait, on disk (embedded) or in S3 / MinIO,
//! one conformance suite (`tests/blob_conformance.rs`). Keys are made here
//! from media ids, never from anything a client sent.

mod disk;
mod s3;

use std::path::Path;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use chatterbox_types::MediaId;
use futures::Stream;

pub use disk::DiskBlobStore;
pub use s3::{S3BlobStore, S3Settings};

/// The name of a blob: `originals/<media id>` or `thumbnails/<media id>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BlobKey(String);

impl BlobKey {
    /// The uploaded bytes of a media object.
    pub fn original(media: MediaId) -> Self {
        Self(format!("originals/{media}"))
    }

    /// The thumbnail of an image.
    pub fn thumbnail(media: MediaId) -> Self {
        Self(format!("thumbnails/{media}"))
    }

    /// The key as a path or object name (only `[0-9A-Z/a-z]`).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Bytes coming out of a store.
pub type ByteStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// A blob opened for reading.
pub struct Blob {
    /// Its size in bytes.
    pub size: u64,
    /// Its bytes, a chunk at a time.
    pub body: ByteStream,
}

impl std::fmt::Debug for Blob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blob").field("size", &self.size).finish_non_exhaustive()
    }
}

/// How a direct download must be answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// `Content-Type`.
    pub content_type: String,
    /// `Content-Disposition` (`inline` or `attachment; filename=...`).
    pub content_disposition: String,
}

/// A blob store.
#[async_trait::async_trait]
pub trait BlobStore: Send + Sync + std::fmt::Debug {
    /// Stores the file at `path` under `key` (replacing any blob there).
    async fn put_file(&self, key: &BlobKey, path: &Path, content_type: &str) -> anyhow::Result<()>;
    /// Opens a blob; `None` if there is none.
    async fn get(&self, key: &BlobKey) -> anyhow::Result<Option<Blob>>;
    /// Removes a blob; removing an absent one is not an error.
    async fn delete(&self, key: &BlobKey) -> anyhow::Result<()>;
    /// A URL that serves the blob directly for `ttl`, answered as `delivery`
    /// says; `None` when this store cannot (the gateway streams it instead).
    async fn presigned_url(&self, key: &BlobKey, ttl: Duration, delivery: &Delivery) -> anyhow::Result<Option<String>>;
}
