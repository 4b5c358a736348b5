//! The WebSocket API of `api.md`, on both backends: who receives what,
//! resume, limits, and refusals.

use std::time::Duration;

use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::helpers::{Backend, TestApp};
use crate::on_every_backend;
use crate::ws_client::{PATIENCE, connect_raw, connect_stalling, ws_at};

on_every_backend!(
    a_user_holds_at_most_the_configured_number_of_websockets,
    events_reach_every_connection_of_every_participant_and_nobody_else,
    typing_reaches_the_others_and_never_its_sender,
    edits_deletions_reads_and_membership_changes_are_pushed,
    resume_replays_what_was_missed_once_and_in_order_then_goes_live,
    a_resume_is_bounded_and_leaves_what_is_too_far_behind_to_history,
    the_frame_rate_is_shared_by_every_connection_of_a_user,
    bad_frames_get_errors_and_the_socket_stays_open,
    a_frame_over_64_kib_closes_with_1009,
    authentication_by_first_frame_and_its_failures,
    foreign_origins_are_refused,
    a_reader_that_cannot_keep_up_is_disconnected_and_others_are_not,
    heartbeats_drop_silent_peers_and_keep_live_ones,
    pipelined_frames_are_answered_in_order_and_sends_commit_in_that_order,
);

fn id(v: &Value) -> &str {
    v.as_str().unwrap()
}

async fn events_reach_every_connection_of_every_participant_and_nobody_else(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let mut alice_phone = app.ws(&alice).await;
    let mut alice_laptop = app.ws(&alice).await;
    let mut bob_ws = app.ws(&bob).await;
    let mut carol_ws = app.ws(&carol).await;

    let conversation = app.direct(&alice, &bob).await;
    for ws in [&mut alice_phone, &mut alice_laptop, &mut bob_ws] {
        let joined = ws.expect("conversation.joined").await;
        assert_eq!(joined["conversation"]["id"], conversation.as_str());
    }

    bob_ws
        .send(json!({"type": "message.send", "id": 7, "conversation_id": conversation, "content": "hi", "client_id": "c-1"}))
        .await;
    // The sender gets the ack and, like every device, the event.
    let mut got_ack = None;
    let mut got_event = None;
    for _ in 0..2 {
        let frame = bob_ws.next().await;
        match frame["type"].as_str() {
            Some("ack") => got_ack = Some(frame),
            Some("message.new") => got_event = Some(frame),
            _ => panic!("unexpected {frame}"),
        }
    }
    let ack = got_ack.expect("an ack");
    assert_eq!(ack["id"], 7);
    assert_eq!(ack["message"]["content"], "hi");
    assert_eq!(ack["message"]["seq"], 1);
    assert_eq!(ack["message"]["type"], "text");
    assert_eq!(got_event.unwrap()["message"]["id"], ack["message"]["id"]);
    for ws in [&mut alice_phone, &mut alice_laptop] {
        let new = ws.expect("message.new").await;
        assert_eq!(new["message"]["content"], "hi");
        assert_eq!(new["message"]["sender_id"], bob.id.as_str());
        assert_eq!(new["message"]["conversation_id"], conversation.as_str());
    }

    // A message sent over HTTP is pushed the same way.
    app.say(&alice, &conversation, "hello back").await;
    for ws in [&mut alice_phone, &mut alice_laptop, &mut bob_ws] {
        assert_eq!(ws.expect("message.new").await["message"]["seq"], 2);
    }
    // A retried client_id is acknowledged with the original and not pushed again.
    bob_ws
        .send(json!({"type": "message.send", "id": "again", "conversation_id": conversation, "content": "hi", "client_id": "c-1"}))
        .await;
    let again = bob_ws.expect("ack").await;
    assert_eq!(again["message"]["id"], ack["message"]["id"]);
    for ws in [&mut alice_phone, &mut alice_laptop, &mut bob_ws] {
        ws.expect_silence().await;
    }
    carol_ws.expect_silence().await;

    // An outsider cannot send there: 404, the socket stays usable.
    carol_ws
        .send(json!({"type": "message.send", "id": "x", "conversation_id": conversation, "content": "intrude", "client_id": "c-2"}))
        .await;
    let refused = carol_ws.expect("error").await;
    assert_eq!(refused["id"], "x");
    assert_eq!(refused["code"], "not_found");
    carol_ws.sync().await;
    alice_phone.expect_silence().await;
}

/// A client that does not wait for each answer: sends run off the session's
/// loop, yet each frame is answered in the order it came and sends commit in
/// that order, while events keep arriving.
async fn pipelined_frames_are_answered_in_order_and_sends_commit_in_that_order(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.ws_rate_limit = 0).await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let conversation = app.group(&alice, "team", &[&bob]).await;
    let mut alice_ws = app.ws(&alice).await;
    let mut bob_ws = app.ws(&bob).await;

    let mut expected = Vec::new();
    for i in 0..12 {
        let frame = match i {
            4 => json!({"type": "ping", "id": i}),
            7 => json!({"type": "read", "id": i, "conversation_id": conversation, "seq": 1}),
            9 => {
                json!({"type": "message.send", "id": i, "conversation_id": conversation, "content": "  ", "client_id": "blank"})
            }
            _ => {
                json!({"type": "message.send", "id": i, "conversation_id": conversation, "content": format!("m{i}"), "client_id": format!("c{i}")})
            }
        };
        expected.push(frame["type"].as_str().unwrap().to_owned());
        alice_ws.send(frame).await;
    }
    let sends = expected.iter().filter(|t| *t == "message.send").count() - 1;

    let (mut answers, mut echoes) = (Vec::new(), Vec::new());
    while answers.len() < expected.len() || echoes.len() < sends {
        let frame = alice_ws.next().await;
        match frame["type"].as_str().unwrap() {
            "message.new" => echoes.push(frame["message"]["content"].as_str().unwrap().to_owned()),
            "read" => {}
            _ => answers.push(frame),
        }
    }
    let ids: Vec<u64> = answers.iter().map(|a| a["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, (0..12).collect::<Vec<u64>>(), "answers in frame order: {answers:?}");
    assert_eq!(answers[4]["type"], "pong");
    assert_eq!(answers[7]["type"], "ack");
    assert_eq!(answers[9]["type"], "error");
    assert_eq!(answers[9]["code"], "invalid_argument");
    let acked: Vec<(String, u64)> = answers
        .iter()
        .filter(|a| a["type"] == "ack" && a["message"].is_object())
        .map(|a| (a["message"]["content"].as_str().unwrap().to_owned(), a["message"]["seq"].as_u64().unwrap()))
        .collect();
    let in_frame_order: Vec<String> = [0, 1, 2, 3, 5, 6, 8, 10, 11].iter().map(|i| format!("m{i}")).collect();
    assert_eq!(acked.iter().map(|(c, _)| c.clone()).collect::<Vec<_>>(), in_frame_order);
    assert_eq!(
        acked.iter().map(|(_, s)| *s).collect::<Vec<_>>(),
        (1..=9).collect::<Vec<u64>>(),
        "committed in frame order"
    );
    assert_eq!(echoes, in_frame_order, "the sender's own events, in order");

    let mut delivered = Vec::new();
    while delivered.len() < sends {
        let frame = bob_ws.next().await;
        if frame["type"] == "message.new" {
            delivered.push(frame["message"]["content"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(delivered, in_frame_order);
}

/// While a send waits on its commit, the sender's session keeps delivering:
/// the message database is held locked, Bob's typing still reaches Alice,
/// and her send is acknowledged once the lock goes. (One-process mode,
/// where a test can hold the store; the session code is the same in both.)
#[tokio::test]
async fn a_session_keeps_delivering_while_its_own_send_waits() {
    let app = TestApp::spawn(Backend::Embedded).await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let conversation = app.group(&alice, "team", &[&bob]).await;
    let mut alice_ws = app.ws(&alice).await;
    let mut bob_ws = app.ws(&bob).await;

    let lock = rusqlite::Connection::open(app.data_dir.path().join("message.sqlite3")).unwrap();
    lock.execute_batch("BEGIN IMMEDIATE").unwrap();
    alice_ws
        .send(json!({"type": "message.send", "id": "s", "conversation_id": conversation, "content": "hi", "client_id": "c"}))
        .await;
    bob_ws.send(json!({"type": "typing", "conversation_id": conversation, "state": "start"})).await;
    let typing = alice_ws.expect("typing").await;
    assert_eq!(typing["user_id"], bob.id.as_str());

    lock.execute_batch("ROLLBACK").unwrap();
    let mut frames = [alice_ws.next().await, alice_ws.next().await];
    frames.sort_by_key(|f| f["type"].as_str().unwrap().to_owned());
    assert_eq!(frames[0]["type"], "ack");
    assert_eq!(frames[0]["message"]["content"], "hi");
    assert_eq!(frames[1]["type"], "message.new");
}

async fn typing_reaches_the_others_and_never_its_sender(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let conversation = app.group(&alice, "team", &[&bob]).await;
    let mut alice_ws = app.ws(&alice).await;
    let mut alice_other = app.ws(&alice).await;
    let mut bob_ws = app.ws(&bob).await;
    let mut carol_ws = app.ws(&carol).await;

    alice_ws.send(json!({"type": "typing", "conversation_id": conversation, "state": "start"})).await;
    let typing = bob_ws.expect("typing").await;
    assert_eq!(typing["conversation_id"], conversation.as_str());
    assert_eq!(typing["user_id"], alice.id.as_str());
    assert_eq!(typing["state"], "start");
    alice_ws.sync().await;
    alice_ws.expect_silence().await;
    alice_other.expect_silence().await;
    carol_ws.expect_silence().await;

    bob_ws.send(json!({"type": "typing", "conversation_id": conversation, "state": "stop"})).await;
    for ws in [&mut alice_ws, &mut alice_other] {
        let stop = ws.expect("typing").await;
        assert_eq!(stop["state"], "stop");
        assert_eq!(stop["user_id"], bob.id.as_str());
    }

    // Not a member: 404; a bad state: 400.
    carol_ws.send(json!({"type": "typing", "id": 1, "conversation_id": conversation, "state": "start"})).await;
    assert_eq!(carol_ws.expect("error").await["code"], "not_found");
    bob_ws.send(json!({"type": "typing", "id": 2, "conversation_id": conversation, "state": "dancing"})).await;
    let bad = bob_ws.expect("error").await;
    assert_eq!((bad["id"].clone(), bad["code"].clone()), (json!(2), json!("invalid_argument")));
    alice_ws.expect_silence().await;
}

async fn edits_deletions_reads_and_membership_changes_are_pushed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let conversation = app.group(&alice, "team", &[&bob]).await;
    let mut alice_ws = app.ws(&alice).await;
    let mut bob_ws = app.ws(&bob).await;
    let mut carol_ws = app.ws(&carol).await;

    let message = app.say(&alice, &conversation, "draft").await;
    let message_id = id(&message["id"]).to_owned();
    for ws in [&mut alice_ws, &mut bob_ws] {
        ws.expect("message.new").await;
    }

    let r =
        app.patch_as(&format!("/api/v1/messages/{message_id}"), &alice.access_token, json!({"content": "final"})).await;
    assert_eq!(r.status(), 200);
    for ws in [&mut alice_ws, &mut bob_ws] {
        let updated = ws.expect("message.updated").await;
        assert_eq!(updated["message"]["content"], "final");
        assert!(updated["message"]["edited_at"].is_string());
    }

    bob_ws.send(json!({"type": "read", "id": "r", "conversation_id": conversation, "seq": 1})).await;
    let mut frames = [bob_ws.next().await, bob_ws.next().await];
    frames.sort_by_key(|f| f["type"].as_str().unwrap().to_owned());
    assert_eq!(frames[0]["type"], "ack");
    assert_eq!(frames[1]["type"], "read");
    let read = alice_ws.expect("read").await;
    assert_eq!(read["user_id"], bob.id.as_str());
    assert_eq!(read["seq"], 1);
    assert!(read["read_at"].as_str().unwrap().ends_with('Z'));

    let r = app.delete_as(&format!("/api/v1/messages/{message_id}"), &alice.access_token).await;
    assert_eq!(r.status(), 204);
    for ws in [&mut alice_ws, &mut bob_ws] {
        let deleted = ws.expect("message.deleted").await;
        assert_eq!(deleted["message_id"], message_id.as_str());
        assert_eq!(deleted["seq"], 1);
        assert_eq!(deleted["conversation_id"], conversation.as_str());
    }

    // Carol is added: she hears she joined, the others that the conversation changed.
    let r = app
        .post_as(
            &format!("/api/v1/conversations/{conversation}/participants"),
            &alice.access_token,
            json!({"user_id": carol.id}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let joined = carol_ws.expect("conversation.joined").await;
    assert_eq!(joined["conversation"]["id"], conversation.as_str());
    for ws in [&mut alice_ws, &mut bob_ws] {
        let updated = ws.expect("conversation.updated").await;
        assert_eq!(updated["conversation"]["participants"].as_array().unwrap().len(), 3);
    }
    // From now on she receives the conversation's events.
    app.say(&bob, &conversation, "welcome carol").await;
    assert_eq!(carol_ws.expect("message.new").await["message"]["content"], "welcome carol");
    alice_ws.expect("message.new").await;
    bob_ws.expect("message.new").await;

    // Renamed: everyone in it hears.
    let r = app
        .patch_as(&format!("/api/v1/conversations/{conversation}"), &alice.access_token, json!({"name": "crew"}))
        .await;
    assert_eq!(r.status(), 200);
    for ws in [&mut alice_ws, &mut bob_ws, &mut carol_ws] {
        assert_eq!(ws.expect("conversation.updated").await["conversation"]["name"], "crew");
    }

    // Removed: she hears she left, and nothing more from it.
    let r = app
        .delete_as(&format!("/api/v1/conversations/{conversation}/participants/{}", carol.id), &alice.access_token)
        .await;
    assert_eq!(r.status(), 204);
    assert_eq!(carol_ws.expect("conversation.left").await["conversation_id"], conversation.as_str());
    for ws in [&mut alice_ws, &mut bob_ws] {
        let updated = ws.expect("conversation.updated").await;
        assert_eq!(updated["conversation"]["participants"].as_array().unwrap().len(), 2);
    }
    app.say(&bob, &conversation, "carol is gone").await;
    alice_ws.expect("message.new").await;
    carol_ws.expect_silence().await;
}

async fn resume_replays_what_was_missed_once_and_in_order_then_goes_live(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let conversation = app.direct(&alice, &bob).await;
    let mut alice_ws = app.ws(&alice).await;
    let mut seen = Vec::new();
    for n in 1..=3 {
        seen.push(app.say(&bob, &conversation, &format!("m{n}")).await);
    }
    for n in 1..=3 {
        assert_eq!(alice_ws.expect("message.new").await["message"]["seq"], n);
    }
    drop(alice_ws);

    // While alice is away: three more, an edit of one she saw, a deletion of one she did not.
    let mut missed = Vec::new();
    for n in 4..=6 {
        missed.push(app.say(&bob, &conversation, &format!("m{n}")).await);
    }
    let edit = app
        .patch_as(
            &format!("/api/v1/messages/{}", id(&seen[1]["id"])),
            &bob.access_token,
            json!({"content": "m2 (edited)"}),
        )
        .await;
    assert_eq!(edit.status(), 200);
    let r = app.delete_as(&format!("/api/v1/messages/{}", id(&missed[1]["id"])), &bob.access_token).await;
    assert_eq!(r.status(), 204);

    let mut alice_ws = app.ws(&alice).await;
    alice_ws.send(json!({"type": "resume", "id": "r1", "positions": {conversation.clone(): 3}})).await;
    let updated = alice_ws.expect("message.updated").await;
    assert_eq!(updated["message"]["seq"], 2);
    assert_eq!(updated["message"]["content"], "m2 (edited)");
    let mut replayed = Vec::new();
    for _ in 4..=6 {
        replayed.push(alice_ws.expect("message.new").await["message"].clone());
    }
    let seqs: Vec<u64> = replayed.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [4, 5, 6]);
    assert_eq!(replayed[1]["deleted"], true, "a message deleted while away arrives as a tombstone");
    assert_eq!(replayed[1]["content"], "");
    let resumed = alice_ws.expect("resumed").await;
    assert_eq!(resumed["id"], "r1");
    assert_eq!(resumed["positions"][&conversation], 6);

    // Then live, without repeats.
    app.say(&bob, &conversation, "m7").await;
    assert_eq!(alice_ws.expect("message.new").await["message"]["seq"], 7);
    alice_ws.expect_silence().await;

    // A position beyond the last message is refused, not read as "everything".
    alice_ws.send(json!({"type": "resume", "id": "far", "positions": {conversation.clone(): 99}})).await;
    let refused = alice_ws.expect("error").await;
    assert_eq!((refused["id"].clone(), refused["code"].clone()), (json!("far"), json!("invalid_argument")));
    assert_eq!(alice_ws.expect("resumed").await["positions"], json!({}));

    // Resuming from the current position replays nothing; an unknown conversation is 404.
    let stranger = app.register("stranger").await;
    let elsewhere = app.direct(&bob, &stranger).await;
    alice_ws
        .send(json!({"type": "resume", "id": "r2", "positions": {conversation.clone(): 7, elsewhere.clone(): 0}}))
        .await;
    let refused = alice_ws.expect("error").await;
    assert_eq!((refused["id"].clone(), refused["code"].clone()), (json!("r2"), json!("not_found")));
    let resumed = alice_ws.expect("resumed").await;
    assert_eq!(resumed["positions"], json!({conversation.clone(): 7}));
    alice_ws.expect_silence().await;
}

async fn a_resume_is_bounded_and_leaves_what_is_too_far_behind_to_history(backend: Backend) {
    // A reach of 4: one resume replays at most 4 messages (or changes) per conversation.
    let app = TestApp::spawn_with(backend, |c| c.ws_resume_reach = 4).await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let conversation = app.direct(&alice, &bob).await;
    let mut sent = Vec::new();
    for n in 1..=8 {
        sent.push(app.say(&bob, &conversation, &format!("m{n}")).await);
    }
    let mut alice_ws = app.ws(&alice).await;

    // More conversations than one resume may name: refused, nothing replayed.
    let many: serde_json::Map<String, Value> = (0..=chatterbox_gateway::MAX_RESUMED)
        .map(|_| (chatterbox_types::ConversationId::generate().to_string(), json!(0)))
        .collect();
    alice_ws.send(json!({"type": "resume", "id": "many", "positions": many})).await;
    let refused = alice_ws.expect("error").await;
    assert_eq!((refused["id"].clone(), refused["code"].clone()), (json!("many"), json!("invalid_argument")));
    alice_ws.expect_silence().await;

    // Eight behind: too far to replay; the client is told to use history.
    alice_ws.send(json!({"type": "resume", "id": "far", "positions": {conversation.clone(): 0}})).await;
    let resumed = alice_ws.expect("resumed").await;
    assert_eq!(resumed["positions"], json!({}));
    assert_eq!(resumed["history"], json!({conversation.clone(): 8}));
    // Four behind: replayed as usual, and no `history`.
    alice_ws.send(json!({"type": "resume", "id": "near", "positions": {conversation.clone(): 4}})).await;
    for n in 5..=8 {
        assert_eq!(alice_ws.expect("message.new").await["message"]["seq"], n);
    }
    let resumed = alice_ws.expect("resumed").await;
    assert_eq!(resumed["positions"], json!({conversation.clone(): 8}));
    assert!(resumed.get("history").is_none(), "{resumed}");
    // Live events go on either way.
    app.say(&bob, &conversation, "m9").await;
    assert_eq!(alice_ws.expect("message.new").await["message"]["seq"], 9);

    // Up to date, but five old messages changed since: also left to history.
    for m in &sent[..5] {
        let r = app.delete_as(&format!("/api/v1/messages/{}", id(&m["id"])), &bob.access_token).await;
        assert_eq!(r.status(), 204);
    }
    for _ in 0..5 {
        alice_ws.expect("message.deleted").await;
    }
    let mut fresh = app.ws(&alice).await;
    fresh.send(json!({"type": "resume", "id": "changed", "positions": {conversation.clone(): 9}})).await;
    let mut updates = 0;
    let resumed = loop {
        let frame = fresh.next().await;
        match frame["type"].as_str().unwrap() {
            "message.updated" | "message.deleted" => updates += 1,
            "resumed" => break frame,
            other => panic!("unexpected {other}: {frame}"),
        }
    };
    assert!(updates <= 5, "{updates}");
    assert_eq!(resumed["history"], json!({conversation.clone(): 9}));
}

async fn the_frame_rate_is_shared_by_every_connection_of_a_user(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.ws_rate_limit = 10).await;
    let alice = app.register("alice").await;
    let mut phone = app.ws(&alice).await;
    let mut laptop = app.ws(&alice).await;
    for n in 0..6 {
        phone.send(json!({"type": "ping", "id": n})).await;
        laptop.send(json!({"type": "ping", "id": n})).await;
    }
    let mut pongs = 0;
    let mut limited = Vec::new();
    for ws in [&mut phone, &mut laptop] {
        for _ in 0..6 {
            let frame = ws.next().await;
            match frame["type"].as_str() {
                Some("pong") => pongs += 1,
                Some("error") => limited.push(frame),
                _ => panic!("unexpected {frame}"),
            }
        }
    }
    assert_eq!(pongs, 10, "ten frames per second per user, across both connections");
    assert_eq!(limited.len(), 2);
    for e in &limited {
        assert_eq!(e["code"], "rate_limited");
        assert!(e["retry_after_ms"].as_u64().unwrap() >= 1);
        assert!(e["id"].is_number(), "the refused frame's id comes back: {e}");
    }
    // The sockets stay open; after a pause frames are served again.
    tokio::time::sleep(Duration::from_millis(300)).await;
    phone.sync().await;
    laptop.sync().await;
}

async fn bad_frames_get_errors_and_the_socket_stays_open(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.register("alice").await;
    let mut ws = app.ws(&alice).await;
    ws.send_text("not json".into()).await;
    assert_eq!(ws.expect("error").await["code"], "invalid_argument");
    ws.send(json!({"type": "no.such.frame", "id": "u"})).await;
    let unknown = ws.expect("error").await;
    assert_eq!((unknown["id"].clone(), unknown["code"].clone()), (json!("u"), json!("invalid_argument")));
    ws.send(json!({"type": "message.send", "id": "m", "conversation_id": "nope", "content": "x"})).await;
    let missing = ws.expect("error").await;
    assert_eq!(missing["code"], "invalid_argument", "client_id is required: {missing}");
    ws.send(
        json!({"type": "message.send", "id": "m2", "conversation_id": {"$ne": ""}, "content": "x", "client_id": "k"}),
    )
    .await;
    assert_eq!(ws.expect("error").await["code"], "invalid_argument");
    ws.send(json!({"type": "read", "id": "r", "conversation_id": "01J00000000000000000000000", "seq": 1})).await;
    assert_eq!(ws.expect("error").await["code"], "not_found");
    ws.sync().await;
}

async fn a_frame_over_64_kib_closes_with_1009(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.register("alice").await;
    let mut ws = app.ws(&alice).await;
    // Just under the cap is served.
    let content = "a".repeat(60 * 1024);
    ws.send(json!({"type": "ping", "id": 1, "pad": content})).await;
    ws.expect("pong").await;
    ws.send_text(format!("{{\"type\":\"ping\",\"pad\":\"{}\"}}", "a".repeat(65 * 1024))).await;
    let (_, close) = ws.closed().await;
    assert_eq!(close.expect("a close frame").code, CloseCode::Size);
}

async fn a_user_holds_at_most_the_configured_number_of_websockets(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.ws_max_per_user = 2).await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let first = app.ws(&alice).await;
    let mut second = app.ws(&alice).await;

    // A third socket of Alice's is refused, with an error saying why.
    let mut third = connect_raw(app.addr, &[]).await.unwrap();
    third.send(json!({"type": "auth", "access_token": alice.access_token})).await;
    let (frames, close) = third.closed().await;
    assert_eq!(frames[0]["type"], "error");
    assert_eq!(frames[0]["code"], "rate_limited");
    assert!(frames[0]["message"].as_str().unwrap().contains("2 WebSockets"), "{frames:?}");
    assert_eq!(close.unwrap().code, CloseCode::Policy);
    // The others still work, and other users are not affected.
    second.send(json!({"type": "ping", "id": "p"})).await;
    second.expect("pong").await;
    let _bob = app.ws(&bob).await;

    // Closing one makes room for another.
    drop(first);
    let mut again = None;
    for _ in 0..100 {
        let mut ws = connect_raw(app.addr, &[]).await.unwrap();
        ws.send(json!({"type": "auth", "access_token": alice.access_token})).await;
        if ws.next().await["type"] == "ready" {
            again = Some(ws);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(again.is_some(), "a closed socket's place is freed");
}

async fn authentication_by_first_frame_and_its_failures(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.register("alice").await;

    let mut ws = connect_raw(app.addr, &[]).await.unwrap();
    ws.send(json!({"type": "auth", "access_token": alice.access_token})).await;
    let ready = ws.expect("ready").await;
    assert_eq!(ready["user_id"], alice.id.as_str());
    assert!(ready["connection_id"].is_string());
    ws.sync().await;

    let mut ws = connect_raw(app.addr, &[]).await.unwrap();
    ws.send(json!({"type": "auth", "access_token": "forged"})).await;
    let (frames, close) = ws.closed().await;
    assert_eq!(frames[0]["code"], "unauthenticated");
    assert_eq!(close.unwrap().code, CloseCode::from(4401));

    let mut ws = connect_raw(app.addr, &[]).await.unwrap();
    ws.send(json!({"type": "ping"})).await;
    let (_, close) = ws.closed().await;
    assert_eq!(close.unwrap().code, CloseCode::from(4401), "the first frame must be auth");

    // A bad header is refused before the upgrade, with the JSON error.
    let refused = connect_raw(app.addr, &[("authorization", "Bearer forged")]).await;
    let Err(tokio_tungstenite::tungstenite::Error::Http(response)) = refused else { panic!("refused") };
    assert_eq!(response.status(), 401);

    // A plain GET is told what the endpoint is.
    let r = app.get_as("/ws", &alice.access_token).await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "invalid_argument");
}

async fn foreign_origins_are_refused(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.ws_allowed_origins = vec!["https://chat.example.com".into()]).await;
    let alice = app.register("alice").await;
    let bearer = format!("Bearer {}", alice.access_token);
    let refused = connect_raw(app.addr, &[("origin", "https://evil.example"), ("authorization", &bearer)]).await;
    let Err(tokio_tungstenite::tungstenite::Error::Http(response)) = refused else { panic!("refused") };
    assert_eq!(response.status(), 403);

    let own = format!("http://{}", app.addr);
    for origin in [own.as_str(), "https://chat.example.com"] {
        let mut ws = connect_raw(app.addr, &[("origin", origin), ("authorization", &bearer)]).await.unwrap();
        ws.expect("ready").await;
    }
}

async fn a_reader_that_cannot_keep_up_is_disconnected_and_others_are_not(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.ws_rate_limit = 0).await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let conversation = app.group(&alice, "flood", &[&bob, &carol]).await;
    let mut alice_ws = app.ws(&alice).await;
    let mut slow = connect_stalling(app.addr, &bob).await;
    let mut carol_ws = app.ws(&carol).await;

    // Typing indicators are not stored, so they can be produced fast enough
    // to overrun a reader that does not read: first the kernel's socket
    // buffers fill (they grow to 4 MiB here, about 30,000 of these events),
    // then its mailbox (1,024 events).
    const FRAMES: usize = 50_000;
    const BATCH: usize = 250;
    let received = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = received.clone();
    let reader = tokio::spawn(async move {
        for _ in 0..FRAMES {
            let frame = carol_ws.next().await;
            assert_eq!(frame["type"], "typing");
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        carol_ws.sync().await;
    });
    for n in 1..=FRAMES {
        let state = if n % 2 == 0 { "start" } else { "stop" };
        alice_ws.send(json!({"type": "typing", "conversation_id": conversation, "state": state})).await;
        if n % BATCH == 0 {
            // Paced to the reader that reads, which must keep up: it has the
            // previous batch before the next one goes.
            let deadline = tokio::time::Instant::now() + PATIENCE;
            while received.load(std::sync::atomic::Ordering::Relaxed) + BATCH < n {
                let got = received.load(std::sync::atomic::Ordering::Relaxed);
                assert!(tokio::time::Instant::now() < deadline, "the reader is stuck at {got} of {n}");
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
    reader.await.expect("a reader that keeps up gets everything and stays connected");

    // The slow one has been cut off (1013) or, if its socket stalled first, dropped.
    let (frames, close) = slow.closed().await;
    assert!(frames.len() < FRAMES, "the slow reader did not get everything: {}", frames.len());
    if let Some(close) = close {
        assert_eq!(close.code, CloseCode::Again);
    }
    // And can come back.
    let mut again = ws_at(app.addr, &bob).await;
    again.sync().await;
}

async fn heartbeats_drop_silent_peers_and_keep_live_ones(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.ws_heartbeat_secs = 1).await;
    let alice = app.register("alice").await;
    let mut silent = app.ws(&alice).await;
    let mut live = app.ws(&alice).await;
    // The live client reads (answering pings) and talks; the silent one does nothing.
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        live.sync().await;
    }
    let (_, close) = silent.closed().await;
    assert!(close.is_none(), "a dead peer is dropped, not closed politely: {close:?}");
    live.sync().await;
}
