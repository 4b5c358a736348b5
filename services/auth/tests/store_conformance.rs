//! One suite for every auth store: SQLite and MongoDB (FerretDB in tests).

#![allow(clippy::unwrap_used)] // a panic is how a test fails

use chatterbox_testkit::Backing;
use std::sync::Arc;

use chatterbox_auth::store::{AuthStore, Consumed, Credential, LoginSession, TokenHash};
use chatterbox_auth::{MongoAuthStore, SqliteAuthStore};
use chatterbox_store::StoreError;
use chatterbox_types::{SessionId, Timestamp, UserId};

async fn store(backing: Backing) -> Arc<dyn AuthStore> {
    match backing {
        Backing::InProcess => Arc::new(SqliteAuthStore::in_memory().unwrap()),
        Backing::TestServer => Arc::new(
            MongoAuthStore::connect(&chatterbox_testkit::mongodb_uri(), &chatterbox_testkit::fresh_database_name())
                .await
                .unwrap(),
        ),
    }
}

chatterbox_testkit::conformance! {
    make: crate::store;
    names: [sqlite, mongodb];
    tests: [credentials_round_trip_and_emails_are_unique,
    activation_and_deletion_change_credentials,
    a_token_is_fresh_once_then_replayed,
    concurrent_consumers_of_one_token_get_one_fresh,
    rotated_tokens_stay_in_their_family,
    revoking_a_session_is_visible_through_any_of_its_tokens,
    unknown_tokens_are_unknown,
    a_rotation_marks_its_session_used,
    live_sessions_are_a_users_unrevoked_unexpired_ones_newest_first,];
}

fn credential(email: &str) -> Credential {
    Credential {
        user_id: UserId::generate(),
        email_key: email.to_owned(),
        password_hash: "$argon2id$fake".to_owned(),
        active: false,
        created_at: Timestamp::from_millis(1_000),
    }
}

fn session(user: UserId) -> LoginSession {
    LoginSession {
        id: SessionId::generate(),
        user_id: user,
        created_at: Timestamp::from_millis(1_000),
        expires_at: Timestamp::from_millis(9_000),
        revoked: false,
        last_used_at: Timestamp::from_millis(1_000),
        user_agent: "curl/8.0".to_owned(),
        ip: "192.0.2.1".to_owned(),
    }
}

fn hash(s: &str) -> TokenHash {
    TokenHash(format!("{s:0>64}"))
}

async fn credentials_round_trip_and_emails_are_unique(store: Arc<dyn AuthStore>) {
    let c = credential("ann@example.com");
    store.create_credential(&c).await.unwrap();
    assert_eq!(store.find_credential("ann@example.com").await.unwrap(), Some(c.clone()));
    assert_eq!(store.find_credential("bob@example.com").await.unwrap(), None);
    let clash = store.create_credential(&credential("ann@example.com")).await;
    assert!(matches!(clash, Err(StoreError::Duplicate("email"))), "{clash:?}");
}

async fn activation_and_deletion_change_credentials(store: Arc<dyn AuthStore>) {
    let c = credential("ann@example.com");
    store.create_credential(&c).await.unwrap();
    store.activate_credential(c.user_id).await.unwrap();
    assert!(store.find_credential("ann@example.com").await.unwrap().unwrap().active);
    store.delete_credential(c.user_id).await.unwrap();
    assert_eq!(store.find_credential("ann@example.com").await.unwrap(), None);
    // The email is free again.
    store.create_credential(&credential("ann@example.com")).await.unwrap();
}

async fn a_token_is_fresh_once_then_replayed(store: Arc<dyn AuthStore>) {
    let s = session(UserId::generate());
    store.create_session(&s, &hash("a")).await.unwrap();
    let now = Timestamp::from_millis(2_000);
    assert_eq!(store.consume_token(&hash("a"), now).await.unwrap(), Consumed::Fresh(s.clone()));
    assert_eq!(store.consume_token(&hash("a"), now).await.unwrap(), Consumed::Replayed(s.id));
}

async fn concurrent_consumers_of_one_token_get_one_fresh(store: Arc<dyn AuthStore>) {
    let s = session(UserId::generate());
    store.create_session(&s, &hash("b")).await.unwrap();
    let attempts = (0..10).map(|_| {
        let store = store.clone();
        tokio::spawn(async move { store.consume_token(&hash("b"), Timestamp::from_millis(2_000)).await.unwrap() })
    });
    let outcomes: Vec<Consumed> = futures::future::join_all(attempts).await.into_iter().map(Result::unwrap).collect();
    let fresh = outcomes.iter().filter(|o| matches!(o, Consumed::Fresh(_))).count();
    assert_eq!(fresh, 1, "{outcomes:?}");
    assert!(outcomes.iter().all(|o| matches!(o, Consumed::Fresh(_) | Consumed::Replayed(_))));
}

async fn rotated_tokens_stay_in_their_family(store: Arc<dyn AuthStore>) {
    let s = session(UserId::generate());
    store.create_session(&s, &hash("c1")).await.unwrap();
    store.consume_token(&hash("c1"), Timestamp::from_millis(2_000)).await.unwrap();
    store.add_token(s.id, &hash("c2"), Timestamp::from_millis(2_000)).await.unwrap();
    let used = LoginSession { last_used_at: Timestamp::from_millis(2_000), ..s.clone() };
    assert_eq!(store.find_session_by_token(&hash("c2")).await.unwrap(), Some(used.clone()));
    assert_eq!(store.consume_token(&hash("c2"), Timestamp::from_millis(3_000)).await.unwrap(), Consumed::Fresh(used));
}

async fn revoking_a_session_is_visible_through_any_of_its_tokens(store: Arc<dyn AuthStore>) {
    let s = session(UserId::generate());
    let other = session(s.user_id);
    store.create_session(&s, &hash("d1")).await.unwrap();
    store.create_session(&other, &hash("e1")).await.unwrap();
    store.add_token(s.id, &hash("d2"), Timestamp::from_millis(2_000)).await.unwrap();
    store.revoke_session(s.id).await.unwrap();
    for token in ["d1", "d2"] {
        assert!(store.find_session_by_token(&hash(token)).await.unwrap().unwrap().revoked);
    }
    assert!(!store.find_session_by_token(&hash("e1")).await.unwrap().unwrap().revoked);
}

async fn unknown_tokens_are_unknown(store: Arc<dyn AuthStore>) {
    assert_eq!(store.consume_token(&hash("zz"), Timestamp::from_millis(1)).await.unwrap(), Consumed::Unknown);
    assert_eq!(store.find_session_by_token(&hash("zz")).await.unwrap(), None);
}

async fn a_rotation_marks_its_session_used(store: Arc<dyn AuthStore>) {
    let s = session(UserId::generate());
    store.create_session(&s, &hash("f1")).await.unwrap();
    assert_eq!(store.find_session(s.id).await.unwrap(), Some(s.clone()));
    store.add_token(s.id, &hash("f2"), Timestamp::from_millis(5_000)).await.unwrap();
    // A late writer with an older time never moves it back.
    store.add_token(s.id, &hash("f3"), Timestamp::from_millis(4_000)).await.unwrap();
    let found = store.find_session(s.id).await.unwrap().unwrap();
    assert_eq!(found.last_used_at, Timestamp::from_millis(5_000));
    assert_eq!((found.user_agent.as_str(), found.ip.as_str()), ("curl/8.0", "192.0.2.1"));
    assert_eq!(store.find_session(SessionId::generate()).await.unwrap(), None);
}

async fn live_sessions_are_a_users_unrevoked_unexpired_ones_newest_first(store: Arc<dyn AuthStore>) {
    let user = UserId::generate();
    let at = |created: i64, expires: i64| LoginSession {
        created_at: Timestamp::from_millis(created),
        last_used_at: Timestamp::from_millis(created),
        expires_at: Timestamp::from_millis(expires),
        ..session(user)
    };
    let (old, new, revoked, expired) = (at(1_000, 9_000), at(3_000, 9_000), at(2_000, 9_000), at(2_500, 4_000));
    for (n, s) in [&old, &new, &revoked, &expired].into_iter().enumerate() {
        store.create_session(s, &hash(&format!("g{n}"))).await.unwrap();
    }
    store.create_session(&session(UserId::generate()), &hash("h")).await.unwrap();
    store.revoke_session(revoked.id).await.unwrap();
    let now = Timestamp::from_millis(5_000);
    let ids = |list: Vec<LoginSession>| list.into_iter().map(|s| s.id).collect::<Vec<_>>();
    assert_eq!(ids(store.live_sessions(user, now, 10).await.unwrap()), vec![new.id, old.id]);
    assert_eq!(ids(store.live_sessions(user, now, 1).await.unwrap()), vec![new.id]);
    assert!(store.live_sessions(UserId::generate(), now, 10).await.unwrap().is_empty());
}
