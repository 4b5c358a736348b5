//! Presence through the public API, on both backends: several devices,
//! away, who hears about it, and chat going on without the presence service.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, TestUser, assert_error};
use crate::on_every_backend;
use crate::ws_client::{PATIENCE, ws_at};

on_every_backend!(
    a_user_is_online_while_any_device_is_connected_then_offline_with_last_seen,
    away_when_said_or_idle_and_online_again,
    presence_events_reach_conversation_partners_only,
    bad_presence_input_is_refused_and_changes_nothing,
    chat_goes_on_while_the_presence_service_is_down,
    a_caller_cannot_make_strangers_hear_its_presence,
);

/// Mallory calls the presence service herself (internal callers may use the
/// gRPC APIs directly) and names Alice and Bob's conversation as the
/// audience of her changes: they never hear of her.
async fn a_caller_cannot_make_strangers_hear_its_presence(backend: Backend) {
    use chatterbox_proto::presence::v1::presence_service_client::PresenceServiceClient;
    use chatterbox_proto::presence::v1::{ConnectionOpenedRequest, SetStatusRequest};

    let app = TestApp::spawn(backend).await;
    let (alice, bob, mallory) = (app.register("alice").await, app.register("bob").await, app.register("mallory").await);
    let theirs = app.direct(&alice, &bob).await;
    let mut alice_ws = app.ws(&alice).await.watch_presence();
    let (_, address) = *app.suite.services.iter().find(|(part, _)| *part == chatterbox::Part::Presence).unwrap();
    let channel = chatterbox_runtime::connect(&format!("http://{address}"), Duration::from_secs(5), None).unwrap();
    let mut presence = PresenceServiceClient::new(channel);
    let opened =
        ConnectionOpenedRequest { connection_id: ulid::Ulid::new().to_string(), audience: vec![theirs.clone()] };
    presence.connection_opened(chatterbox_identity::with_bearer(opened, &mallory.access_token).unwrap()).await.unwrap();
    let away = SetStatusRequest { status: "away".into() };
    presence.set_status(chatterbox_identity::with_bearer(away, &mallory.access_token).unwrap()).await.unwrap();
    alice_ws.no_presence_for(&mallory.id, Duration::from_secs(1)).await;
    // Bob, who is in it, is heard there.
    let _bob_ws = app.ws(&bob).await;
    assert_eq!(alice_ws.presence_of(&bob.id).await["status"], "online");
}

/// Heartbeats every second, so idleness and expiry show within a test.
async fn quick(backend: Backend) -> TestApp {
    TestApp::spawn_with(backend, |c| {
        c.ws_heartbeat_secs = 1;
        c.presence_ttl_secs = 3;
        c.presence_idle_secs = 2;
    })
    .await
}

async fn presence(app: &TestApp, asker: &TestUser, users: &[&TestUser]) -> Vec<Value> {
    let ids: Vec<&str> = users.iter().map(|u| u.id.as_str()).collect();
    let found = app.json_as(&format!("/api/v1/presence?user_ids={}", ids.join(",")), &asker.access_token).await;
    found["items"].as_array().unwrap().clone()
}

async fn status_of(app: &TestApp, asker: &TestUser, user: &TestUser) -> String {
    presence(app, asker, &[user]).await[0]["status"].as_str().unwrap().to_owned()
}

/// Polls until `user`'s status reads `expected` (reports travel asynchronously).
async fn until_status(app: &TestApp, asker: &TestUser, user: &TestUser, expected: &str) {
    chatterbox_testkit::eventually(&format!("status {expected}"), PATIENCE, || async {
        let now = status_of(app, asker, user).await;
        if now == expected { Ok(()) } else { Err(format!("still {now}")) }
    })
    .await;
}

async fn a_user_is_online_while_any_device_is_connected_then_offline_with_last_seen(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (alice, bob) = (app.register("alice").await, app.register("bob").await);
    app.direct(&alice, &bob).await;
    let mut bob_ws = app.ws(&bob).await.watch_presence();
    assert_eq!(status_of(&app, &bob, &alice).await, "offline");

    let phone = app.ws(&alice).await;
    let online = bob_ws.presence_of(&alice.id).await;
    assert_eq!(online["status"], "online");
    assert_eq!(status_of(&app, &bob, &alice).await, "online");

    let laptop = app.ws(&alice).await;
    drop(phone);
    // The laptop keeps her online: no event, and she still reads online.
    bob_ws.no_presence_of(&alice.id).await;
    assert_eq!(status_of(&app, &bob, &alice).await, "online");

    let before = chatterbox_types::Timestamp::now();
    drop(laptop);
    let offline = bob_ws.presence_of(&alice.id).await;
    assert_eq!(offline["status"], "offline");
    let last_seen = offline["last_seen"].as_str().expect("last_seen is set when the last connection ends");
    assert!(last_seen >= before.to_rfc3339().as_str(), "{last_seen} is not after the close");

    let now = &presence(&app, &bob, &[&alice]).await[0];
    assert_eq!((now["user_id"].as_str(), now["status"].as_str()), (Some(alice.id.as_str()), Some("offline")));
    assert_eq!(now["last_seen"], last_seen);
    // Profiles say the same.
    let profile = app.json_as(&format!("/api/v1/users/{}", alice.id), &bob.access_token).await;
    assert_eq!((profile["status"].as_str(), profile["last_seen"].as_str()), (Some("offline"), Some(last_seen)));
}

async fn away_when_said_or_idle_and_online_again(backend: Backend) {
    let app = quick(backend).await;
    let (alice, bob) = (app.register("alice").await, app.register("bob").await);
    let conversation = app.direct(&alice, &bob).await;
    let mut bob_ws = app.ws(&bob).await.watch_presence();
    let mut alice_ws = app.ws(&alice).await;
    assert_eq!(bob_ws.presence_of(&alice.id).await["status"], "online");

    // Said over HTTP.
    let said =
        app.send(reqwest::Method::PUT, "/api/v1/presence", Some(&alice.access_token), Some(json!({"status": "away"})));
    assert_eq!(said.await.status(), StatusCode::NO_CONTENT);
    assert_eq!(bob_ws.presence_of(&alice.id).await["status"], "away");
    assert_eq!(status_of(&app, &bob, &alice).await, "away");
    // Activity does not override what she said (activity is reported at
    // the next heartbeat: wait for two).
    // (Her client keeps answering, as a real one does: a socket silent for
    // two heartbeats is dropped, which would take her offline.)
    alice_ws.send(json!({"type": "typing", "conversation_id": conversation, "state": "start"})).await;
    for _ in 0..5 {
        bob_ws.no_presence_for(&alice.id, Duration::from_millis(500)).await;
        alice_ws.sync().await;
    }

    // Said over the socket.
    alice_ws.send(json!({"type": "presence.set", "id": 1, "status": "online"})).await;
    assert_eq!(alice_ws.expect("ack").await["id"], 1);
    assert_eq!(bob_ws.presence_of(&alice.id).await["status"], "online");

    // Idle: nothing done for the idle time (2 s) makes her away (her client
    // still answers heartbeats and pings); typing brings her back at the
    // next heartbeat.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let idle = loop {
        assert!(tokio::time::Instant::now() < deadline, "she never went idle");
        if let Some(frame) = bob_ws.try_next(Duration::from_millis(300)).await
            && frame["type"] == "presence"
            && frame["user_id"] == alice.id.as_str()
        {
            break frame;
        }
        alice_ws.sync().await;
    };
    assert_eq!(idle["status"], "away");
    alice_ws.send(json!({"type": "typing", "conversation_id": conversation, "state": "stop"})).await;
    assert_eq!(bob_ws.presence_of(&alice.id).await["status"], "online");

    // Appearing offline while connected.
    alice_ws.send(json!({"type": "presence.set", "id": 2, "status": "offline"})).await;
    alice_ws.expect("ack").await;
    assert_eq!(bob_ws.presence_of(&alice.id).await["status"], "offline");
    assert_eq!(status_of(&app, &bob, &alice).await, "offline");
}

async fn presence_events_reach_conversation_partners_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.register("alice").await;
    let (bob, dave, carol) = (app.register("bob").await, app.register("dave").await, app.register("carol").await);
    app.direct(&alice, &bob).await;
    // Dave shares two conversations with her: he still hears each change once.
    app.group(&dave, "band", &[&alice]).await;
    app.direct(&dave, &alice).await;
    // Carol only shares a public room with alice: rooms do not carry presence.
    let room = app.post_as("/api/v1/rooms", &carol.access_token, json!({"name": "lobby"})).await;
    assert_eq!(room.status(), StatusCode::CREATED);
    let room: Value = room.json().await.unwrap();
    let join = format!("/api/v1/rooms/{}/join", room["id"].as_str().unwrap());
    assert!(app.post_as(&join, &alice.access_token, json!({})).await.status().is_success());

    let mut bob_ws = app.ws(&bob).await.watch_presence();
    let mut dave_ws = app.ws(&dave).await.watch_presence();
    let mut carol_ws = app.ws(&carol).await.watch_presence();
    let mut alice_ws = app.ws(&alice).await;
    for ws in [&mut bob_ws, &mut dave_ws] {
        let event = ws.presence_of(&alice.id).await;
        assert_eq!(event["status"], "online");
        // One event per change, though it travels through each shared conversation.
        ws.no_presence_of(&alice.id).await;
    }
    carol_ws.no_presence_of(&alice.id).await;

    // A conversation started later carries presence from then on.
    let erin = app.register("erin").await;
    let mut erin_ws = app.ws(&erin).await.watch_presence();
    app.direct(&erin, &alice).await;
    erin_ws.expect("conversation.joined").await;
    // Once her session has the conversation, it tells presence before it closes.
    alice_ws.expect("conversation.joined").await;
    drop(alice_ws);
    for ws in [&mut bob_ws, &mut dave_ws, &mut erin_ws] {
        assert_eq!(ws.presence_of(&alice.id).await["status"], "offline");
    }
    carol_ws.no_presence_of(&alice.id).await;
}

async fn bad_presence_input_is_refused_and_changes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (alice, bob) = (app.register("alice").await, app.register("bob").await);
    let mut alice_ws = app.ws(&alice).await;
    until_status(&app, &bob, &alice, "online").await;

    let put = |body: Value| app.send(reqwest::Method::PUT, "/api/v1/presence", Some(&alice.access_token), Some(body));
    assert_error(put(json!({"status": "busy"})).await, StatusCode::BAD_REQUEST, "invalid_argument").await;
    assert_error(put(json!({"status": 1})).await, StatusCode::BAD_REQUEST, "invalid_argument").await;
    assert_error(put(json!({})).await, StatusCode::BAD_REQUEST, "invalid_argument").await;
    let anonymous = app.send(reqwest::Method::PUT, "/api/v1/presence", None, Some(json!({"status": "away"})));
    assert_error(anonymous.await, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    alice_ws.send(json!({"type": "presence.set", "id": "p", "status": "asleep"})).await;
    let refused = alice_ws.expect("error").await;
    assert_eq!((refused["id"].as_str(), refused["code"].as_str()), (Some("p"), Some("invalid_argument")));
    assert_eq!(status_of(&app, &bob, &alice).await, "online");

    let too_many = vec![alice.id.as_str(); 101].join(",");
    for query in [String::new(), "?user_ids=".into(), "?user_ids=not-an-id".into(), format!("?user_ids={too_many}")] {
        let refused = app.get_as(&format!("/api/v1/presence{query}"), &bob.access_token).await;
        assert_error(refused, StatusCode::BAD_REQUEST, "invalid_argument").await;
    }
    // A well-formed id of nobody reads as offline.
    let nobody = chatterbox_types::UserId::generate().to_string();
    let found = app.json_as(&format!("/api/v1/presence?user_ids={nobody},{}", alice.id), &bob.access_token).await;
    let statuses: Vec<&str> =
        found["items"].as_array().unwrap().iter().map(|p| p["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["offline", "online"]);
}

/// A gateway of its own beside `app`, whose presence service is a closed port.
async fn gateway_without_presence(app: &TestApp) -> (std::net::SocketAddr, chatterbox_runtime::Shutdown) {
    // The suite's own settings: same stores, same Redis key prefix (events).
    let mut config = app.config.clone();
    let url = |part| {
        let addr = app.suite.services.iter().find(|(p, _)| *p == part).map(|(_, a)| *a).unwrap();
        Some(format!("http://{addr}"))
    };
    use chatterbox::Part;
    config.auth_url = url(Part::Auth);
    config.user_url = url(Part::User);
    config.conversation_url = url(Part::Conversation);
    config.message_url = url(Part::Message);
    config.media_url = url(Part::Media);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    config.presence_url = Some(format!("http://{closed}"));
    config.jwt_public_key_file = Some(app.data_dir.path().join("jwt-public.pem"));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    config.http_addr = listener.local_addr().unwrap();
    drop(listener);
    let shutdown = chatterbox_runtime::Shutdown::new(Duration::from_secs(1));
    let stop = shutdown.clone();
    let addr = config.http_addr;
    tokio::spawn(async move { chatterbox::distributed::run(chatterbox::Part::Gateway, &config, stop).await });
    let client = reqwest::Client::new();
    chatterbox_testkit::eventually("the gateway without presence starts", Duration::from_secs(5), || async {
        client.get(format!("http://{addr}/healthz")).send().await.map(drop).map_err(|e| e.to_string())
    })
    .await;
    (addr, shutdown)
}

async fn chat_goes_on_while_the_presence_service_is_down(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (alice, bob) = (app.register("alice").await, app.register("bob").await);
    let conversation = app.direct(&alice, &bob).await;
    let (addr, shutdown) = gateway_without_presence(&app).await;
    let client = reqwest::Client::new();
    let at = |path: &str| format!("http://{addr}{path}");

    // Still ready (presence is reported as degraded), and chat works.
    let ready = client.get(at("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let ready: Value = ready.json().await.unwrap();
    assert!(ready["degraded"][0].as_str().unwrap().contains("presence"), "{ready}");
    let mut alice_ws = ws_at(addr, &alice).await;
    alice_ws
        .send(json!({"type": "message.send", "id": 1, "conversation_id": conversation, "content": "still here", "client_id": "c1"}))
        .await;
    let ack = alice_ws.answer().await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(ack["message"]["content"], "still here");
    let sent = client
        .post(at(&format!("/api/v1/conversations/{conversation}/messages")))
        .bearer_auth(&bob.access_token)
        .json(&json!({"content": "me too"}))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), StatusCode::CREATED);
    let history: Value = crate::helpers::get_json(
        &client,
        &at(&format!("/api/v1/conversations/{conversation}/messages")),
        &alice.access_token,
    )
    .await;
    let contents: Vec<&str> =
        history["items"].as_array().unwrap().iter().map(|m| m["content"].as_str().unwrap()).collect();
    assert_eq!(contents, ["still here", "me too"]);
    // Profiles come from the user service alone; presence calls say it is unavailable.
    let profile = client.get(at(&format!("/api/v1/users/{}", bob.id))).bearer_auth(&alice.access_token).send().await;
    let profile: Value = profile.unwrap().json().await.unwrap();
    assert_eq!(profile["username"], "bob");
    let asked = client.get(at(&format!("/api/v1/presence?user_ids={}", bob.id))).bearer_auth(&alice.access_token);
    assert_error(asked.send().await.unwrap(), StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    alice_ws.send(json!({"type": "presence.set", "id": 2, "status": "away"})).await;
    let refused = loop {
        // Events of the messages above may come first.
        let frame = alice_ws.next().await;
        if frame["type"] != "message.new" {
            break frame;
        }
    };
    assert_eq!((refused["type"].as_str(), refused["code"].as_str()), (Some("error"), Some("unavailable")));
    shutdown.trigger();
}
