//! The media service from where it keeps its records and bytes, and the
//! parts it calls.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use chatterbox_identity::TokenVerifier;
use chatterbox_runtime::GrpcServer;
use chatterbox_store::StoreAt;

use crate::{
    BlobStore, ConversationAccess, DiskBlobStore, Media, MediaSettings, MediaStore, MongoMediaStore, S3BlobStore,
    S3Settings, SqliteMediaStore,
};

/// Where the service keeps file bytes.
#[derive(Debug, Clone)]
pub enum BlobsAt {
    /// Files under a directory (the one-process default).
    Disk(PathBuf),
    /// An S3 bucket (credentials and region from the AWS environment).
    S3(S3Settings),
}

/// What the media service needs of the rest of the system.
#[derive(Debug)]
pub struct MediaDeps {
    /// Checks callers' tokens.
    pub verifier: TokenVerifier,
    /// The conversation service, which says who may see an attachment.
    pub conversation: Arc<dyn ConversationAccess>,
}

/// Opens the stores at `store` and `blobs` and builds the service's gRPC
/// server, and the domain (whose sweeper of unattached uploads the caller runs).
pub async fn build(
    store: &StoreAt,
    blobs: &BlobsAt,
    settings: MediaSettings,
    deps: MediaDeps,
) -> anyhow::Result<(GrpcServer, Arc<Media>)> {
    let store: Arc<dyn MediaStore> = match store {
        StoreAt::Sqlite(path) => Arc::new(SqliteMediaStore::open(path)?),
        StoreAt::MongoDb { uri, database } => Arc::new(MongoMediaStore::connect(uri, database).await?),
    };
    let blobs: Arc<dyn BlobStore> = match blobs {
        BlobsAt::Disk(dir) => Arc::new(DiskBlobStore::open(dir)?),
        BlobsAt::S3(settings) => Arc::new(S3BlobStore::connect(settings).await.context("connecting to S3")?),
    };
    let media = Arc::new(Media::new(store, blobs, deps.conversation, settings)?);
    Ok((crate::grpc_server(media.clone(), deps.verifier), media))
}
