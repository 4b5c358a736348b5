//! The upload protocol on the domain: only a stream that ends with its
//! `finish` (and the size it sent) is kept; anything else leaves no trace.

#![allow(clippy::unwrap_used)] // a panic is how a test fails

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chatterbox_errors::{Code, Error};
use chatterbox_identity::Actor;
use chatterbox_media::domain::Piece;
use chatterbox_media::{ConversationAccess, DiskBlobStore, Media, MediaSettings, SqliteMediaStore, Standing};
use chatterbox_types::{ConversationId, UserId};

/// Nobody takes part in anything.
#[derive(Debug)]
struct Nobody;

#[async_trait::async_trait]
impl ConversationAccess for Nobody {
    async fn check(&self, _actor: &Actor, _conversation: ConversationId) -> Result<Standing, Error> {
        Err(Error::not_found("conversation not found"))
    }

    async fn record_activity(&self, _: &Actor, _: ConversationId, _: chatterbox_types::Timestamp) -> Result<(), Error> {
        Err(Error::not_found("conversation not found"))
    }

    async fn mentionable(&self, _: &Actor, _: ConversationId, _: &[String]) -> Result<Vec<(String, UserId)>, Error> {
        Err(Error::not_found("conversation not found"))
    }

    async fn conversations(&self, _: &Actor) -> Result<Vec<ConversationId>, Error> {
        Ok(Vec::new())
    }
}

fn files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| if e.path().is_dir() { files(&e.path()) } else { 1 }).sum())
        .unwrap_or(0)
}

fn media(dir: &std::path::Path) -> Arc<Media> {
    media_with(dir, |_| {})
}

fn media_with(dir: &std::path::Path, tweak: impl FnOnce(&mut MediaSettings)) -> Arc<Media> {
    let mut settings = MediaSettings {
        max_bytes: 1_000,
        url_ttl: Duration::from_secs(60),
        spool_dir: dir.join("spool"),
        quota_bytes: 0,
        min_free_bytes: 0,
        unattached_grace: Duration::from_secs(3_600),
    };
    tweak(&mut settings);
    let blobs = Arc::new(DiskBlobStore::open(&dir.join("blobs")).unwrap());
    Arc::new(Media::new(Arc::new(SqliteMediaStore::in_memory().unwrap()), blobs, Arc::new(Nobody), settings).unwrap())
}

fn upload_of(n: usize) -> impl futures::Stream<Item = Result<Piece, Error>> + Unpin {
    pieces(vec![text(n), Piece::Finish(n as u64)])
}

#[tokio::test]
async fn a_user_may_keep_uploads_up_to_the_quota_and_others_are_not_affected() {
    let dir = tempfile::tempdir().unwrap();
    let media = media_with(dir.path(), |s| s.quota_bytes = 1_000);
    let (ann, bob) =
        (Actor { id: UserId::generate(), token: "a".into() }, Actor { id: UserId::generate(), token: "b".into() });
    media.upload(&ann, "a.txt", upload_of(600)).await.unwrap();
    let refused = media.upload(&ann, "b.txt", upload_of(500)).await.unwrap_err();
    assert_eq!(refused.code(), Code::PayloadTooLarge, "{refused:?}");
    assert!(refused.message().contains("1000"), "{refused}");
    assert_eq!(files(&dir.path().join("blobs")), 1, "nothing of the refused upload is kept");
    assert_eq!(files(&dir.path().join("spool")), 0);
    media.upload(&ann, "c.txt", upload_of(400)).await.unwrap();
    media.upload(&bob, "d.txt", upload_of(900)).await.unwrap();
}

#[tokio::test]
async fn uploads_are_refused_while_the_disk_is_nearly_full() {
    let dir = tempfile::tempdir().unwrap();
    // A floor no disk here reaches.
    let media = media_with(dir.path(), |s| s.min_free_bytes = u64::MAX);
    let actor = Actor { id: UserId::generate(), token: "t".into() };
    let refused = media.upload(&actor, "a.txt", upload_of(10)).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable);
    assert!(refused.message().contains("disk space"), "{refused}");
    assert_eq!(files(dir.path()), 0);
    // With a floor the disk is above, the same upload goes through.
    let media = media_with(dir.path(), |s| s.min_free_bytes = 1);
    media.upload(&actor, "a.txt", upload_of(10)).await.unwrap();
}

/// A small PNG, as an avatar would be.
fn png() -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(image::RgbImage::new(4, 4)).write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

#[tokio::test]
async fn uploads_attached_nowhere_are_removed_after_the_grace_period_and_free_the_quota() {
    let dir = tempfile::tempdir().unwrap();
    let media = media_with(dir.path(), |s| {
        s.unattached_grace = Duration::from_millis(300);
        s.quota_bytes = 1_000;
    });
    let actor = Actor { id: UserId::generate(), token: "t".into() };
    let conversation = ConversationId::generate();
    let sent = media.upload(&actor, "sent.txt", upload_of(400)).await.unwrap();
    let loose = media.upload(&actor, "loose.txt", upload_of(400)).await.unwrap();
    let picture = png();
    let size = picture.len() as u64;
    assert!(size < 150, "{size}");
    let avatar = media.upload(&actor, "me.png", pieces(vec![Piece::Chunk(Bytes::from(picture)), Piece::Finish(size)]));
    let avatar = avatar.await.unwrap();
    media.use_as_avatar(&actor, avatar.id).await.unwrap();
    media.attach(&actor, conversation, &[sent.id], false).await.unwrap();
    // Too young: nothing goes (an original each, and the avatar's thumbnail).
    assert_eq!(media.sweep_unattached().await.unwrap(), 0);
    assert_eq!(files(&dir.path().join("blobs")), 4);
    tokio::time::sleep(Duration::from_millis(400)).await;
    // Past the grace period the loose one goes; the attached one and the avatar stay.
    assert_eq!(media.sweep_unattached().await.unwrap(), 1);
    assert_eq!(files(&dir.path().join("blobs")), 3);
    let removed = media.attach(&actor, conversation, &[loose.id], false).await.unwrap_err();
    assert_eq!(removed.code(), Code::InvalidArgument, "a removed upload cannot be attached");
    assert_eq!(media.attach(&actor, conversation, &[sent.id], false).await.unwrap().len(), 1);
    // The quota counts what is kept: 400 + the avatar (under 150), room for 400 more.
    media.upload(&actor, "more.txt", upload_of(400)).await.unwrap();
    // A deleted message's files go the same way (and the unsent one with them).
    media.detach(&actor, conversation, &[sent.id]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(media.sweep_unattached().await.unwrap(), 2);
    assert_eq!(files(&dir.path().join("blobs")), 2, "the avatar and its thumbnail");
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
