//! One suite for every message store: SQLite and MongoDB (FerretDB in tests).

#![allow(clippy::unwrap_used)] // a panic is how a test fails

use chatterbox_testkit::Backing;
use std::sync::Arc;

use chatterbox_message::store::{MentionCursor, NewMessage, PinCursor, Reacted, ReactionCount, Window};
use chatterbox_message::{MessageStore, MongoMessageStore, SqliteMessageStore};
use chatterbox_types::{ConversationId, MessageId, Timestamp, UserId};

async fn store(backing: Backing) -> Arc<dyn MessageStore> {
    match backing {
        Backing::InProcess => Arc::new(SqliteMessageStore::in_memory().unwrap()),
        Backing::TestServer => Arc::new(
            MongoMessageStore::connect(&chatterbox_testkit::mongodb_uri(), &chatterbox_testkit::fresh_database_name())
                .await
                .unwrap(),
        ),
    }
}

chatterbox_testkit::conformance! {
    make: crate::store;
    names: [sqlite, mongodb];
    tests: [appends_number_each_conversation_from_one,
    concurrent_appends_get_distinct_consecutive_seqs,
    a_repeated_client_id_returns_the_stored_message,
    windows_read_history_in_ascending_seq,
    edits_and_deletions_take_new_change_positions,
    concurrent_writes_to_one_conversation_take_distinct_change_positions,
    unread_counts_skip_own_and_deleted_messages,
    watermarks_only_move_up,
    concurrent_read_marks_of_one_reader_keep_the_highest,
    changes_list_what_changed_among_seen_messages_in_order,
    imports_continue_the_numbering_in_order,
    a_page_holds_its_window_and_the_watermarks,
    a_known_history_version_moves_with_every_write_to_its_conversation,
    reactions_toggle_once_each_in_order_of_first_use_and_move_the_change_position,
    at_most_the_allowed_distinct_reactions_and_none_on_deleted_messages,
    concurrent_reactions_of_many_users_are_all_counted,
    replies_keep_what_they_answer_and_are_counted_and_listed_in_order,
    pins_change_once_are_listed_most_recent_first_and_go_with_a_deletion,
    mentions_are_counted_above_a_watermark_and_listed_newest_first,
    search_finds_live_messages_holding_every_term_in_the_given_conversations_newest_first,
    a_summary_and_the_marks_of_many_conversations_read_as_their_parts,];
}

async fn imports_continue_the_numbering_in_order(store: Arc<dyn MessageStore>) {
    let (c, u) = (ConversationId::generate(), UserId::generate());
    store.append(&new(c, u, "live", None)).await.unwrap();
    let batch: Vec<NewMessage> = (1..=50).map(|n| new(c, u, &format!("old{n}"), None)).collect();
    store.import(c, &batch).await.unwrap();
    let (after, _) = store.append(&new(c, u, "next", None)).await.unwrap();
    assert_eq!(after.seq, 52);
    let all = store.list(c, Window::After(0), 100).await.unwrap();
    let seqs: Vec<u64> = all.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, (1..=52).collect::<Vec<_>>());
    assert_eq!(all[1].content, "old1");
    assert_eq!(all[50].content, "old50");
}

/// Stores that can know every write (SQLite) give a version that moves
/// with each kind of write, before it is acknowledged; others give none.
async fn a_known_history_version_moves_with_every_write_to_its_conversation(store: Arc<dyn MessageStore>) {
    let (c, u) = (ConversationId::generate(), UserId::generate());
    let Some(mut seen) = store.history_version(c) else {
        assert_eq!(store.history_version(c), None, "a store knows versions always or never");
        return;
    };
    let mut moved = |what: &str| {
        let now = store.history_version(c).unwrap();
        assert_ne!(now, seen, "{what} must move the version");
        seen = now;
    };
    let (m, _) = store.append(&new(c, u, "hi", None)).await.unwrap();
    moved("an append");
    store.edit(m.id, "hello", &[], Timestamp::now()).await.unwrap().unwrap();
    moved("an edit");
    store.mark_read(c, UserId::generate(), 1, Timestamp::now()).await.unwrap();
    moved("a read watermark");
    store.delete(m.id).await.unwrap().unwrap();
    moved("a deletion");
    store.import(c, &[new(c, u, "old", None)]).await.unwrap();
    moved("an import");
    let (r, _) = store.append(&new(c, u, "react", None)).await.unwrap();
    moved("an append");
    store.react(r.id, u, "👍", true, Timestamp::now(), 20).await.unwrap();
    moved("a reaction");
    store.react(r.id, u, "👍", false, Timestamp::now(), 20).await.unwrap();
    moved("a reaction taken back");
    // Reads move nothing.
    store.page(c, Window::Latest, 50).await.unwrap();
    assert_eq!(store.history_version(c), Some(seen));
}

fn new(conversation: ConversationId, sender: UserId, content: &str, client_id: Option<&str>) -> NewMessage {
    NewMessage {
        id: MessageId::generate(),
        conversation_id: conversation,
        sender_id: sender,
        kind: chatterbox_types::MessageKind::Text,
        content: content.into(),
        attachments: Vec::new(),
        client_id: client_id.map(str::to_owned),
        created_at: Timestamp::from_millis(1_000),
        reply_to: None,
        mentions: Vec::new(),
    }
}

async fn appends_number_each_conversation_from_one(store: Arc<dyn MessageStore>) {
    let (a, b, u) = (ConversationId::generate(), ConversationId::generate(), UserId::generate());
    let (m1, created) = store.append(&new(a, u, "a1", None)).await.unwrap();
    assert!(created);
    assert_eq!(m1.seq, 1);
    assert_eq!(store.append(&new(a, u, "a2", None)).await.unwrap().0.seq, 2);
    assert_eq!(store.append(&new(b, u, "b1", None)).await.unwrap().0.seq, 1);
    assert_eq!(store.get(m1.id).await.unwrap(), Some(m1));
    assert_eq!(store.latest(a).await.unwrap().unwrap().content, "a2");
}

async fn concurrent_appends_get_distinct_consecutive_seqs(store: Arc<dyn MessageStore>) {
    let c = ConversationId::generate();
    let tasks = (0..25).map(|n| {
        let store = store.clone();
        tokio::spawn(
            async move { store.append(&new(c, UserId::generate(), &format!("m{n}"), None)).await.unwrap().0.seq },
        )
    });
    let mut seqs: Vec<u64> = futures::future::join_all(tasks).await.into_iter().map(Result::unwrap).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=25).collect::<Vec<_>>());
}

async fn a_repeated_client_id_returns_the_stored_message(store: Arc<dyn MessageStore>) {
    let (c, u) = (ConversationId::generate(), UserId::generate());
    let (first, _) = store.append(&new(c, u, "hi", Some("k"))).await.unwrap();
    let (again, created) = store.append(&new(c, u, "hi", Some("k"))).await.unwrap();
    assert!(!created);
    assert_eq!(again, first);
    let (other, created) = store.append(&new(c, UserId::generate(), "hi", Some("k"))).await.unwrap();
    assert!(created);
    assert_eq!(other.seq, 2);
}

async fn windows_read_history_in_ascending_seq(store: Arc<dyn MessageStore>) {
    let (c, u) = (ConversationId::generate(), UserId::generate());
    for n in 1..=6 {
        store.append(&new(c, u, &format!("m{n}"), None)).await.unwrap();
    }
    let seqs = |ms: Vec<chatterbox_message::store::Message>| ms.into_iter().map(|m| m.seq).collect::<Vec<_>>();
    assert_eq!(seqs(store.list(c, Window::Latest, 2).await.unwrap()), [5, 6]);
    assert_eq!(seqs(store.list(c, Window::Before(5), 2).await.unwrap()), [3, 4]);
    assert_eq!(seqs(store.list(c, Window::After(4), 10).await.unwrap()), [5, 6]);
    assert!(store.list(ConversationId::generate(), Window::Latest, 5).await.unwrap().is_empty());
}

async fn edits_and_deletions_take_new_change_positions(store: Arc<dyn MessageStore>) {
    let (c, u) = (ConversationId::generate(), UserId::generate());
    let (m, _) = store.append(&new(c, u, "draft", None)).await.unwrap();
    let edited = store.edit(m.id, "final", &[], Timestamp::from_millis(2_000)).await.unwrap().unwrap();
    assert_eq!(edited.content, "final");
    assert_eq!(edited.edited_at, Some(Timestamp::from_millis(2_000)));
    assert!(edited.change_seq > m.change_seq);
    assert_eq!(edited.created_change, m.created_change);
    let deleted = store.delete(m.id).await.unwrap().unwrap();
    assert!(deleted.deleted && deleted.content.is_empty() && deleted.attachments.is_empty());
    assert_eq!(deleted.seq, m.seq);
    assert!(deleted.change_seq > edited.change_seq);
    assert_eq!(store.delete(m.id).await.unwrap().unwrap(), deleted, "deleting twice changes nothing");
    assert_eq!(store.edit(m.id, "zombie", &[], Timestamp::from_millis(3_000)).await.unwrap(), None);
    assert_eq!(store.delete(MessageId::generate()).await.unwrap(), None);
}

/// Appends, edits and deletions in one conversation at the same time each
/// take a change position of their own, and a deletion racing an edit of
/// the same message stays a deletion.
async fn concurrent_writes_to_one_conversation_take_distinct_change_positions(store: Arc<dyn MessageStore>) {
    let (c, u) = (ConversationId::generate(), UserId::generate());
    let mut earlier = Vec::new();
    for n in 0..8 {
        earlier.push(store.append(&new(c, u, &format!("m{n}"), None)).await.unwrap().0);
    }
    let mut writes = Vec::new();
    for (n, m) in earlier.iter().enumerate() {
        let (racer, id) = (store.clone(), m.id);
        writes.push(tokio::spawn(async move {
            let (edit, delete) =
                tokio::join!(racer.edit(id, "edited", &[], Timestamp::from_millis(5_000)), racer.delete(id));
            edit.unwrap();
            delete.unwrap().unwrap();
        }));
        let store = store.clone();
        writes.push(tokio::spawn(async move {
            store.append(&new(c, u, &format!("new{n}"), None)).await.unwrap();
        }));
    }
    for write in writes {
        write.await.unwrap();
    }
    let all = store.list(c, Window::After(0), 100).await.unwrap();
    assert_eq!(all.len(), 16);
    let mut changes: Vec<u64> = all.iter().map(|m| m.change_seq).collect();
    changes.sort_unstable();
    changes.dedup();
    assert_eq!(changes.len(), 16, "every message's last change has a position of its own: {all:?}");
    for m in &all[..8] {
        assert!(m.deleted && m.content.is_empty(), "a deletion stays one: {m:?}");
    }
}

async fn unread_counts_skip_own_and_deleted_messages(store: Arc<dyn MessageStore>) {
    let (c, me, them) = (ConversationId::generate(), UserId::generate(), UserId::generate());
    store.append(&new(c, them, "1", None)).await.unwrap();
    store.append(&new(c, me, "2", None)).await.unwrap();
    let (gone, _) = store.append(&new(c, them, "3", None)).await.unwrap();
    store.append(&new(c, them, "4", None)).await.unwrap();
    store.delete(gone.id).await.unwrap();
    assert_eq!(store.count_unread(c, me, 0).await.unwrap(), 2);
    assert_eq!(store.count_unread(c, me, 1).await.unwrap(), 1);
    assert_eq!(store.count_unread(c, them, 0).await.unwrap(), 1);
}

/// Two devices of one reader marking at once (as a phone and a laptop do):
/// whatever order the writes land in, the watermark ends at the highest.
async fn concurrent_read_marks_of_one_reader_keep_the_highest(store: Arc<dyn MessageStore>) {
    for round in 0..5u64 {
        let (c, u) = (ConversationId::generate(), UserId::generate());
        let marks = (1..=20u64).map(|seq| {
            let store = store.clone();
            // Interleaved: high and low seqs race.
            let seq = if seq % 2 == 0 { seq } else { 21 - seq };
            tokio::spawn(async move { store.mark_read(c, u, seq + round, Timestamp::from_millis(seq as i64)).await })
        });
        for mark in futures::future::join_all(marks).await {
            mark.unwrap().unwrap();
        }
        let kept: Vec<u64> = store.read_marks(c).await.unwrap().into_iter().map(|m| m.seq).collect();
        assert_eq!(kept, [20 + round], "round {round}: the highest mark is kept");
    }
}

async fn watermarks_only_move_up(store: Arc<dyn MessageStore>) {
    let (c, u) = (ConversationId::generate(), UserId::generate());
    let first = store.mark_read(c, u, 3, Timestamp::from_millis(10)).await.unwrap();
    assert_eq!((first.seq, first.read_at), (3, Timestamp::from_millis(10)));
    let lower = store.mark_read(c, u, 2, Timestamp::from_millis(20)).await.unwrap();
    assert_eq!((lower.seq, lower.read_at), (3, Timestamp::from_millis(10)));
    let higher = store.mark_read(c, u, 5, Timestamp::from_millis(30)).await.unwrap();
    assert_eq!((higher.seq, higher.read_at), (5, Timestamp::from_millis(30)));
    let other = UserId::generate();
    store.mark_read(c, other, 1, Timestamp::from_millis(40)).await.unwrap();
    let mut marks: Vec<(UserId, u64)> =
        store.read_marks(c).await.unwrap().into_iter().map(|m| (m.user_id, m.seq)).collect();
    marks.sort();
    let mut expected = vec![(u, 5), (other, 1)];
    expected.sort();
    assert_eq!(marks, expected);
}

async fn changes_list_what_changed_among_seen_messages_in_order(store: Arc<dyn MessageStore>) {
    let (c, u) = (ConversationId::generate(), UserId::generate());
    let mut ids = Vec::new();
    for n in 1..=4 {
        ids.push(store.append(&new(c, u, &format!("m{n}"), None)).await.unwrap().0.id);
    }
    // A reader saw up to seq 3. Then: 1 deleted, 2 edited, 4 edited (new to them).
    store.delete(ids[0]).await.unwrap();
    store.edit(ids[1], "m2'", &[], Timestamp::from_millis(2_000)).await.unwrap();
    store.edit(ids[3], "m4'", &[], Timestamp::from_millis(2_000)).await.unwrap();
    let changed = store.changes_since(c, 3, 0, 10).await.unwrap();
    let seen: Vec<(u64, bool, String)> = changed.iter().map(|m| (m.seq, m.deleted, m.content.clone())).collect();
    assert_eq!(seen, [(1, true, String::new()), (2, false, "m2'".into())]);
    let page = store.changes_since(c, 3, changed[0].change_seq, 10).await.unwrap();
    assert_eq!(page.len(), 1);
    // A reader who saw seq 4 gets all three changes, in the order they happened.
    let all: Vec<u64> = store.changes_since(c, 4, 0, 10).await.unwrap().iter().map(|m| m.seq).collect();
    assert_eq!(all, [1, 2, 4]);
}

async fn a_page_holds_its_window_and_the_watermarks(store: Arc<dyn MessageStore>) {
    let (c, u, reader) = (ConversationId::generate(), UserId::generate(), UserId::generate());
    for n in 1..=5 {
        store.append(&new(c, u, &format!("m{n}"), None)).await.unwrap();
    }
    store.mark_read(c, reader, 3, Timestamp::from_millis(10)).await.unwrap();
    let (messages, marks) = store.page(c, Window::Before(5), 3).await.unwrap();
    assert_eq!(messages.iter().map(|m| m.seq).collect::<Vec<_>>(), [2, 3, 4]);
    assert_eq!(marks.len(), 1);
    assert_eq!((marks[0].user_id, marks[0].seq), (reader, 3));
    let (empty, none) = store.page(ConversationId::generate(), Window::Latest, 5).await.unwrap();
    assert!(empty.is_empty() && none.is_empty());
}

/// Two instances (two processes in production, each with its own client)
/// sending the first messages of new conversations at the same moment: both
/// succeed, with distinct seqs (the change counter's creation races).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simultaneous_first_sends_from_two_instances_both_succeed_on_mongodb() {
    let database = chatterbox_testkit::fresh_database_name();
    let uri = chatterbox_testkit::mongodb_uri();
    let one = MongoMessageStore::connect(&uri, &database).await.unwrap();
    let two = MongoMessageStore::connect(&uri, &database).await.unwrap();
    let user = UserId::generate();
    let races = (0..40).map(|_| {
        let (one, two) = (one.clone(), two.clone());
        async move {
            let c = ConversationId::generate();
            let (first, second) = (new(c, user, "a", None), new(c, user, "b", None));
            let (a, b) = tokio::join!(one.append(&first), two.append(&second));
            let mut seqs = [a.unwrap().0.seq, b.unwrap().0.seq];
            seqs.sort_unstable();
            assert_eq!(seqs, [1, 2]);
        }
    });
    futures::future::join_all(races).await;
}

/// Two instances of the MongoDB store on one database (each its own client
/// and its own append turns, as two message-service processes have) append
/// to one conversation at once: the unique index alone keeps `seq` one per
/// message, from 1 with no gap, and a client's retry through the other
/// instance gets the original.
#[tokio::test]
async fn two_mongodb_instances_appending_at_once_number_every_message_once() {
    let (uri, database) = (chatterbox_testkit::mongodb_uri(), chatterbox_testkit::fresh_database_name());
    let first: Arc<dyn MessageStore> = Arc::new(MongoMessageStore::connect(&uri, &database).await.unwrap());
    let second: Arc<dyn MessageStore> = Arc::new(MongoMessageStore::connect(&uri, &database).await.unwrap());
    let (c, u) = (ConversationId::generate(), UserId::generate());
    let mut appends = Vec::new();
    for n in 0..60 {
        let store = if n % 2 == 0 { first.clone() } else { second.clone() };
        appends.push(tokio::spawn(async move {
            let client = format!("send-{n}");
            store.append(&new(c, u, &format!("m{n}"), Some(&client))).await.unwrap().0
        }));
    }
    let mut stored = Vec::new();
    for append in appends {
        stored.push(append.await.unwrap());
    }
    let mut seqs: Vec<u64> = stored.iter().map(|m| m.seq).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=60).collect::<Vec<_>>(), "every message once, no gap");

    // A retry through the other instance: the original, not a copy.
    let original = &stored[0];
    let (again, created) = second.append(&new(c, u, "m0", Some("send-0"))).await.unwrap();
    assert!(!created);
    assert_eq!((again.id, again.seq), (original.id, original.seq));
    assert_eq!(first.list(c, Window::After(0), 100).await.unwrap().len(), 60);
}

fn counts(found: &std::collections::HashMap<MessageId, Vec<ReactionCount>>, m: MessageId) -> Vec<(String, u64, bool)> {
    found.get(&m).map_or_else(Vec::new, |r| r.iter().map(|c| (c.emoji.clone(), c.count, c.me)).collect())
}

async fn reactions_toggle_once_each_in_order_of_first_use_and_move_the_change_position(store: Arc<dyn MessageStore>) {
    let (c, ann, bob) = (ConversationId::generate(), UserId::generate(), UserId::generate());
    let (m, _) = store.append(&new(c, ann, "react to me", None)).await.unwrap();
    let (other, _) = store.append(&new(c, ann, "quiet", None)).await.unwrap();
    let at = |ms: i64| Timestamp::from_millis(1_000 + ms);

    let Some(Reacted::Changed(after)) = store.react(m.id, bob, "🎉", true, at(1), 20).await.unwrap() else {
        panic!("a first reaction changes the message")
    };
    assert!(after.change_seq > m.change_seq, "a reaction takes a change position");
    assert!(matches!(store.react(m.id, bob, "🎉", true, at(2), 20).await.unwrap(), Some(Reacted::Unchanged(_))));
    store.react(m.id, ann, "👍", true, at(3), 20).await.unwrap();
    store.react(m.id, ann, "🎉", true, at(4), 20).await.unwrap();

    let seen_by_ann = store.reactions(&[m.id, other.id], ann).await.unwrap();
    assert_eq!(counts(&seen_by_ann, m.id), [("🎉".to_owned(), 2, true), ("👍".to_owned(), 1, true)]);
    assert!(!seen_by_ann.contains_key(&other.id), "a message without reactions is left out");
    let seen_by_bob = store.reactions(&[m.id], bob).await.unwrap();
    assert_eq!(counts(&seen_by_bob, m.id), [("🎉".to_owned(), 2, true), ("👍".to_owned(), 1, false)]);
    let reactors = store.reactors(m.id).await.unwrap();
    let reactors: Vec<(String, Vec<UserId>)> = reactors.into_iter().map(|r| (r.emoji, r.users)).collect();
    assert_eq!(reactors, [("🎉".to_owned(), vec![bob, ann]), ("👍".to_owned(), vec![ann])]);

    // Taken back: once.
    assert!(matches!(store.react(m.id, bob, "🎉", false, at(5), 20).await.unwrap(), Some(Reacted::Changed(_))));
    assert!(matches!(store.react(m.id, bob, "🎉", false, at(6), 20).await.unwrap(), Some(Reacted::Unchanged(_))));
    // 🎉 keeps its place (first used first) while anyone's 🎉 stands.
    let seen_by_bob = store.reactions(&[m.id], bob).await.unwrap();
    assert_eq!(counts(&seen_by_bob, m.id), [("🎉".to_owned(), 1, false), ("👍".to_owned(), 1, false)]);
    let reactors: Vec<String> = store.reactors(m.id).await.unwrap().into_iter().map(|r| r.emoji).collect();
    assert_eq!(reactors, ["🎉", "👍"], "events list them in the same order");
    // Gone altogether and back: it comes last.
    store.react(m.id, ann, "🎉", false, at(7), 20).await.unwrap();
    store.react(m.id, bob, "🎉", true, at(8), 20).await.unwrap();
    let seen_by_bob = store.reactions(&[m.id], bob).await.unwrap();
    assert_eq!(counts(&seen_by_bob, m.id), [("👍".to_owned(), 1, false), ("🎉".to_owned(), 1, true)]);

    // A reader who saw both messages learns the reacted one changed, in its final state.
    let changes = store.changes_since(c, 2, 0, 50).await.unwrap();
    assert_eq!(changes.iter().map(|x| x.id).collect::<Vec<_>>(), [m.id]);
    assert_eq!(store.react(MessageId::generate(), bob, "🎉", true, at(9), 20).await.unwrap(), None);
}

async fn at_most_the_allowed_distinct_reactions_and_none_on_deleted_messages(store: Arc<dyn MessageStore>) {
    let (c, ann, bob) = (ConversationId::generate(), UserId::generate(), UserId::generate());
    let (m, _) = store.append(&new(c, ann, "popular", None)).await.unwrap();
    let now = Timestamp::now();
    for code in ["a", "b", "c"] {
        let emoji = format!(":{code}:");
        assert!(matches!(store.react(m.id, ann, &emoji, true, now, 3).await.unwrap(), Some(Reacted::Changed(_))));
    }
    assert_eq!(store.react(m.id, ann, ":d:", true, now, 3).await.unwrap(), Some(Reacted::TooMany));
    // One already used may still be added by others.
    assert!(matches!(store.react(m.id, bob, ":a:", true, now, 3).await.unwrap(), Some(Reacted::Changed(_))));
    store.delete(m.id).await.unwrap();
    assert_eq!(store.react(m.id, bob, ":b:", true, now, 3).await.unwrap(), None, "a deleted message takes none");
    assert!(store.reactions(&[m.id], ann).await.unwrap().is_empty(), "its reactions went with it");
    assert!(store.reactors(m.id).await.unwrap().is_empty());
}

async fn concurrent_reactions_of_many_users_are_all_counted(store: Arc<dyn MessageStore>) {
    let c = ConversationId::generate();
    let (m, _) = store.append(&new(c, UserId::generate(), "vote", None)).await.unwrap();
    let users: Vec<UserId> = (0..24).map(|_| UserId::generate()).collect();
    // Everyone adds 👍 and ❤️ at once; every third takes ❤️ back at once.
    let adds = users.iter().flat_map(|u| {
        let store = store.clone();
        ["👍", "❤️"].map(move |e| {
            let store = store.clone();
            async move { store.react(m.id, *u, e, true, Timestamp::now(), 20).await.unwrap() }
        })
    });
    futures::future::join_all(adds).await;
    let removals = users.iter().step_by(3).map(|u| {
        let store = store.clone();
        async move { store.react(m.id, *u, "❤️", false, Timestamp::now(), 20).await.unwrap() }
    });
    futures::future::join_all(removals).await;
    let found = store.reactions(&[m.id], users[1]).await.unwrap();
    let mut got = counts(&found, m.id);
    got.sort();
    assert_eq!(got, [("❤️".to_owned(), 16, true), ("👍".to_owned(), 24, true)]);
    let changes = store.changes_since(c, 1, 0, 100).await.unwrap();
    assert_eq!(changes.len(), 1, "one message changed, listed once");
}

async fn replies_keep_what_they_answer_and_are_counted_and_listed_in_order(store: Arc<dyn MessageStore>) {
    let (c, ann, bob) = (ConversationId::generate(), UserId::generate(), UserId::generate());
    let (parent, _) = store.append(&new(c, ann, "question", None)).await.unwrap();
    let (other, _) = store.append(&new(c, ann, "aside", None)).await.unwrap();
    let reply = |who, text: &str| NewMessage { reply_to: Some(parent.id), ..new(c, who, text, None) };
    let mut answers = Vec::new();
    for (who, text) in [(bob, "a1"), (ann, "a2"), (bob, "a3")] {
        answers.push(store.append(&reply(who, text)).await.unwrap().0);
    }
    assert_eq!(answers[0].reply_to, Some(parent.id));
    assert_eq!(store.get(answers[0].id).await.unwrap().unwrap().reply_to, Some(parent.id));
    assert_eq!(store.get(other.id).await.unwrap().unwrap().reply_to, None);
    store.import(c, &[reply(bob, "imported")]).await.unwrap();

    let counts = store.reply_counts(&[parent.id, other.id, answers[0].id]).await.unwrap();
    assert_eq!(counts, [(parent.id, 4)].into_iter().collect());
    let first = store.replies(c, parent.id, 0, 2).await.unwrap();
    assert_eq!(first.iter().map(|m| m.content.as_str()).collect::<Vec<_>>(), ["a1", "a2"]);
    let rest = store.replies(c, parent.id, first[1].seq, 10).await.unwrap();
    assert_eq!(rest.iter().map(|m| m.content.as_str()).collect::<Vec<_>>(), ["a3", "imported"]);
    assert!(
        store.replies(ConversationId::generate(), parent.id, 0, 10).await.unwrap().is_empty(),
        "only in its conversation"
    );

    let mut found: Vec<MessageId> = store
        .get_many(&[parent.id, answers[2].id, MessageId::generate()])
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    found.sort();
    let mut expected = vec![parent.id, answers[2].id];
    expected.sort();
    assert_eq!(found, expected, "the ones that exist");
    assert!(store.get_many(&[]).await.unwrap().is_empty());
}

async fn pins_change_once_are_listed_most_recent_first_and_go_with_a_deletion(store: Arc<dyn MessageStore>) {
    let (c, u) = (ConversationId::generate(), UserId::generate());
    let mut m = Vec::new();
    for n in 0..4 {
        m.push(store.append(&new(c, u, &format!("m{n}"), None)).await.unwrap().0);
    }
    let at = |ms: i64| Some(Timestamp::from_millis(10_000 + ms));
    let (pinned, changed) = store.set_pin(m[1].id, at(1)).await.unwrap().unwrap();
    assert!(changed && pinned.pinned_at == at(1) && pinned.change_seq > m[1].change_seq);
    let (again, changed) = store.set_pin(m[1].id, at(5)).await.unwrap().unwrap();
    assert!(!changed, "already pinned");
    assert_eq!((again.pinned_at, again.change_seq), (at(1), pinned.change_seq), "the first pin stands");
    store.set_pin(m[3].id, at(2)).await.unwrap();
    store.set_pin(m[0].id, at(3)).await.unwrap();
    let order =
        |found: Vec<chatterbox_message::store::Message>| found.iter().map(|x| x.content.clone()).collect::<Vec<_>>();
    assert_eq!(order(store.pins(c, None, 10).await.unwrap()), ["m0", "m3", "m1"]);
    let first = store.pins(c, None, 2).await.unwrap();
    let last = first.last().unwrap();
    let after = PinCursor { pinned_at: last.pinned_at.unwrap(), id: last.id };
    assert_eq!(order(store.pins(c, Some(after), 10).await.unwrap()), ["m1"]);
    assert!(store.pins(ConversationId::generate(), None, 10).await.unwrap().is_empty());

    let (unpinned, changed) = store.set_pin(m[3].id, None).await.unwrap().unwrap();
    assert!(changed && unpinned.pinned_at.is_none());
    assert!(!store.set_pin(m[3].id, None).await.unwrap().unwrap().1, "already unpinned");
    // A seen message pinned since is among the changes.
    let changed: Vec<_> = store.changes_since(c, 4, 0, 50).await.unwrap().into_iter().map(|x| x.content).collect();
    assert_eq!(changed, ["m1", "m0", "m3"]);
    store.delete(m[0].id).await.unwrap();
    assert_eq!(order(store.pins(c, None, 10).await.unwrap()), ["m1"], "a deleted message is unpinned");
    assert_eq!(store.set_pin(m[0].id, at(9)).await.unwrap(), None, "and cannot be pinned");
    assert_eq!(store.set_pin(chatterbox_types::MessageId::generate(), at(9)).await.unwrap(), None);
}

/// Who a message mentions is kept with it, counted above a reader's
/// watermark (never the sender's own, never deleted ones), re-indexed by an
/// edit, and listed per user newest first across conversations.
async fn mentions_are_counted_above_a_watermark_and_listed_newest_first(store: Arc<dyn MessageStore>) {
    let (c, d) = (ConversationId::generate(), ConversationId::generate());
    let (ann, bob, cat) = (UserId::generate(), UserId::generate(), UserId::generate());
    let mentioning = |conversation, sender, text: &str, at: i64, who: Vec<UserId>| NewMessage {
        created_at: Timestamp::from_millis(at),
        mentions: who,
        ..new(conversation, sender, text, None)
    };
    let (m1, _) = store.append(&mentioning(c, ann, "@bob @cat", 1_000, vec![bob, cat])).await.unwrap();
    assert_eq!(m1.mentions, [bob, cat]);
    let (m2, _) = store.append(&mentioning(c, ann, "@bob", 2_000, vec![bob])).await.unwrap();
    store.append(&mentioning(c, bob, "@bob myself", 3_000, vec![bob])).await.unwrap();
    let (m4, _) = store.append(&mentioning(d, cat, "@bob elsewhere", 4_000, vec![bob])).await.unwrap();
    store.import(d, &[mentioning(d, ann, "@bob imported", 500, vec![bob])]).await.unwrap();
    assert_eq!(store.get(m2.id).await.unwrap().unwrap().mentions, [bob]);

    assert_eq!(store.count_mentions(c, bob, 0).await.unwrap(), 2, "not his own");
    assert_eq!(store.count_mentions(c, bob, 1).await.unwrap(), 1);
    assert_eq!(store.count_mentions(c, cat, 0).await.unwrap(), 1);
    assert_eq!(store.count_mentions(d, bob, 0).await.unwrap(), 2);

    let ids =
        |found: Vec<chatterbox_message::store::Message>| found.iter().map(|m| m.content.clone()).collect::<Vec<_>>();
    let all = store.mentioning(bob, None, 10).await.unwrap();
    assert_eq!(ids(all), ["@bob elsewhere", "@bob", "@bob @cat", "@bob imported"]);
    let after = MentionCursor { created_at: m4.created_at, id: m4.id };
    assert_eq!(ids(store.mentioning(bob, Some(after), 2).await.unwrap()), ["@bob", "@bob @cat"]);

    // An edit moves the mention from Bob to Cat; a deletion drops it.
    let edited = store.edit(m2.id, "@cat now", &[cat], Timestamp::from_millis(5_000)).await.unwrap().unwrap();
    assert_eq!(edited.mentions, [cat]);
    assert_eq!(store.count_mentions(c, bob, 0).await.unwrap(), 1);
    assert_eq!(store.count_mentions(c, cat, 0).await.unwrap(), 2);
    let deleted = store.delete(m1.id).await.unwrap().unwrap();
    assert!(deleted.mentions.is_empty());
    assert_eq!(store.count_mentions(c, bob, 0).await.unwrap(), 0);
    assert_eq!(ids(store.mentioning(cat, None, 10).await.unwrap()), ["@cat now"]);
}

/// Search finds the live messages of the given conversations holding every
/// term, newest first, from a cursor; edits re-index, deletions unindex.
async fn search_finds_live_messages_holding_every_term_in_the_given_conversations_newest_first(
    store: Arc<dyn MessageStore>,
) {
    use chatterbox_message::search::SearchQuery;
    let (c, d, elsewhere) = (ConversationId::generate(), ConversationId::generate(), ConversationId::generate());
    let u = UserId::generate();
    let (m1, _) = store.append(&new(c, u, "Lunch at the Café?", None)).await.unwrap();
    let (m2, _) = store.append(&new(d, u, "cafe au lait", None)).await.unwrap();
    store.append(&new(elsewhere, u, "café elsewhere", None)).await.unwrap();
    let (m4, _) = store.append(&new(c, u, "東京タワー", None)).await.unwrap();
    store.import(d, &[new(d, u, "imported cafe", None)]).await.unwrap();

    let find = |q: &str, before: Option<MessageId>, limit: u32| {
        let (store, terms) = (store.clone(), SearchQuery::parse(q).terms);
        async move {
            let found = store.search(&terms, &[c, d], before, limit).await.unwrap();
            found.iter().map(|m| m.content.clone()).collect::<Vec<_>>()
        }
    };
    assert_eq!(find("CAFE", None, 10).await, ["imported cafe", "cafe au lait", "Lunch at the Café?"]);
    assert_eq!(find("cafe lait", None, 10).await, ["cafe au lait"]);
    assert_eq!(find("タワ", None, 10).await, ["東京タワー"]);
    assert!(find("tea", None, 10).await.is_empty());
    assert!(store.search(&SearchQuery::parse("cafe").terms, &[], None, 10).await.unwrap().is_empty());

    // Pages: below a message, newest first.
    let first = store.search(&SearchQuery::parse("cafe").terms, &[c, d], None, 2).await.unwrap();
    assert_eq!(first.len(), 2);
    let rest = find("cafe", Some(first[1].id), 10).await;
    assert_eq!(rest, ["Lunch at the Café?"]);

    // An edit is found by its new text only; a deleted message not at all.
    store.edit(m1.id, "Dinner instead", &[], Timestamp::from_millis(2_000)).await.unwrap().unwrap();
    assert_eq!(find("cafe", None, 10).await, ["imported cafe", "cafe au lait"]);
    assert_eq!(find("dinner", None, 10).await, ["Dinner instead"]);
    store.delete(m2.id).await.unwrap().unwrap();
    store.delete(m4.id).await.unwrap().unwrap();
    assert_eq!(find("cafe", None, 10).await, ["imported cafe"]);
    assert!(find("東京", None, 10).await.is_empty());
}

/// The combined reads (a reader's summary; the marks of many conversations)
/// answer what their parts do.
async fn a_summary_and_the_marks_of_many_conversations_read_as_their_parts(store: Arc<dyn MessageStore>) {
    let (c, d, quiet) = (ConversationId::generate(), ConversationId::generate(), ConversationId::generate());
    let (ann, bob) = (UserId::generate(), UserId::generate());
    for text in ["one", "two", "three"] {
        store.append(&new(c, ann, text, None)).await.unwrap();
    }
    let mention = NewMessage { mentions: vec![bob], ..new(c, ann, "@bob four", None) };
    store.append(&mention).await.unwrap();
    store.append(&new(c, bob, "mine", None)).await.unwrap();
    store.mark_read(c, bob, 2, Timestamp::from_millis(5)).await.unwrap();
    store.mark_read(d, ann, 1, Timestamp::from_millis(6)).await.unwrap();

    let summary = store.summary(c, bob).await.unwrap();
    assert_eq!((summary.unread, summary.mentions), (2, 1), "three and four; four mentions him");
    assert_eq!(summary.latest.unwrap().content, "mine");
    assert_eq!(summary.marks, store.read_marks(c).await.unwrap());
    let empty = store.summary(quiet, bob).await.unwrap();
    assert_eq!((empty.unread, empty.mentions, empty.latest, empty.marks.len()), (0, 0, None, 0));

    let marks = store.read_marks_of(&[c, d, quiet]).await.unwrap();
    assert_eq!(marks.len(), 2, "a conversation without marks is left out");
    assert_eq!(marks[&c], store.read_marks(c).await.unwrap());
    assert_eq!(marks[&d][0].user_id, ann);
}
