//! Mentions (api.md v1.1): `@username` of a participant mentions them
//! (`mentions: [user_id]`, participants only, each once), conversations
//! count the caller's unread mentions (`mention_count`), and
//! `GET /api/v1/mentions` lists the messages that mention the caller in
//! conversations the caller is still in, newest first.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, TestUser, assert_error};
use crate::on_every_backend;

on_every_backend!(
    participants_named_with_at_are_mentioned_once_live_and_in_history,
    mention_count_counts_unread_mentions_exactly,
    edits_re_resolve_and_deletions_drop_mentions,
    the_mentions_list_is_newest_first_paged_and_only_where_the_caller_still_is,
);

async fn conversation(app: &TestApp, user: &TestUser, id: &str) -> Value {
    app.json_as(&format!("/api/v1/conversations/{id}"), &user.access_token).await
}

async fn mentions_of(app: &TestApp, user: &TestUser, query: &str) -> Value {
    app.json_as(&format!("/api/v1/mentions{query}"), &user.access_token).await
}

fn contents(page: &Value) -> Vec<String> {
    page["items"].as_array().unwrap().iter().map(|m| m["content"].as_str().unwrap().to_owned()).collect()
}

async fn participants_named_with_at_are_mentioned_once_live_and_in_history(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (ann, bob, cat, eve) =
        (app.register("ann").await, app.register("Bob.B").await, app.register("cat").await, app.register("eve").await);
    let group = app.group(&ann, "Team", &[&bob, &cat]).await;
    let mut bob_ws = app.ws(&bob).await;

    // Case-insensitive, each once in the order first named; `@eve` is no
    // participant, `cat@example.com` an address, `@bob.b.` ends a sentence.
    let sent = app.say(&ann, &group, "@CAT and @bob.b. and again @cat, not @eve nor cat@example.com").await;
    assert_eq!(sent["mentions"], json!([cat.id, bob.id]));
    let live = bob_ws.expect("message.new").await;
    assert_eq!(live["message"]["mentions"], json!([cat.id, bob.id]));
    let history = app.json_as(&format!("/api/v1/conversations/{group}/messages"), &cat.access_token).await;
    assert_eq!(history["items"][0]["mentions"], json!([cat.id, bob.id]));

    // Nobody named: an empty list. Over the WebSocket too.
    assert_eq!(app.say(&ann, &group, "hello all").await["mentions"], json!([]));
    bob_ws.expect("message.new").await;
    let mut ann_ws = app.ws(&ann).await;
    ann_ws
        .send(json!({"type": "message.send", "id": 1, "conversation_id": group, "content": "ping @cat",
                     "client_id": "m-1"}))
        .await;
    let ack = ann_ws.answer().await;
    assert_eq!(ack["message"]["mentions"], json!([cat.id]), "{ack}");
    let _ = eve;
}

async fn mention_count_counts_unread_mentions_exactly(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (ann, bob) = (app.register("ann").await, app.register("bob").await);
    let group = app.group(&ann, "Team", &[&bob]).await;
    assert_eq!(conversation(&app, &bob, &group).await["mention_count"], 0);

    app.say(&ann, &group, "@bob one").await;
    app.say(&ann, &group, "no mention").await;
    let third = app.say(&ann, &group, "@bob three").await;
    // One's own mention of oneself does not count.
    app.say(&bob, &group, "note to @bob").await;
    let seen = conversation(&app, &bob, &group).await;
    assert_eq!((seen["unread_count"].clone(), seen["mention_count"].clone()), (json!(3), json!(2)));
    let listed = app.json_as("/api/v1/conversations", &bob.access_token).await;
    let listed = listed["items"].as_array().unwrap().iter().find(|c| c["id"] == group.as_str()).unwrap().clone();
    assert_eq!(listed["mention_count"], 2);
    assert_eq!(conversation(&app, &ann, &group).await["mention_count"], 0, "ann is not mentioned");

    // Reading up to the second message leaves the third.
    let read = app.post_as(&format!("/api/v1/conversations/{group}/read"), &bob.access_token, json!({"seq": 2})).await;
    assert_eq!(read.status(), StatusCode::NO_CONTENT);
    assert_eq!(conversation(&app, &bob, &group).await["mention_count"], 1);
    // A deleted mention no longer counts.
    let gone = app.delete_as(&format!("/api/v1/messages/{}", third["id"].as_str().unwrap()), &ann.access_token).await;
    assert_eq!(gone.status(), StatusCode::NO_CONTENT);
    assert_eq!(conversation(&app, &bob, &group).await["mention_count"], 0);
}

async fn edits_re_resolve_and_deletions_drop_mentions(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (ann, bob, cat) = (app.register("ann").await, app.register("bob").await, app.register("cat").await);
    let group = app.group(&ann, "Team", &[&bob, &cat]).await;
    let message = app.say(&ann, &group, "over to @bob").await;
    let path = format!("/api/v1/messages/{}", message["id"].as_str().unwrap());
    let mut cat_ws = app.ws(&cat).await;

    let edited = app.patch_as(&path, &ann.access_token, json!({"content": "over to @cat"})).await;
    assert_eq!(edited.status(), StatusCode::OK);
    assert_eq!(edited.json::<Value>().await.unwrap()["mentions"], json!([cat.id]));
    let live = cat_ws.expect("message.updated").await;
    assert_eq!(live["message"]["mentions"], json!([cat.id]));
    assert_eq!(conversation(&app, &bob, &group).await["mention_count"], 0);
    assert_eq!(conversation(&app, &cat, &group).await["mention_count"], 1);
    assert!(contents(&mentions_of(&app, &bob, "").await).is_empty());
    assert_eq!(contents(&mentions_of(&app, &cat, "").await), ["over to @cat"]);

    assert_eq!(app.delete_as(&path, &ann.access_token).await.status(), StatusCode::NO_CONTENT);
    let history = app.json_as(&format!("/api/v1/conversations/{group}/messages"), &cat.access_token).await;
    assert_eq!(history["items"][0]["mentions"], json!([]));
    assert!(contents(&mentions_of(&app, &cat, "").await).is_empty());
}

async fn the_mentions_list_is_newest_first_paged_and_only_where_the_caller_still_is(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (ann, bob) = (app.register("ann").await, app.register("bob").await);
    let team = app.group(&ann, "Team", &[&bob]).await;
    let dm = app.direct(&ann, &bob).await;
    let other = app.group(&ann, "Other", &[&bob]).await;
    for (conversation, text) in [(&team, "@bob 1"), (&dm, "@bob 2"), (&team, "@bob 3"), (&other, "@bob 4")] {
        app.say(&ann, conversation, text).await;
        // Distinct creation times, so "newest first" is one order.
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    app.say(&bob, &team, "@bob to myself").await;
    app.say(&ann, &team, "@ann only").await;

    let all = mentions_of(&app, &bob, "").await;
    assert_eq!(contents(&all), ["@bob 4", "@bob 3", "@bob 2", "@bob 1"]);
    assert!(all["next_cursor"].is_null());
    assert_eq!(all["items"][0]["mentions"], json!([bob.id]));

    let first = mentions_of(&app, &bob, "?limit=3").await;
    assert_eq!(contents(&first), ["@bob 4", "@bob 3", "@bob 2"]);
    let cursor = first["next_cursor"].as_str().expect("a second page");
    let second = mentions_of(&app, &bob, &format!("?limit=3&cursor={cursor}")).await;
    assert_eq!(contents(&second), ["@bob 1"]);
    assert!(second["next_cursor"].is_null());

    // Removed from "Other": its mention is no longer listed (nor counted).
    let removed =
        app.delete_as(&format!("/api/v1/conversations/{other}/participants/{}", bob.id), &ann.access_token).await;
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    assert_eq!(contents(&mentions_of(&app, &bob, "").await), ["@bob 3", "@bob 2", "@bob 1"]);

    assert_error(
        app.get_as("/api/v1/mentions?cursor=nonsense", &bob.access_token).await,
        StatusCode::BAD_REQUEST,
        "invalid_argument",
    )
    .await;
    assert_error(
        app.get_as("/api/v1/mentions?limit=0", &bob.access_token).await,
        StatusCode::BAD_REQUEST,
        "invalid_argument",
    )
    .await;
    assert_error(
        app.send(reqwest::Method::GET, "/api/v1/mentions", None, None).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
}
