//! What the gateway does for every route: errors as JSON, body cap, request
//! ids, health, metrics and the API description.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Backend, TestApp, assert_error};
use crate::on_every_backend;

on_every_backend!(
    malformed_bodies_are_400_with_the_error_body,
    a_body_over_the_cap_is_413_with_the_error_body,
    unknown_routes_and_methods_answer_with_the_error_body,
    every_response_carries_a_request_id,
    health_and_readiness_report_the_backends,
    metrics_count_requests_by_route,
);

async fn malformed_bodies_are_400_with_the_error_body(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let url = app.url("/api/v1/auth/login");
    let not_json = app.client.post(&url).header("content-type", "application/json").body("{nope").send().await.unwrap();
    assert_error(not_json, StatusCode::BAD_REQUEST, "invalid_argument").await;
    let no_type = app.client.post(&url).body(r#"{"email":"a@b.co","password":"x"}"#).send().await.unwrap();
    assert_error(no_type, StatusCode::BAD_REQUEST, "invalid_argument").await;
    let wrong_shape = app.client.post(&url).json(&[1, 2, 3]).send().await.unwrap();
    assert_error(wrong_shape, StatusCode::BAD_REQUEST, "invalid_argument").await;
}

async fn a_body_over_the_cap_is_413_with_the_error_body(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.http_body_limit_bytes = 1024).await;
    let padding = "x".repeat(4096);
    let response = app
        .post(
            "/api/v1/auth/register",
            serde_json::json!({"username": "big", "email": "b@example.com", "password": padding}),
        )
        .await;
    assert_error(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
}

async fn unknown_routes_and_methods_answer_with_the_error_body(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app.client.get(app.url("/api/v1/nothing-here")).send().await.unwrap();
    assert_error(response, StatusCode::NOT_FOUND, "not_found").await;
    let response = app.client.delete(app.url("/api/v1/auth/login")).send().await.unwrap();
    assert_error(response, StatusCode::METHOD_NOT_ALLOWED, "invalid_argument").await;
}

async fn every_response_carries_a_request_id(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let a = app.client.get(app.url("/healthz")).send().await.unwrap();
    let b = app.client.get(app.url("/api/v1/nothing")).send().await.unwrap();
    let id = |r: &reqwest::Response| r.headers().get("x-request-id").unwrap().to_str().unwrap().to_owned();
    assert_ne!(id(&a), id(&b));
    let echoed = app.client.get(app.url("/healthz")).header("x-request-id", "abc-123").send().await.unwrap();
    assert_eq!(id(&echoed), "abc-123");
}

async fn health_and_readiness_report_the_backends(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let live = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(live.status(), StatusCode::OK);
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "ready");
}

async fn metrics_count_requests_by_route(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.metrics_addr = Some("127.0.0.1:0".parse().unwrap())).await;
    app.client.get(app.url("/healthz")).send().await.unwrap();
    // Made-up methods and paths, as anyone on the public port may send.
    for n in 0..5 {
        let method = reqwest::Method::from_bytes(format!("XMETHOD{n}").as_bytes()).unwrap();
        app.client.request(method, app.url(&format!("/no/such/path/{n}"))).send().await.unwrap();
    }
    // Metrics are not on the public port...
    let public = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(public.status(), StatusCode::NOT_FOUND);
    // ...but where CHATTERBOX_METRICS_ADDR says.
    let metrics = app.suite.metrics_addr.expect("the suite serves metrics where asked");
    let text = app.client.get(format!("http://{metrics}/metrics")).send().await.unwrap().text().await.unwrap();
    // The recorder is process-wide; tests may share it, so look for the
    // series rather than a count.
    assert!(text.contains("http_requests_total"), "{text}");
    assert!(text.contains("route=\"/healthz\""), "{text}");
    // Bounded labels: a made-up method or path makes no series of its own.
    assert!(!text.contains("XMETHOD"), "{text}");
    assert!(!text.contains("/no/such/path"), "{text}");
    assert!(text.contains("method=\"other\""), "{text}");
}

#[tokio::test]
async fn readiness_fails_when_a_service_is_gone() {
    let app = TestApp::spawn(Backend::Embedded).await;
    let mut config = crate::helpers::test_config(Backend::Embedded, app.data_dir.path());
    // A gateway whose user service points at a closed port.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    config.user_url = Some(format!("http://{closed}"));
    config.conversation_url = Some(format!("http://{closed}"));
    config.message_url = Some(format!("http://{closed}"));
    config.presence_url = Some(format!("http://{closed}"));
    config.media_url = Some(format!("http://{closed}"));

    config.auth_url = Some(format!("http://{}", app.addr));
    config.jwt_public_key_file = Some(app.data_dir.path().join("jwt-public.pem"));
    let listener_config = config.clone();
    let shutdown = chatterbox_runtime::Shutdown::new(std::time::Duration::from_secs(1));
    let (tx, rx) = tokio::sync::oneshot::channel();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = probe.local_addr().unwrap();
        drop(probe);
        let mut c = listener_config;
        c.http_addr = addr;
        let _ = tx.send(addr);
        let _ = chatterbox::distributed::run(chatterbox::Part::Gateway, &c, stop).await;
    });
    let addr = rx.await.unwrap();
    let client = reqwest::Client::new();
    let response = chatterbox_testkit::eventually("the gateway answers", std::time::Duration::from_secs(3), || async {
        client.get(format!("http://{addr}/readyz")).send().await.map_err(|e| e.to_string())
    })
    .await;
    assert_error(response, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    shutdown.trigger();
}

#[tokio::test]
async fn the_api_description_lists_every_public_route() {
    let app = TestApp::spawn(Backend::Embedded).await;
    let doc: Value = app.client.get(app.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for (path, method) in [
        ("/api/v1/auth/register", "post"),
        ("/api/v1/auth/login", "post"),
        ("/api/v1/auth/refresh", "post"),
        ("/api/v1/auth/logout", "post"),
        ("/api/v1/users/me", "get"),
        ("/api/v1/users/me", "patch"),
        ("/api/v1/users/{id}", "get"),
        ("/api/v1/users", "get"),
        ("/api/v1/users/{id}/block", "post"),
        ("/api/v1/users/{id}/block", "delete"),
        ("/api/v1/users/me/blocks", "get"),
        ("/api/v1/conversations", "post"),
        ("/api/v1/conversations", "get"),
        ("/api/v1/conversations/{id}", "get"),
        ("/api/v1/conversations/{id}", "patch"),
        ("/api/v1/conversations/{id}/participants", "post"),
        ("/api/v1/conversations/{id}/participants/{user_id}", "delete"),
        ("/api/v1/conversations/{id}/admins", "post"),
        ("/api/v1/conversations/{id}/messages", "post"),
        ("/api/v1/conversations/{id}/messages", "get"),
        ("/api/v1/conversations/{id}/read", "post"),
        ("/api/v1/messages/{id}", "patch"),
        ("/api/v1/messages/{id}", "delete"),
        ("/api/v1/messages/{id}/reactions/{emoji}", "put"),
        ("/api/v1/messages/{id}/reactions/{emoji}", "delete"),
        ("/api/v1/messages/{id}/replies", "get"),
        ("/api/v1/messages/{id}/pin", "post"),
        ("/api/v1/messages/{id}/pin", "delete"),
        ("/api/v1/conversations/{id}/pins", "get"),
        ("/api/v1/media", "post"),
        ("/api/v1/media/{id}", "get"),
        ("/api/v1/media/{id}/thumbnail", "get"),
        ("/api/v1/presence", "get"),
        ("/api/v1/presence", "put"),
        ("/api/v1/rooms", "post"),
        ("/api/v1/rooms", "get"),
        ("/api/v1/rooms/{id}/join", "post"),
        ("/api/v1/rooms/{id}/leave", "post"),
        ("/ws", "get"),
        ("/healthz", "get"),
        ("/readyz", "get"),
    ] {
        assert!(doc["paths"][path][method].is_object(), "{method} {path} is not documented");
    }
    let docs = app.client.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(docs.status(), StatusCode::OK);
    let page = docs.text().await.unwrap();
    assert!(page.contains("/openapi.json") && page.contains("/asyncapi.json"));
    // The WebSocket protocol, beside it (checked against the frames' code in the gateway's tests).
    let protocol = app.client.get(app.url("/asyncapi.json")).send().await.unwrap();
    assert_eq!(protocol.headers()["content-type"], "application/json");
    let protocol: Value = protocol.json().await.unwrap();
    assert!(protocol["asyncapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(protocol["channels"]["ws"]["address"], "/ws");
}
