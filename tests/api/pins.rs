//! Pins (api.md v1.1): admins pin (either participant of a direct
//! conversation), participants list them most recently pinned first, and a
//! pin or unpin reaches participants as `message.updated`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, TestUser, assert_error};
use crate::on_every_backend;

on_every_backend!(
    admins_pin_and_everyone_in_the_conversation_sees_it_live_and_in_the_list,
    in_a_direct_conversation_either_participant_pins,
    pins_are_replayed_on_resume_and_go_with_a_deleted_message,
);

fn pin_path(message: &Value) -> String {
    format!("/api/v1/messages/{}/pin", message["id"].as_str().unwrap())
}

async fn pin(app: &TestApp, user: &TestUser, message: &Value) -> reqwest::Response {
    app.post_as(&pin_path(message), &user.access_token, json!({})).await
}

async fn pinned(app: &TestApp, user: &TestUser, conversation: &str, query: &str) -> Value {
    app.json_as(&format!("/api/v1/conversations/{conversation}/pins{query}"), &user.access_token).await
}

fn contents(page: &Value) -> Vec<String> {
    page["items"].as_array().unwrap().iter().map(|m| m["content"].as_str().unwrap().to_owned()).collect()
}

async fn admins_pin_and_everyone_in_the_conversation_sees_it_live_and_in_the_list(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (ann, bob, eve) = (app.register("ann").await, app.register("bob").await, app.register("eve").await);
    let group = app.group(&ann, "Team", &[&bob]).await;
    let rules = app.say(&bob, &group, "the rules").await;
    let agenda = app.say(&ann, &group, "the agenda").await;
    assert_eq!(rules["pinned"], false);
    let mut bob_ws = app.ws(&bob).await;

    // Bob is no admin: 403; Eve is not in it: 404.
    assert_error(pin(&app, &bob, &rules).await, StatusCode::FORBIDDEN, "permission_denied").await;
    assert_error(pin(&app, &eve, &rules).await, StatusCode::NOT_FOUND, "not_found").await;
    let nothing = json!({"id": "01ARZ3NDEKTSV4RRFFQ69G5FAV"});
    assert_error(pin(&app, &ann, &nothing).await, StatusCode::NOT_FOUND, "not_found").await;

    for _ in 0..2 {
        assert_eq!(pin(&app, &ann, &rules).await.status(), StatusCode::NO_CONTENT);
    }
    let updated = bob_ws.expect("message.updated").await;
    assert_eq!(
        (updated["message"]["id"].clone(), updated["message"]["pinned"].clone()),
        (rules["id"].clone(), json!(true))
    );
    bob_ws.expect_silence().await; // the repeat changed nothing

    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    assert_eq!(pin(&app, &ann, &agenda).await.status(), StatusCode::NO_CONTENT);
    bob_ws.expect("message.updated").await;
    assert_eq!(contents(&pinned(&app, &bob, &group, "").await), ["the agenda", "the rules"]);
    let first = pinned(&app, &bob, &group, "?limit=1").await;
    assert_eq!(contents(&first), ["the agenda"]);
    assert_eq!(first["items"][0]["pinned"], true);
    let cursor = first["next_cursor"].as_str().expect("a second page");
    let second = pinned(&app, &bob, &group, &format!("?limit=1&cursor={cursor}")).await;
    assert_eq!(contents(&second), ["the rules"]);
    assert!(second["next_cursor"].is_null());
    let history = app.json_as(&format!("/api/v1/conversations/{group}/messages"), &bob.access_token).await;
    assert_eq!(history["items"][0]["pinned"], true);

    // Unpinned (idempotent), by an admin only.
    assert_error(
        app.delete_as(&pin_path(&agenda), &bob.access_token).await,
        StatusCode::FORBIDDEN,
        "permission_denied",
    )
    .await;
    for _ in 0..2 {
        assert_eq!(app.delete_as(&pin_path(&agenda), &ann.access_token).await.status(), StatusCode::NO_CONTENT);
    }
    assert_eq!(bob_ws.expect("message.updated").await["message"]["pinned"], false);
    assert_eq!(contents(&pinned(&app, &bob, &group, "").await), ["the rules"]);

    // Outsiders and bad cursors.
    assert_error(
        app.get_as(&format!("/api/v1/conversations/{group}/pins"), &eve.access_token).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    for query in ["?cursor=nope", "?limit=0"] {
        let r = app.get_as(&format!("/api/v1/conversations/{group}/pins{query}"), &ann.access_token).await;
        assert_error(r, StatusCode::BAD_REQUEST, "invalid_argument").await;
    }
}

async fn in_a_direct_conversation_either_participant_pins(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (ann, bob) = (app.register("ann").await, app.register("bob").await);
    let dm = app.direct(&ann, &bob).await;
    let address = app.say(&ann, &dm, "my address").await;
    assert_eq!(pin(&app, &bob, &address).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.delete_as(&pin_path(&address), &ann.access_token).await.status(), StatusCode::NO_CONTENT);
    // A block stops pinning (writing) in their conversation.
    let block = format!("/api/v1/users/{}/block", ann.id);
    assert_eq!(app.post_as(&block, &bob.access_token, json!({})).await.status(), StatusCode::NO_CONTENT);
    assert_error(pin(&app, &ann, &address).await, StatusCode::FORBIDDEN, "permission_denied").await;
}

async fn pins_are_replayed_on_resume_and_go_with_a_deleted_message(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (ann, bob) = (app.register("ann").await, app.register("bob").await);
    let group = app.group(&ann, "Team", &[&bob]).await;
    let first = app.say(&ann, &group, "first").await;
    let second = app.say(&ann, &group, "second").await;
    pin(&app, &ann, &first).await;
    let reacted = app
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/messages/{}/reactions/%F0%9F%91%8D", first["id"].as_str().unwrap()),
            Some(&bob.access_token),
            None,
        )
        .await;
    assert_eq!(reacted.status(), StatusCode::NO_CONTENT);

    // Bob away: the second is pinned.
    assert_eq!(pin(&app, &ann, &second).await.status(), StatusCode::NO_CONTENT);
    let mut bob_ws = app.ws(&bob).await;
    bob_ws.send(json!({"type": "resume", "id": "r", "positions": {group.clone(): 2}})).await;
    // What changed after bob saw seq 2, each once in its final state, in
    // change order: the first (pinned, reacted to), then the second (pinned).
    let mut replayed = Vec::new();
    loop {
        let frame = bob_ws.next().await;
        if frame["type"] == "resumed" {
            break;
        }
        assert_eq!(frame["type"], "message.updated", "{frame}");
        replayed.push((frame["message"]["seq"].clone(), frame["message"]["pinned"].clone()));
    }
    assert_eq!(replayed, [(json!(1), json!(true)), (json!(2), json!(true))]);

    // A pin event keeps each reader's reactions.
    assert_eq!(app.delete_as(&pin_path(&first), &ann.access_token).await.status(), StatusCode::NO_CONTENT);
    let live = bob_ws.expect("message.updated").await;
    assert_eq!(live["message"]["reactions"], json!([{"emoji": "👍", "count": 1, "me": true}]));

    // Deleted: unpinned, and it cannot be pinned again.
    assert_eq!(
        app.delete_as(&format!("/api/v1/messages/{}", second["id"].as_str().unwrap()), &ann.access_token)
            .await
            .status(),
        204
    );
    assert!(contents(&pinned(&app, &bob, &group, "").await).is_empty());
    assert_error(pin(&app, &ann, &second).await, StatusCode::BAD_REQUEST, "invalid_argument").await;
}
