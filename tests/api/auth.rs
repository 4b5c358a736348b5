//! Logging in, token rotation, reuse detection, logout.

use std::time::{Duration, Instant};

use chatterbox_types::ManualClock;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, assert_error};
use crate::on_every_backend;

on_every_backend!(
    login_returns_the_user_and_fresh_tokens,
    login_failures_look_the_same_whether_or_not_the_email_exists,
    refresh_rotates_and_the_old_token_stops_working,
    replaying_a_rotated_token_revokes_the_whole_session,
    concurrent_refreshes_with_one_token_let_at_most_one_succeed,
    logout_ends_the_session_and_only_that_session,
    logout_with_an_unknown_token_is_401,
    an_expired_login_session_cannot_be_refreshed,
);

async fn login_returns_the_user_and_fresh_tokens(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.register("alice").await;
    let response = app.login("ALICE@example.com", &alice.password).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user"]["id"], alice.id.as_str());
    assert_eq!(body["user"]["email"], alice.email.as_str());
    let access = body["tokens"]["access_token"].as_str().unwrap();
    assert_ne!(body["tokens"]["refresh_token"], alice.refresh_token.as_str());
    assert_eq!(app.get_as("/api/v1/users/me", access).await.status(), StatusCode::OK);
}

async fn login_failures_look_the_same_whether_or_not_the_email_exists(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.register("alice").await;

    let mut wrong_password = Duration::MAX;
    let mut unknown_email = Duration::MAX;
    let mut bodies = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let r = app.login(&alice.email, "not-her-password").await;
        wrong_password = wrong_password.min(started.elapsed());
        bodies.push((r.status(), r.text().await.unwrap()));

        let started = Instant::now();
        let r = app.login("nobody@example.com", "not-her-password").await;
        unknown_email = unknown_email.min(started.elapsed());
        bodies.push((r.status(), r.text().await.unwrap()));
    }
    assert!(bodies.iter().all(|b| b == &bodies[0]), "{bodies:?}");
    assert_eq!(bodies[0].0, StatusCode::UNAUTHORIZED);
    assert!(bodies[0].1.contains("\"unauthenticated\""));
    // An unknown email still pays for a full password check.
    assert!(
        unknown_email * 3 >= wrong_password,
        "unknown email answered in {unknown_email:?}, wrong password in {wrong_password:?}"
    );
}

async fn refresh_rotates_and_the_old_token_stops_working(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.register("alice").await;
    let response = app.refresh(&alice.refresh_token).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let next = body["tokens"]["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(next, alice.refresh_token);
    let access = body["tokens"]["access_token"].as_str().unwrap();
    assert_eq!(app.get_as("/api/v1/users/me", access).await.status(), StatusCode::OK);
    // The new one works once more; the old one is spent.
    let again = app.refresh(&next).await;
    assert_eq!(again.status(), StatusCode::OK);
}

async fn replaying_a_rotated_token_revokes_the_whole_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.register("alice").await;
    let other_session: Value = app.login(&alice.email, &alice.password).await.json().await.unwrap();

    let rotated: Value = app.refresh(&alice.refresh_token).await.json().await.unwrap();
    let current = rotated["tokens"]["refresh_token"].as_str().unwrap();

    // A thief replays the old token: refused, and the family is revoked...
    assert_error(app.refresh(&alice.refresh_token).await, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    // ...so the legitimate current token is dead too.
    assert_error(app.refresh(current).await, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    // Another login session of the same user is untouched.
    let other = other_session["tokens"]["refresh_token"].as_str().unwrap();
    assert_eq!(app.refresh(other).await.status(), StatusCode::OK);
}

async fn concurrent_refreshes_with_one_token_let_at_most_one_succeed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.register("alice").await;
    let attempts = (0..8).map(|_| app.refresh(&alice.refresh_token));
    let statuses: Vec<StatusCode> = futures::future::join_all(attempts).await.iter().map(|r| r.status()).collect();
    let succeeded = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert!(succeeded <= 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == StatusCode::OK || *s == StatusCode::UNAUTHORIZED), "{statuses:?}");
}

async fn logout_ends_the_session_and_only_that_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.register("alice").await;
    let second: Value = app.login(&alice.email, &alice.password).await.json().await.unwrap();

    let response = app.post("/api/v1/auth/logout", json!({"refresh_token": alice.refresh_token})).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_error(app.refresh(&alice.refresh_token).await, StatusCode::UNAUTHORIZED, "unauthenticated").await;

    let other = second["tokens"]["refresh_token"].as_str().unwrap();
    assert_eq!(app.refresh(other).await.status(), StatusCode::OK);
}

async fn logout_with_an_unknown_token_is_401(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app.post("/api/v1/auth/logout", json!({"refresh_token": "made-up"})).await;
    assert_error(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let response = app.send(Method::POST, "/api/v1/auth/logout", None, Some(json!({}))).await;
    assert_error(response, StatusCode::BAD_REQUEST, "invalid_argument").await;
}

async fn an_expired_login_session_cannot_be_refreshed(backend: Backend) {
    let clock = ManualClock::starting_now();
    let app = TestApp::spawn_with_clock(backend, &clock, |c| c.refresh_token_ttl_secs = 60).await;
    let alice = app.register("alice").await;
    // The session's absolute lifetime is what is under test: move past it.
    clock.advance(Duration::from_secs(59));
    let fresh: Value = app.refresh(&alice.refresh_token).await.json().await.unwrap();
    let rotated = fresh["tokens"]["refresh_token"].as_str().expect("refreshed within the session's lifetime");
    clock.advance(Duration::from_secs(1));
    assert_error(app.refresh(rotated).await, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}
