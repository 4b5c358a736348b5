//! One suite for every conversation store: SQLite and MongoDB (FerretDB in tests).

#![allow(clippy::unwrap_used)] // a panic is how a test fails

use chatterbox_testkit::Backing;
use std::sync::Arc;

use chatterbox_conversation::store::{
    ActivityCursor, Block, BlockCursor, Conversation, Kind, Membership, NameCursor, Rename,
};
use chatterbox_conversation::{ConversationStore, MongoConversationStore, SqliteConversationStore};
use chatterbox_store::StoreError;
use chatterbox_types::{ConversationId, Timestamp, UserId};

async fn store(backing: Backing) -> Arc<dyn ConversationStore> {
    match backing {
        Backing::InProcess => Arc::new(SqliteConversationStore::in_memory().unwrap()),
        Backing::TestServer => Arc::new(
            MongoConversationStore::connect(
                &chatterbox_testkit::mongodb_uri(),
                &chatterbox_testkit::fresh_database_name(),
            )
            .await
            .unwrap(),
        ),
    }
}

chatterbox_testkit::conformance! {
    make: crate::store;
    names: [sqlite, mongodb];
    tests: [conversations_round_trip_with_members_in_joining_order,
    unique_keys_are_unique,
    a_users_conversations_come_by_activity_with_a_cursor,
    activity_only_moves_forward_and_only_for_participants,
    rooms_are_listed_by_name_prefix_with_a_cursor,
    membership_changes_are_idempotent_and_admins_are_participants,
    renaming_to_a_taken_unique_key_fails_and_changes_nothing,
    a_membership_lookup_follows_joins_promotions_and_departures,
    private_among_keeps_the_direct_and_group_conversations_of_a_user,
    concurrent_writes_to_one_conversation_all_hold,
    blocks_are_kept_once_seen_both_ways_and_listed_newest_first,];
}

fn conversation(kind: Kind, key: &str, members: &[UserId], at: i64) -> Conversation {
    Conversation {
        id: ConversationId::generate(),
        kind,
        name: key.to_owned(),
        description: String::new(),
        unique_key: format!("{}:{key}", kind.as_str()),
        name_key: key.to_lowercase(),
        participants: members.to_vec(),
        admins: members[..1].to_vec(),
        created_by: members[0],
        created_at: Timestamp::from_millis(at),
        updated_at: Timestamp::from_millis(at),
        last_activity: Timestamp::from_millis(at),
    }
}

fn users(n: usize) -> Vec<UserId> {
    (0..n).map(|_| UserId::generate()).collect()
}

async fn conversations_round_trip_with_members_in_joining_order(store: Arc<dyn ConversationStore>) {
    let u = users(3);
    let c = conversation(Kind::Group, "trip", &u, 10);
    store.create(&c).await.unwrap();
    assert_eq!(store.get(c.id).await.unwrap(), Some(c.clone()));
    assert_eq!(store.get_by_unique_key("group:trip").await.unwrap(), Some(c));
    assert_eq!(store.get(ConversationId::generate()).await.unwrap(), None);
}

async fn unique_keys_are_unique(store: Arc<dyn ConversationStore>) {
    let u = users(2);
    store.create(&conversation(Kind::Direct, "pair", &u, 10)).await.unwrap();
    let clash = store.create(&conversation(Kind::Direct, "pair", &u, 11)).await;
    assert!(matches!(clash, Err(StoreError::Duplicate(_))), "{clash:?}");
}

async fn a_users_conversations_come_by_activity_with_a_cursor(store: Arc<dyn ConversationStore>) {
    let u = users(2);
    let old = conversation(Kind::Group, "old", &u, 10);
    let mid = conversation(Kind::Group, "mid", &u, 20);
    let new = conversation(Kind::Group, "new", &u, 30);
    let not_mine = conversation(Kind::Group, "other", &users(2), 40);
    for c in [&old, &mid, &new, &not_mine] {
        store.create(c).await.unwrap();
    }
    let ids = |cs: Vec<Conversation>| cs.into_iter().map(|c| c.id).collect::<Vec<_>>();
    assert_eq!(ids(store.list_for_user(u[1], None, 10).await.unwrap()), [new.id, mid.id, old.id]);
    let after = ActivityCursor { last_activity: mid.last_activity, id: mid.id };
    assert_eq!(ids(store.list_for_user(u[1], Some(&after), 10).await.unwrap()), [old.id]);
    assert_eq!(ids(store.list_for_user(u[1], None, 2).await.unwrap()), [new.id, mid.id]);

    // The same list as references: same order, same cursor, no participants.
    let room = conversation(Kind::Room, "lobby", &u, 25);
    store.create(&room).await.unwrap();
    let refs = store.list_refs_for_user(u[1], None, 10).await.unwrap();
    let want = [(new.id, Kind::Group), (room.id, Kind::Room), (mid.id, Kind::Group), (old.id, Kind::Group)];
    assert_eq!(refs.iter().map(|r| (r.id, r.kind)).collect::<Vec<_>>(), want);
    assert_eq!(refs[1].last_activity, room.last_activity);
    let full = store.list_for_user(u[1], None, 10).await.unwrap();
    assert_eq!(refs.iter().map(|r| r.id).collect::<Vec<_>>(), ids(full));
    let refs_after = store.list_refs_for_user(u[1], Some(&after), 10).await.unwrap();
    assert_eq!(refs_after.iter().map(|r| r.id).collect::<Vec<_>>(), [old.id]);
    assert_eq!(store.list_refs_for_user(u[0], None, 2).await.unwrap().len(), 2);
    assert!(store.list_refs_for_user(UserId::generate(), None, 10).await.unwrap().is_empty());
}

async fn activity_only_moves_forward_and_only_for_participants(store: Arc<dyn ConversationStore>) {
    let u = users(2);
    let c = conversation(Kind::Group, "g", &u, 10);
    store.create(&c).await.unwrap();
    store.record_activity(c.id, u[1], Timestamp::from_millis(50)).await.unwrap();
    store.record_activity(c.id, u[1], Timestamp::from_millis(30)).await.unwrap();
    store.record_activity(c.id, UserId::generate(), Timestamp::from_millis(90)).await.unwrap();
    assert_eq!(store.get(c.id).await.unwrap().unwrap().last_activity, Timestamp::from_millis(50));
}

async fn rooms_are_listed_by_name_prefix_with_a_cursor(store: Arc<dyn ConversationStore>) {
    let u = users(1);
    for name in ["Rust", "rustaceans", "Ruby", "Go"] {
        store.create(&conversation(Kind::Room, name, &u, 10)).await.unwrap();
    }
    store.create(&conversation(Kind::Group, "rusty group", &users(2), 10)).await.unwrap();
    let names = |cs: Vec<Conversation>| cs.into_iter().map(|c| c.name).collect::<Vec<_>>();
    let first = store.list_rooms("rust", None, 1).await.unwrap();
    assert_eq!(names(first.clone()), ["Rust"]);
    let after = NameCursor { name_key: first[0].name_key.clone(), id: first[0].id };
    assert_eq!(names(store.list_rooms("rust", Some(&after), 5).await.unwrap()), ["rustaceans"]);
    assert_eq!(store.list_rooms("", None, 10).await.unwrap().len(), 4);
}

async fn membership_changes_are_idempotent_and_admins_are_participants(store: Arc<dyn ConversationStore>) {
    let u = users(3);
    let c = conversation(Kind::Group, "g", &u[..2], 10);
    store.create(&c).await.unwrap();
    let now = Timestamp::from_millis(20);
    let added = store.add_participant(c.id, u[2], now).await.unwrap().unwrap();
    assert_eq!(added.participants, u);
    assert_eq!(store.add_participant(c.id, u[2], now).await.unwrap().unwrap().participants, u);

    let outsider = UserId::generate();
    let unchanged = store.add_admin(c.id, outsider, now).await.unwrap().unwrap();
    assert!(!unchanged.has_admin(outsider));
    let promoted = store.add_admin(c.id, u[1], now).await.unwrap().unwrap();
    assert_eq!(promoted.admins, [u[0], u[1]]);

    let removed = store.remove_participant(c.id, u[1], now).await.unwrap().unwrap();
    assert_eq!(removed.participants, [u[0], u[2]]);
    assert_eq!(removed.admins, [u[0]], "leaving ends the admin role too");
    assert_eq!(store.add_participant(ConversationId::generate(), u[0], now).await.unwrap(), None);
}

/// Joins, departures and activity written at the same time to one
/// conversation all hold: none undoes another (a store that applies an
/// update as read-then-write must not lose one to a concurrent write).
async fn concurrent_writes_to_one_conversation_all_hold(store: Arc<dyn ConversationStore>) {
    let u = users(24);
    let c = conversation(Kind::Room, "busy", &u[..12], 10);
    store.create(&c).await.unwrap();
    let now = Timestamp::from_millis(20);
    let mut writes = Vec::new();
    for (i, user) in u.iter().copied().enumerate() {
        let store = store.clone();
        writes.push(tokio::spawn(async move {
            match i {
                // The first twelve leave, the other twelve join, while the
                // ones who stay keep moving the activity forward.
                0..=5 => drop(store.remove_participant(c.id, user, now).await.unwrap()),
                6..=11 => store.record_activity(c.id, user, Timestamp::from_millis(100 + i as i64)).await.unwrap(),
                _ => drop(store.add_participant(c.id, user, now).await.unwrap()),
            }
        }));
    }
    for write in writes {
        write.await.unwrap();
    }
    let after = store.get(c.id).await.unwrap().unwrap();
    let mut expected: Vec<UserId> = u[6..].to_vec();
    let mut got = after.participants.clone();
    expected.sort();
    got.sort();
    assert_eq!(got, expected, "every join and every departure holds");
    assert_eq!(after.last_activity, Timestamp::from_millis(111), "the latest activity holds");
}

async fn renaming_to_a_taken_unique_key_fails_and_changes_nothing(store: Arc<dyn ConversationStore>) {
    let u = users(1);
    store.create(&conversation(Kind::Room, "taken", &u, 10)).await.unwrap();
    let room = conversation(Kind::Room, "mine", &u, 10);
    store.create(&room).await.unwrap();
    let rename = Rename { name: "TAKEN".into(), name_key: "taken".into(), unique_key: "room:taken".into() };
    let clash = store.update_details(room.id, Some(&rename), None, Timestamp::from_millis(20)).await;
    assert!(matches!(clash, Err(StoreError::Duplicate(_))), "{clash:?}");
    assert_eq!(store.get(room.id).await.unwrap(), Some(room.clone()));

    let ok = Rename { name: "Free".into(), name_key: "free".into(), unique_key: "room:free".into() };
    let renamed =
        store.update_details(room.id, Some(&ok), Some("about"), Timestamp::from_millis(30)).await.unwrap().unwrap();
    assert_eq!((renamed.name.as_str(), renamed.description.as_str()), ("Free", "about"));
    assert_eq!(renamed.updated_at, Timestamp::from_millis(30));
}

async fn a_membership_lookup_follows_joins_promotions_and_departures(store: Arc<dyn ConversationStore>) {
    let u = users(3);
    let c = conversation(Kind::Room, "lookup", &u[..2], 10);
    store.create(&c).await.unwrap();
    let now = Timestamp::from_millis(20);
    let member = |admin| Some(Membership { kind: Kind::Room, admin });
    assert_eq!(store.membership(c.id, u[0]).await.unwrap(), member(true));
    assert_eq!(store.membership(c.id, u[1]).await.unwrap(), member(false));
    assert_eq!(store.membership(c.id, u[2]).await.unwrap(), None, "not joined yet");
    store.add_participant(c.id, u[2], now).await.unwrap();
    store.add_admin(c.id, u[2], now).await.unwrap();
    assert_eq!(store.membership(c.id, u[2]).await.unwrap(), member(true));
    store.remove_participant(c.id, u[2], now).await.unwrap();
    assert_eq!(store.membership(c.id, u[2]).await.unwrap(), None, "gone");
    assert_eq!(store.membership(ConversationId::generate(), u[0]).await.unwrap(), None);
}

async fn private_among_keeps_the_direct_and_group_conversations_of_a_user(store: Arc<dyn ConversationStore>) {
    let people = users(3);
    let (ann, bob, cat) = (people[0], people[1], people[2]);
    let direct = conversation(Kind::Direct, &format!("{ann}:{bob}"), &[ann, bob], 1);
    let group = conversation(Kind::Group, "team", &[bob, ann], 2);
    let room = conversation(Kind::Room, "lobby", &[ann], 3);
    let theirs = conversation(Kind::Group, "theirs", &[bob, cat], 4);
    for c in [&direct, &group, &room, &theirs] {
        store.create(c).await.unwrap();
    }
    let listed = [direct.id, room.id, theirs.id, ConversationId::generate(), group.id];
    let mut found = store.private_among(ann, &listed).await.unwrap();
    found.sort();
    let mut expected = vec![direct.id, group.id];
    expected.sort();
    assert_eq!(found, expected, "her direct and group conversations; not the room, not theirs, not unknown ones");
    assert!(store.private_among(cat, &[direct.id, group.id]).await.unwrap().is_empty());
    // Many at once, in several statements.
    let mut many: Vec<ConversationId> = (0..1_200).map(|_| ConversationId::generate()).collect();
    many.insert(700, group.id);
    assert_eq!(store.private_among(ann, &many).await.unwrap(), [group.id]);
}

async fn blocks_are_kept_once_seen_both_ways_and_listed_newest_first(store: Arc<dyn ConversationStore>) {
    let u = users(4);
    let (ann, bob, cid, dan) = (u[0], u[1], u[2], u[3]);
    assert!(!store.blocked_between(ann, bob).await.unwrap());
    assert!(store.block(ann, bob, Timestamp::from_millis(10)).await.unwrap());
    assert!(!store.block(ann, bob, Timestamp::from_millis(99)).await.unwrap(), "already blocked");
    assert!(store.blocked_between(ann, bob).await.unwrap());
    assert!(store.blocked_between(bob, ann).await.unwrap(), "either way round");
    assert!(!store.blocked_between(ann, cid).await.unwrap());
    store.block(ann, cid, Timestamp::from_millis(20)).await.unwrap();
    store.block(ann, dan, Timestamp::from_millis(20)).await.unwrap();
    store.block(dan, ann, Timestamp::from_millis(30)).await.unwrap();

    let all = store.blocks_of(ann, None, 10).await.unwrap();
    let (high, low) = if cid > dan { (cid, dan) } else { (dan, cid) };
    let expected = [
        Block { blocked: high, at: Timestamp::from_millis(20) },
        Block { blocked: low, at: Timestamp::from_millis(20) },
        Block { blocked: bob, at: Timestamp::from_millis(10) },
    ];
    assert_eq!(all, expected, "newest first, ties by id, the first time kept");
    let mut paged = Vec::new();
    let mut after: Option<BlockCursor> = None;
    loop {
        let page = store.blocks_of(ann, after.as_ref(), 1).await.unwrap();
        let Some(last) = page.last() else { break };
        after = Some(BlockCursor { at: last.at, blocked: last.blocked });
        paged.extend(page);
    }
    assert_eq!(paged, expected);

    assert!(store.unblock(ann, bob).await.unwrap());
    assert!(!store.unblock(ann, bob).await.unwrap(), "already lifted");
    assert!(!store.blocked_between(bob, ann).await.unwrap());
    assert!(store.blocked_between(ann, dan).await.unwrap(), "dan still blocks ann");
    assert_eq!(store.blocks_of(dan, None, 10).await.unwrap(), [Block { blocked: ann, at: Timestamp::from_millis(30) }]);
}
