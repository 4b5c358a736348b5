//! One suite for every presence store: in memory, on a real Redis server and
//! on a real Redis Cluster.

#![allow(clippy::unwrap_used)] // a panic is how a test fails

use chatterbox_testkit::RedisBacking;
use std::sync::Arc;

use chatterbox_presence::store::{Connection, UserRecord};
use chatterbox_presence::{MemoryPresenceStore, PresenceStore, RedisPresenceStore, Status};
use chatterbox_types::{ConversationId, UserId};

async fn store(backing: RedisBacking) -> Arc<dyn PresenceStore> {
    match backing {
        RedisBacking::InProcess => Arc::new(MemoryPresenceStore::new()),
        RedisBacking::On(redis) => {
            Arc::new(RedisPresenceStore::new(redis.connection().await, &chatterbox_testkit::fresh_key_prefix()))
        }
    }
}

chatterbox_testkit::conformance! {
    make: crate::store;
    names: [memory, redis, redis_cluster];
    tests: [beats_keep_connections_live_until_they_expire,
    only_activity_moves_the_last_active_time,
    removal_ends_a_connection_once,
    sweeping_claims_each_expired_connection_once,
    records_keep_choice_last_seen_and_audience,
    announcements_swap,
    presence_of_many_users_in_order,
    sweeps_of_many_users_keep_to_their_limit_and_miss_none,];
}

fn conn(n: u128) -> String {
    ulid::Ulid::from(n).to_string()
}

async fn beats_keep_connections_live_until_they_expire(store: Arc<dyn PresenceStore>) {
    let user = UserId::generate();
    store.beat(user, &conn(1), 1_000, 5_000, true).await.unwrap();
    store.beat(user, &conn(2), 1_000, 3_000, true).await.unwrap();
    let ids = |live: Vec<Connection>| live.into_iter().map(|c| c.id).collect::<Vec<_>>();
    assert_eq!(ids(store.connections(user, 2_000).await.unwrap()), [conn(1), conn(2)]);
    assert_eq!(ids(store.connections(user, 3_000).await.unwrap()), [conn(1)], "expired at its expiry");
    store.beat(user, &conn(2), 3_500, 8_000, false).await.unwrap();
    assert_eq!(ids(store.connections(user, 6_000).await.unwrap()), [conn(2)], "a beat brings it back");
    assert!(store.connections(UserId::generate(), 0).await.unwrap().is_empty());
}

async fn only_activity_moves_the_last_active_time(store: Arc<dyn PresenceStore>) {
    let user = UserId::generate();
    store.beat(user, &conn(1), 1_000, 10_000, false).await.unwrap();
    let first = store.connections(user, 1_000).await.unwrap();
    assert_eq!(first, [Connection { id: conn(1), active_at_ms: 1_000, expires_at_ms: 10_000 }], "new counts as active");
    store.beat(user, &conn(1), 2_000, 11_000, false).await.unwrap();
    assert_eq!(store.connections(user, 2_000).await.unwrap()[0].active_at_ms, 1_000);
    store.beat(user, &conn(1), 3_000, 12_000, true).await.unwrap();
    let now = store.connections(user, 3_000).await.unwrap();
    assert_eq!((now[0].active_at_ms, now[0].expires_at_ms), (3_000, 12_000));
}

async fn removal_ends_a_connection_once(store: Arc<dyn PresenceStore>) {
    let user = UserId::generate();
    store.beat(user, &conn(1), 1_000, 10_000, true).await.unwrap();
    assert!(store.remove(user, &conn(1)).await.unwrap());
    assert!(!store.remove(user, &conn(1)).await.unwrap());
    assert!(store.connections(user, 1_000).await.unwrap().is_empty());
    assert!(store.sweep(20_000, 100).await.unwrap().iter().all(|e| e.user != user), "removed ones are not swept");
}

async fn sweeping_claims_each_expired_connection_once(store: Arc<dyn PresenceStore>) {
    let (ann, bob) = (UserId::generate(), UserId::generate());
    store.beat(ann, &conn(1), 1_000, 2_000, true).await.unwrap();
    store.beat(bob, &conn(2), 1_000, 2_500, true).await.unwrap();
    store.beat(bob, &conn(3), 1_000, 9_000, true).await.unwrap();
    let mine = |all: Vec<chatterbox_presence::store::Expired>| {
        let mut v: Vec<(UserId, String, i64)> = all
            .into_iter()
            .filter(|e| e.user == ann || e.user == bob)
            .map(|e| (e.user, e.connection, e.expires_at_ms))
            .collect();
        v.sort_by_key(|e| e.2);
        v
    };
    assert!(mine(store.sweep(1_500, 100).await.unwrap()).is_empty(), "nothing expired yet");
    // Two sweepers at once.
    let (a, b) = tokio::join!(store.sweep(3_000, 100), store.sweep(3_000, 100));
    let (a, b) = (mine(a.unwrap()), mine(b.unwrap()));
    let mut both = [a, b].concat();
    both.sort_by_key(|e| e.2);
    assert_eq!(both, [(ann, conn(1), 2_000), (bob, conn(2), 2_500)], "each claimed exactly once");
    let bob_left: Vec<String> = store.connections(bob, 3_000).await.unwrap().into_iter().map(|c| c.id).collect();
    assert_eq!(bob_left, [conn(3)]);
    assert!(store.connections(ann, 0).await.unwrap().is_empty(), "swept connections are gone");
}

async fn records_keep_choice_last_seen_and_audience(store: Arc<dyn PresenceStore>) {
    let user = UserId::generate();
    assert_eq!(store.record(user).await.unwrap(), UserRecord::default());
    let audience = [ConversationId::generate(), ConversationId::generate()];
    store.set_audience(user, &audience).await.unwrap();
    store.set_chosen(user, Some(Status::Away)).await.unwrap();
    store.set_last_seen(user, 42).await.unwrap();
    let record = store.record(user).await.unwrap();
    assert_eq!(record, UserRecord { chosen: Some(Status::Away), last_seen_ms: Some(42) });
    assert_eq!(store.audience(user).await.unwrap(), audience);
    store.set_chosen(user, None).await.unwrap();
    store.set_audience(user, &[]).await.unwrap();
    let record = store.record(user).await.unwrap();
    assert_eq!((record.chosen, record.last_seen_ms), (None, Some(42)));
    assert!(store.audience(user).await.unwrap().is_empty());
    assert!(store.audience(UserId::generate()).await.unwrap().is_empty());
}

async fn announcements_swap(store: Arc<dyn PresenceStore>) {
    let user = UserId::generate();
    assert_eq!(store.swap_announced(user, Status::Online).await.unwrap(), None);
    assert_eq!(store.swap_announced(user, Status::Away).await.unwrap(), Some(Status::Online));
    assert_eq!(store.swap_announced(user, Status::Away).await.unwrap(), Some(Status::Away));
}

async fn presence_of_many_users_in_order(store: Arc<dyn PresenceStore>) {
    let (ann, bob, nobody) = (UserId::generate(), UserId::generate(), UserId::generate());
    store.beat(bob, &conn(7), 1_000, 10_000, true).await.unwrap();
    store.set_last_seen(ann, 500).await.unwrap();
    let found = store.presence_of(&[ann, bob, nobody], 2_000).await.unwrap();
    assert_eq!(found.len(), 3);
    assert!(found[0].0.is_empty() && found[0].1.last_seen_ms == Some(500));
    assert_eq!(found[1].0.len(), 1);
    assert_eq!(found[2], (Vec::new(), UserRecord::default()));
    assert!(store.presence_of(&[], 0).await.unwrap().is_empty());

    // Enough users to fall in every shard, each with their own last seen.
    let many: Vec<UserId> = (0..40).map(|_| UserId::generate()).collect();
    for (n, user) in many.iter().enumerate() {
        store.set_last_seen(*user, n as i64).await.unwrap();
    }
    let found = store.presence_of(&many, 2_000).await.unwrap();
    let seen: Vec<Option<i64>> = found.iter().map(|(_, record)| record.last_seen_ms).collect();
    assert_eq!(seen, (0..40).map(Some).collect::<Vec<_>>(), "answers in the order asked");
}

/// Connections of users spread over every shard: each sweep claims at most
/// its limit, and together they claim every expired one exactly once.
async fn sweeps_of_many_users_keep_to_their_limit_and_miss_none(store: Arc<dyn PresenceStore>) {
    let many: Vec<UserId> = (0..40).map(|_| UserId::generate()).collect();
    for (n, user) in many.iter().enumerate() {
        store.beat(*user, &conn(n as u128), 1_000, 2_000, true).await.unwrap();
    }
    let mut claimed = Vec::new();
    for _ in 0..100 {
        let round = store.sweep(3_000, 15).await.unwrap();
        assert!(round.len() <= 15, "a sweep keeps to its limit");
        let done = round.is_empty();
        claimed.extend(round.into_iter().map(|e| e.user));
        if done {
            break;
        }
    }
    claimed.sort();
    let mut expected = many.clone();
    expected.sort();
    assert_eq!(claimed, expected, "every expired connection claimed once");
}
