//! The web client as HTTP sees it: its files under a strict policy, the
//! cookie-held sessions (the page never gets a refresh token), and media
//! links a page can show.

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, SET_COOKIE};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, assert_error};
use crate::media::{png, upload};
use crate::on_every_backend;

const WEB: (&str, &str) = ("x-chatterbox-web", "1");

/// The session cookie a response sets: (value, attributes).
fn session_cookie(headers: &HeaderMap) -> (String, String) {
    let cookie = headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("chatterbox_refresh="))
        .expect("a session cookie is set");
    let (pair, attributes) = cookie.split_once(';').unwrap();
    (pair.trim_start_matches("chatterbox_refresh=").to_owned(), attributes.to_owned())
}

async fn session_call(app: &TestApp, path: &str, cookie: Option<&str>, body: Option<Value>) -> reqwest::Response {
    let mut request = app.client.post(app.url(path)).header(WEB.0, WEB.1);
    if let Some(cookie) = cookie {
        request = request.header("cookie", format!("other=1; chatterbox_refresh={cookie}"));
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

async fn the_client_is_served_under_a_strict_policy(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let page = app.client.get(app.url("/")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let headers = page.headers().clone();
    assert!(headers["content-type"].to_str().unwrap().starts_with("text/html"));
    let csp = headers["content-security-policy"].to_str().unwrap();
    for directive in ["default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"] {
        assert!(csp.contains(directive), "{directive} missing from {csp}");
    }
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{csp}");
    match backend {
        // Signed media URLs point at the S3 server: the page may show images from there only.
        Backend::MongoRedis => {
            assert!(
                csp.contains(&format!("img-src 'self' blob: {};", app.config.s3_endpoint.as_ref().unwrap())),
                "{csp}"
            )
        }
        Backend::Embedded => assert!(csp.contains("img-src 'self' blob:;"), "{csp}"),
    }
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let html = page.text().await.unwrap();
    assert!(html.contains("<script type=\"module\" src=\"/app/main.js\">"), "{html}");
    assert!(!html.contains("<script>"), "no inline script");

    let script = app.client.get(app.url("/app/main.js")).send().await.unwrap();
    assert_eq!(script.status(), StatusCode::OK);
    assert!(script.headers()["content-type"].to_str().unwrap().starts_with("text/javascript"));
    let style = app.client.get(app.url("/app/app.css")).send().await.unwrap();
    assert!(style.headers()["content-type"].to_str().unwrap().starts_with("text/css"));
    for missing in ["/app/nothing.js", "/app/..%2Fopenapi.json"] {
        assert_error(app.client.get(app.url(missing)).send().await.unwrap(), StatusCode::NOT_FOUND, "not_found").await;
    }
}

async fn web_sessions_keep_the_refresh_token_from_the_page(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = json!({"username": "webby", "email": "webby@example.com", "password": "correct horse"});

    // Without the header, or from another site: refused, nothing created.
    let bare = app.client.post(app.url("/web/session/register")).json(&body).send().await.unwrap();
    assert_error(bare, StatusCode::FORBIDDEN, "permission_denied").await;
    let cross = app
        .client
        .post(app.url("/web/session/register"))
        .header(WEB.0, WEB.1)
        .header("origin", "https://evil.example")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_error(cross, StatusCode::FORBIDDEN, "permission_denied").await;
    assert_eq!(app.login("webby@example.com", "correct horse").await.status(), StatusCode::UNAUTHORIZED);

    let registered = session_call(&app, "/web/session/register", None, Some(body)).await;
    assert_eq!(registered.status(), StatusCode::CREATED);
    let (first, attributes) = session_cookie(registered.headers());
    assert!(attributes.contains("HttpOnly"), "{attributes}");
    assert!(attributes.contains("SameSite=Strict"), "{attributes}");
    assert!(attributes.contains("Path=/web/session"), "{attributes}");
    assert!(!attributes.contains("Secure"), "loopback is served over plain HTTP: {attributes}");
    let session: Value = registered.json().await.unwrap();
    assert!(session.get("refresh_token").is_none() && session.get("tokens").is_none(), "{session}");
    assert_eq!(session["user"]["username"], "webby");
    let access = session["access_token"].as_str().unwrap().to_owned();
    assert_eq!(app.get_as("/api/v1/users/me", &access).await.status(), StatusCode::OK);

    // Refreshing rotates the cookie and answers a new access token only.
    let refreshed = session_call(&app, "/web/session/refresh", Some(&first), None).await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    let (second, _) = session_cookie(refreshed.headers());
    assert_ne!(first, second);
    let tokens: Value = refreshed.json().await.unwrap();
    assert!(tokens["access_token"].is_string() && tokens.get("refresh_token").is_none(), "{tokens}");

    // The old cookie again is a stolen token: refused, forgotten, and the
    // whole session ends (the rotated cookie stops working too).
    let replayed = session_call(&app, "/web/session/refresh", Some(&first), None).await;
    let (cleared, attributes) = session_cookie(replayed.headers());
    assert!(cleared.is_empty() && attributes.contains("Max-Age=0"), "{attributes}");
    assert_error(replayed, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let revoked = session_call(&app, "/web/session/refresh", Some(&second), None).await;
    assert_error(revoked, StatusCode::UNAUTHORIZED, "unauthenticated").await;

    // No cookie: 401. Login, then logout ends that session.
    assert_error(
        session_call(&app, "/web/session/refresh", None, None).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    let wrong = json!({"email": "webby@example.com", "password": "wrong password"});
    assert_error(
        session_call(&app, "/web/session/login", None, Some(wrong)).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    let login = json!({"email": "webby@example.com", "password": "correct horse"});
    let logged_in = session_call(&app, "/web/session/login", None, Some(login)).await;
    assert_eq!(logged_in.status(), StatusCode::OK);
    let (cookie, _) = session_cookie(logged_in.headers());
    // Signing in again from the same browser ends the session its cookie held.
    let login = json!({"email": "webby@example.com", "password": "correct horse"});
    let again = session_call(&app, "/web/session/login", Some(&cookie), Some(login)).await;
    assert_eq!(again.status(), StatusCode::OK);
    let (replaced, cookie) = (cookie, session_cookie(again.headers()).0);
    let stale = session_call(&app, "/web/session/refresh", Some(&replaced), None).await;
    assert_error(stale, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let logged_out = session_call(&app, "/web/session/logout", Some(&cookie), None).await;
    assert_eq!(logged_out.status(), StatusCode::NO_CONTENT);
    assert!(session_cookie(logged_out.headers()).0.is_empty());
    let after = session_call(&app, "/web/session/refresh", Some(&cookie), None).await;
    assert_error(after, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    // Logging out twice, or without a session, is fine.
    assert_eq!(session_call(&app, "/web/session/logout", Some(&cookie), None).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(session_call(&app, "/web/session/logout", None, None).await.status(), StatusCode::NO_CONTENT);

    // Bad input is the contract's 400.
    let bad = session_call(&app, "/web/session/register", None, Some(json!({"username": "x"}))).await;
    assert_error(bad, StatusCode::BAD_REQUEST, "invalid_argument").await;
}

async fn session_calls_count_against_the_rate_limit(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.http_rate_limit = 3).await;
    let login = json!({"email": "nobody@example.com", "password": "whatever!"});
    for _ in 0..3 {
        let r = session_call(&app, "/web/session/login", None, Some(login.clone())).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let limited = session_call(&app, "/web/session/login", None, Some(login)).await;
    assert!(limited.headers().contains_key("retry-after"));
    assert_error(limited, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    // The pages themselves are not limited.
    assert_eq!(app.client.get(app.url("/")).send().await.unwrap().status(), StatusCode::OK);
}

async fn pages_get_media_links_they_can_show(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.register("alice").await;
    let media = upload(&app, &alice, "p.png", "image/png", &png(40, 30)).await;
    for path in [media["url"].as_str().unwrap(), media["thumbnail_url"].as_str().unwrap()] {
        let r = app
            .client
            .get(app.url(path))
            .bearer_auth(&alice.access_token)
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
        match backend {
            Backend::MongoRedis => {
                let link: Value = r.json().await.unwrap();
                assert_eq!(link["expires_in"], app.config.media_url_ttl_secs);
                let url = link["url"].as_str().unwrap();
                assert!(url.starts_with(app.config.s3_endpoint.as_ref().unwrap()), "{url}");
                let bytes = reqwest::get(url).await.unwrap();
                assert_eq!(bytes.status(), StatusCode::OK);
                assert_eq!(bytes.headers()["content-type"], "image/png");
            }
            // On disk there is no signed URL: the bytes come as usual.
            Backend::Embedded => assert_eq!(r.headers()["content-type"], "image/png"),
        }
    }
    // Asking for a link changes nothing about who may have one.
    let bob = app.register("bob").await;
    let stranger = app
        .client
        .get(app.url(media["url"].as_str().unwrap()))
        .bearer_auth(&bob.access_token)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_error(stranger, StatusCode::NOT_FOUND, "not_found").await;
}

on_every_backend!(
    the_client_is_served_under_a_strict_policy,
    web_sessions_keep_the_refresh_token_from_the_page,
    session_calls_count_against_the_rate_limit,
    pages_get_media_links_they_can_show,
);
