//! Checking access tokens with the public key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chatterbox_errors::Error;
use chatterbox_types::{Clock, SessionId, UserId, system_clock};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use crate::TokenSettings;
use crate::caller::Caller;
use crate::claims::{Claims, Kind};
use crate::revocations::Revocations;

/// Verifies access tokens: EdDSA only, `iss` and `aud` checked, `exp`
/// enforced with no leeway against its [`Clock`] (the system's unless told
/// otherwise), and a user token's login session must not have ended
/// ([`Revocations`]).
///
/// A signature check costs tens of microseconds and the same token comes
/// back on every call of a session, so tokens that verified are remembered
/// (by their exact text) until they expire; `exp` and the session are still
/// checked on every use. Clones share the memory.
#[derive(Clone)]
pub struct TokenVerifier {
    key: DecodingKey,
    /// Signature, algorithm and claims; expiry is checked here, against
    /// `clock`, on every use.
    validation: Validation,
    verified: Arc<Mutex<HashMap<String, Verified>>>,
    revocations: Revocations,
    clock: Arc<dyn Clock>,
}

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Who it speaks for.
    pub caller: Caller,
    /// When it expires, in seconds since the Unix epoch.
    pub expires_at: u64,
    /// The login session of a user token (service tokens have none).
    pub session: Option<SessionId>,
}

impl Verified {
    /// The end user and their login session; 401 for a service token.
    pub fn user_session(&self) -> Result<(UserId, SessionId), Error> {
        let user = self.caller.user()?;
        let session = self.session.ok_or_else(|| Error::unauthenticated("a user token is required"))?;
        Ok((user, session))
    }
}

/// Tokens remembered at most; the memory starts over when full.
const REMEMBERED: usize = 16_384;

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier").finish_non_exhaustive()
    }
}

impl TokenVerifier {
    /// From an SPKI PEM Ed25519 public key, refusing the tokens of the
    /// sessions `revocations` knows to have ended.
    pub fn new(public_pem: &str, settings: &TokenSettings, revocations: Revocations) -> anyhow::Result<Self> {
        // Pinning the algorithm is what defeats `alg: none` and HS256-keyed-
        // with-the-public-key forgeries.
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[&settings.issuer]);
        validation.set_audience(&[&settings.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 0;
        validation.validate_exp = false;
        Ok(Self {
            key: DecodingKey::from_ed_pem(public_pem.as_bytes())?,
            validation,
            verified: Arc::new(Mutex::new(HashMap::new())),
            revocations,
            clock: system_clock(),
        })
    }

    /// The same verifier telling time by `clock` (tests of expiry).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    fn now_secs(&self) -> u64 {
        u64::try_from(self.clock.now().seconds()).unwrap_or(0)
    }

    /// The ended sessions this verifier refuses.
    pub fn revocations(&self) -> &Revocations {
        &self.revocations
    }

    /// The caller a token speaks for, or 401.
    pub fn verify(&self, token: &str) -> Result<Caller, Error> {
        self.verify_session(token).map(|v| v.caller)
    }

    /// Everything a valid token says, for sessions that outlive one request
    /// and must end with their token or their login session.
    pub fn verify_session(&self, token: &str) -> Result<Verified, Error> {
        let invalid = || Error::unauthenticated("invalid or expired access token");
        let verified = match self.remembered(token) {
            // The same bytes verified before; only time can have changed.
            Some(v) => v,
            None => {
                let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation).map_err(|_| invalid())?;
                let verified = Self::read_claims(data.claims).ok_or_else(invalid)?;
                self.remember(token, &verified);
                verified
            }
        };
        if self.now_secs() >= verified.expires_at {
            return Err(invalid());
        }
        if verified.session.is_some_and(|s| self.revocations.is_ended(s)) {
            return Err(Error::unauthenticated("this login session has ended: log in again"));
        }
        Ok(verified)
    }

    /// A user token must name its login session, or it could never be ended.
    fn read_claims(claims: Claims) -> Option<Verified> {
        let (caller, session) = match claims.kind {
            Kind::User => {
                let session = SessionId::parse(claims.sid.as_deref()?).ok()?;
                (Caller::User(UserId::parse(&claims.sub).ok()?), Some(session))
            }
            Kind::Service => (Caller::Service(claims.sub), None),
        };
        Some(Verified { caller, expires_at: claims.exp, session })
    }

    /// The caller of a genuine token that may have expired at most `grace`
    /// ago: only for ending what the token once opened (closing a
    /// connection), never for acting anew.
    pub fn verify_expired_within(&self, token: &str, grace: std::time::Duration) -> Result<Caller, Error> {
        let invalid = || Error::unauthenticated("invalid or long-expired access token");
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation).map_err(|_| invalid())?;
        let claims = data.claims;
        if claims.exp.saturating_add(grace.as_secs()) <= self.now_secs() {
            return Err(invalid());
        }
        Self::read_claims(claims).map(|v| v.caller).ok_or_else(invalid)
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, HashMap<String, Verified>> {
        // The map holds only verified results: a poisoned one is still sound.
        self.verified.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn remembered(&self, token: &str) -> Option<Verified> {
        self.memory().get(token).cloned()
    }

    fn remember(&self, token: &str, verified: &Verified) {
        let mut memory = self.memory();
        if memory.len() >= REMEMBERED {
            let now = self.now_secs();
            memory.retain(|_, v| v.expires_at > now);
            if memory.len() >= REMEMBERED {
                memory.clear();
            }
        }
        memory.insert(token.to_owned(), verified.clone());
    }
}
