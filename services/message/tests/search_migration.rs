//! Messages stored before search existed are found once a store of this
//! version opens their data: SQLite indexes them on open (once per file),
//! MongoDB in the background after connecting. SQLite indexes appends a
//! little behind them: what a crash left unindexed is indexed on open.
#![allow(clippy::unwrap_used)] // a panic is how a test fails

mod support;

use std::time::{Duration, Instant};

use chatterbox_message::search::SearchQuery;
use chatterbox_message::{MessageStore, MongoMessageStore, SqliteMessageStore};
use chatterbox_types::{ConversationId, MessageId, UserId};
use mongodb::bson::doc;

use support::text;

fn terms(q: &str) -> Vec<String> {
    SearchQuery::parse(q).terms
}

#[tokio::test]
async fn sqlite_indexes_the_messages_of_an_older_file_when_it_opens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("message.sqlite3");
    let (c, u) = (ConversationId::generate(), UserId::generate());
    {
        let store = SqliteMessageStore::open(&path).unwrap();
        for content in ["Crème brûlée", "old news"] {
            store.append(&text(c, u, content)).await.unwrap();
        }
        // Indexed (a search catches up first), so nothing is left to do in the background.
        assert_eq!(store.search(&terms("news"), &[c], None, 10).await.unwrap().len(), 1);
    }
    // As a file of the version before search: no terms, no migration done.
    let older = rusqlite::Connection::open(&path).unwrap();
    older.busy_timeout(Duration::from_secs(5)).unwrap();
    older.execute_batch("DELETE FROM message_terms; DELETE FROM migrations; DELETE FROM search_progress;").unwrap();
    drop(older);
    let store = SqliteMessageStore::open(&path).unwrap();
    let found = store.search(&terms("creme"), &[c], None, 10).await.unwrap();
    assert_eq!(found.iter().map(|m| m.content.as_str()).collect::<Vec<_>>(), ["Crème brûlée"]);
    // Once: a second open finds the migration done (and the index intact).
    drop(store);
    let store = SqliteMessageStore::open(&path).unwrap();
    assert_eq!(store.search(&terms("news"), &[c], None, 10).await.unwrap().len(), 1);
}

#[test]
fn sqlite_indexes_on_open_what_a_crash_left_unindexed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("message.sqlite3");
    let (c, u) = (ConversationId::generate(), UserId::generate());
    let runtime = || tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let first = runtime();
    first.block_on(async {
        let store = SqliteMessageStore::open(&path).unwrap();
        store.append(&text(c, u, "Crème brûlée")).await.unwrap();
        store.append(&text(c, u, "gone soon")).await.unwrap();
    });
    // The runtime ends before the indexing that follows appends can run:
    // what a crash right after the acknowledgements leaves.
    drop(first);
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.busy_timeout(Duration::from_secs(5)).unwrap();
    let upto: i64 = raw.query_row("SELECT upto FROM search_progress", [], |r| r.get(0)).unwrap();
    assert_eq!(upto, 0, "nothing indexed yet");
    // A message deleted meanwhile (as the tombstone a deletion leaves) is not indexed.
    raw.execute("UPDATE messages SET content = '', deleted = 1 WHERE content = 'gone soon'", []).unwrap();
    drop(raw);
    runtime().block_on(async {
        let store = SqliteMessageStore::open(&path).unwrap();
        let found = store.search(&terms("creme"), &[c], None, 10).await.unwrap();
        assert_eq!(found.iter().map(|m| m.content.as_str()).collect::<Vec<_>>(), ["Crème brûlée"]);
        assert!(store.search(&terms("gone"), &[c], None, 10).await.unwrap().is_empty());
    });
    let raw = rusqlite::Connection::open(&path).unwrap();
    let (upto, last): (i64, i64) = raw
        .query_row("SELECT upto, (SELECT MAX(rowid) FROM messages) FROM search_progress", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(upto, last, "caught up on open");
}

#[tokio::test]
async fn mongodb_indexes_older_messages_in_the_background() {
    let uri = chatterbox_testkit::mongodb_uri();
    let name = chatterbox_testkit::fresh_database_name();
    let db = chatterbox_store::mongo_database(&uri, &name).await.unwrap();
    let (c, u) = (ConversationId::generate(), UserId::generate());
    // A document as the version before search wrote it: no `terms`.
    let older = |seq: i64, content: &str, deleted: bool| {
        doc! {
            "_id": MessageId::generate().to_string(), "conversation_id": c.to_string(), "seq": seq,
            "sender_id": u.to_string(), "kind": "text", "content": content, "attachments": [],
            "client_id": null, "client_key": format!("m:{seq}"), "created_at": 1_000_i64, "edited_at": null,
            "deleted": deleted, "created_change": seq, "change_seq": seq,
        }
    };
    db.collection::<mongodb::bson::Document>("messages")
        .insert_many([older(1, "Crème brûlée", false), older(2, "", true)])
        .await
        .unwrap();
    let store = MongoMessageStore::with_database(db).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = store.search(&terms("creme"), &[c], None, 10).await.unwrap();
        if !found.is_empty() {
            assert_eq!(found[0].content, "Crème brûlée");
            break;
        }
        assert!(Instant::now() < deadline, "older messages were not indexed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
