//! One suite for every media metadata store: SQLite and MongoDB (FerretDB).

#![allow(clippy::unwrap_used)] // a panic is how a test fails

use std::sync::Arc;

use chatterbox_media::store::MediaRecord;
use chatterbox_media::{MediaStore, MongoMediaStore, SqliteMediaStore};
use chatterbox_types::{ConversationId, Timestamp, UserId};

#[derive(Debug, Clone, Copy)]
enum Backend {
    Sqlite,
    Mongo,
}

async fn store(backend: Backend) -> Arc<dyn MediaStore> {
    match backend {
        Backend::Sqlite => Arc::new(SqliteMediaStore::in_memory().unwrap()),
        Backend::Mongo => Arc::new(
            MongoMediaStore::connect(&chatterbox_testkit::mongodb_uri(), &chatterbox_testkit::fresh_database_name())
                .await
                .unwrap(),
        ),
    }
}

chatterbox_testkit::conformance! {
    make: crate::store;
    backends: [sqlite => crate::Backend::Sqlite, mongodb => crate::Backend::Mongo];
    tests: [records_round_trip, attachments_are_recorded_once_per_conversation, media_can_be_made_public,];
}

fn record(uploader: UserId, image: bool) -> MediaRecord {
    MediaRecord {
        id: ulid::Ulid::new(),
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
    assert_eq!(store.get(ulid::Ulid::new()).await.unwrap(), None);
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
    assert!(!store.make_public(ulid::Ulid::new()).await.unwrap());
}
