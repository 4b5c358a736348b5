//! Replies (api.md v1.1): `reply_to` on a send (REST and WebSocket), the
//! answered message shown as it is now, `reply_count`, and the list of
//! replies.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, TestUser, assert_error};
use crate::on_every_backend;

on_every_backend!(
    a_reply_shows_what_it_answers_as_it_is_now_and_is_counted,
    replies_are_listed_a_page_at_a_time_to_participants_only,
    a_reply_to_anything_but_a_message_of_the_conversation_is_400_and_sends_nothing,
);

async fn reply(app: &TestApp, user: &TestUser, conversation: &str, to: &Value, content: &str) -> reqwest::Response {
    app.post_as(
        &format!("/api/v1/conversations/{conversation}/messages"),
        &user.access_token,
        json!({"content": content, "reply_to": to["id"]}),
    )
    .await
}

async fn history(app: &TestApp, user: &TestUser, conversation: &str) -> Vec<Value> {
    let page = app.json_as(&format!("/api/v1/conversations/{conversation}/messages"), &user.access_token).await;
    page["items"].as_array().unwrap().clone()
}

async fn a_reply_shows_what_it_answers_as_it_is_now_and_is_counted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (ann, bob) = (app.register("ann").await, app.register("bob").await);
    let dm = app.direct(&ann, &bob).await;
    let mut ann_ws = app.ws(&ann).await;
    let long = format!("{}{}", "é".repeat(99), "xyz");
    let question = app.say(&ann, &dm, &long).await;
    assert_eq!((question["reply_to"].clone(), question["reply_count"].clone()), (Value::Null, json!(0)));
    ann_ws.expect("message.new").await;

    let sent = reply(&app, &bob, &dm, &question, "yes").await;
    assert_eq!(sent.status(), StatusCode::CREATED);
    let answer: Value = sent.json().await.unwrap();
    let excerpt: String = long.chars().take(100).collect();
    let expected = json!({"id": question["id"], "seq": 1, "sender_id": ann.id, "excerpt": excerpt});
    assert_eq!(answer["reply_to"], expected, "the first 100 characters");
    // Live, with what it answers.
    assert_eq!(ann_ws.expect("message.new").await["message"]["reply_to"], expected);

    // Over the WebSocket too.
    ann_ws
        .send(json!({"type": "message.send", "id": 1, "conversation_id": dm, "content": "thanks",
                     "client_id": "r-1", "reply_to": answer["id"]}))
        .await;
    let ack = ann_ws.answer().await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(ack["message"]["reply_to"]["id"], answer["id"]);
    assert_eq!(ack["message"]["reply_to"]["excerpt"], "yes");

    let items = history(&app, &bob, &dm).await;
    let counts: Vec<u64> = items.iter().map(|m| m["reply_count"].as_u64().unwrap()).collect();
    assert_eq!(counts, [1, 1, 0]);

    // The excerpt is the answered message as it is now: edited, then deleted.
    let path = format!("/api/v1/messages/{}", question["id"].as_str().unwrap());
    assert_eq!(app.patch_as(&path, &ann.access_token, json!({"content": "new question"})).await.status(), 200);
    assert_eq!(history(&app, &bob, &dm).await[1]["reply_to"]["excerpt"], "new question");
    assert_eq!(app.delete_as(&path, &ann.access_token).await.status(), 204);
    let items = history(&app, &bob, &dm).await;
    assert_eq!(items[1]["reply_to"], json!({"id": question["id"], "seq": 1, "sender_id": ann.id, "excerpt": ""}));
    assert_eq!(items[0]["reply_count"], 1, "a deleted message keeps its replies");
}

async fn replies_are_listed_a_page_at_a_time_to_participants_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (ann, bob, eve) = (app.register("ann").await, app.register("bob").await, app.register("eve").await);
    let group = app.group(&ann, "Team", &[&bob]).await;
    let topic = app.say(&ann, &group, "plans for friday?").await;
    app.say(&bob, &group, "unrelated").await;
    for (user, text) in [(&bob, "pizza"), (&ann, "sushi"), (&bob, "both")] {
        assert_eq!(reply(&app, user, &group, &topic, text).await.status(), StatusCode::CREATED);
    }
    let path = format!("/api/v1/messages/{}/replies", topic["id"].as_str().unwrap());
    let first = app.json_as(&format!("{path}?limit=2"), &bob.access_token).await;
    let said = |page: &Value| -> Vec<String> {
        page["items"].as_array().unwrap().iter().map(|m| m["content"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(said(&first), ["pizza", "sushi"]);
    assert_eq!(first["items"][0]["reply_to"]["id"], topic["id"]);
    let cursor = first["next_cursor"].as_str().expect("a second page");
    let second = app.json_as(&format!("{path}?limit=2&cursor={cursor}"), &bob.access_token).await;
    assert_eq!(said(&second), ["both"]);
    assert!(second["next_cursor"].is_null());

    assert_error(app.get_as(&path, &eve.access_token).await, StatusCode::NOT_FOUND, "not_found").await;
    let nothing = "/api/v1/messages/01ARZ3NDEKTSV4RRFFQ69G5FAV/replies";
    assert_error(app.get_as(nothing, &ann.access_token).await, StatusCode::NOT_FOUND, "not_found").await;
    for query in ["?limit=0", "?limit=101", "?cursor=abc"] {
        let r = app.get_as(&format!("{path}{query}"), &ann.access_token).await;
        assert_error(r, StatusCode::BAD_REQUEST, "invalid_argument").await;
    }
}

async fn a_reply_to_anything_but_a_message_of_the_conversation_is_400_and_sends_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (ann, bob, cid) = (app.register("ann").await, app.register("bob").await, app.register("cid").await);
    let ours = app.direct(&ann, &bob).await;
    let elsewhere = app.direct(&ann, &cid).await;
    let there = app.say(&ann, &elsewhere, "elsewhere").await;
    for to in [there["id"].clone(), json!("01ARZ3NDEKTSV4RRFFQ69G5FAV"), json!("nope"), json!("")] {
        let r = reply(&app, &bob, &ours, &json!({"id": to}), "hmm").await;
        assert_error(r, StatusCode::BAD_REQUEST, "invalid_argument").await;
    }
    let r = app
        .post_as(
            &format!("/api/v1/conversations/{ours}/messages"),
            &bob.access_token,
            json!({"content": "x", "reply_to": 7}),
        )
        .await;
    assert_error(r, StatusCode::BAD_REQUEST, "invalid_argument").await;
    assert!(history(&app, &bob, &ours).await.is_empty(), "nothing was sent");
}
