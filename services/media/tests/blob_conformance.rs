//! One suite for every blob store: a directory, and a real S3-compatible
//! server (s3s-fs, which checks signatures and the expiry of signed URLs).

#![allow(clippy::unwrap_used)] // a panic is how a test fails

use chatterbox_testkit::Backing;
use std::sync::Arc;
use std::time::Duration;

use chatterbox_media::blob::{BlobKey, Delivery};
use chatterbox_media::{BlobStore, DiskBlobStore, S3BlobStore, S3Settings};
use chatterbox_types::MediaId;
use futures::TryStreamExt as _;

/// The store, and the directory a disk store lives in (kept alive).
async fn store(backing: Backing) -> (Arc<dyn BlobStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn BlobStore> = match backing {
        Backing::InProcess => Arc::new(DiskBlobStore::open(dir.path()).unwrap()),
        Backing::TestServer => {
            let settings = S3Settings {
                bucket: chatterbox_testkit::fresh_bucket_name(),
                endpoint: Some(chatterbox_testkit::s3_endpoint()),
                public_endpoint: None,
            };
            let store = S3BlobStore::new(&settings).await;
            store.create_bucket().await.unwrap();
            // A second time is fine, and the bucket is now reachable.
            store.create_bucket().await.unwrap();
            Arc::new(S3BlobStore::connect(&settings).await.unwrap())
        }
    };
    (store, dir)
}

chatterbox_testkit::conformance! {
    make: crate::store;
    names: [disk, s3];
    tests: [blobs_round_trip_and_replace,
    absent_blobs_read_as_none_and_delete_quietly,
    signed_urls_serve_with_the_given_headers_until_they_expire,];
}

fn file_with(bytes: &[u8]) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), bytes).unwrap();
    file
}

async fn read_all(store: &dyn BlobStore, key: &BlobKey) -> Option<(u64, Vec<u8>)> {
    let blob = store.get(key).await.unwrap()?;
    let chunks: Vec<bytes::Bytes> = blob.body.try_collect().await.unwrap();
    Some((blob.size, chunks.concat()))
}

async fn blobs_round_trip_and_replace((store, _dir): (Arc<dyn BlobStore>, tempfile::TempDir)) {
    let id = MediaId::generate();
    let big: Vec<u8> = (0..300_000u32).map(|n| (n % 251) as u8).collect();
    store.put_file(&BlobKey::original(id), file_with(&big).path(), "application/pdf").await.unwrap();
    store.put_file(&BlobKey::thumbnail(id), file_with(b"thumb").path(), "image/png").await.unwrap();
    assert_eq!(read_all(store.as_ref(), &BlobKey::original(id)).await, Some((big.len() as u64, big)));
    assert_eq!(read_all(store.as_ref(), &BlobKey::thumbnail(id)).await, Some((5, b"thumb".to_vec())));
    store.put_file(&BlobKey::thumbnail(id), file_with(b"again").path(), "image/png").await.unwrap();
    assert_eq!(read_all(store.as_ref(), &BlobKey::thumbnail(id)).await, Some((5, b"again".to_vec())));
    store.delete(&BlobKey::original(id)).await.unwrap();
    assert_eq!(read_all(store.as_ref(), &BlobKey::original(id)).await, None);
    assert!(read_all(store.as_ref(), &BlobKey::thumbnail(id)).await.is_some(), "only that key went");
}

async fn absent_blobs_read_as_none_and_delete_quietly((store, _dir): (Arc<dyn BlobStore>, tempfile::TempDir)) {
    let key = BlobKey::original(MediaId::generate());
    assert!(store.get(&key).await.unwrap().is_none());
    store.delete(&key).await.unwrap();
}

async fn signed_urls_serve_with_the_given_headers_until_they_expire(
    (store, _dir): (Arc<dyn BlobStore>, tempfile::TempDir),
) {
    let id = MediaId::generate();
    store.put_file(&BlobKey::original(id), file_with(b"<b>not html</b>").path(), "text/plain").await.unwrap();
    let delivery = Delivery {
        content_type: "text/plain; charset=utf-8".into(),
        content_disposition: "attachment; filename=\"a.txt\"".into(),
    };
    let url = store.presigned_url(&BlobKey::original(id), Duration::from_secs(2), &delivery).await.unwrap();
    let Some(url) = url else {
        // The disk store cannot sign: the gateway streams instead.
        assert!(matches!(store.get(&BlobKey::original(id)).await, Ok(Some(_))));
        return;
    };
    let client = reqwest::Client::new();
    let fetched = client.get(&url).send().await.unwrap();
    assert_eq!(fetched.status(), 200);
    assert_eq!(fetched.headers()["content-disposition"], "attachment; filename=\"a.txt\"");
    assert_eq!(fetched.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(fetched.bytes().await.unwrap().as_ref(), b"<b>not html</b>");
    // The same URL with one digit of the signature changed.
    let at = url.find("X-Amz-Signature=").unwrap() + "X-Amz-Signature=".len();
    let flipped = if &url[at..=at] == "0" { "1" } else { "0" };
    let tampered = format!("{}{flipped}{}", &url[..at], &url[at + 1..]);
    assert_eq!(client.get(&tampered).send().await.unwrap().status(), 403, "a changed signature is refused");
    tokio::time::sleep(Duration::from_millis(3_100)).await;
    assert_eq!(client.get(&url).send().await.unwrap().status(), 403, "an expired URL is refused");
}

#[tokio::test]
async fn signed_urls_are_made_for_the_public_endpoint_when_there_is_one() {
    // The service reaches S3 at 127.0.0.1; clients are told `localhost`.
    let endpoint = chatterbox_testkit::s3_endpoint();
    let public = endpoint.replace("127.0.0.1", "localhost");
    let settings = S3Settings {
        bucket: chatterbox_testkit::fresh_bucket_name(),
        endpoint: Some(endpoint),
        public_endpoint: Some(public.clone()),
    };
    let store = S3BlobStore::new(&settings).await;
    store.create_bucket().await.unwrap();
    let key = BlobKey::original(MediaId::generate());
    store.put_file(&key, file_with(b"hello").path(), "text/plain").await.unwrap();
    let delivery = Delivery { content_type: "text/plain".into(), content_disposition: "attachment".into() };
    let url = store.presigned_url(&key, Duration::from_secs(60), &delivery).await.unwrap().unwrap();
    assert!(url.starts_with(&public), "{url}");
    let fetched = reqwest::get(&url).await.unwrap();
    assert_eq!(fetched.status(), 200, "signed for the host the client uses");
    assert_eq!(fetched.bytes().await.unwrap().as_ref(), b"hello");
}
