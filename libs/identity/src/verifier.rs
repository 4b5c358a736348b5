//! Checking access tokens with the public key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use chatterbox_errors::Error;
use chatterbox_types::UserId;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use crate::TokenSettings;
use crate::caller::Caller;
use crate::claims::{Claims, Kind};

/// Verifies access tokens: EdDSA only, `iss` and `aud` checked, `exp`
/// enforced with no leeway.
///
/// A signature check costs tens of microseconds and the same token comes
/// back on every call of a session, so tokens that verified are remembered
/// (by their exact text) until they expire; `exp` is still checked on
/// every use. Clones share the memory.
#[derive(Clone)]
pub struct TokenVerifier {
    key: DecodingKey,
    validation: Validation,
    /// The same checks but expiry, which the caller checks with its own grace.
    expired_ok: Validation,
    verified: Arc<Mutex<HashMap<String, (Caller, u64)>>>,
}

/// Tokens remembered at most; the memory starts over when full.
const REMEMBERED: usize = 16_384;

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
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
        let mut expired_ok = validation.clone();
        expired_ok.validate_exp = false;
        Ok(Self {
            key: DecodingKey::from_ed_pem(public_pem.as_bytes())?,
            validation,
            expired_ok,
            verified: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    /// The caller a token speaks for, or 401.
    pub fn verify(&self, token: &str) -> Result<Caller, Error> {
        self.verify_until(token).map(|(caller, _)| caller)
    }

    /// The caller and when the token expires (seconds since the Unix epoch),
    /// for sessions that outlive one request and must end with their token.
    pub fn verify_until(&self, token: &str) -> Result<(Caller, u64), Error> {
        let invalid = || Error::unauthenticated("invalid or expired access token");
        if let Some((caller, exp)) = self.remembered(token) {
            // The same bytes verified before; only time can have changed.
            return if now_secs() < exp { Ok((caller, exp)) } else { Err(invalid()) };
        }
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation).map_err(|_| invalid())?;
        let claims = data.claims;
        let caller = match claims.kind {
            Kind::User => UserId::parse(&claims.sub).map(Caller::User).map_err(|_| invalid())?,
            Kind::Service => Caller::Service(claims.sub),
        };
        self.remember(token, &caller, claims.exp);
        Ok((caller, claims.exp))
    }

    /// The caller of a genuine token that may have expired at most `grace`
    /// ago: only for ending what the token once opened (closing a
    /// connection), never for acting anew.
    pub fn verify_expired_within(&self, token: &str, grace: std::time::Duration) -> Result<Caller, Error> {
        let invalid = || Error::unauthenticated("invalid or long-expired access token");
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.expired_ok).map_err(|_| invalid())?;
        let claims = data.claims;
        if claims.exp.saturating_add(grace.as_secs()) <= now_secs() {
            return Err(invalid());
        }
        match claims.kind {
            Kind::User => UserId::parse(&claims.sub).map(Caller::User).map_err(|_| invalid()),
            Kind::Service => Ok(Caller::Service(claims.sub)),
        }
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Caller, u64)>> {
        // The map holds only verified results: a poisoned one is still sound.
        self.verified.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn remembered(&self, token: &str) -> Option<(Caller, u64)> {
        self.memory().get(token).cloned()
    }

    fn remember(&self, token: &str, caller: &Caller, exp: u64) {
        let mut memory = self.memory();
        if memory.len() >= REMEMBERED {
            let now = now_secs();
            memory.retain(|_, (_, exp)| *exp > now);
            if memory.len() >= REMEMBERED {
                memory.clear();
            }
        }
        memory.insert(token.to_owned(), (caller.clone(), exp));
    }
}
