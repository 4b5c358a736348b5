//! Public rooms: unique names, the directory, joining and leaving.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, assert_error};
use crate::on_every_backend;

on_every_backend!(
    room_names_are_unique_whatever_their_case,
    anyone_finds_and_joins_a_room_and_then_it_behaves_like_a_group,
    the_directory_searches_by_name_prefix_a_page_at_a_time,
    look_alike_room_names_are_one_name_and_hidden_characters_are_refused,
);

async fn look_alike_room_names_are_one_name_and_hidden_characters_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ann = app.register("ann").await;
    let create = |name: &str| app.post_as("/api/v1/rooms", &ann.access_token, json!({"name": name, "description": ""}));
    assert_eq!(create("General").await.status(), StatusCode::CREATED);
    // Full-width letters, a ligature's cousin and doubled spaces fold to the same name.
    for same in ["ＧＥＮＥＲＡＬ", "general"] {
        assert_error(create(same).await, StatusCode::CONFLICT, "already_exists").await;
    }
    assert_eq!(create("ﬁre drill").await.status(), StatusCode::CREATED);
    assert_error(create("Fire  Drill").await, StatusCode::CONFLICT, "already_exists").await;
    // Characters a reader cannot see are refused, and nothing is created.
    for hidden in ["General\u{200B}", "\u{202E}lareneG", "Gen\u{00AD}eral"] {
        let message = assert_error(create(hidden).await, StatusCode::BAD_REQUEST, "invalid_argument").await;
        assert!(message.contains("invisible") || message.contains("direction"), "{message}");
    }
    let listed = app.json_as("/api/v1/rooms?limit=100", &ann.access_token).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 2, "{listed}");
    // A look-alike spelling finds the room, and emoji with joiners are names like any other.
    let found = app.json_as("/api/v1/rooms?search=%EF%BC%A7%EF%BC%A5%EF%BC%AE", &ann.access_token).await;
    assert_eq!(found["items"][0]["name"], "General", "{found}");
    assert_eq!(create("\u{2764}\u{FE0F} fans").await.status(), StatusCode::CREATED);
}

async fn room_names_are_unique_whatever_their_case(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ann = app.register("ann").await;
    let r = app.post_as("/api/v1/rooms", &ann.access_token, json!({"name": "Rust", "description": "crabs"})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let room: Value = r.json().await.unwrap();
    assert_eq!(room["type"], "room");
    assert_eq!(room["admins"], json!([ann.id]));
    let clash = app.post_as("/api/v1/rooms", &ann.access_token, json!({"name": "RUST", "description": ""})).await;
    assert_error(clash, StatusCode::CONFLICT, "already_exists").await;
    let other = app.post_as("/api/v1/rooms", &ann.access_token, json!({"name": "Go", "description": ""})).await;
    let other: Value = other.json().await.unwrap();
    let rename = app
        .patch_as(
            &format!("/api/v1/conversations/{}", other["id"].as_str().unwrap()),
            &ann.access_token,
            json!({"name": "rust"}),
        )
        .await;
    assert_error(rename, StatusCode::CONFLICT, "already_exists").await;
    let blank = app.post_as("/api/v1/rooms", &ann.access_token, json!({"name": "", "description": ""})).await;
    assert_error(blank, StatusCode::BAD_REQUEST, "invalid_argument").await;
}

async fn anyone_finds_and_joins_a_room_and_then_it_behaves_like_a_group(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (ann, bob) = (app.register("ann").await, app.register("bob").await);
    let room: Value = app
        .post_as("/api/v1/rooms", &ann.access_token, json!({"name": "Lobby", "description": ""}))
        .await
        .json()
        .await
        .unwrap();
    let id = room["id"].as_str().unwrap();
    app.say(&ann, id, "welcome").await;

    // Before joining: visible in the directory, not as a conversation; an
    // outsider learns how many are in it, not who.
    let found = app.json_as("/api/v1/rooms?search=lob", &bob.access_token).await;
    assert_eq!(found["items"][0]["id"], id);
    assert_eq!(found["items"][0]["member_count"], 1);
    assert_eq!(found["items"][0]["participants"], json!([]));
    let own = app.json_as("/api/v1/rooms?search=lob", &ann.access_token).await;
    assert_eq!(own["items"][0]["participants"], json!([ann.id]));
    assert_error(
        app.get_as(&format!("/api/v1/conversations/{id}/messages"), &bob.access_token).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    let joined = app.post_as(&format!("/api/v1/rooms/{id}/join"), &bob.access_token, json!({})).await;
    assert_eq!(joined.status(), StatusCode::OK);
    let joined: Value = joined.json().await.unwrap();
    assert_eq!(joined["member_count"], 2);
    assert_eq!(joined["unread_count"], 1);
    // Joining twice changes nothing.
    let again: Value =
        app.post_as(&format!("/api/v1/rooms/{id}/join"), &bob.access_token, json!({})).await.json().await.unwrap();
    assert_eq!(again["member_count"], 2);
    let inside = app.json_as("/api/v1/rooms?search=lob", &bob.access_token).await;
    assert_eq!(inside["items"][0]["participants"].as_array().unwrap().len(), 2, "{inside}");
    app.say(&bob, id, "hello").await;

    assert_eq!(
        app.post_as(&format!("/api/v1/rooms/{id}/leave"), &bob.access_token, json!({})).await.status(),
        StatusCode::NO_CONTENT
    );
    let gone = app.post_as(&format!("/api/v1/rooms/{id}/leave"), &bob.access_token, json!({})).await;
    assert_error(gone, StatusCode::NOT_FOUND, "not_found").await;
    let post = app
        .post_as(&format!("/api/v1/conversations/{id}/messages"), &bob.access_token, json!({"content": "still here?"}))
        .await;
    assert_error(post, StatusCode::NOT_FOUND, "not_found").await;

    // A group is not a room: it cannot be joined.
    let group = app.group(&ann, "Private", &[&app.register("cat").await]).await;
    let join_group = app.post_as(&format!("/api/v1/rooms/{group}/join"), &bob.access_token, json!({})).await;
    assert_error(join_group, StatusCode::NOT_FOUND, "not_found").await;
}

async fn the_directory_searches_by_name_prefix_a_page_at_a_time(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ann = app.register("ann").await;
    for name in ["Rust Beginners", "rust-async", "Rustaceans", "Python", "Ruby"] {
        let r = app.post_as("/api/v1/rooms", &ann.access_token, json!({"name": name, "description": ""})).await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let names = |v: &Value| -> Vec<String> {
        v["items"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().to_owned()).collect()
    };
    let first = app.json_as("/api/v1/rooms?search=RUST&limit=2", &ann.access_token).await;
    assert_eq!(names(&first), ["Rust Beginners", "rust-async"]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = app.json_as(&format!("/api/v1/rooms?search=rust&limit=2&cursor={cursor}"), &ann.access_token).await;
    assert_eq!(names(&second), ["Rustaceans"]);
    assert!(second["next_cursor"].is_null());
    assert_eq!(names(&app.json_as("/api/v1/rooms", &ann.access_token).await).len(), 5);
    let bad = app.get_as("/api/v1/rooms?limit=500", &ann.access_token).await;
    assert_error(bad, StatusCode::BAD_REQUEST, "invalid_argument").await;
}
