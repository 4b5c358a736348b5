//! Checking access tokens with the public key.

use chatterbox_errors::Error;
use chatterbox_types::UserId;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use crate::TokenSettings;
use crate::caller::Caller;
use crate::claims::{Claims, Kind};

/// Verifies access tokens: EdDSA only, `iss` and `aud` checked, `exp`
/// enforced with no leeway.
#[derive(Clone)]
pub struct TokenVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier").finish_non_exhaustive()
    }
}

impl TokenVerifier {
    /// From an SPKI PEM Ed25519 public key.
    pub fn new(public_pem: &str, settings: &TokenSettings) -> anyhow::Result<Self> {
        // Pinning the algorithm is what defeats `alg: none` and HS256-keyed-
        // with-the-public-key forgeries.
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[&settings.issuer]);
        validation.set_audience(&[&settings.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 0;
        Ok(Self { key: DecodingKey::from_ed_pem(public_pem.as_bytes())?, validation })
    }

    /// The caller a token speaks for, or 401.
    pub fn verify(&self, token: &str) -> Result<Caller, Error> {
        self.verify_until(token).map(|(caller, _)| caller)
    }

    /// The caller and when the token expires (seconds since the Unix epoch),
    /// for sessions that outlive one request and must end with their token.
    pub fn verify_until(&self, token: &str) -> Result<(Caller, u64), Error> {
        let invalid = || Error::unauthenticated("invalid or expired access token");
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation).map_err(|_| invalid())?;
        let claims = data.claims;
        let caller = match claims.kind {
            Kind::User => UserId::parse(&claims.sub).map(Caller::User).map_err(|_| invalid())?,
            Kind::Service => Caller::Service(claims.sub),
        };
        Ok((caller, claims.exp))
    }
}
