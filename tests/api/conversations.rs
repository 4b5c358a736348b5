//! Direct conversations and groups: uniqueness, admins, participants, and
//! 404 for everything an outsider asks about.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, assert_error};
use crate::on_every_backend;

on_every_backend!(
    a_pair_has_one_direct_conversation_whoever_asks_first,
    concurrent_requests_for_one_pair_create_one_conversation,
    direct_conversations_need_exactly_one_existing_other_user,
    a_group_makes_its_creator_participant_and_admin,
    only_admins_rename_add_and_promote,
    members_leave_and_admins_remove,
    outsiders_get_404_on_every_conversation_path,
    my_conversations_come_most_recently_active_first,
);

async fn a_pair_has_one_direct_conversation_whoever_asks_first(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (ann, bob) = (app.register("ann").await, app.register("bob").await);
    let first = app
        .post_as("/api/v1/conversations", &ann.access_token, json!({"type": "direct", "participant_ids": [bob.id]}))
        .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["type"], "direct");
    assert_eq!(first["member_count"], 2);
    assert_eq!(first["unread_count"], 0);
    assert!(first["last_message"].is_null());
    let mut participants: Vec<&str> =
        first["participants"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    participants.sort_unstable();
    let mut expected = [ann.id.as_str(), bob.id.as_str()];
    expected.sort_unstable();
    assert_eq!(participants, expected);

    for (who, other) in [(&bob, &ann), (&ann, &bob)] {
        let again = app
            .post_as(
                "/api/v1/conversations",
                &who.access_token,
                json!({"type": "direct", "participant_ids": [other.id]}),
            )
            .await;
        assert_eq!(again.status(), StatusCode::OK);
        assert_eq!(again.json::<Value>().await.unwrap()["id"], first["id"]);
    }
}

async fn concurrent_requests_for_one_pair_create_one_conversation(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (ann, bob) = (app.register("ann").await, app.register("bob").await);
    let attempts = (0..10).map(|n| {
        let (me, other) = if n % 2 == 0 { (&ann, &bob) } else { (&bob, &ann) };
        app.post_as("/api/v1/conversations", &me.access_token, json!({"type": "direct", "participant_ids": [other.id]}))
    });
    let mut ids = std::collections::HashSet::new();
    let mut created = 0;
    for r in futures::future::join_all(attempts).await {
        created += usize::from(r.status() == StatusCode::CREATED);
        assert!(r.status().is_success());
        ids.insert(r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(created, 1);
}

async fn direct_conversations_need_exactly_one_existing_other_user(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (ann, bob) = (app.register("ann").await, app.register("bob").await);
    let path = "/api/v1/conversations";
    let with_self = app.post_as(path, &ann.access_token, json!({"type": "direct", "participant_ids": [ann.id]})).await;
    assert_error(with_self, StatusCode::BAD_REQUEST, "invalid_argument").await;
    let two =
        app.post_as(path, &ann.access_token, json!({"type": "direct", "participant_ids": [bob.id, bob.id]})).await;
    assert_error(two, StatusCode::BAD_REQUEST, "invalid_argument").await;
    let ghost = app
        .post_as(path, &ann.access_token, json!({"type": "direct", "participant_ids": ["01ARZ3NDEKTSV4RRFFQ69G5FAV"]}))
        .await;
    assert_error(ghost, StatusCode::NOT_FOUND, "not_found").await;
    let bad_type = app.post_as(path, &ann.access_token, json!({"type": "channel", "participant_ids": [bob.id]})).await;
    assert_error(bad_type, StatusCode::BAD_REQUEST, "invalid_argument").await;
    let injected =
        app.post_as(path, &ann.access_token, json!({"type": "direct", "participant_ids": [{"$ne": 1}]})).await;
    assert_error(injected, StatusCode::BAD_REQUEST, "invalid_argument").await;
}

async fn a_group_makes_its_creator_participant_and_admin(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (ann, bob, cat) = (app.register("ann").await, app.register("bob").await, app.register("cat").await);
    let r = app
        .post_as(
            "/api/v1/conversations",
            &ann.access_token,
            json!({"type": "group", "name": "  Trip  ", "description": "June", "participant_ids": [bob.id, cat.id, bob.id]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let group: Value = r.json().await.unwrap();
    assert_eq!(group["type"], "group");
    assert_eq!(group["name"], "Trip");
    assert_eq!(group["description"], "June");
    assert_eq!(group["member_count"], 3);
    assert_eq!(group["admins"], json!([ann.id]));
    assert_eq!(group["created_by"], ann.id.as_str());

    let nameless = app
        .post_as(
            "/api/v1/conversations",
            &ann.access_token,
            json!({"type": "group", "name": " ", "participant_ids": [bob.id]}),
        )
        .await;
    assert_error(nameless, StatusCode::BAD_REQUEST, "invalid_argument").await;
    let alone = app
        .post_as(
            "/api/v1/conversations",
            &ann.access_token,
            json!({"type": "group", "name": "me", "participant_ids": []}),
        )
        .await;
    assert_error(alone, StatusCode::BAD_REQUEST, "invalid_argument").await;
}

async fn only_admins_rename_add_and_promote(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (ann, bob, cat) = (app.register("ann").await, app.register("bob").await, app.register("cat").await);
    let id = app.group(&ann, "Trip", &[&bob]).await;
    let path = format!("/api/v1/conversations/{id}");

    let by_member = app.patch_as(&path, &bob.access_token, json!({"name": "Bob's"})).await;
    assert_error(by_member, StatusCode::FORBIDDEN, "permission_denied").await;
    let add_by_member =
        app.post_as(&format!("{path}/participants"), &bob.access_token, json!({"user_id": cat.id})).await;
    assert_error(add_by_member, StatusCode::FORBIDDEN, "permission_denied").await;

    let renamed: Value = app
        .patch_as(&path, &ann.access_token, json!({"name": "Trip 2", "description": "July"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!((renamed["name"].as_str(), renamed["description"].as_str()), (Some("Trip 2"), Some("July")));

    let added = app.post_as(&format!("{path}/participants"), &ann.access_token, json!({"user_id": cat.id})).await;
    assert_eq!(added.status(), StatusCode::OK);
    assert_eq!(added.json::<Value>().await.unwrap()["member_count"], 3);

    let stranger = app.register("dan").await;
    let promote_outsider =
        app.post_as(&format!("{path}/admins"), &ann.access_token, json!({"user_id": stranger.id})).await;
    assert_error(promote_outsider, StatusCode::BAD_REQUEST, "invalid_argument").await;
    let promoted = app.post_as(&format!("{path}/admins"), &ann.access_token, json!({"user_id": bob.id})).await;
    assert_eq!(promoted.status(), StatusCode::OK);
    // Now Bob may rename.
    assert_eq!(app.patch_as(&path, &bob.access_token, json!({"name": "Bob's"})).await.status(), StatusCode::OK);

    let direct = app.direct(&ann, &bob).await;
    let rename_direct =
        app.patch_as(&format!("/api/v1/conversations/{direct}"), &ann.access_token, json!({"name": "x"})).await;
    assert_error(rename_direct, StatusCode::BAD_REQUEST, "invalid_argument").await;
}

async fn members_leave_and_admins_remove(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (ann, bob, cat) = (app.register("ann").await, app.register("bob").await, app.register("cat").await);
    let id = app.group(&ann, "Trip", &[&bob, &cat]).await;
    let member = |u: &str| format!("/api/v1/conversations/{id}/participants/{u}");

    let by_member = app.delete_as(&member(&cat.id), &bob.access_token).await;
    assert_error(by_member, StatusCode::FORBIDDEN, "permission_denied").await;
    assert_eq!(app.delete_as(&member(&cat.id), &ann.access_token).await.status(), StatusCode::NO_CONTENT);
    assert_error(
        app.get_as(&format!("/api/v1/conversations/{id}"), &cat.access_token).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    // The last admin leaves: the longest-standing member takes over.
    assert_eq!(app.delete_as(&member(&ann.id), &ann.access_token).await.status(), StatusCode::NO_CONTENT);
    let group = app.json_as(&format!("/api/v1/conversations/{id}"), &bob.access_token).await;
    assert_eq!(group["participants"], json!([bob.id]));
    assert_eq!(group["admins"], json!([bob.id]));

    let direct = app.direct(&ann, &bob).await;
    let leave_direct =
        app.delete_as(&format!("/api/v1/conversations/{direct}/participants/{}", ann.id), &ann.access_token).await;
    assert_error(leave_direct, StatusCode::BAD_REQUEST, "invalid_argument").await;
}

async fn outsiders_get_404_on_every_conversation_path(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (ann, bob, eve) = (app.register("ann").await, app.register("bob").await, app.register("eve").await);
    let id = app.group(&ann, "Secret", &[&bob]).await;
    let message = app.say(&ann, &id, "hidden").await;
    let mid = message["id"].as_str().unwrap();
    let c = format!("/api/v1/conversations/{id}");
    let t = &eve.access_token;
    let responses = [
        app.get_as(&c, t).await,
        app.patch_as(&c, t, json!({"name": "mine"})).await,
        app.post_as(&format!("{c}/participants"), t, json!({"user_id": eve.id})).await,
        app.delete_as(&format!("{c}/participants/{}", bob.id), t).await,
        app.post_as(&format!("{c}/admins"), t, json!({"user_id": eve.id})).await,
        app.get_as(&format!("{c}/messages"), t).await,
        app.post_as(&format!("{c}/messages"), t, json!({"content": "let me in"})).await,
        app.post_as(&format!("{c}/read"), t, json!({"seq": 1})).await,
        app.patch_as(&format!("/api/v1/messages/{mid}"), t, json!({"content": "x"})).await,
        app.delete_as(&format!("/api/v1/messages/{mid}"), t).await,
        app.post_as(&format!("/api/v1/rooms/{id}/join"), t, json!({})).await,
        app.get_as("/api/v1/conversations/not-an-id", t).await,
    ];
    for r in responses {
        assert_error(r, StatusCode::NOT_FOUND, "not_found").await;
    }
    let mine = app.json_as("/api/v1/conversations", t).await;
    assert_eq!(mine["items"], json!([]));
}

async fn my_conversations_come_most_recently_active_first(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (ann, bob, cat) = (app.register("ann").await, app.register("bob").await, app.register("cat").await);
    let with_bob = app.direct(&ann, &bob).await;
    let with_cat = app.direct(&ann, &cat).await;
    let group = app.group(&ann, "All", &[&bob, &cat]).await;
    app.say(&bob, &with_bob, "newest").await;

    let order = |v: &Value| -> Vec<String> {
        v["items"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_owned()).collect()
    };
    let all = app.json_as("/api/v1/conversations", &ann.access_token).await;
    assert_eq!(order(&all), [with_bob.clone(), group.clone(), with_cat.clone()]);
    assert_eq!(all["items"][0]["last_message"]["content"], "newest");
    assert_eq!(all["items"][0]["unread_count"], 1);

    let first = app.json_as("/api/v1/conversations?limit=2", &ann.access_token).await;
    assert_eq!(order(&first), [with_bob, group]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let rest = app.json_as(&format!("/api/v1/conversations?limit=2&cursor={cursor}"), &ann.access_token).await;
    assert_eq!(order(&rest), [with_cat]);
    assert!(rest["next_cursor"].is_null());
}
