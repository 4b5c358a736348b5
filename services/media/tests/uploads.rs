//! The upload protocol on the domain: only a stream that ends with its
//! `finish` (and the size it sent) is kept; anything else leaves no trace.

#![allow(clippy::unwrap_used)] // a panic is how a test fails

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chatterbox_errors::{Code, Error};
use chatterbox_identity::Actor;
use chatterbox_media::domain::Piece;
use chatterbox_media::{DiskBlobStore, Media, MediaSettings, Participation, SqliteMediaStore, Standing};
use chatterbox_types::{ConversationId, UserId};

/// Nobody takes part in anything.
#[derive(Debug)]
struct Nobody;

#[async_trait::async_trait]
impl Participation for Nobody {
    async fn standing(&self, _token: &str, _conversation: ConversationId) -> Result<Option<Standing>, Error> {
        Ok(None)
    }
}

fn files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| if e.path().is_dir() { files(&e.path()) } else { 1 }).sum())
        .unwrap_or(0)
}

fn media(dir: &std::path::Path) -> Arc<Media> {
    let settings = MediaSettings { max_bytes: 1_000, url_ttl: Duration::from_secs(60), spool_dir: dir.join("spool") };
    let blobs = Arc::new(DiskBlobStore::open(&dir.join("blobs")).unwrap());
    Arc::new(Media::new(Arc::new(SqliteMediaStore::in_memory().unwrap()), blobs, Arc::new(Nobody), settings).unwrap())
}

fn pieces(list: Vec<Piece>) -> impl futures::Stream<Item = Result<Piece, Error>> + Unpin {
    futures::stream::iter(list.into_iter().map(Ok))
}

fn text(n: usize) -> Piece {
    Piece::Chunk(Bytes::from(vec![b'x'; n]))
}

#[tokio::test]
async fn only_finished_uploads_of_the_size_they_claim_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let media = media(dir.path());
    let actor = Actor { id: UserId::generate(), token: "t".into() };
    for (stream, code) in [
        // Abandoned: the stream just ends.
        (vec![text(100), text(100)], Code::InvalidArgument),
        // Claims more than it sent (a cut-off body).
        (vec![text(100), Piece::Finish(300)], Code::InvalidArgument),
        // Over the cap.
        (vec![text(600), text(600), Piece::Finish(1_200)], Code::PayloadTooLarge),
    ] {
        let refused = media.upload(&actor, "a.txt", pieces(stream)).await.unwrap_err();
        assert_eq!(refused.code(), code, "{refused:?}");
        assert_eq!(files(dir.path()), 0, "nothing kept");
    }
    // A failing stream (the caller went away) keeps nothing either.
    let cut = futures::stream::iter(vec![Ok(text(10)), Err(Error::unavailable(anyhow::anyhow!("cancelled")))]);
    assert!(media.upload(&actor, "a.txt", cut).await.is_err());
    assert_eq!(files(dir.path()), 0);

    let kept = media.upload(&actor, "a.txt", pieces(vec![text(400), text(600), Piece::Finish(1_000)])).await.unwrap();
    assert_eq!((kept.size, kept.content_type.as_str()), (1_000, "text/plain; charset=utf-8"));
    assert_eq!(files(&dir.path().join("blobs")), 1);
    assert_eq!(files(&dir.path().join("spool")), 0, "the spool file is gone once stored");
}
