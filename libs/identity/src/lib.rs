//! Identity: who is calling.
//!
//! The auth service alone holds the Ed25519 private key and signs short-lived
//! access tokens ([`TokenSigner`]); the gateway and every service hold only the
//! public key and verify them ([`TokenVerifier`]), pinning the algorithm and
//! checking `iss` and `aud`. Over gRPC the caller's token travels in the
//! `authorization` metadata and each service decides for itself. A user
//! token names its login session; once that session ends, every verifier
//! refuses its tokens ([`Revocations`]).

mod caller;
mod claims;
mod keys;
mod revocations;
mod signer;
mod verifier;

pub use caller::{
    Actor, Caller, authenticate_login, authenticate_user, authenticate_user_expired_within, authorize_request,
    bearer_token, with_bearer,
};
pub use keys::{KeyPair, generate_keypair, load_or_generate_keypair, load_public_key, public_pem_of};
pub use revocations::{POLL as REVOCATION_POLL, Revocations};
pub use signer::TokenSigner;
pub use verifier::{TokenVerifier, Verified};

/// The token settings shared by signer and verifier.
#[derive(Debug, Clone)]
pub struct TokenSettings {
    /// Expected and written `iss`.
    pub issuer: String,
    /// Expected and written `aud`.
    pub audience: String,
    /// Access-token lifetime in seconds.
    pub access_ttl_secs: u64,
}
