//! The OpenAPI document against the running API. Schemathesis (PyPI,
//! installed by `make test-deps`) generates requests for every operation from
//! `/openapi.json`, valid and not, alone and chained (what one answer returns
//! feeds the next), and checks that no answer is a 5xx and that every answer
//! (status, content type, headers, body) is one the document describes.
//!
//! The embedded suite, with the rate limits off so every request reaches a
//! handler. Sized for `make test` (a fixed seed, a few examples per
//! operation); `CHATTERBOX_SCHEMATHESIS_EXAMPLES` and
//! `CHATTERBOX_SCHEMATHESIS_SEED` (`random` for a fresh one) make the larger
//! run of `make bench`.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp};

/// What is checked: answers, not how strict the server is about input the
/// document allows (semantic rules such as "a direct conversation has one
/// other participant" are beyond a schema).
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                      response_headers_conformance,response_schema_conformance";

fn schemathesis() -> PathBuf {
    std::env::var_os("SCHEMATHESIS").map_or_else(
        || {
            let home = std::env::var_os("HOME").expect("HOME is set");
            PathBuf::from(home).join(".cache/chatterbox/schemathesis/bin/st")
        },
        PathBuf::from,
    )
}

#[tokio::test]
async fn every_answer_to_generated_requests_is_one_the_openapi_document_describes() {
    let st = schemathesis();
    assert!(st.exists(), "{} is missing: run `make test-deps` (scripts/install-test-deps.sh)", st.display());
    let app = TestApp::spawn_with(Backend::Embedded, |c| {
        c.http_rate_limit = 0;
        c.login_failure_limit = 0;
        c.ws_rate_limit = 0;
    })
    .await;
    let registered = app
        .post(
            "/api/v1/auth/register",
            json!({"username": "schemathesis", "email": "schemathesis@example.com", "password": "long-enough-pw"}),
        )
        .await;
    assert_eq!(registered.status(), StatusCode::CREATED);
    let body: Value = registered.json().await.unwrap();
    let token = body["tokens"]["access_token"].as_str().unwrap().to_owned();
    let examples = std::env::var("CHATTERBOX_SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| "20".into());
    let seed = std::env::var("CHATTERBOX_SCHEMATHESIS_SEED").unwrap_or_else(|_| "20261203".into());

    // Its example database and reports stay out of the checkout.
    let workdir = tempfile::tempdir().unwrap();
    let mut command = tokio::process::Command::new(&st);
    command
        .current_dir(workdir.path())
        .arg("run")
        .arg(app.url("/openapi.json"))
        .args(["--header", &format!("Authorization: Bearer {token}")])
        // Ending the session would end the token every other request uses
        // (tests/api/sessions.rs covers both).
        .args(["--exclude-operation-id", "endSession", "--exclude-operation-id", "logout"])
        // One worker: with two threads, Hypothesis parses lambdas' source
        // concurrently, which CPython 3.11's `ast` module is not safe for
        // ("AST constructor recursion depth mismatch", seen in CI).
        .args(["--checks", CHECKS, "--max-examples", &examples, "--workers", "1"])
        .env("NO_COLOR", "1")
        .kill_on_drop(true);
    if seed != "random" {
        command.args(["--seed", &seed]);
    }
    let output = tokio::time::timeout(Duration::from_secs(900), command.output())
        .await
        .expect("schemathesis finishes within 15 minutes")
        .expect("schemathesis runs");
    let report = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "schemathesis found answers the document does not describe:\n{report}");
    assert!(report.contains("passed"), "{report}");
}

/// A body for a route: any JSON, or an object with the route's own field
/// names holding values of any type.
fn body_for(fields: &'static [&'static str]) -> impl proptest::strategy::Strategy<Value = Value> {
    use chatterbox_testkit::json::any_json;
    use proptest::prelude::*;
    let named = prop::collection::vec((prop::sample::select(fields), any_json()), 0..4)
        .prop_map(|pairs| Value::Object(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()));
    prop_oneof![any_json(), named]
}

mod properties {
    use proptest::strategy::{Strategy, ValueTree};
    use proptest::test_runner::{Config, TestRng, TestRunner};
    use reqwest::{Method, StatusCode};
    use serde_json::Value;

    use super::body_for;
    use crate::helpers::{Backend, TestApp};

    /// Every route that takes a JSON body, with the fields it reads.
    const ROUTES: &[(&str, &str, &[&str])] = &[
        ("POST", "/api/v1/auth/register", &["username", "email", "password"]),
        ("POST", "/api/v1/auth/login", &["email", "password"]),
        ("POST", "/api/v1/auth/refresh", &["refresh_token"]),
        ("PATCH", "/api/v1/users/me", &["username", "avatar"]),
        ("POST", "/api/v1/conversations", &["type", "name", "participant_ids"]),
        ("PATCH", "/api/v1/conversations/{conversation}", &["name", "description"]),
        ("POST", "/api/v1/conversations/{conversation}/participants", &["user_id"]),
        ("POST", "/api/v1/conversations/{conversation}/admins", &["user_id"]),
        ("POST", "/api/v1/conversations/{conversation}/messages", &["content", "type", "attachments", "client_id"]),
        ("POST", "/api/v1/conversations/{conversation}/read", &["seq"]),
        ("PATCH", "/api/v1/messages/{message}", &["content"]),
        ("PUT", "/api/v1/presence", &["status"]),
        ("POST", "/api/v1/rooms", &["name", "description"]),
        ("POST", "/web/session/register", &["username", "email", "password"]),
        ("POST", "/web/session/login", &["email", "password"]),
    ];

    /// Whatever JSON reaches a route, the answer is the contract's: never a
    /// 5xx, and every refusal the JSON error body. `PROPTEST_CASES` bodies
    /// per route (32 in `make test`).
    #[tokio::test]
    async fn any_json_body_on_any_route_gets_an_answer_of_the_contract() {
        let app = TestApp::spawn_with(Backend::Embedded, |c| {
            c.http_rate_limit = 0;
            c.login_failure_limit = 0;
        })
        .await;
        let ann = app.register("ann").await;
        let bob = app.register("bob").await;
        let conversation = app.group(&ann, "Fuzzed", &[&bob]).await;
        let message = app.say(&ann, &conversation, "hello").await["id"].as_str().unwrap().to_owned();
        let cases: u32 = std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(32);
        // A fixed seed: the same bodies every run (bench runs more of them).
        let mut runner = TestRunner::new_with_rng(Config::default(), TestRng::deterministic_rng(Default::default()));
        for (method, template, fields) in ROUTES {
            let path = template.replace("{conversation}", &conversation).replace("{message}", &message);
            let strategy = body_for(fields);
            for _ in 0..cases {
                let body: Value = strategy.new_tree(&mut runner).unwrap().current();
                let method = Method::from_bytes(method.as_bytes()).unwrap();
                let mut request = app.client.request(method.clone(), app.url(&path)).json(&body);
                if !path.starts_with("/web/") {
                    request = request.bearer_auth(&ann.access_token);
                } else {
                    request = request.header("origin", app.url("")).header("x-chatterbox-web", "1");
                }
                let response = request.send().await.unwrap();
                let status = response.status();
                let content_type = response.headers().get("content-type").cloned();
                let text = response.text().await.unwrap();
                assert!(status.as_u16() < 500, "{method} {path} with {body} → {status}: {text}");
                if !status.is_success() {
                    assert_eq!(content_type.unwrap(), "application/json", "{method} {path} with {body} → {status}");
                    let error: Value = serde_json::from_str(&text).unwrap();
                    assert!(error["error"]["code"].is_string() && error["error"]["message"].is_string(), "{text}");
                }
            }
        }
        // The fuzzed user and conversation are still whole.
        assert_eq!(app.get_as("/api/v1/users/me", &ann.access_token).await.status(), StatusCode::OK);
        let messages = app.json_as(&format!("/api/v1/conversations/{conversation}/messages"), &ann.access_token).await;
        assert!(messages["items"].as_array().is_some_and(|m| !m.is_empty()));
    }
}
