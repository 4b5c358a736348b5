//! The auth service's decisions: registration (credentials and profile, both
//! or neither), login (identical failure for unknown email and wrong
//! password, failures limited per account), refresh-token rotation with
//! reuse detection, and login sessions: listed, and ended everywhere by
//! logout, by the user from the list, or by a replayed refresh token.

use std::sync::Arc;

use chatterbox_errors::Error;
use chatterbox_identity::{Revocations, TokenSigner};
use chatterbox_ratelimit::RateLimiter;
use chatterbox_store::StoreError;
use chatterbox_types::{Clock, Email, Password, SessionId, UserId, Username};

use crate::password::PasswordHasherPool;
use crate::profiles::{CreateProfileError, Profile, Profiles};
use crate::refresh_token;
use crate::store::{AuthStore, Consumed, Credential, LoginSession};

/// Lifetimes of what auth hands out.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// Absolute lifetime of a login session, in seconds.
    pub refresh_ttl_secs: u64,
}

/// Sessions listed at most (the most recently started).
pub const MAX_LISTED_SESSIONS: usize = 100;

/// Kept of a client's `User-Agent`, in characters.
const USER_AGENT_CHARS: usize = 256;

/// Where a login (or registration) comes from, as the gateway saw it.
#[derive(Debug, Clone, Default)]
pub struct Client {
    /// The `User-Agent` the client sent.
    pub user_agent: String,
    /// The address it came from.
    pub ip: String,
}

impl Client {
    /// What is kept: the user agent cut to a bound, control characters
    /// dropped; the address only if it is one.
    fn kept(&self) -> (String, String) {
        let user_agent = self.user_agent.chars().filter(|c| !c.is_control()).take(USER_AGENT_CHARS).collect();
        let ip = self.ip.parse::<std::net::IpAddr>().map(|ip| ip.to_string()).unwrap_or_default();
        (user_agent, ip)
    }
}

/// A live session as its user sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedSession {
    /// The session.
    pub session: LoginSession,
    /// Whether the asking token belongs to it.
    pub current: bool,
}

/// What the auth domain works with besides its store.
#[derive(Debug)]
pub struct AuthParts {
    /// Keeps profiles.
    pub profiles: Arc<dyn Profiles>,
    /// Signs access tokens.
    pub signer: TokenSigner,
    /// Where ended sessions are made known to every verifier.
    pub revocations: Revocations,
    /// Failed logins per account (`None`: unlimited).
    pub failed_logins: Option<Arc<dyn RateLimiter>>,
    /// When things happen: sessions' start, use and expiry.
    pub clock: Arc<dyn Clock>,
}

/// A freshly issued pair of tokens.
#[derive(Debug, Clone)]
pub struct IssuedTokens {
    /// The short-lived JWT.
    pub access_token: String,
    /// The opaque, single-use refresh token.
    pub refresh_token: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
}

/// The auth domain.
#[derive(Debug, Clone)]
pub struct Auth {
    store: Arc<dyn AuthStore>,
    profiles: Arc<dyn Profiles>,
    signer: TokenSigner,
    revocations: Revocations,
    failed_logins: Option<Arc<dyn RateLimiter>>,
    hasher: PasswordHasherPool,
    settings: AuthSettings,
    clock: Arc<dyn Clock>,
}

/// The one answer every failed login gets.
fn bad_login() -> Error {
    Error::unauthenticated("invalid email or password")
}

/// What ending a session that is not the caller's, or not live, gets.
pub fn no_such_session() -> Error {
    Error::not_found("no such session")
}

/// The one answer every unusable refresh token gets.
fn bad_refresh() -> Error {
    Error::unauthenticated("invalid or expired refresh token")
}

/// The bucket of failed logins for what was typed as the email, whether or
/// not an account has it (a refusal must not tell). Hashed: bounded, and no
/// addresses in Redis.
fn failure_key(email: &str) -> String {
    let typed = email.trim().to_lowercase();
    let key = Email::parse(&typed).map(|e| e.key()).unwrap_or(typed);
    refresh_token::sha256_hex(&key)
}

impl Auth {
    /// Builds the domain; prepares the decoy hash used for unknown emails.
    pub async fn new(store: Arc<dyn AuthStore>, parts: AuthParts, settings: AuthSettings) -> Result<Self, Error> {
        let AuthParts { profiles, signer, revocations, failed_logins, clock } = parts;
        let hasher = PasswordHasherPool::new().await?;
        Ok(Self { store, profiles, signer, revocations, failed_logins, hasher, settings, clock })
    }

    /// Creates an account and logs it in.
    pub async fn register(
        &self,
        username: Username,
        email: Email,
        password: Password,
        client: &Client,
    ) -> Result<(Profile, IssuedTokens), Error> {
        let credential = Credential {
            user_id: UserId::generate(),
            email_key: email.key(),
            password_hash: self.hasher.hash(password.expose()).await?,
            active: false,
            created_at: self.clock.now(),
        };
        let id = credential.user_id;
        self.store.create_credential(&credential).await.map_err(|e| match e {
            StoreError::Duplicate(_) => Error::already_exists("email is already registered"),
            e => Error::from(e),
        })?;
        // From here on, any failure undoes what was done: no half account.
        let user = match self.profiles.create(id, &username, &email).await {
            Ok(user) => user,
            Err(failure) => {
                self.undo_registration(id, matches!(failure, CreateProfileError::Failed(_))).await;
                return Err(match failure {
                    CreateProfileError::UsernameTaken => Error::already_exists("username is taken"),
                    CreateProfileError::Failed(e) => e,
                });
            }
        };
        if let Err(e) = self.store.activate_credential(id).await {
            self.undo_registration(id, true).await;
            return Err(Error::from(e));
        }
        let tokens = self.start_session(id, client).await?;
        Ok((user, tokens))
    }

    async fn undo_registration(&self, id: UserId, profile_may_exist: bool) {
        if profile_may_exist && let Err(e) = self.profiles.delete(id).await {
            tracing::error!(user = %id, error = %e, "could not remove the profile of a failed registration");
        }
        if let Err(e) = self.store.delete_credential(id).await {
            tracing::error!(user = %id, error = %e, "could not remove the credentials of a failed registration");
        }
    }

    /// Checks credentials and starts a login session. Each attempt takes a
    /// token from the account's bucket of failures first (so parallel
    /// guesses are counted too); a successful one gives it back. The
    /// credentials come as typed, unparsed: a malformed email is refused
    /// like a wrong password, after the same hashing time.
    pub async fn login(&self, email: &str, password: &str, client: &Client) -> Result<(Profile, IssuedTokens), Error> {
        let failure_key = failure_key(email);
        self.count_attempt(&failure_key).await?;
        // A malformed email cannot exist; still spend the hashing time.
        let key = Email::parse(email).map(|e| e.key()).ok();
        let credential = match &key {
            Some(k) => self.store.find_credential(k).await.map_err(Error::from)?.filter(|c| c.active),
            None => None,
        };
        let ok = self.hasher.verify(password, credential.as_ref().map(|c| c.password_hash.as_str())).await?;
        let credential = match credential {
            Some(c) if ok => c,
            _ => return Err(bad_login()),
        };
        self.forgive_attempt(&failure_key).await;
        let tokens = self.start_session(credential.user_id, client).await?;
        let user = self.profiles.me(&tokens.access_token).await?;
        Ok((user, tokens))
    }

    /// Refuses with 429 once an account's failures are used up. The limit
    /// guards passwords, not availability: if its store cannot answer, the
    /// login goes on (and the per-IP limit still holds).
    async fn count_attempt(&self, key: &str) -> Result<(), Error> {
        let Some(limiter) = &self.failed_logins else { return Ok(()) };
        match limiter.acquire(key).await {
            Ok(decision) if decision.allowed => Ok(()),
            Ok(decision) => Err(Error::rate_limited(
                "too many failed logins for this account: try again later",
                decision.retry_after,
            )),
            Err(e) => {
                tracing::warn!(error = %e, "cannot count failed logins; letting this attempt through");
                Ok(())
            }
        }
    }

    async fn forgive_attempt(&self, key: &str) {
        if let Some(limiter) = &self.failed_logins
            && let Err(e) = limiter.give_back(key).await
        {
            tracing::warn!(error = %e, "cannot give back a successful login's attempt");
        }
    }

    async fn start_session(&self, user: UserId, client: &Client) -> Result<IssuedTokens, Error> {
        let now = self.clock.now();
        let (user_agent, ip) = client.kept();
        let session = LoginSession {
            id: SessionId::generate(),
            user_id: user,
            created_at: now,
            expires_at: now.plus_seconds(self.settings.refresh_ttl_secs as i64),
            revoked: false,
            last_used_at: now,
            user_agent,
            ip,
        };
        let (refresh_token, hash) = refresh_token::generate();
        self.store.create_session(&session, &hash).await.map_err(Error::from)?;
        let (access_token, expires_in) = self.signer.issue_access(user, session.id)?;
        Ok(IssuedTokens { access_token, refresh_token, expires_in })
    }

    /// Ends a session everywhere: its refresh tokens in the store, its
    /// access tokens (and the WebSockets they opened) through the
    /// revocations every verifier reads. Ending it again is harmless, so a
    /// caller whose end failed halfway can simply retry.
    async fn end(&self, session: SessionId) -> Result<(), Error> {
        self.store.revoke_session(session).await.map_err(Error::from)?;
        let until = self.clock.now().plus_seconds(self.signer.access_ttl_secs() as i64);
        let until = u64::try_from(until.millis() / 1_000).unwrap_or(0);
        self.revocations.end(session, until).await.map_err(Error::unavailable)
    }

    /// Spends a refresh token for a new pair. A token spent before is
    /// treated as stolen: its whole session is revoked.
    pub async fn refresh(&self, presented: &str) -> Result<IssuedTokens, Error> {
        let now = self.clock.now();
        let hash = refresh_token::hash(presented);
        let session = match self.store.consume_token(&hash, now).await.map_err(Error::from)? {
            Consumed::Fresh(session) => session,
            Consumed::Replayed(session) => {
                tracing::warn!(%session, "refresh token reused; ending its session");
                self.end(session).await?;
                return Err(bad_refresh());
            }
            Consumed::Unknown => return Err(bad_refresh()),
        };
        if session.revoked || session.expires_at <= now {
            return Err(bad_refresh());
        }
        let (refresh_token, next) = refresh_token::generate();
        self.store.add_token(session.id, &next, now).await.map_err(Error::from)?;
        let (access_token, expires_in) = self.signer.issue_access(session.user_id, session.id)?;
        Ok(IssuedTokens { access_token, refresh_token, expires_in })
    }

    /// Ends the login session a refresh token belongs to.
    pub async fn logout(&self, presented: &str) -> Result<(), Error> {
        let hash = refresh_token::hash(presented);
        let session = self.store.find_session_by_token(&hash).await.map_err(Error::from)?.ok_or_else(bad_refresh)?;
        self.end(session.id).await
    }

    /// The user's live sessions, most recently started first; `current` is
    /// the one the asking token belongs to.
    pub async fn sessions(&self, user: UserId, current: SessionId) -> Result<Vec<ListedSession>, Error> {
        let live = self.store.live_sessions(user, self.clock.now(), MAX_LISTED_SESSIONS).await.map_err(Error::from)?;
        Ok(live.into_iter().map(|session| ListedSession { current: session.id == current, session }).collect())
    }

    /// Ends one of the user's live sessions (the current one included);
    /// anyone else's, or one already over, is not found.
    pub async fn end_session(&self, user: UserId, id: SessionId) -> Result<(), Error> {
        let missing = no_such_session;
        let found = self.store.find_session(id).await.map_err(Error::from)?.ok_or_else(missing)?;
        if found.user_id != user || found.revoked || found.expires_at <= self.clock.now() {
            return Err(missing());
        }
        self.end(id).await
    }
}
