//! Minting access tokens: the auth service's privilege alone.

use std::sync::Arc;

use chatterbox_errors::Error;
use chatterbox_types::{Clock, SessionId, UserId, system_clock};
use jsonwebtoken::{Algorithm, EncodingKey, Header};

use crate::TokenSettings;
use crate::claims::{Claims, Kind};

/// Signs access tokens with the private key.
#[derive(Clone)]
pub struct TokenSigner {
    key: EncodingKey,
    settings: TokenSettings,
    /// When tokens are issued (the system's clock unless told otherwise).
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner").field("settings", &self.settings).finish_non_exhaustive()
    }
}

/// How long a service token lives: one internal call chain.
const SERVICE_TOKEN_TTL_SECS: u64 = 60;

impl TokenSigner {
    /// From a PKCS#8 PEM Ed25519 private key.
    pub fn new(private_pem: &str, settings: TokenSettings) -> anyhow::Result<Self> {
        Ok(Self { key: EncodingKey::from_ed_pem(private_pem.as_bytes())?, settings, clock: system_clock() })
    }

    /// The same signer telling time by `clock` (tests of expiry).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// An access token for a user in one login session, and its lifetime
    /// in seconds. It stops working when the session ends.
    pub fn issue_access(&self, user: UserId, session: SessionId) -> Result<(String, u64), Error> {
        let ttl = self.settings.access_ttl_secs;
        Ok((self.sign(user.to_string(), Kind::User, ttl, Some(session))?, ttl))
    }

    /// How long access tokens live, in seconds: how long an ended session
    /// must be remembered.
    pub fn access_ttl_secs(&self) -> u64 {
        self.settings.access_ttl_secs
    }

    /// A short token that speaks for one of our services, for internal calls
    /// that no end user may make (creating a profile during registration).
    pub fn issue_service(&self, service: &str) -> Result<String, Error> {
        self.sign(service.to_owned(), Kind::Service, SERVICE_TOKEN_TTL_SECS, None)
    }

    fn sign(&self, sub: String, kind: Kind, ttl: u64, session: Option<SessionId>) -> Result<String, Error> {
        let now = u64::try_from(self.clock.now().seconds()).map_err(Error::internal)?;
        let claims = Claims {
            iss: self.settings.issuer.clone(),
            aud: self.settings.audience.clone(),
            sub,
            exp: now + ttl,
            iat: now,
            jti: ulid::Ulid::new().to_string(),
            kind,
            sid: session.map(|s| s.to_string()),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &self.key).map_err(Error::internal)
    }
}
