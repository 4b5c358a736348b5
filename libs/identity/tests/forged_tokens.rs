//! Tokens that must never verify, whatever they claim.

#![allow(clippy::unwrap_used)] // a panic is how a test fails

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chatterbox_identity::{Caller, Revocations, TokenSettings, TokenSigner, TokenVerifier, generate_keypair};
use chatterbox_types::{ManualClock, SessionId, Timestamp, UserId};

fn settings() -> TokenSettings {
    TokenSettings { issuer: "chatterbox".into(), audience: "chatterbox-api".into(), access_ttl_secs: 60 }
}

fn b64(json: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(json).unwrap())
}

fn claims(user: UserId) -> serde_json::Value {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    serde_json::json!({"iss": "chatterbox", "aud": "chatterbox-api", "sub": user.to_string(),
        "exp": now + 600, "iat": now, "jti": "x", "kind": "user", "sid": SessionId::generate().to_string()})
}

#[test]
fn a_genuine_token_verifies_to_its_user() {
    let keys = generate_keypair().unwrap();
    let signer = TokenSigner::new(&keys.private_pem, settings()).unwrap();
    let verifier = TokenVerifier::new(&keys.public_pem, &settings(), Revocations::local()).unwrap();
    let user = UserId::generate();
    let (token, ttl) = signer.issue_access(user, SessionId::generate()).unwrap();
    assert_eq!(ttl, 60);
    assert_eq!(verifier.verify(&token).unwrap(), Caller::User(user));
}

#[test]
fn alg_none_is_refused() {
    let keys = generate_keypair().unwrap();
    let verifier = TokenVerifier::new(&keys.public_pem, &settings(), Revocations::local()).unwrap();
    let token =
        format!("{}.{}.", b64(&serde_json::json!({"alg": "none", "typ": "JWT"})), b64(&claims(UserId::generate())));
    assert!(verifier.verify(&token).is_err());
}

#[test]
fn hs256_keyed_with_the_public_key_is_refused() {
    let keys = generate_keypair().unwrap();
    let verifier = TokenVerifier::new(&keys.public_pem, &settings(), Revocations::local()).unwrap();
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
    let verifier = TokenVerifier::new(&ours.public_pem, &settings(), Revocations::local()).unwrap();
    let (token, _) = signer.issue_access(UserId::generate(), SessionId::generate()).unwrap();
    assert!(verifier.verify(&token).is_err());
}

#[test]
fn wrong_issuer_or_audience_is_refused() {
    let keys = generate_keypair().unwrap();
    let verifier = TokenVerifier::new(&keys.public_pem, &settings(), Revocations::local()).unwrap();
    for other in [
        TokenSettings { issuer: "evil".into(), ..settings() },
        TokenSettings { audience: "other-api".into(), ..settings() },
    ] {
        let signer = TokenSigner::new(&keys.private_pem, other).unwrap();
        let (token, _) = signer.issue_access(UserId::generate(), SessionId::generate()).unwrap();
        assert!(verifier.verify(&token).is_err());
    }
}

#[test]
fn a_tampered_payload_is_refused() {
    let keys = generate_keypair().unwrap();
    let signer = TokenSigner::new(&keys.private_pem, settings()).unwrap();
    let verifier = TokenVerifier::new(&keys.public_pem, &settings(), Revocations::local()).unwrap();
    let (token, _) = signer.issue_access(UserId::generate(), SessionId::generate()).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let forged = format!("{}.{}.{}", parts[0], b64(&claims(UserId::generate())), parts[2]);
    assert!(verifier.verify(&forged).is_err());
}

#[test]
fn a_remembered_token_still_expires_and_its_forgeries_are_still_refused() {
    let keys = generate_keypair().unwrap();
    let short = TokenSettings { access_ttl_secs: 1, ..settings() };
    // On a whole second, so the token's `exp` (in seconds) is exactly a second on.
    let clock = ManualClock::at(Timestamp::from_millis(Timestamp::now().seconds() * 1000));
    let signer = TokenSigner::new(&keys.private_pem, short.clone()).unwrap().with_clock(Arc::new(clock.clone()));
    let verifier =
        TokenVerifier::new(&keys.public_pem, &short, Revocations::local()).unwrap().with_clock(Arc::new(clock.clone()));
    let user = UserId::generate();
    let (token, _) = signer.issue_access(user, SessionId::generate()).unwrap();
    // Verified, then answered from memory (also by a clone).
    assert_eq!(verifier.verify(&token).unwrap(), Caller::User(user));
    assert_eq!(verifier.clone().verify(&token).unwrap(), Caller::User(user));
    // Another user's claims under the remembered token's signature do not ride on it.
    let mut parts: Vec<&str> = token.split('.').collect();
    let forged_claims = b64(&claims(UserId::generate()));
    parts[1] = &forged_claims;
    assert!(verifier.verify(&parts.join(".")).is_err());
    clock.advance(std::time::Duration::from_millis(999));
    assert_eq!(verifier.verify(&token).unwrap(), Caller::User(user), "not yet expired");
    clock.advance(std::time::Duration::from_secs(1));
    assert!(verifier.verify(&token).is_err(), "expiry is checked on every use");
    // Only ending what the token opened may use it a little longer; forgeries never.
    let grace = std::time::Duration::from_secs(60);
    assert_eq!(verifier.verify_expired_within(&token, grace).unwrap(), Caller::User(user));
    assert!(verifier.verify_expired_within(&token, std::time::Duration::ZERO).is_err());
    assert!(verifier.verify_expired_within(&parts.join("."), grace).is_err());
}

#[test]
fn a_user_token_that_names_no_login_session_is_refused() {
    // It could never be ended: a token signed with the real key but no `sid`.
    let keys = generate_keypair().unwrap();
    let verifier = TokenVerifier::new(&keys.public_pem, &settings(), Revocations::local()).unwrap();
    let mut no_session = claims(UserId::generate());
    no_session.as_object_mut().unwrap().remove("sid");
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA),
        &no_session,
        &jsonwebtoken::EncodingKey::from_ed_pem(keys.private_pem.as_bytes()).unwrap(),
    )
    .unwrap();
    assert!(verifier.verify(&token).is_err());
    assert!(
        verifier
            .verify(
                &jsonwebtoken::encode(
                    &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA),
                    &claims(UserId::generate()),
                    &jsonwebtoken::EncodingKey::from_ed_pem(keys.private_pem.as_bytes()).unwrap(),
                )
                .unwrap()
            )
            .is_ok()
    );
}

#[tokio::test]
async fn the_tokens_of_an_ended_session_are_refused_even_when_remembered() {
    let keys = generate_keypair().unwrap();
    let signer = TokenSigner::new(&keys.private_pem, settings()).unwrap();
    let revocations = Revocations::local();
    let verifier = TokenVerifier::new(&keys.public_pem, &settings(), revocations.clone()).unwrap();
    let user = UserId::generate();
    let (ending, kept) = (SessionId::generate(), SessionId::generate());
    let (token, _) = signer.issue_access(user, ending).unwrap();
    let (other, _) = signer.issue_access(user, kept).unwrap();
    let verified = verifier.verify_session(&token).unwrap();
    assert_eq!((verified.caller, verified.session), (Caller::User(user), Some(ending)));
    revocations.end(ending, verified.expires_at).await.unwrap();
    let refused = verifier.verify(&token).unwrap_err();
    assert!(refused.message().contains("ended"), "{refused}");
    assert_eq!(verifier.verify(&other).unwrap(), Caller::User(user), "the user's other session goes on");
}
