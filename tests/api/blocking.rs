//! Blocking (api.md v1.1): no new direct conversation and no message in an
//! existing one between a blocker and the user blocked, either way round;
//! groups and rooms unaffected; the caller's block list.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, TestUser, assert_error};
use crate::on_every_backend;

on_every_backend!(
    a_block_stops_new_direct_conversations_either_way_but_not_groups,
    a_block_stops_sending_in_a_direct_conversation_either_way_and_history_stays_readable,
    blocking_and_unblocking_are_idempotent_and_the_list_pages_newest_first,
    blocking_refuses_bad_targets_and_changes_nothing,
);

fn block_path(user: &TestUser) -> String {
    format!("/api/v1/users/{}/block", user.id)
}

async fn block(app: &TestApp, by: &TestUser, whom: &TestUser) {
    let r = app.post_as(&block_path(whom), &by.access_token, json!({})).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
}

async fn unblock(app: &TestApp, by: &TestUser, whom: &TestUser) {
    assert_eq!(app.delete_as(&block_path(whom), &by.access_token).await.status(), StatusCode::NO_CONTENT);
}

async fn open_direct(app: &TestApp, a: &TestUser, b: &TestUser) -> reqwest::Response {
    app.post_as("/api/v1/conversations", &a.access_token, json!({"type": "direct", "participant_ids": [b.id]})).await
}

async fn send(app: &TestApp, user: &TestUser, conversation: &str, content: &str) -> reqwest::Response {
    let path = format!("/api/v1/conversations/{conversation}/messages");
    app.post_as(&path, &user.access_token, json!({"content": content})).await
}

async fn blocked_ids(app: &TestApp, user: &TestUser, query: &str) -> (Vec<String>, Value) {
    let page = app.json_as(&format!("/api/v1/users/me/blocks{query}"), &user.access_token).await;
    let ids = page["items"].as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap().to_owned()).collect();
    (ids, page)
}

async fn a_block_stops_new_direct_conversations_either_way_but_not_groups(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (ann, bob) = (app.register("ann").await, app.register("bob").await);
    block(&app, &ann, &bob).await;

    for (a, b) in [(&bob, &ann), (&ann, &bob)] {
        assert_error(open_direct(&app, a, b).await, StatusCode::FORBIDDEN, "permission_denied").await;
    }
    for user in [&ann, &bob] {
        let mine = app.json_as("/api/v1/conversations", &user.access_token).await;
        assert_eq!(mine["items"], json!([]), "nothing was created");
    }

    // Groups are unaffected: both can be in one and write there.
    let group = app.group(&ann, "Book club", &[&bob]).await;
    app.say(&bob, &group, "hello all").await;
    app.say(&ann, &group, "welcome").await;

    // Once lifted, a direct conversation can be opened.
    unblock(&app, &ann, &bob).await;
    assert_eq!(open_direct(&app, &bob, &ann).await.status(), StatusCode::CREATED);
}

async fn a_block_stops_sending_in_a_direct_conversation_either_way_and_history_stays_readable(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (ann, bob) = (app.register("ann").await, app.register("bob").await);
    let dm = app.direct(&ann, &bob).await;
    let hi = app.say(&ann, &dm, "hi bob").await;
    // Answered from the message service's membership cache from now on.
    app.say(&bob, &dm, "hi ann").await;

    block(&app, &bob, &ann).await;
    for user in [&ann, &bob] {
        assert_error(send(&app, user, &dm, "still there?").await, StatusCode::FORBIDDEN, "permission_denied").await;
    }
    // Nor can what was said be rewritten.
    let edit = app
        .patch_as(
            &format!("/api/v1/messages/{}", hi["id"].as_str().unwrap()),
            &ann.access_token,
            json!({"content": "hi bob!!"}),
        )
        .await;
    assert_error(edit, StatusCode::FORBIDDEN, "permission_denied").await;
    // Over the WebSocket too, and the socket stays usable.
    let mut ws = app.ws(&ann).await;
    ws.send(json!({"type": "message.send", "id": "s1", "conversation_id": dm, "content": "psst", "client_id": "c1"}))
        .await;
    let refused = ws.answer().await;
    assert_eq!((refused["type"].as_str(), refused["code"].as_str()), (Some("error"), Some("permission_denied")));
    assert_eq!(refused["id"], "s1");
    ws.sync().await;

    // What was said stays readable to both, and the conversation can be
    // fetched (it is not new).
    for user in [&ann, &bob] {
        let history = app.json_as(&format!("/api/v1/conversations/{dm}/messages"), &user.access_token).await;
        let said: Vec<&str> =
            history["items"].as_array().unwrap().iter().map(|m| m["content"].as_str().unwrap()).collect();
        assert_eq!(said, ["hi bob", "hi ann"]);
    }
    let existing = open_direct(&app, &ann, &bob).await;
    assert_eq!(existing.status(), StatusCode::OK);
    assert_eq!(existing.json::<Value>().await.unwrap()["id"], dm.as_str());

    // A block by each: lifting one is not enough.
    block(&app, &ann, &bob).await;
    unblock(&app, &bob, &ann).await;
    assert_error(send(&app, &bob, &dm, "now?").await, StatusCode::FORBIDDEN, "permission_denied").await;
    unblock(&app, &ann, &bob).await;
    app.say(&bob, &dm, "now").await;
    app.say(&ann, &dm, "yes").await;
}

async fn blocking_and_unblocking_are_idempotent_and_the_list_pages_newest_first(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (ann, bob, cid, dan) =
        (app.register("ann").await, app.register("bob").await, app.register("cid").await, app.register("dan").await);
    assert_eq!(blocked_ids(&app, &ann, "").await.0, Vec::<String>::new());

    block(&app, &ann, &bob).await;
    block(&app, &ann, &bob).await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    block(&app, &ann, &cid).await;
    // Somebody else's blocks are their own.
    block(&app, &dan, &ann).await;

    let (ids, page) = blocked_ids(&app, &ann, "").await;
    assert_eq!(ids, [cid.id.clone(), bob.id.clone()], "newest first, each once");
    assert!(page["next_cursor"].is_null());
    let profile = &page["items"][1];
    assert_eq!(profile["username"], "bob");
    assert!(profile.get("email").is_none(), "public profiles: {profile}");

    let (first, page) = blocked_ids(&app, &ann, "?limit=1").await;
    assert_eq!(first, std::slice::from_ref(&cid.id));
    let cursor = page["next_cursor"].as_str().expect("a second page");
    let (second, page) = blocked_ids(&app, &ann, &format!("?limit=1&cursor={cursor}")).await;
    assert_eq!(second, std::slice::from_ref(&bob.id));
    assert!(page["next_cursor"].is_null());

    unblock(&app, &ann, &bob).await;
    unblock(&app, &ann, &bob).await;
    unblock(&app, &ann, &dan).await; // never blocked: still 204
    assert_eq!(blocked_ids(&app, &ann, "").await.0, std::slice::from_ref(&cid.id));
    assert_eq!(blocked_ids(&app, &dan, "").await.0, std::slice::from_ref(&ann.id));
}

async fn blocking_refuses_bad_targets_and_changes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ann = app.register("ann").await;
    let me = block_path(&ann);
    assert_error(app.post_as(&me, &ann.access_token, json!({})).await, StatusCode::BAD_REQUEST, "invalid_argument")
        .await;
    assert_error(app.delete_as(&me, &ann.access_token).await, StatusCode::BAD_REQUEST, "invalid_argument").await;
    for id in ["01ARZ3NDEKTSV4RRFFQ69G5FAV", "nope"] {
        let r = app.post_as(&format!("/api/v1/users/{id}/block"), &ann.access_token, json!({})).await;
        assert_error(r, StatusCode::NOT_FOUND, "not_found").await;
    }
    let anonymous = app.send(reqwest::Method::POST, &me, None, None).await;
    assert_error(anonymous, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    for query in ["?limit=0", "?limit=101", "?cursor=@@@", "?limit=x"] {
        let r = app.get_as(&format!("/api/v1/users/me/blocks{query}"), &ann.access_token).await;
        assert_error(r, StatusCode::BAD_REQUEST, "invalid_argument").await;
    }
    assert_eq!(blocked_ids(&app, &ann, "").await.0, Vec::<String>::new());
}
