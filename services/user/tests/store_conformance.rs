//! One suite for every user store: SQLite and MongoDB (FerretDB in tests).

#![allow(clippy::unwrap_used)] // a panic is how a test fails

use chatterbox_testkit::Backing;
use std::sync::Arc;

use chatterbox_store::StoreError;
use chatterbox_types::{Timestamp, UserId};
use chatterbox_user::store::{Profile, ProfilePatch, Status};
use chatterbox_user::{MongoUserStore, SqliteUserStore, UserStore};

async fn store(backing: Backing) -> Arc<dyn UserStore> {
    match backing {
        Backing::InProcess => Arc::new(SqliteUserStore::in_memory().unwrap()),
        Backing::TestServer => Arc::new(
            MongoUserStore::connect(&chatterbox_testkit::mongodb_uri(), &chatterbox_testkit::fresh_database_name())
                .await
                .unwrap(),
        ),
    }
}

chatterbox_testkit::conformance! {
    make: crate::store;
    names: [sqlite, mongodb];
    tests: [profiles_round_trip,
    usernames_emails_and_ids_are_unique,
    search_is_a_prefix_range_in_key_order_with_a_cursor,
    search_treats_pattern_characters_literally,
    patches_change_only_what_they_name,
    presence_changes_status_and_last_seen_but_not_the_profile,
    a_patch_to_a_taken_username_fails_and_changes_nothing,
    deleted_profiles_are_gone,];
}

fn profile(username: &str) -> Profile {
    Profile {
        id: UserId::generate(),
        username: username.to_owned(),
        username_key: username.to_ascii_lowercase(),
        email: format!("{username}@Example.com"),
        email_key: format!("{}@example.com", username.to_ascii_lowercase()),
        avatar: None,
        status: Status::Offline,
        last_seen: None,
        created_at: Timestamp::from_millis(1_000),
        updated_at: Timestamp::from_millis(1_000),
    }
}

async fn profiles_round_trip(store: Arc<dyn UserStore>) {
    let mut p = profile("Ann");
    p.avatar = Some("01HZX3Q8Y6N5W0ABCDEFGHJKMN".into());
    p.last_seen = Some(Timestamp::from_millis(5));
    p.status = Status::Away;
    store.create_profile(&p).await.unwrap();
    assert_eq!(store.get_profile(p.id).await.unwrap(), Some(p));
    assert_eq!(store.get_profile(UserId::generate()).await.unwrap(), None);
}

async fn usernames_emails_and_ids_are_unique(store: Arc<dyn UserStore>) {
    let ann = profile("Ann");
    store.create_profile(&ann).await.unwrap();
    let mut same_name = profile("ANN");
    same_name.email_key = "other@example.com".into();
    let clash = store.create_profile(&same_name).await;
    assert!(matches!(clash, Err(StoreError::Duplicate("username"))), "{clash:?}");
    let mut same_email = profile("Anna");
    same_email.email_key = ann.email_key.clone();
    assert!(matches!(store.create_profile(&same_email).await, Err(StoreError::Duplicate("email"))));
    let mut same_id = profile("Bea");
    same_id.id = ann.id;
    assert!(matches!(store.create_profile(&same_id).await, Err(StoreError::Duplicate(_))));
}

async fn search_is_a_prefix_range_in_key_order_with_a_cursor(store: Arc<dyn UserStore>) {
    for name in ["sam", "Samuel", "sammy", "sa", "bob", "samz"] {
        store.create_profile(&profile(name)).await.unwrap();
    }
    let names = |ps: Vec<Profile>| ps.into_iter().map(|p| p.username).collect::<Vec<_>>();
    assert_eq!(names(store.search_profiles("sam", None, 10).await.unwrap()), ["sam", "sammy", "Samuel", "samz"]);
    assert_eq!(names(store.search_profiles("sam", None, 2).await.unwrap()), ["sam", "sammy"]);
    assert_eq!(names(store.search_profiles("sam", Some("sammy"), 10).await.unwrap()), ["Samuel", "samz"]);
    assert_eq!(store.search_profiles("", None, 10).await.unwrap().len(), 6);
}

async fn search_treats_pattern_characters_literally(store: Arc<dyn UserStore>) {
    for name in ["a.b", "axb", "a-b"] {
        store.create_profile(&profile(name)).await.unwrap();
    }
    let found: Vec<String> =
        store.search_profiles("a.", None, 10).await.unwrap().into_iter().map(|p| p.username).collect();
    assert_eq!(found, ["a.b"]);
}

async fn patches_change_only_what_they_name(store: Arc<dyn UserStore>) {
    let p = profile("Ann");
    store.create_profile(&p).await.unwrap();
    let avatar = ProfilePatch { avatar: Some(Some("01HZX3Q8Y6N5W0ABCDEFGHJKMN".into())), ..ProfilePatch::default() };
    let after = store.update_profile(p.id, &avatar, Timestamp::from_millis(2_000)).await.unwrap().unwrap();
    assert_eq!(after.avatar.as_deref(), Some("01HZX3Q8Y6N5W0ABCDEFGHJKMN"));
    assert_eq!(after.username, "Ann");
    assert_eq!(after.updated_at, Timestamp::from_millis(2_000));

    let rename = ProfilePatch { username: Some(("Annie".into(), "annie".into())), ..ProfilePatch::default() };
    let after = store.update_profile(p.id, &rename, Timestamp::from_millis(3_000)).await.unwrap().unwrap();
    assert_eq!((after.username.as_str(), after.username_key.as_str()), ("Annie", "annie"));
    assert!(after.avatar.is_some(), "the avatar is kept");

    let clear = ProfilePatch { avatar: Some(None), ..ProfilePatch::default() };
    let after = store.update_profile(p.id, &clear, Timestamp::from_millis(4_000)).await.unwrap().unwrap();
    assert_eq!(after.avatar, None);
    assert_eq!(store.update_profile(UserId::generate(), &clear, Timestamp::from_millis(1)).await.unwrap(), None);
}

async fn presence_changes_status_and_last_seen_but_not_the_profile(store: Arc<dyn UserStore>) {
    let p = profile("ann");
    store.create_profile(&p).await.unwrap();
    let online = store.set_presence(p.id, Status::Online, None).await.unwrap().unwrap();
    assert_eq!((online.status, online.last_seen, online.updated_at), (Status::Online, None, p.updated_at));
    let seen = Timestamp::from_millis(5_000);
    let offline = store.set_presence(p.id, Status::Offline, Some(seen)).await.unwrap().unwrap();
    assert_eq!((offline.status, offline.last_seen), (Status::Offline, Some(seen)));
    let away = store.set_presence(p.id, Status::Away, None).await.unwrap().unwrap();
    assert_eq!((away.status, away.last_seen), (Status::Away, Some(seen)), "last_seen is kept");
    assert_eq!(away.username, "ann");
    assert_eq!(store.set_presence(UserId::generate(), Status::Online, None).await.unwrap(), None);
}

async fn a_patch_to_a_taken_username_fails_and_changes_nothing(store: Arc<dyn UserStore>) {
    let ann = profile("ann");
    store.create_profile(&ann).await.unwrap();
    store.create_profile(&profile("bob")).await.unwrap();
    let rename = ProfilePatch { username: Some(("BOB".into(), "bob".into())), ..ProfilePatch::default() };
    let clash = store.update_profile(ann.id, &rename, Timestamp::from_millis(2_000)).await;
    assert!(matches!(clash, Err(StoreError::Duplicate("username"))), "{clash:?}");
    assert_eq!(store.get_profile(ann.id).await.unwrap(), Some(ann));
}

async fn deleted_profiles_are_gone(store: Arc<dyn UserStore>) {
    let p = profile("ann");
    store.create_profile(&p).await.unwrap();
    store.delete_profile(p.id).await.unwrap();
    assert_eq!(store.get_profile(p.id).await.unwrap(), None);
    store.create_profile(&profile("ann")).await.unwrap();
}
