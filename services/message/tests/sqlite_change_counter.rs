//! SQLite keeps each conversation's change counter in its messages (the
//! highest `change_seq`), not in a table of its own: numbers go on rising
//! across edits, appends and reopening, also for a file of the version
//! that kept the table, and taking one is an index lookup.
#![allow(clippy::unwrap_used)] // a panic is how a test fails

mod support;

use std::time::Duration;

use chatterbox_message::{MessageStore, SqliteMessageStore};
use chatterbox_types::{ConversationId, Timestamp, UserId};

use support::text;

#[tokio::test]
async fn change_numbers_keep_rising_across_reopening_a_file_that_kept_a_counter_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("message.sqlite3");
    let (c, other, u) = (ConversationId::generate(), ConversationId::generate(), UserId::generate());
    let (first, second) = {
        let store = SqliteMessageStore::open(&path).unwrap();
        let (first, _) = store.append(&text(c, u, "one")).await.unwrap();
        let (second, _) = store.append(&text(c, u, "two")).await.unwrap();
        // Another conversation counts on its own.
        let (elsewhere, _) = store.append(&text(other, u, "elsewhere")).await.unwrap();
        assert_eq!((first.change_seq, second.change_seq, elsewhere.change_seq), (1, 2, 1));
        let edited = store.edit(first.id, "one, edited", &[], Timestamp::now()).await.unwrap().unwrap();
        assert_eq!(edited.change_seq, 3);
        (first, second)
    };
    // As a file of the version that also kept the counter in a table.
    let older = rusqlite::Connection::open(&path).unwrap();
    older.busy_timeout(Duration::from_secs(5)).unwrap();
    older
        .execute_batch(&format!(
            "CREATE TABLE change_counters (conversation_id TEXT PRIMARY KEY, change_seq INTEGER NOT NULL);
             INSERT INTO change_counters VALUES ('{c}', 3), ('{other}', 1);"
        ))
        .unwrap();
    drop(older);
    let store = SqliteMessageStore::open(&path).unwrap();
    let deleted = store.delete(second.id).await.unwrap().unwrap();
    assert_eq!(deleted.change_seq, 4);
    // The tombstone keeps its number (the conversation's highest): the
    // counter goes on from it.
    let (third, _) = store.append(&text(c, u, "three")).await.unwrap();
    assert_eq!((third.created_change, third.change_seq), (5, 5));
    let edited = store.edit(first.id, "one, again", &[], Timestamp::now()).await.unwrap().unwrap();
    assert_eq!(edited.change_seq, 6);
    drop(store);
    let raw = rusqlite::Connection::open(&path).unwrap();
    let table: bool = raw
        .query_row("SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'change_counters')", [], |r| r.get(0))
        .unwrap();
    assert!(!table, "the old counter table is dropped");
    // Taking a number reads the end of the index, not the conversation's rows.
    let plan: String = raw
        .query_row(
            "EXPLAIN QUERY PLAN SELECT COALESCE(MAX(change_seq), 0) + 1 FROM messages WHERE conversation_id = ?1",
            [c.to_string()],
            |r| r.get(3),
        )
        .unwrap();
    assert!(plan.contains("COVERING INDEX messages_by_change"), "{plan}");
}
