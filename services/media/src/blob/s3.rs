//! Blobs in an S3 bucket (AWS, MinIO, any S3-compatible server), through
//! `aws-sdk-s3` with rustls on ring. Credentials, region and endpoint come
//! from the standard `AWS_*` settings; path-style addressing is used, as
//! MinIO and most self-hosted servers expect.

use std::path::Path;
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream as SdkByteStream;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use futures::StreamExt as _;
use tokio_util::io::ReaderStream;

use super::{Blob, BlobKey, BlobStore, Delivery};

/// Where the bucket is.
#[derive(Debug, Clone)]
pub struct S3Settings {
    /// The bucket, which must exist.
    pub bucket: String,
    /// An endpoint other than AWS (e.g. MinIO); the `AWS_ENDPOINT_URL`
    /// variable is read too when this is `None`.
    pub endpoint: Option<String>,
    /// Where clients reach the same server, when not at `endpoint` (e.g.
    /// MinIO inside a compose network): signed URLs are made for it.
    pub public_endpoint: Option<String>,
}

/// A bucket.
#[derive(Debug, Clone)]
pub struct S3BlobStore {
    client: Client,
    /// Signs download URLs (for the public endpoint when there is one).
    signer: Client,
    bucket: String,
}

impl S3BlobStore {
    /// Connects and checks that the bucket is there.
    pub async fn connect(settings: &S3Settings) -> anyhow::Result<Self> {
        let store = Self::new(settings).await;
        store.client.head_bucket().bucket(&store.bucket).send().await.map_err(|e| {
            anyhow::anyhow!("S3 bucket {:?} is not reachable: {}", store.bucket, e.into_service_error())
        })?;
        Ok(store)
    }

    /// A client for the bucket, without checking it (tests create buckets).
    pub async fn new(settings: &S3Settings) -> Self {
        let http =
            aws_smithy_http_client::Builder::new().tls_provider(tls::Provider::Rustls(CryptoMode::Ring)).build_https();
        // The loader's own providers (credentials, region) use this client too.
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(http.clone());
        if let Some(endpoint) = &settings.endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        let shared = loader.load().await;
        let mut builder = aws_sdk_s3::config::Builder::from(&shared).http_client(http).force_path_style(true);
        if shared.region().is_none() {
            // MinIO and most self-hosted servers ignore it, but signing needs one.
            builder = builder.region(aws_sdk_s3::config::Region::new("us-east-1"));
        }
        let config = builder.build();
        let signer = match &settings.public_endpoint {
            Some(public) => Client::from_conf(config.to_builder().endpoint_url(public).build()),
            None => Client::from_conf(config.clone()),
        };
        Self { client: Client::from_conf(config), signer, bucket: settings.bucket.clone() }
    }

    /// The keys in the bucket (the first thousand), for tests and operators.
    pub async fn keys(&self) -> anyhow::Result<Vec<String>> {
        let listed = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("S3 list {:?}: {}", self.bucket, e.into_service_error()))?;
        Ok(listed.contents().iter().filter_map(|o| o.key().map(str::to_owned)).collect())
    }

    /// Creates the bucket (for tests and first runs); an existing one is fine.
    pub async fn create_bucket(&self) -> anyhow::Result<()> {
        match self.client.create_bucket().bucket(&self.bucket).send().await {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = e.into_service_error();
                if e.is_bucket_already_owned_by_you() || e.is_bucket_already_exists() {
                    Ok(())
                } else {
                    Err(anyhow::anyhow!("creating bucket {:?}: {e}", self.bucket))
                }
            }
        }
    }
}

#[async_trait::async_trait]
impl BlobStore for S3BlobStore {
    async fn put_file(&self, key: &BlobKey, path: &Path, content_type: &str) -> anyhow::Result<()> {
        let body = SdkByteStream::from_path(path).await?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .content_type(content_type)
            .body(body)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("S3 put {}: {}", key.as_str(), e.into_service_error()))?;
        Ok(())
    }

    async fn get(&self, key: &BlobKey) -> anyhow::Result<Option<Blob>> {
        match self.client.get_object().bucket(&self.bucket).key(key.as_str()).send().await {
            Ok(object) => {
                let size = object.content_length().and_then(|n| u64::try_from(n).ok()).unwrap_or(0);
                let reader = object.body.into_async_read();
                Ok(Some(Blob { size, body: ReaderStream::with_capacity(reader, 64 * 1024).boxed() }))
            }
            Err(e) => {
                let e = e.into_service_error();
                if e.is_no_such_key() { Ok(None) } else { Err(anyhow::anyhow!("S3 get {}: {e}", key.as_str())) }
            }
        }
    }

    async fn delete(&self, key: &BlobKey) -> anyhow::Result<()> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("S3 delete {}: {}", key.as_str(), e.into_service_error()))?;
        Ok(())
    }

    async fn presigned_url(&self, key: &BlobKey, ttl: Duration, delivery: &Delivery) -> anyhow::Result<Option<String>> {
        let request = self
            .signer
            .get_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .response_content_type(&delivery.content_type)
            .response_content_disposition(&delivery.content_disposition)
            .presigned(PresigningConfig::expires_in(ttl)?)
            .await?;
        Ok(Some(request.uri().to_owned()))
    }
}
