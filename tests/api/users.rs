//! Profiles: me, others, search, updates.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, assert_error};
use crate::on_every_backend;

on_every_backend!(
    me_includes_the_email_and_others_see_no_email,
    unknown_and_malformed_user_ids_are_404,
    search_finds_username_prefixes_case_insensitively_a_page_at_a_time,
    search_refuses_bad_limits_and_patterns,
    a_user_can_change_username_and_avatar,
    a_username_change_to_a_taken_name_is_409_and_changes_nothing,
);

async fn me_includes_the_email_and_others_see_no_email(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;

    let me: Value = app.get_as("/api/v1/users/me", &alice.access_token).await.json().await.unwrap();
    assert_eq!(me["id"], alice.id.as_str());
    assert_eq!(me["email"], alice.email.as_str());

    let response = app.get_as(&format!("/api/v1/users/{}", alice.id), &bob.access_token).await;
    assert_eq!(response.status(), StatusCode::OK);
    let seen_by_bob: Value = response.json().await.unwrap();
    assert_eq!(seen_by_bob["username"], "alice");
    assert!(seen_by_bob.get("email").is_none(), "{seen_by_bob}");
    for field in ["id", "avatar", "status", "last_seen", "created_at", "updated_at"] {
        assert!(seen_by_bob.get(field).is_some(), "{field} missing");
    }
}

async fn unknown_and_malformed_user_ids_are_404(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.register("alice").await;
    for id in ["01ARZ3NDEKTSV4RRFFQ69G5FAV", "nope", "%7B%22%24ne%22%3A1%7D"] {
        let response = app.get_as(&format!("/api/v1/users/{id}"), &alice.access_token).await;
        assert_error(response, StatusCode::NOT_FOUND, "not_found").await;
    }
}

async fn search_finds_username_prefixes_case_insensitively_a_page_at_a_time(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let me = app.register("zed").await;
    for name in ["Sam", "samantha", "SAMUEL", "sammy", "bob"] {
        app.register(name).await;
    }
    let first: Value = app.get_as("/api/v1/users?search=SAM&limit=3", &me.access_token).await.json().await.unwrap();
    let names: Vec<&str> = first["items"].as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap()).collect();
    assert_eq!(names, ["Sam", "samantha", "sammy"]);
    assert!(first["items"][0].get("email").is_none());
    let cursor = first["next_cursor"].as_str().expect("a second page");

    let second: Value = app
        .get_as(&format!("/api/v1/users?search=sam&limit=3&cursor={cursor}"), &me.access_token)
        .await
        .json()
        .await
        .unwrap();
    let names: Vec<&str> =
        second["items"].as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap()).collect();
    assert_eq!(names, ["SAMUEL"]);
    assert!(second["next_cursor"].is_null());

    let none: Value = app.get_as("/api/v1/users?search=xyz", &me.access_token).await.json().await.unwrap();
    assert_eq!(none["items"], json!([]));
}

async fn search_refuses_bad_limits_and_patterns(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let me = app.register("zed").await;
    let refused =
        ["limit=0", "limit=101", "limit=ten", "search=.*", "search=%24ne", "cursor=@@@", "search=", "limit=5"];
    for query in refused {
        let response = app.get_as(&format!("/api/v1/users?{query}"), &me.access_token).await;
        assert_error(response, StatusCode::BAD_REQUEST, "invalid_argument").await;
    }
    // No search at all is refused too: users are found by name, not listed wholesale.
    let response = app.get_as("/api/v1/users", &me.access_token).await;
    assert_error(response, StatusCode::BAD_REQUEST, "invalid_argument").await;
}

async fn a_user_can_change_username_and_avatar(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.register("alice").await;
    // An avatar is an image she uploaded.
    let face = crate::media::upload(&app, &alice, "me.png", "image/png", &crate::media::png(16, 16)).await;
    let media = face["id"].as_str().unwrap();
    let response = app
        .send(
            Method::PATCH,
            "/api/v1/users/me",
            Some(&alice.access_token),
            Some(json!({"username": "alicia", "avatar": media})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let updated: Value = response.json().await.unwrap();
    assert_eq!(updated["username"], "alicia");
    assert_eq!(updated["avatar"], media);
    assert_ne!(updated["updated_at"], updated["created_at"].clone());

    // Omitting a field keeps it; null clears the avatar.
    let cleared: Value = app
        .send(Method::PATCH, "/api/v1/users/me", Some(&alice.access_token), Some(json!({"avatar": null})))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(cleared["username"], "alicia");
    assert!(cleared["avatar"].is_null());

    let bad = app
        .send(Method::PATCH, "/api/v1/users/me", Some(&alice.access_token), Some(json!({"avatar": "../../etc/passwd"})))
        .await;
    assert_error(bad, StatusCode::BAD_REQUEST, "invalid_argument").await;
    let bad =
        app.send(Method::PATCH, "/api/v1/users/me", Some(&alice.access_token), Some(json!({"username": "a b"}))).await;
    assert_error(bad, StatusCode::BAD_REQUEST, "invalid_argument").await;
}

async fn a_username_change_to_a_taken_name_is_409_and_changes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.register("alice").await;
    app.register("bob").await;
    let response =
        app.send(Method::PATCH, "/api/v1/users/me", Some(&alice.access_token), Some(json!({"username": "BOB"}))).await;
    assert_error(response, StatusCode::CONFLICT, "already_exists").await;
    let me: Value = app.get_as("/api/v1/users/me", &alice.access_token).await.json().await.unwrap();
    assert_eq!(me["username"], "alice");
}
