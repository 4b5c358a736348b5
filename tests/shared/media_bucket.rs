//! What the multi-process and deployment tests share: a bucket of their own
//! on the S3 server `make test` started, for one suite's media.

/// Creates a fresh bucket on the test S3 server; returns its name.
pub async fn fresh_media_bucket() -> String {
    let bucket = chatterbox_testkit::fresh_bucket_name();
    let s3 = chatterbox_media::S3Settings {
        bucket: bucket.clone(),
        endpoint: Some(chatterbox_testkit::s3_endpoint()),
        public_endpoint: None,
    };
    chatterbox_media::S3BlobStore::new(&s3).await.create_bucket().await.unwrap();
    bucket
}
