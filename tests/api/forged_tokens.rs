//! Access tokens the gateway and services must refuse, whatever they claim.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, assert_error};
use crate::on_every_backend;

on_every_backend!(
    forged_and_expired_tokens_are_401,
    a_token_from_another_installation_is_401,
    requests_without_a_token_are_401,
);

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

fn claims(sub: &str) -> Value {
    json!({"iss": "chatterbox", "aud": "chatterbox-api", "sub": sub, "exp": now() + 600,
           "iat": now(), "jti": "forged", "kind": "user", "sid": chatterbox_types::SessionId::generate().to_string()})
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

fn sign_with_real_key(app: &TestApp, claims: &Value) -> String {
    let pem = std::fs::read(app.data_dir.path().join("jwt-private.pem")).unwrap();
    jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), claims, &EncodingKey::from_ed_pem(&pem).unwrap()).unwrap()
}

async fn forged_and_expired_tokens_are_401(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.register("alice").await;
    let public_pem = std::fs::read(app.data_dir.path().join("jwt-public.pem")).unwrap();

    // The real key signs these, so only the claims are wrong.
    let mut wrong_issuer = claims(&alice.id);
    wrong_issuer["iss"] = json!("someone-else");
    let mut wrong_audience = claims(&alice.id);
    wrong_audience["aud"] = json!("another-api");
    let mut expired = claims(&alice.id);
    expired["exp"] = json!(now() - 5);
    let mut no_session = claims(&alice.id);
    no_session.as_object_mut().unwrap().remove("sid");
    let mut as_service = claims("auth");
    as_service["kind"] = json!("service");
    as_service["iss"] = json!("evil");

    let parts: Vec<&str> = alice.access_token.split('.').collect();
    let forged = [
        ("alg none", format!("{}.{}.", b64(&json!({"alg": "none", "typ": "JWT"})), b64(&claims(&alice.id)))),
        (
            "HS256 keyed with the public key",
            jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &claims(&alice.id),
                &EncodingKey::from_secret(&public_pem),
            )
            .unwrap(),
        ),
        ("wrong iss", sign_with_real_key(&app, &wrong_issuer)),
        ("wrong aud", sign_with_real_key(&app, &wrong_audience)),
        ("expired", sign_with_real_key(&app, &expired)),
        ("a user token naming no login session", sign_with_real_key(&app, &no_session)),
        ("service token from a wrong issuer", sign_with_real_key(&app, &as_service)),
        ("tampered payload", format!("{}.{}.{}", parts[0], b64(&claims("01ARZ3NDEKTSV4RRFFQ69G5FAV")), parts[2])),
        ("garbage", "not.a.token".to_owned()),
    ];
    for (what, token) in forged {
        let response = app.get_as("/api/v1/users/me", &token).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{what}");
        assert_error(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }
    // The genuine token still works, and a well-signed one for the same claims too.
    assert_eq!(app.get_as("/api/v1/users/me", &alice.access_token).await.status(), StatusCode::OK);
    let genuine = sign_with_real_key(&app, &claims(&alice.id));
    assert_eq!(app.get_as("/api/v1/users/me", &genuine).await.status(), StatusCode::OK);
}

async fn a_token_from_another_installation_is_401(backend: Backend) {
    let ours = TestApp::spawn(backend).await;
    let theirs = TestApp::spawn(Backend::Embedded).await;
    let mallory = theirs.register("mallory").await;
    let response = ours.get_as("/api/v1/users/me", &mallory.access_token).await;
    assert_error(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}

async fn requests_without_a_token_are_401(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app.client.get(app.url("/api/v1/users/me")).send().await.unwrap();
    assert_error(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let response =
        app.client.get(app.url("/api/v1/users/me")).header("authorization", "Basic YWxpY2U6cHc=").send().await.unwrap();
    assert_error(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}
