//! The per-IP HTTP rate limit, its headers, and its key.

use reqwest::StatusCode;

use crate::helpers::{Backend, TestApp, assert_error, test_config};
use crate::on_every_backend;

on_every_backend!(
    requests_beyond_the_limit_are_429_with_retry_after,
    a_forged_forwarded_for_from_an_untrusted_peer_does_not_change_the_key,
    behind_a_trusted_proxy_each_client_has_its_own_bucket,
);

async fn requests_beyond_the_limit_are_429_with_retry_after(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.http_rate_limit = 5).await;
    let url = app.url("/api/v1/users/me");
    for remaining in (0..5).rev() {
        let r = app.client.get(&url).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "limited routes still run normally");
        assert_eq!(r.headers()["x-ratelimit-limit"], "5");
        assert_eq!(r.headers()["x-ratelimit-remaining"], remaining.to_string().as_str());
    }
    let refused = app.client.get(&url).send().await.unwrap();
    let retry_after: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=12).contains(&retry_after), "{retry_after}");
    assert_eq!(refused.headers()["x-ratelimit-remaining"], "0");
    assert_error(refused, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    // Health checks are not API calls: they are never limited.
    assert_eq!(app.client.get(app.url("/healthz")).send().await.unwrap().status(), StatusCode::OK);
}

async fn a_forged_forwarded_for_from_an_untrusted_peer_does_not_change_the_key(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.http_rate_limit = 2).await;
    let url = app.url("/api/v1/users/me");
    for n in 0..4 {
        let r = app.client.get(&url).header("x-forwarded-for", format!("10.9.8.{n}")).send().await.unwrap();
        let expected = if n < 2 { StatusCode::UNAUTHORIZED } else { StatusCode::TOO_MANY_REQUESTS };
        assert_eq!(r.status(), expected, "request {n}");
    }
}

async fn behind_a_trusted_proxy_each_client_has_its_own_bucket(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.http_rate_limit = 1;
        c.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    let url = app.url("/api/v1/users/me");
    let send = |ip: &'static str| app.client.get(&url).header("x-forwarded-for", ip).send();
    assert_eq!(send("198.51.100.1").await.unwrap().status(), StatusCode::UNAUTHORIZED);
    assert_eq!(send("198.51.100.1").await.unwrap().status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(send("198.51.100.2").await.unwrap().status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_limit_holds_across_two_gateways_sharing_redis() {
    let dir_a = tempfile::tempdir().unwrap();
    let mut config = test_config(Backend::MongoRedis, dir_a.path());
    config.http_rate_limit = 4;
    let first = TestApp::start(config.clone(), dir_a).await;
    let dir_b = tempfile::tempdir().unwrap();
    config.data_dir = dir_b.path().to_path_buf();
    let second = TestApp::start(config, dir_b).await;

    let mut statuses = Vec::new();
    for n in 0..6 {
        let app = if n % 2 == 0 { &first } else { &second };
        statuses.push(app.client.get(app.url("/api/v1/users/me")).send().await.unwrap().status());
    }
    let refused = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!(refused, 2, "{statuses:?}");
    assert!(statuses[..4].iter().all(|s| *s == StatusCode::UNAUTHORIZED), "{statuses:?}");
}
