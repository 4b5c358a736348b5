//! Signing up: validation, uniqueness, and no half-registered accounts.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, assert_error};
use crate::on_every_backend;

on_every_backend!(
    registering_returns_the_user_and_a_token_pair,
    invalid_registrations_are_400_and_create_nothing,
    taken_emails_and_usernames_are_409_whatever_their_case,
    a_registration_refused_for_its_username_leaves_the_email_free,
    operator_injection_in_a_body_is_400,
);

async fn registering_returns_the_user_and_a_token_pair(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app.register_raw("Alice", "Alice@Example.com", "correct horse").await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    let user = &body["user"];
    assert_eq!(user["username"], "Alice");
    assert_eq!(user["email"], "Alice@Example.com");
    assert_eq!(user["status"], "offline");
    assert!(user["avatar"].is_null() && user["last_seen"].is_null());
    assert!(user["id"].as_str().is_some_and(|id| !id.is_empty()));
    let created = user["created_at"].as_str().unwrap();
    assert!(created.ends_with('Z') && created.len() == "2026-11-27T17:05:54.123Z".len(), "{created}");
    let tokens = &body["tokens"];
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 900);
    assert!(tokens["access_token"].as_str().unwrap().split('.').count() == 3);
    assert!(tokens["refresh_token"].as_str().unwrap().len() >= 32);
    assert!(body.get("password").is_none() && user.get("password_hash").is_none());
}

async fn invalid_registrations_are_400_and_create_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let cases = [
        json!({"username": "al", "email": "a@example.com", "password": "password1"}),
        json!({"username": "a".repeat(33), "email": "a@example.com", "password": "password1"}),
        json!({"username": "al ice", "email": "a@example.com", "password": "password1"}),
        json!({"username": "alice", "email": "not-an-email", "password": "password1"}),
        json!({"username": "alice", "email": "a@example.com", "password": "short"}),
        json!({"username": "alice", "email": "a@example.com", "password": "x".repeat(129)}),
        json!({"username": "alice", "email": "a@example.com"}),
        json!({"username": 42, "email": "a@example.com", "password": "password1"}),
    ];
    for body in cases {
        let response = app.post("/api/v1/auth/register", body.clone()).await;
        assert_error(response, StatusCode::BAD_REQUEST, "invalid_argument").await;
    }
    // None of them left anything behind: the valid version still registers.
    app.register_raw("alice", "a@example.com", "password1").await.error_for_status().unwrap();
}

async fn taken_emails_and_usernames_are_409_whatever_their_case(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("Bob").await;
    let same_email = app.register_raw("bobby", "BOB@example.COM", "password1").await;
    assert_error(same_email, StatusCode::CONFLICT, "already_exists").await;
    let same_username = app.register_raw("bOB", "other@example.com", "password1").await;
    assert_error(same_username, StatusCode::CONFLICT, "already_exists").await;
}

async fn a_registration_refused_for_its_username_leaves_the_email_free(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("carol").await;
    // The email is new but the username is taken: the credentials created
    // for this attempt must be rolled back.
    let refused = app.register_raw("Carol", "dave@example.com", "password1").await;
    assert_error(refused, StatusCode::CONFLICT, "already_exists").await;
    let login = app.login("dave@example.com", "password1").await;
    assert_error(login, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let retry = app.register_raw("dave", "dave@example.com", "password1").await;
    assert_eq!(retry.status(), StatusCode::CREATED);
}

async fn operator_injection_in_a_body_is_400(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("erin").await;
    let attack = app.post("/api/v1/auth/login", json!({"email": {"$ne": ""}, "password": {"$ne": ""}})).await;
    assert_error(attack, StatusCode::BAD_REQUEST, "invalid_argument").await;
    let attack = app
        .post(
            "/api/v1/auth/register",
            json!({"username": {"$gt": ""}, "email": "x@example.com", "password": "password1"}),
        )
        .await;
    assert_error(attack, StatusCode::BAD_REQUEST, "invalid_argument").await;
}
