//! One suite for every media metadata store: SQLite and MongoDB (FerretDB).

#![allow(clippy::unwrap_used)] // a panic is how a test fails

use chatterbox_testkit::Backing;
use std::sync::Arc;

use chatterbox_media::store::MediaRecord;
use chatterbox_media::{MediaStore, MongoMediaStore, SqliteMediaStore};
use chatterbox_types::{ConversationId, MediaId, Timestamp, UserId};

async fn store(backing: Backing) -> Arc<dyn MediaStore> {
    match backing {
        Backing::InProcess => Arc::new(SqliteMediaStore::in_memory().unwrap()),
        Backing::TestServer => Arc::new(
            MongoMediaStore::connect(&chatterbox_testkit::mongodb_uri(), &chatterbox_testkit::fresh_database_name())
                .await
                .unwrap(),
        ),
    }
}

chatterbox_testkit::conformance! {
    make: crate::store;
    names: [sqlite, mongodb];
    tests: [records_round_trip, attachments_are_recorded_once_per_conversation, media_can_be_made_public,
        an_uploaders_bytes_are_summed,
        a_scan_finds_old_media_attached_nowhere_page_by_page,
        only_media_attached_nowhere_is_removed,];
}

fn record(uploader: UserId, image: bool) -> MediaRecord {
    MediaRecord {
        id: MediaId::generate(),
        uploader,
        content_type: if image { "image/png".into() } else { "application/pdf".into() },
        size: 12_345,
        filename: "r\u{e9}sum\u{e9}.pdf".into(),
        width: image.then_some(640),
        height: image.then_some(480),
        has_thumbnail: image,
        public: false,
        created_at: Timestamp::from_millis(1_700_000_000_123),
    }
}

async fn records_round_trip(store: Arc<dyn MediaStore>) {
    let user = UserId::generate();
    for m in [record(user, true), record(user, false)] {
        store.insert(&m).await.unwrap();
        assert_eq!(store.get(m.id).await.unwrap(), Some(m));
    }
    assert_eq!(store.get(MediaId::generate()).await.unwrap(), None);
}

async fn attachments_are_recorded_once_per_conversation(store: Arc<dyn MediaStore>) {
    let user = UserId::generate();
    let (a, b) = (record(user, true), record(user, false));
    store.insert(&a).await.unwrap();
    store.insert(&b).await.unwrap();
    let (one, two) = (ConversationId::generate(), ConversationId::generate());
    assert!(store.attached_in(a.id).await.unwrap().is_empty());
    store.attach(&[a.id, b.id], one).await.unwrap();
    store.attach(&[a.id], one).await.unwrap();
    store.attach(&[a.id], two).await.unwrap();
    let mut expected = vec![one, two];
    expected.sort();
    assert_eq!(store.attached_in(a.id).await.unwrap(), expected);
    assert_eq!(store.attached_in(b.id).await.unwrap(), [one]);
    store.detach(&[a.id, b.id], one).await.unwrap();
    store.detach(&[a.id], one).await.unwrap();
    assert_eq!(store.attached_in(a.id).await.unwrap(), [two], "only that conversation");
    assert!(store.attached_in(b.id).await.unwrap().is_empty());
}

async fn media_can_be_made_public(store: Arc<dyn MediaStore>) {
    let m = record(UserId::generate(), true);
    store.insert(&m).await.unwrap();
    assert!(store.make_public(m.id).await.unwrap());
    assert!(store.get(m.id).await.unwrap().unwrap().public);
    assert!(!store.make_public(MediaId::generate()).await.unwrap());
}

async fn an_uploaders_bytes_are_summed(store: Arc<dyn MediaStore>) {
    let (ann, bob) = (UserId::generate(), UserId::generate());
    assert_eq!(store.bytes_of(ann).await.unwrap(), 0);
    for size in [100, 250] {
        store.insert(&MediaRecord { size, ..record(ann, false) }).await.unwrap();
    }
    store.insert(&MediaRecord { size: 7, ..record(bob, false) }).await.unwrap();
    assert_eq!(store.bytes_of(ann).await.unwrap(), 350);
    assert_eq!(store.bytes_of(bob).await.unwrap(), 7);
}

async fn a_scan_finds_old_media_attached_nowhere_page_by_page(store: Arc<dyn MediaStore>) {
    let user = UserId::generate();
    let at = |ms: i64| MediaRecord { created_at: Timestamp::from_millis(ms), ..record(user, false) };
    // Five old uploads (two attached, one public) and one too recent.
    let old: Vec<MediaRecord> = (1..=5).map(|n| at(1_000 * n)).collect();
    for m in &old {
        store.insert(m).await.unwrap();
    }
    let recent = at(9_000);
    store.insert(&recent).await.unwrap();
    store.attach(&[old[1].id, old[3].id], ConversationId::generate()).await.unwrap();
    assert!(store.make_public(old[4].id).await.unwrap());
    let before = Timestamp::from_millis(8_000);
    let mut found = Vec::new();
    let mut after = None;
    let mut pages = 0;
    loop {
        let page = store.unattached(before, after, 2).await.unwrap();
        found.extend(page.ids);
        pages += 1;
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
        assert!(pages < 10, "the scan ends");
    }
    assert_eq!(found, [old[0].id, old[2].id], "oldest first, attached, public and recent ones left out");
}

async fn only_media_attached_nowhere_is_removed(store: Arc<dyn MediaStore>) {
    let user = UserId::generate();
    let (loose, attached, public) = (record(user, false), record(user, false), record(user, true));
    for m in [&loose, &attached, &public] {
        store.insert(m).await.unwrap();
    }
    store.attach(&[attached.id], ConversationId::generate()).await.unwrap();
    store.make_public(public.id).await.unwrap();
    assert!(store.remove_unattached(loose.id).await.unwrap());
    assert!(!store.remove_unattached(loose.id).await.unwrap(), "already gone");
    assert!(!store.remove_unattached(attached.id).await.unwrap());
    assert!(!store.remove_unattached(public.id).await.unwrap());
    assert_eq!(store.get(loose.id).await.unwrap(), None);
    assert!(store.get(attached.id).await.unwrap().is_some());
    assert_eq!(store.bytes_of(user).await.unwrap(), 2 * 12_345);
}
