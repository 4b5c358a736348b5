//! Reactions (api.md v1.1): one per (message, emoji, user), counted for
//! everyone with `me` for the reader, live as `reaction` events, replayed
//! on `resume` as `message.updated` in their final state.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, TestUser, assert_error};
use crate::on_every_backend;

on_every_backend!(
    reactions_are_idempotent_counted_per_emoji_in_order_with_me_for_each_reader,
    bad_emoji_too_many_reactions_and_messages_out_of_reach_are_refused,
    reactions_reach_participants_live_and_an_edit_keeps_each_readers_me,
    resume_replays_the_final_reactions_of_messages_changed_while_away,
    concurrent_toggles_from_many_users_leave_exact_counts,
);

/// `emoji` as a path segment.
fn encoded(emoji: &str) -> String {
    emoji.bytes().map(|b| format!("%{b:02X}")).collect()
}

fn reaction_path(message: &Value, emoji: &str) -> String {
    format!("/api/v1/messages/{}/reactions/{}", message["id"].as_str().unwrap(), encoded(emoji))
}

async fn react(app: &TestApp, user: &TestUser, message: &Value, emoji: &str) -> reqwest::Response {
    app.send(reqwest::Method::PUT, &reaction_path(message, emoji), Some(&user.access_token), None).await
}

async fn unreact(app: &TestApp, user: &TestUser, message: &Value, emoji: &str) -> reqwest::Response {
    app.delete_as(&reaction_path(message, emoji), &user.access_token).await
}

/// The reactions of history message `seq` as `user` reads them.
async fn reactions_seen(app: &TestApp, user: &TestUser, conversation: &str, seq: u64) -> Value {
    let page = app.json_as(&format!("/api/v1/conversations/{conversation}/messages"), &user.access_token).await;
    let message = page["items"].as_array().unwrap().iter().find(|m| m["seq"] == seq).expect("the message").clone();
    message["reactions"].clone()
}

async fn reactions_are_idempotent_counted_per_emoji_in_order_with_me_for_each_reader(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (ann, bob, cid) = (app.register("ann").await, app.register("bob").await, app.register("cid").await);
    let group = app.group(&ann, "Team", &[&bob, &cid]).await;
    let m = app.say(&ann, &group, "ship it?").await;
    assert_eq!(m["reactions"], json!([]), "a new message has none");

    for (user, emoji) in [(&bob, "👍"), (&bob, "👍"), (&cid, ":shipit:"), (&ann, "👍")] {
        assert_eq!(react(&app, user, &m, emoji).await.status(), StatusCode::NO_CONTENT);
    }
    // The unqualified heart is the same reaction as the qualified one.
    assert_eq!(react(&app, &cid, &m, "\u{2764}").await.status(), StatusCode::NO_CONTENT);
    assert_eq!(react(&app, &bob, &m, "\u{2764}\u{fe0f}").await.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        reactions_seen(&app, &bob, &group, 1).await,
        json!([
            {"emoji": "👍", "count": 2, "me": true},
            {"emoji": ":shipit:", "count": 1, "me": false},
            {"emoji": "\u{2764}\u{fe0f}", "count": 2, "me": true},
        ])
    );
    // Each reader's own `me`, also when the page was just read by another.
    assert_eq!(
        reactions_seen(&app, &cid, &group, 1).await,
        json!([
            {"emoji": "👍", "count": 2, "me": false},
            {"emoji": ":shipit:", "count": 1, "me": true},
            {"emoji": "\u{2764}\u{fe0f}", "count": 2, "me": true},
        ])
    );

    for _ in 0..2 {
        assert_eq!(unreact(&app, &bob, &m, "👍").await.status(), StatusCode::NO_CONTENT);
    }
    assert_eq!(unreact(&app, &cid, &m, "🎉").await.status(), StatusCode::NO_CONTENT, "never added: still 204");
    let seen = reactions_seen(&app, &bob, &group, 1).await;
    assert_eq!(seen[0], json!({"emoji": "👍", "count": 1, "me": false}));
    // The conversation list's last message shows them too.
    let list = app.json_as("/api/v1/conversations", &cid.access_token).await;
    assert_eq!(list["items"][0]["last_message"]["reactions"][1], json!({"emoji": ":shipit:", "count": 1, "me": true}));
}

async fn bad_emoji_too_many_reactions_and_messages_out_of_reach_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (ann, bob, eve) = (app.register("ann").await, app.register("bob").await, app.register("eve").await);
    let dm = app.direct(&ann, &bob).await;
    let m = app.say(&ann, &dm, "hello").await;

    for bad in ["x", "👍👍", ":Nope:", "::", &format!(":{}:", "a".repeat(33)), "👍 ", "<b>"] {
        assert_error(react(&app, &bob, &m, bad).await, StatusCode::BAD_REQUEST, "invalid_argument").await;
    }
    for n in 0..20 {
        assert_eq!(react(&app, &bob, &m, &format!(":r{n}:")).await.status(), StatusCode::NO_CONTENT);
    }
    let refused = react(&app, &bob, &m, ":one_too_many:").await;
    let message = assert_error(refused, StatusCode::BAD_REQUEST, "invalid_argument").await;
    assert!(message.contains("20"), "{message}");
    // One already there can still be added by another.
    assert_eq!(react(&app, &ann, &m, ":r0:").await.status(), StatusCode::NO_CONTENT);
    assert_eq!(reactions_seen(&app, &ann, &dm, 1).await.as_array().unwrap().len(), 20);

    // Someone outside the conversation, or a message that does not exist: 404.
    assert_error(react(&app, &eve, &m, "👍").await, StatusCode::NOT_FOUND, "not_found").await;
    let nowhere = json!({"id": "01ARZ3NDEKTSV4RRFFQ69G5FAV"});
    assert_error(react(&app, &ann, &nowhere, "👍").await, StatusCode::NOT_FOUND, "not_found").await;
    let malformed = json!({"id": "nope"});
    assert_error(react(&app, &ann, &malformed, "👍").await, StatusCode::NOT_FOUND, "not_found").await;

    // A block stops new reactions in the pair's conversation; taking one back stays possible.
    let blocked = app.post_as(&format!("/api/v1/users/{}/block", ann.id), &bob.access_token, json!({})).await;
    assert_eq!(blocked.status(), StatusCode::NO_CONTENT);
    assert_error(react(&app, &ann, &m, "👋").await, StatusCode::FORBIDDEN, "permission_denied").await;
    assert_eq!(unreact(&app, &ann, &m, ":r0:").await.status(), StatusCode::NO_CONTENT);
    app.delete_as(&format!("/api/v1/users/{}/block", ann.id), &bob.access_token).await;

    // A deleted message has no reactions and takes none.
    assert_eq!(
        app.delete_as(&format!("/api/v1/messages/{}", m["id"].as_str().unwrap()), &ann.access_token).await.status(),
        204
    );
    assert_error(react(&app, &bob, &m, "👍").await, StatusCode::BAD_REQUEST, "invalid_argument").await;
    assert_eq!(reactions_seen(&app, &bob, &dm, 1).await, json!([]));
}

async fn reactions_reach_participants_live_and_an_edit_keeps_each_readers_me(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (ann, bob, eve) = (app.register("ann").await, app.register("bob").await, app.register("eve").await);
    let dm = app.direct(&ann, &bob).await;
    let mut ann_ws = app.ws(&ann).await;
    let mut bob_ws = app.ws(&bob).await;
    let mut eve_ws = app.ws(&eve).await;
    let m = app.say(&ann, &dm, "react please").await;
    for ws in [&mut ann_ws, &mut bob_ws] {
        ws.expect("message.new").await;
    }

    assert_eq!(react(&app, &bob, &m, "🎉").await.status(), StatusCode::NO_CONTENT);
    for ws in [&mut ann_ws, &mut bob_ws] {
        let event = ws.expect("reaction").await;
        assert_eq!(
            event,
            json!({"type": "reaction", "conversation_id": dm, "message_id": m["id"], "seq": 1,
                   "emoji": "🎉", "user_id": bob.id, "action": "added"})
        );
    }
    // Said again: nothing changed, nothing sent.
    react(&app, &bob, &m, "🎉").await;
    unreact(&app, &bob, &m, "🎉").await;
    for ws in [&mut ann_ws, &mut bob_ws] {
        assert_eq!(ws.expect("reaction").await["action"], "removed");
    }
    react(&app, &bob, &m, "🎉").await;
    for ws in [&mut ann_ws, &mut bob_ws] {
        assert_eq!(ws.expect("reaction").await["action"], "added");
    }

    // An edit carries the reactions, each reader's `me` their own.
    let edited = app
        .patch_as(
            &format!("/api/v1/messages/{}", m["id"].as_str().unwrap()),
            &ann.access_token,
            json!({"content": "react please!"}),
        )
        .await;
    assert_eq!(edited.status(), StatusCode::OK);
    assert_eq!(edited.json::<Value>().await.unwrap()["reactions"], json!([{"emoji": "🎉", "count": 1, "me": false}]));
    let for_ann = ann_ws.expect("message.updated").await;
    assert_eq!(for_ann["message"]["reactions"], json!([{"emoji": "🎉", "count": 1, "me": false}]));
    let for_bob = bob_ws.expect("message.updated").await;
    assert_eq!(for_bob["message"]["reactions"], json!([{"emoji": "🎉", "count": 1, "me": true}]));
    for ws in [&mut ann_ws, &mut bob_ws, &mut eve_ws] {
        ws.expect_silence().await;
    }
}

async fn resume_replays_the_final_reactions_of_messages_changed_while_away(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (ann, bob) = (app.register("ann").await, app.register("bob").await);
    let dm = app.direct(&ann, &bob).await;
    let first = app.say(&ann, &dm, "first").await;
    let second = app.say(&ann, &dm, "second").await;
    let mut bob_ws = app.ws(&bob).await;
    drop(bob_ws);

    // While bob is away: reactions come and go on the first message, the
    // second gets one that is taken back again, then a new message.
    react(&app, &ann, &first, "👍").await;
    react(&app, &ann, &first, "🎉").await;
    unreact(&app, &ann, &first, "👍").await;
    react(&app, &ann, &second, "👀").await;
    unreact(&app, &ann, &second, "👀").await;
    app.say(&ann, &dm, "third").await;

    bob_ws = app.ws(&bob).await;
    bob_ws.send(json!({"type": "resume", "id": "r", "positions": {dm.clone(): 2}})).await;
    let mut updated = Vec::new();
    let frame = loop {
        let frame = bob_ws.next().await;
        if frame["type"] != "message.updated" {
            break frame;
        }
        updated.push(frame["message"].clone());
    };
    let first_state = updated.iter().find(|m| m["seq"] == 1).expect("the first message's final state");
    assert_eq!(first_state["reactions"], json!([{"emoji": "🎉", "count": 1, "me": false}]));
    assert!(updated.iter().filter(|m| m["seq"] == 1).count() == 1, "once: {updated:?}");
    if let Some(second_state) = updated.iter().find(|m| m["seq"] == 2) {
        assert_eq!(second_state["reactions"], json!([]));
    }
    assert_eq!(frame["type"], "message.new");
    assert_eq!(frame["message"]["seq"], 3);
    assert_eq!(bob_ws.expect("resumed").await["positions"][&dm], 3);
    bob_ws.expect_silence().await;
}

async fn concurrent_toggles_from_many_users_leave_exact_counts(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = app.register("owner").await;
    let mut users = Vec::new();
    for n in 0..12 {
        users.push(app.register(&format!("voter{n}")).await);
    }
    let others: Vec<&TestUser> = users.iter().collect();
    let group = app.group(&owner, "Poll", &others).await;
    let m = app.say(&owner, &group, "pizza or sushi?").await;
    // Pizza is on the message first (which emoji came first decides the
    // order shown); then everyone votes at once.
    assert_eq!(react(&app, &users[0], &m, "🍕").await.status(), StatusCode::NO_CONTENT);
    let adds = users.iter().flat_map(|u| ["🍕", "🍣"].map(|e| react(&app, u, &m, e)));
    for r in futures::future::join_all(adds).await {
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
    // Half change their minds about sushi, twice over, all at once.
    let flips = users.iter().step_by(2).flat_map(|u| [unreact(&app, u, &m, "🍣"), unreact(&app, u, &m, "🍣")]);
    for r in futures::future::join_all(flips).await {
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
    assert_eq!(
        reactions_seen(&app, &users[1], &group, 1).await,
        json!([{"emoji": "🍕", "count": 12, "me": true}, {"emoji": "🍣", "count": 6, "me": true}])
    );
    assert_eq!(reactions_seen(&app, &owner, &group, 1).await[1], json!({"emoji": "🍣", "count": 6, "me": false}));
}
