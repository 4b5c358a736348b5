//! Messages: ordering under concurrency, idempotent retries, history
//! windows, edits, deletions, read receipts and unread counts, and access
//! ending the moment a member is removed.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, assert_error};
use crate::on_every_backend;

on_every_backend!(
    a_message_has_the_contract_shape,
    thirty_concurrent_senders_make_a_gap_free_history,
    a_repeated_client_id_returns_the_original_message,
    history_windows_before_after_and_limit,
    invalid_messages_are_400_and_store_nothing,
    text_loses_the_controls_that_would_reorder_it,
    only_the_sender_edits_and_the_sender_or_an_admin_deletes,
    unread_counts_and_read_receipts_follow_the_watermark,
    a_removed_member_loses_access_at_once,
    a_history_page_read_again_shows_every_change_in_between,
    sends_past_the_gateways_bound_are_refused_at_once_and_store_nothing,
);

fn seqs(page: &Value) -> Vec<u64> {
    page["items"].as_array().unwrap().iter().map(|m| m["seq"].as_u64().unwrap()).collect()
}

async fn a_message_has_the_contract_shape(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (ann, bob) = (app.register("ann").await, app.register("bob").await);
    let id = app.direct(&ann, &bob).await;
    let m = app.say(&ann, &id, "  hello  ").await;
    assert_eq!(m["conversation_id"], id.as_str());
    assert_eq!(m["seq"], 1);
    assert_eq!(m["sender_id"], ann.id.as_str());
    assert_eq!(m["type"], "text");
    assert_eq!(m["content"], "hello");
    assert_eq!(m["attachments"], json!([]));
    assert_eq!(m["read_by"], json!([]));
    assert_eq!(m["read_count"], 0);
    assert!(m["client_id"].is_null() && m["edited_at"].is_null());
    assert_eq!(m["deleted"], false);
    assert!(m["created_at"].as_str().unwrap().ends_with('Z'));
}

async fn thirty_concurrent_senders_make_a_gap_free_history(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = app.register("owner").await;
    let mut senders = Vec::new();
    for n in 0..30 {
        senders.push(app.register(&format!("sender{n}")).await);
    }
    let refs: Vec<_> = senders.iter().collect();
    let id = app.group(&owner, "Crowd", &refs).await;
    let app = &app;
    let path = format!("/api/v1/conversations/{id}/messages");
    let sends = senders.iter().flat_map(|s| (0..2).map(move |k| (s, k))).map(|(s, k)| {
        let body = json!({"content": format!("{} #{k}", s.id), "client_id": format!("{}-{k}", s.id)});
        let path = path.clone();
        async move { app.post_as(&path, &s.access_token, body).await }
    });
    let mut acknowledged = BTreeSet::new();
    for r in futures::future::join_all(sends).await {
        assert_eq!(r.status(), StatusCode::CREATED);
        let m: Value = r.json().await.unwrap();
        assert!(acknowledged.insert(m["seq"].as_u64().unwrap()), "a seq was handed out twice");
    }
    assert_eq!(acknowledged, (1..=60).collect());
    let first = app.json_as(&format!("/api/v1/conversations/{id}/messages?limit=100"), &owner.access_token).await;
    assert_eq!(seqs(&first), (1..=60).collect::<Vec<_>>());
    let contents: BTreeSet<&str> =
        first["items"].as_array().unwrap().iter().map(|m| m["content"].as_str().unwrap()).collect();
    assert_eq!(contents.len(), 60, "nothing lost or doubled");
}

async fn a_repeated_client_id_returns_the_original_message(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (ann, bob) = (app.register("ann").await, app.register("bob").await);
    let id = app.direct(&ann, &bob).await;
    let path = format!("/api/v1/conversations/{id}/messages");
    let first = app.post_as(&path, &ann.access_token, json!({"content": "once", "client_id": "k-1"})).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    let retries = (0..5).map(|_| app.post_as(&path, &ann.access_token, json!({"content": "once", "client_id": "k-1"})));
    for r in futures::future::join_all(retries).await {
        assert_eq!(r.status(), StatusCode::OK);
        let again: Value = r.json().await.unwrap();
        assert_eq!((&again["id"], &again["seq"]), (&first["id"], &first["seq"]));
        assert_eq!(again["client_id"], "k-1");
    }
    // The same client id from another sender is another message.
    let bobs = app.post_as(&path, &bob.access_token, json!({"content": "mine", "client_id": "k-1"})).await;
    assert_eq!(bobs.status(), StatusCode::CREATED);
    let history = app.json_as(&path, &ann.access_token).await;
    assert_eq!(seqs(&history), [1, 2]);
}

async fn history_windows_before_after_and_limit(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (ann, bob) = (app.register("ann").await, app.register("bob").await);
    let id = app.direct(&ann, &bob).await;
    for n in 1..=7 {
        app.say(&ann, &id, &format!("m{n}")).await;
    }
    let path = format!("/api/v1/conversations/{id}/messages");
    let t = &bob.access_token;
    assert_eq!(seqs(&app.json_as(&format!("{path}?limit=3"), t).await), [5, 6, 7]);
    assert_eq!(seqs(&app.json_as(&format!("{path}?before=5&limit=3"), t).await), [2, 3, 4]);
    assert_eq!(seqs(&app.json_as(&format!("{path}?before=2"), t).await), [1]);
    assert_eq!(seqs(&app.json_as(&format!("{path}?after=2&limit=3"), t).await), [3, 4, 5]);
    assert_eq!(seqs(&app.json_as(&format!("{path}?after=7"), t).await), Vec::<u64>::new());
    for bad in ["before=3&after=1", "limit=0", "limit=101", "before=-1", "after=x"] {
        assert_error(app.get_as(&format!("{path}?{bad}"), t).await, StatusCode::BAD_REQUEST, "invalid_argument").await;
    }
}

async fn invalid_messages_are_400_and_store_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (ann, bob) = (app.register("ann").await, app.register("bob").await);
    let id = app.direct(&ann, &bob).await;
    let path = format!("/api/v1/conversations/{id}/messages");
    for body in [
        json!({"content": "   "}),
        json!({"content": "x".repeat(4001)}),
        json!({"content": "hi", "type": "video"}),
        json!({"content": "hi", "type": "image"}),
        json!({"content": "hi", "attachments": ["01ARZ3NDEKTSV4RRFFQ69G5FAV"]}),
        json!({"content": "hi", "client_id": ""}),
        json!({"content": {"$gt": ""}}),
    ] {
        assert_error(app.post_as(&path, &ann.access_token, body).await, StatusCode::BAD_REQUEST, "invalid_argument")
            .await;
    }
    let exactly_max = app.post_as(&path, &ann.access_token, json!({"content": "é".repeat(4000)})).await;
    assert_eq!(exactly_max.status(), StatusCode::CREATED);
    assert_eq!(seqs(&app.json_as(&path, &ann.access_token).await), [1]);
}

async fn only_the_sender_edits_and_the_sender_or_an_admin_deletes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (ann, bob, cat) = (app.register("ann").await, app.register("bob").await, app.register("cat").await);
    let id = app.group(&ann, "Team", &[&bob, &cat]).await;
    let bobs = app.say(&bob, &id, "typo").await;
    let cats = app.say(&cat, &id, "cat here").await;
    let m = |v: &Value| format!("/api/v1/messages/{}", v["id"].as_str().unwrap());

    assert_error(
        app.patch_as(&m(&bobs), &ann.access_token, json!({"content": "hijack"})).await,
        StatusCode::FORBIDDEN,
        "permission_denied",
    )
    .await;
    let edited = app.patch_as(&m(&bobs), &bob.access_token, json!({"content": "fixed"})).await;
    assert_eq!(edited.status(), StatusCode::OK);
    let edited: Value = edited.json().await.unwrap();
    assert_eq!(edited["content"], "fixed");
    assert!(edited["edited_at"].is_string());
    assert_error(
        app.patch_as(&m(&bobs), &bob.access_token, json!({"content": ""})).await,
        StatusCode::BAD_REQUEST,
        "invalid_argument",
    )
    .await;

    // Cat (not admin) cannot delete Bob's; Ann (admin) can; Cat deletes her own.
    assert_error(app.delete_as(&m(&bobs), &cat.access_token).await, StatusCode::FORBIDDEN, "permission_denied").await;
    assert_eq!(app.delete_as(&m(&bobs), &ann.access_token).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.delete_as(&m(&cats), &cat.access_token).await.status(), StatusCode::NO_CONTENT);

    let history = app.json_as(&format!("/api/v1/conversations/{id}/messages"), &ann.access_token).await;
    let items = history["items"].as_array().unwrap();
    assert_eq!(seqs(&history), [1, 2], "tombstones keep their seq");
    for tomb in items {
        assert_eq!(tomb["deleted"], true);
        assert_eq!(tomb["content"], "");
        assert_eq!(tomb["attachments"], json!([]));
    }
    let edit_tomb = app.patch_as(&m(&bobs), &bob.access_token, json!({"content": "back"})).await;
    assert_error(edit_tomb, StatusCode::BAD_REQUEST, "invalid_argument").await;
    assert_error(
        app.delete_as("/api/v1/messages/01ARZ3NDEKTSV4RRFFQ69G5FAV", &ann.access_token).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}

async fn unread_counts_and_read_receipts_follow_the_watermark(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (ann, bob) = (app.register("ann").await, app.register("bob").await);
    let id = app.direct(&ann, &bob).await;
    for n in 1..=5 {
        app.say(&ann, &id, &format!("a{n}")).await;
    }
    app.say(&bob, &id, "b1").await;
    let unread = |v: Value| v["unread_count"].as_u64().unwrap();
    let conv = format!("/api/v1/conversations/{id}");
    assert_eq!(unread(app.json_as(&conv, &bob.access_token).await), 5, "his own message is not unread");
    assert_eq!(unread(app.json_as(&conv, &ann.access_token).await), 1);

    let read_path = format!("{conv}/read");
    let read = |seq: u64| app.post_as(&read_path, &bob.access_token, json!({"seq": seq}));
    assert_eq!(read(3).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(unread(app.json_as(&conv, &bob.access_token).await), 2);
    // The watermark never moves back.
    assert_eq!(read(1).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(unread(app.json_as(&conv, &bob.access_token).await), 2);
    assert_error(read(7).await, StatusCode::BAD_REQUEST, "invalid_argument").await;
    assert_error(read(0).await, StatusCode::BAD_REQUEST, "invalid_argument").await;

    let history = app.json_as(&format!("{conv}/messages"), &ann.access_token).await;
    let readers: Vec<usize> =
        history["items"].as_array().unwrap().iter().map(|m| m["read_by"].as_array().unwrap().len()).collect();
    assert_eq!(readers, [1, 1, 1, 0, 0, 0]);
    let counts: Vec<u64> =
        history["items"].as_array().unwrap().iter().map(|m| m["read_count"].as_u64().unwrap()).collect();
    assert_eq!(counts, [1, 1, 1, 0, 0, 0], "read_count counts every reader");
    assert_eq!(history["items"][0]["read_by"][0]["user_id"], bob.id.as_str());

    // A deleted unread message stops counting.
    let fifth = &history["items"][4]["id"];
    app.delete_as(&format!("/api/v1/messages/{}", fifth.as_str().unwrap()), &ann.access_token).await;
    assert_eq!(unread(app.json_as(&conv, &bob.access_token).await), 1);
    assert_eq!(read(6).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(unread(app.json_as(&conv, &bob.access_token).await), 0);
}

async fn a_removed_member_loses_access_at_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (ann, bob) = (app.register("ann").await, app.register("bob").await);
    let id = app.group(&ann, "Team", &[&bob]).await;
    app.say(&bob, &id, "still in").await;
    let removed =
        app.delete_as(&format!("/api/v1/conversations/{id}/participants/{}", bob.id), &ann.access_token).await;
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    let path = format!("/api/v1/conversations/{id}/messages");
    assert_error(
        app.post_as(&path, &bob.access_token, json!({"content": "am I?"})).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_error(app.get_as(&path, &bob.access_token).await, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(seqs(&app.json_as(&path, &ann.access_token).await), [1]);
}

/// The same page read after each kind of change shows it (the one-process
/// gateway keeps rendered pages while nothing has changed them).
async fn a_history_page_read_again_shows_every_change_in_between(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (ann, bob) = (app.register("ann").await, app.register("bob").await);
    let id = app.group(&ann, "Team", &[&bob]).await;
    let first = app.say(&ann, &id, "one").await;
    let newest = format!("/api/v1/conversations/{id}/messages");
    let older = format!("{newest}?before=3&limit=5");
    let page = |path: &str, token: &str| {
        let (path, token) = (path.to_owned(), token.to_owned());
        let app = &app;
        async move { app.json_as(&path, &token).await }
    };
    let contents = |v: &Value| -> Vec<String> {
        v["items"].as_array().unwrap().iter().map(|m| m["content"].as_str().unwrap().to_owned()).collect()
    };
    // Read twice (the second may be the kept page), before any change.
    for _ in 0..2 {
        assert_eq!(contents(&page(&newest, &bob.access_token).await), ["one"]);
        assert_eq!(contents(&page(&older, &bob.access_token).await), ["one"]);
    }

    // A new message, sent over REST.
    let second = app.say(&bob, &id, "two").await;
    assert_eq!(contents(&page(&newest, &ann.access_token).await), ["one", "two"]);
    assert_eq!(contents(&page(&older, &ann.access_token).await), ["one", "two"]);
    assert_eq!(contents(&page(&newest, &ann.access_token).await), ["one", "two"], "read again");

    // An edit.
    let edit = app
        .patch_as(
            &format!("/api/v1/messages/{}", first["id"].as_str().unwrap()),
            &ann.access_token,
            json!({"content": "uno"}),
        )
        .await;
    assert_eq!(edit.status(), StatusCode::OK);
    let after_edit = page(&newest, &bob.access_token).await;
    assert_eq!(contents(&after_edit), ["uno", "two"]);
    assert!(after_edit["items"][0]["edited_at"].is_string());
    assert_eq!(contents(&page(&older, &bob.access_token).await), ["uno", "two"]);

    // A read watermark.
    assert_eq!(after_edit["items"][1]["read_count"], 0);
    let read = app.post_as(&format!("/api/v1/conversations/{id}/read"), &ann.access_token, json!({"seq": 2})).await;
    assert_eq!(read.status(), StatusCode::NO_CONTENT);
    let after_read = page(&newest, &bob.access_token).await;
    assert_eq!(after_read["items"][1]["read_count"], 1);
    assert_eq!(after_read["items"][1]["read_by"][0]["user_id"], ann.id.as_str());

    // A deletion.
    let gone = app.delete_as(&format!("/api/v1/messages/{}", second["id"].as_str().unwrap()), &bob.access_token).await;
    assert_eq!(gone.status(), StatusCode::NO_CONTENT);
    let after_delete = page(&newest, &ann.access_token).await;
    assert_eq!(after_delete["items"][1]["deleted"], true);
    assert_eq!(contents(&after_delete), ["uno", ""]);
    assert_eq!(contents(&page(&older, &ann.access_token).await), ["uno", ""]);

    // A removed member is refused the page the others still read.
    assert_eq!(page(&newest, &bob.access_token).await["items"].as_array().unwrap().len(), 2);
    let removed =
        app.delete_as(&format!("/api/v1/conversations/{id}/participants/{}", bob.id), &ann.access_token).await;
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    assert_error(app.get_as(&newest, &bob.access_token).await, StatusCode::NOT_FOUND, "not_found").await;
    assert_error(app.get_as(&older, &bob.access_token).await, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(contents(&page(&newest, &ann.access_token).await), ["uno", ""]);
}

/// Load shedding: with room for one send at a time, a burst over REST and
/// WebSocket gets some sends refused at once (503 + `Retry-After`, or an
/// `unavailable` error frame with `retry_after_ms`); what was refused is not
/// stored, what was accepted is, and a refused send retried later goes in.
async fn sends_past_the_gateways_bound_are_refused_at_once_and_store_nothing(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.send_concurrency = 1;
        c.ws_rate_limit = 0;
    })
    .await;
    let (ann, bob) = (app.register("ann").await, app.register("bob").await);
    let id = app.direct(&ann, &bob).await;
    let path = format!("/api/v1/conversations/{id}/messages");
    let mut sockets = Vec::new();
    for _ in 0..4 {
        sockets.push(app.ws(&bob).await);
    }
    let (mut stored, mut refused) = (BTreeSet::new(), BTreeSet::new());
    // Rounds of simultaneous sends until some were refused (nearly always the first).
    for round in 0..20 {
        let rest = (0..16).map(|i| {
            let (app, path, token) = (&app, &path, &ann.access_token);
            async move {
                let client_id = format!("rest-{round}-{i}");
                (client_id.clone(), app.post_as(path, token, json!({"content": "hi", "client_id": client_id})).await)
            }
        });
        let websocket = sockets.iter_mut().enumerate().map(|(i, ws)| {
            let id = &id;
            async move {
                let client_id = format!("ws-{round}-{i}");
                let frame = json!({"type": "message.send", "id": client_id, "conversation_id": id,
                                   "content": "hi", "client_id": client_id});
                ws.send(frame).await;
                // Its answer, past the message.new frames of the others' sends.
                loop {
                    let answer = ws.next().await;
                    if answer["id"] == client_id.as_str() {
                        return (client_id, answer);
                    }
                }
            }
        });
        let (rest, websocket) = tokio::join!(futures::future::join_all(rest), futures::future::join_all(websocket));
        for (client_id, response) in rest {
            match response.status() {
                StatusCode::CREATED => assert!(stored.insert(client_id)),
                StatusCode::SERVICE_UNAVAILABLE => {
                    assert_eq!(response.headers()["retry-after"], "1");
                    assert_error(response, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
                    assert!(refused.insert(client_id));
                }
                other => panic!("{client_id}: {other}"),
            }
        }
        for (client_id, answer) in websocket {
            match answer["type"].as_str() {
                Some("ack") => assert!(stored.insert(client_id)),
                Some("error") => {
                    assert_eq!(answer["code"], "unavailable", "{answer}");
                    assert!(answer["retry_after_ms"].as_u64().unwrap() > 0, "{answer}");
                    assert!(refused.insert(client_id));
                }
                _ => panic!("{client_id}: {answer}"),
            }
        }
        if !refused.is_empty() {
            break;
        }
    }
    assert!(!refused.is_empty(), "a burst past the bound was shed");
    assert!(!stored.is_empty(), "sends within the bound went in");

    let client_ids = |messages: &[Value]| -> BTreeSet<String> {
        messages.iter().map(|m| m["client_id"].as_str().unwrap().to_owned()).collect()
    };
    let before = all_messages(&app, &path, &ann.access_token).await;
    assert_eq!(client_ids(&before), stored, "exactly the accepted sends are stored");
    // One at a time, the refused ones go in.
    for client_id in &refused {
        let retried = app.post_as(&path, &ann.access_token, json!({"content": "hi", "client_id": client_id})).await;
        assert_eq!(retried.status(), StatusCode::CREATED, "{client_id}");
    }
    assert_eq!(
        client_ids(&all_messages(&app, &path, &ann.access_token).await),
        stored.union(&refused).cloned().collect()
    );
}

/// Every message at `path`, oldest first, page by page.
async fn all_messages(app: &TestApp, path: &str, token: &str) -> Vec<Value> {
    let mut all: Vec<Value> = Vec::new();
    loop {
        let after = all.last().map_or(0, |m| m["seq"].as_u64().unwrap());
        let page = app.json_as(&format!("{path}?after={after}&limit=100"), token).await;
        let items = page["items"].as_array().unwrap().clone();
        if items.is_empty() {
            return all;
        }
        all.extend(items);
    }
}

/// Internal callers too get bounded work per call: the message service
/// refuses summaries or positions of more conversations than a page holds.
#[tokio::test]
async fn per_conversation_rpcs_take_at_most_a_page_of_conversations() {
    use chatterbox_identity::with_bearer;
    use chatterbox_proto::message::v1::message_service_client::MessageServiceClient;
    use chatterbox_proto::message::v1::{GetPositionsRequest, GetSummariesRequest};

    let app = TestApp::spawn(Backend::Embedded).await;
    let alice = app.register("alice").await;
    let channel = chatterbox_runtime::connect(
        &format!("http://{}", app.suite.message_addr),
        std::time::Duration::from_secs(5),
        None,
    )
    .unwrap();
    let mut messages = MessageServiceClient::new(channel);
    let ids = |n: usize| (0..n).map(|_| chatterbox_types::ConversationId::generate().to_string()).collect::<Vec<_>>();
    let token = alice.access_token.as_str();

    let page =
        messages.get_summaries(with_bearer(GetSummariesRequest { conversation_ids: ids(100) }, token).unwrap()).await;
    assert!(page.unwrap().into_inner().summaries.is_empty(), "unknown conversations are left out");
    let refused =
        messages.get_summaries(with_bearer(GetSummariesRequest { conversation_ids: ids(101) }, token).unwrap()).await;
    assert_eq!(refused.unwrap_err().code(), tonic::Code::InvalidArgument);
    let refused =
        messages.get_positions(with_bearer(GetPositionsRequest { conversation_ids: ids(101) }, token).unwrap()).await;
    assert_eq!(refused.unwrap_err().code(), tonic::Code::InvalidArgument);
}

async fn text_loses_the_controls_that_would_reorder_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let conversation = app.direct(&alice, &bob).await;
    // U+202E would show "invoice\u{202E}fdp.exe" as "invoiceexe.pdf".
    let sent = app.say(&alice, &conversation, "invoice\u{202E}fdp.exe and \u{2067}isolated\u{2069}").await;
    assert_eq!(sent["content"], "invoicefdp.exe and isolated");
    // Marks, which reorder nothing, stay.
    let marked = app.say(&alice, &conversation, "a\u{200F}b").await;
    assert_eq!(marked["content"], "a\u{200F}b");
    // Nothing but controls is no text at all.
    let path = format!("/api/v1/conversations/{conversation}/messages");
    let r = app.post_as(&path, &alice.access_token, json!({"content": "\u{202E}\u{202C}"})).await;
    assert_error(r, StatusCode::BAD_REQUEST, "invalid_argument").await;
}
