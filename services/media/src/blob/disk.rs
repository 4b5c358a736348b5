//! Blobs as files under a directory: the embedded mode.

use std::path::{Path, PathBuf};

use futures::StreamExt as _;
use tokio_util::io::ReaderStream;

use super::{Blob, BlobKey, BlobStore, Delivery};

/// Files under `root`, one per key.
#[derive(Debug, Clone)]
pub struct DiskBlobStore {
    root: PathBuf,
}

impl DiskBlobStore {
    /// A store under `root` (created if missing).
    pub fn open(root: &Path) -> anyhow::Result<Self> {
        chatterbox_store::create_private_dir(root)?;
        Ok(Self { root: root.to_path_buf() })
    }

    fn path(&self, key: &BlobKey) -> PathBuf {
        // Keys are `<kind>/<ulid>`: no `..`, no absolute paths.
        self.root.join(key.as_str())
    }
}

#[async_trait::async_trait]
impl BlobStore for DiskBlobStore {
    async fn put_file(&self, key: &BlobKey, path: &Path, _content_type: &str) -> anyhow::Result<()> {
        let target = self.path(key);
        let dir = target.parent().ok_or_else(|| anyhow::anyhow!("blob key without a directory"))?;
        let owned = dir.to_path_buf();
        tokio::task::spawn_blocking(move || chatterbox_store::create_private_dir(&owned)).await??;
        // Copy beside the target (the copy keeps the spooled file's owner-only mode), then rename: readers never see half a file.
        let partial = dir.join(format!(".partial-{}", ulid::Ulid::new()));
        if let Err(e) = tokio::fs::copy(path, &partial).await {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(e.into());
        }
        tokio::fs::rename(&partial, &target).await?;
        Ok(())
    }

    async fn get(&self, key: &BlobKey) -> anyhow::Result<Option<Blob>> {
        let file = match tokio::fs::File::open(self.path(key)).await {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let size = file.metadata().await?.len();
        Ok(Some(Blob { size, body: ReaderStream::with_capacity(file, 64 * 1024).boxed() }))
    }

    async fn delete(&self, key: &BlobKey) -> anyhow::Result<()> {
        match tokio::fs::remove_file(self.path(key)).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    async fn presigned_url(
        &self,
        _key: &BlobKey,
        _ttl: std::time::Duration,
        _delivery: &Delivery,
    ) -> anyhow::Result<Option<String>> {
        Ok(None)
    }
}
