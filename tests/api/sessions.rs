//! Login sessions (`api.md` v1.1, "Sessions and revocation"): listed, ended
//! from the list, by logout or by a replayed refresh token, and an ended
//! session's access tokens and WebSockets stop within a second. Failed
//! logins are limited per account as well as per IP.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::helpers::{Backend, TestApp, TestUser, assert_error};
use crate::on_every_backend;

on_every_backend!(
    sessions_list_the_callers_live_logins_and_mark_the_current_one,
    ending_a_session_stops_its_tokens_and_closes_its_websockets,
    only_the_owner_can_end_a_session,
    logout_stops_the_sessions_access_tokens_at_once,
    a_replayed_refresh_token_stops_the_sessions_access_tokens,
    failed_logins_are_limited_per_account_whether_or_not_it_exists,
);

/// How soon an ended session must stop everywhere (`api.md`).
const WITHIN: Duration = Duration::from_secs(1);

/// Logs `user` in again with `user_agent`; a client holding that session.
async fn login_as(app: &TestApp, user: &TestUser, user_agent: &str) -> TestUser {
    let response = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("user-agent", user_agent)
        .json(&json!({"email": user.email, "password": user.password}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    TestUser {
        access_token: body["tokens"]["access_token"].as_str().unwrap().to_owned(),
        refresh_token: body["tokens"]["refresh_token"].as_str().unwrap().to_owned(),
        ..user.clone()
    }
}

async fn sessions(app: &TestApp, user: &TestUser) -> Vec<Value> {
    let list = app.json_as("/api/v1/auth/sessions", &user.access_token).await;
    list["items"].as_array().unwrap().clone()
}

/// The id of the session `user`'s token belongs to.
async fn current_session(app: &TestApp, user: &TestUser) -> String {
    let list = sessions(app, user).await;
    let current: Vec<&Value> = list.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1, "{list:?}");
    current[0]["id"].as_str().unwrap().to_owned()
}

/// Polls until `path` answers 401 to `token`; returns how long it took.
async fn refused_within(app: &TestApp, token: &str, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let status = app.get_as("/api/v1/users/me", token).await.status();
        if status == StatusCode::UNAUTHORIZED {
            return started.elapsed();
        }
        assert_eq!(status, StatusCode::OK);
        assert!(started.elapsed() < limit, "the ended session's token still works after {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn sessions_list_the_callers_live_logins_and_mark_the_current_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.register("alice").await;
    let phone = login_as(&app, &alice, "ChatterBox-Phone/2.1").await;
    let bob = app.register("bob").await;

    let list = sessions(&app, &phone).await;
    assert_eq!(list.len(), 2, "registering started a session, logging in another: {list:?}");
    // Most recently started first: the phone's.
    let (newest, first) = (&list[0], &list[1]);
    assert_eq!(newest["current"], true);
    assert_eq!(first["current"], false);
    assert_eq!(newest["user_agent"], "ChatterBox-Phone/2.1");
    assert_eq!(newest["ip"], "127.0.0.1");
    for session in &list {
        for field in ["id", "created_at", "last_used_at"] {
            assert!(session[field].as_str().is_some_and(|v| !v.is_empty()), "{field} in {session}");
        }
    }
    // Asked with the other token, the other one is current.
    assert_eq!(current_session(&app, &alice).await, first["id"].as_str().unwrap());

    // A refresh marks its session used, and keeps it the same session.
    let before = newest["last_used_at"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let rotated: Value = app.refresh(&phone.refresh_token).await.json().await.unwrap();
    let phone = TestUser { access_token: rotated["tokens"]["access_token"].as_str().unwrap().to_owned(), ..phone };
    let list = sessions(&app, &phone).await;
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["id"], newest["id"]);
    assert_eq!(list[0]["current"], true);
    assert!(list[0]["last_used_at"].as_str().unwrap() > before.as_str(), "{list:?}");

    // Bob sees his own only.
    let his = sessions(&app, &bob).await;
    assert_eq!(his.len(), 1);
    assert!(his.iter().all(|s| s["id"] != newest["id"] && s["id"] != first["id"]));

    let response = app.send(reqwest::Method::GET, "/api/v1/auth/sessions", None, None).await;
    assert_error(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}

async fn ending_a_session_stops_its_tokens_and_closes_its_websockets(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.register("alice").await;
    let laptop = login_as(&app, &alice, "laptop").await;
    let lost_phone = current_session(&app, &alice).await;
    let mut phone_socket = app.ws(&alice).await;
    let mut laptop_socket = app.ws(&laptop).await;

    let ended = app.delete_as(&format!("/api/v1/auth/sessions/{lost_phone}"), &laptop.access_token).await;
    assert_eq!(ended.status(), StatusCode::NO_CONTENT);
    let took = refused_within(&app, &alice.access_token, WITHIN).await;
    assert!(took < WITHIN, "{took:?}");
    let closing = Instant::now();
    let (frames, close) = phone_socket.closed().await;
    assert!(closing.elapsed() < WITHIN, "the socket closed after {:?}", closing.elapsed());
    assert_eq!(close.unwrap().code, CloseCode::from(4401));
    assert!(frames.iter().any(|f| f["type"] == "error" && f["code"] == "unauthenticated"), "{frames:?}");
    // Its refresh token is dead too, and it is gone from the list.
    assert_error(app.refresh(&alice.refresh_token).await, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let left = sessions(&app, &laptop).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["current"], true);

    // The other session goes on, its socket included.
    laptop_socket.send(json!({"type": "ping", "id": "p"})).await;
    assert_eq!(laptop_socket.expect("pong").await["id"], "p");
    // Ending it again: it is no longer there.
    let again = app.delete_as(&format!("/api/v1/auth/sessions/{lost_phone}"), &laptop.access_token).await;
    assert_error(again, StatusCode::NOT_FOUND, "not_found").await;

    // A socket opened with a token of the ended session is refused at once.
    let mut late = crate::ws_client::connect_raw(app.addr, &[]).await.unwrap();
    late.send(json!({"type": "auth", "access_token": alice.access_token})).await;
    let (frames, close) = late.closed().await;
    assert_eq!(frames[0]["code"], "unauthenticated");
    assert_eq!(close.unwrap().code, CloseCode::from(4401));

    // Ending the current session works like logging out.
    let own = current_session(&app, &laptop).await;
    let response = app.delete_as(&format!("/api/v1/auth/sessions/{own}"), &laptop.access_token).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    refused_within(&app, &laptop.access_token, WITHIN).await;
    let (_, close) = laptop_socket.closed().await;
    assert_eq!(close.unwrap().code, CloseCode::from(4401));
}

async fn only_the_owner_can_end_a_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.register("alice").await;
    let mallory = app.register("mallory").await;
    let hers = current_session(&app, &alice).await;
    for id in [hers.as_str(), "not-a-session", "01ARZ3NDEKTSV4RRFFQ69G5FAV"] {
        let response = app.delete_as(&format!("/api/v1/auth/sessions/{id}"), &mallory.access_token).await;
        assert_error(response, StatusCode::NOT_FOUND, "not_found").await;
    }
    assert_eq!(app.get_as("/api/v1/users/me", &alice.access_token).await.status(), StatusCode::OK);
    assert_eq!(current_session(&app, &alice).await, hers);
}

async fn logout_stops_the_sessions_access_tokens_at_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.register("alice").await;
    let other = login_as(&app, &alice, "other").await;
    let mut socket = app.ws(&alice).await;
    let response = app.post("/api/v1/auth/logout", json!({"refresh_token": alice.refresh_token})).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    refused_within(&app, &alice.access_token, WITHIN).await;
    let (_, close) = socket.closed().await;
    assert_eq!(close.unwrap().code, CloseCode::from(4401));
    assert_eq!(app.get_as("/api/v1/users/me", &other.access_token).await.status(), StatusCode::OK);
}

async fn a_replayed_refresh_token_stops_the_sessions_access_tokens(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.register("alice").await;
    let rotated: Value = app.refresh(&alice.refresh_token).await.json().await.unwrap();
    let fresh_access = rotated["tokens"]["access_token"].as_str().unwrap().to_owned();
    assert_eq!(app.get_as("/api/v1/users/me", &fresh_access).await.status(), StatusCode::OK);
    // A thief replays the spent token: the whole session ends, access tokens included.
    assert_error(app.refresh(&alice.refresh_token).await, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    refused_within(&app, &fresh_access, WITHIN).await;
    refused_within(&app, &alice.access_token, WITHIN).await;
}

async fn failed_logins_are_limited_per_account_whether_or_not_it_exists(backend: Backend) {
    // No per-IP limit: only the per-account one can refuse.
    let app = TestApp::spawn_with(backend, |c| {
        c.http_rate_limit = 0;
        c.login_failure_limit = 3;
    })
    .await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let mut refusals = Vec::new();
    for email in [alice.email.as_str(), "nobody@example.com"] {
        for _ in 0..3 {
            assert_error(app.login(email, "wrong-password").await, StatusCode::UNAUTHORIZED, "unauthenticated").await;
        }
        let refused = app.login(email, "wrong-password").await;
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        let retry: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=15 * 60).contains(&retry), "{retry}");
        refusals.push(refused.text().await.unwrap());
    }
    // A refusal does not tell whether the account exists.
    assert_eq!(refusals[0], refusals[1]);
    assert!(refusals[0].contains("rate_limited"), "{}", refusals[0]);
    // Even the right password waits: the guesses are what is limited...
    let response = app.login(&alice.email, &alice.password).await;
    assert_error(response, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    // ...for that account alone, however the email is written.
    let response = app.login(&alice.email.to_uppercase(), &alice.password).await;
    assert_error(response, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    assert_eq!(app.login(&bob.email, &bob.password).await.status(), StatusCode::OK);
    // Successful logins do not use the allowance up.
    for _ in 0..5 {
        assert_eq!(app.login(&bob.email, &bob.password).await.status(), StatusCode::OK);
    }
    assert_error(app.login(&bob.email, "wrong").await, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}
