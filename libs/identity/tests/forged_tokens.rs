//! Tokens that must never verify, whatever they claim.

#![allow(clippy::unwrap_used)] // a panic is how a test fails

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chatterbox_identity::{Caller, TokenSettings, TokenSigner, TokenVerifier, generate_keypair};
use chatterbox_types::UserId;

fn settings() -> TokenSettings {
    TokenSettings { issuer: "chatterbox".into(), audience: "chatterbox-api".into(), access_ttl_secs: 60 }
}

fn b64(json: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(json).unwrap())
}

fn claims(user: UserId) -> serde_json::Value {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    serde_json::json!({"iss": "chatterbox", "aud": "chatterbox-api", "sub": user.to_string(),
        "exp": now + 600, "iat": now, "jti": "x", "kind": "user"})
}

#[test]
fn a_genuine_token_verifies_to_its_user() {
    let keys = generate_keypair().unwrap();
    let signer = TokenSigner::new(&keys.private_pem, settings()).unwrap();
    let verifier = TokenVerifier::new(&keys.public_pem, &settings()).unwrap();
    let user = UserId::generate();
    let (token, ttl) = signer.issue_access(user).unwrap();
    assert_eq!(ttl, 60);
    assert_eq!(verifier.verify(&token).unwrap(), Caller::User(user));
}

#[test]
fn alg_none_is_refused() {
    let keys = generate_keypair().unwrap();
    let verifier = TokenVerifier::new(&keys.public_pem, &settings()).unwrap();
    let token =
        format!("{}.{}.", b64(&serde_json::json!({"alg": "none", "typ": "JWT"})), b64(&claims(UserId::generate())));
    assert!(verifier.verify(&token).is_err());
}

#[test]
fn hs256_keyed_with_the_public_key_is_refused() {
    let keys = generate_keypair().unwrap();
    let verifier = TokenVerifier::new(&keys.public_pem, &settings()).unwrap();
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims(UserId::generate()),
        &jsonwebtoken::EncodingKey::from_secret(keys.public_pem.as_bytes()),
    )
    .unwrap();
    assert!(verifier.verify(&token).is_err());
}

#[test]
fn a_token_signed_by_another_key_is_refused() {
    let ours = generate_keypair().unwrap();
    let theirs = generate_keypair().unwrap();
    let signer = TokenSigner::new(&theirs.private_pem, settings()).unwrap();
    let verifier = TokenVerifier::new(&ours.public_pem, &settings()).unwrap();
    let (token, _) = signer.issue_access(UserId::generate()).unwrap();
    assert!(verifier.verify(&token).is_err());
}

#[test]
fn wrong_issuer_or_audience_is_refused() {
    let keys = generate_keypair().unwrap();
    let verifier = TokenVerifier::new(&keys.public_pem, &settings()).unwrap();
    for other in [
        TokenSettings { issuer: "evil".into(), ..settings() },
        TokenSettings { audience: "other-api".into(), ..settings() },
    ] {
        let signer = TokenSigner::new(&keys.private_pem, other).unwrap();
        let (token, _) = signer.issue_access(UserId::generate()).unwrap();
        assert!(verifier.verify(&token).is_err());
    }
}

#[test]
fn a_tampered_payload_is_refused() {
    let keys = generate_keypair().unwrap();
    let signer = TokenSigner::new(&keys.private_pem, settings()).unwrap();
    let verifier = TokenVerifier::new(&keys.public_pem, &settings()).unwrap();
    let (token, _) = signer.issue_access(UserId::generate()).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let forged = format!("{}.{}.{}", parts[0], b64(&claims(UserId::generate())), parts[2]);
    assert!(verifier.verify(&forged).is_err());
}
