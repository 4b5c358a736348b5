//! The auth service's decisions: registration (credentials and profile, both
//! or neither), login (identical failure for unknown email and wrong
//! password), refresh-token rotation with reuse detection, logout.

use std::sync::Arc;

use chatterbox_errors::Error;
use chatterbox_identity::TokenSigner;
use chatterbox_proto::user::v1::User;
use chatterbox_store::StoreError;
use chatterbox_types::{Email, FamilyId, Password, Timestamp, UserId, Username};

use crate::password::PasswordHasherPool;
use crate::profiles::{CreateProfileError, Profiles};
use crate::refresh_token;
use crate::store::{AuthStore, Consumed, Credential, LoginSession};

/// Lifetimes of what auth hands out.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// Absolute lifetime of a login session, in seconds.
    pub refresh_ttl_secs: u64,
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
    hasher: PasswordHasherPool,
    settings: AuthSettings,
}

/// The one answer every failed login gets.
fn bad_login() -> Error {
    Error::unauthenticated("invalid email or password")
}

/// The one answer every unusable refresh token gets.
fn bad_refresh() -> Error {
    Error::unauthenticated("invalid or expired refresh token")
}

fn storage(e: StoreError) -> Error {
    Error::internal(e)
}

impl Auth {
    /// Builds the domain; prepares the decoy hash used for unknown emails.
    pub async fn new(
        store: Arc<dyn AuthStore>,
        profiles: Arc<dyn Profiles>,
        signer: TokenSigner,
        settings: AuthSettings,
    ) -> Result<Self, Error> {
        Ok(Self { store, profiles, signer, hasher: PasswordHasherPool::new().await?, settings })
    }

    /// Creates an account and logs it in.
    pub async fn register(&self, username: &str, email: &str, password: &str) -> Result<(User, IssuedTokens), Error> {
        let username = Username::parse(username)?;
        let email = Email::parse(email)?;
        let password = Password::parse(password)?;
        let credential = Credential {
            user_id: UserId::generate(),
            email_key: email.key(),
            password_hash: self.hasher.hash(password.expose()).await?,
            active: false,
            created_at: Timestamp::now(),
        };
        let id = credential.user_id;
        self.store.create_credential(&credential).await.map_err(|e| match e {
            StoreError::Duplicate(_) => Error::already_exists("email is already registered"),
            e => storage(e),
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
            return Err(storage(e));
        }
        let tokens = self.start_session(id).await?;
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

    /// Checks credentials and starts a login session.
    pub async fn login(&self, email: &str, password: &str) -> Result<(User, IssuedTokens), Error> {
        // A malformed email cannot exist; still spend the hashing time.
        let key = Email::parse(email).map(|e| e.key()).ok();
        let credential = match &key {
            Some(k) => self.store.find_credential(k).await.map_err(storage)?.filter(|c| c.active),
            None => None,
        };
        let ok = self.hasher.verify(password, credential.as_ref().map(|c| c.password_hash.as_str())).await?;
        let credential = match credential {
            Some(c) if ok => c,
            _ => return Err(bad_login()),
        };
        let tokens = self.start_session(credential.user_id).await?;
        let user = self.profiles.me(&tokens.access_token).await?;
        Ok((user, tokens))
    }

    async fn start_session(&self, user: UserId) -> Result<IssuedTokens, Error> {
        let now = Timestamp::now();
        let session = LoginSession {
            family_id: FamilyId::generate(),
            user_id: user,
            created_at: now,
            expires_at: now.plus_seconds(self.settings.refresh_ttl_secs as i64),
            revoked: false,
        };
        let (refresh_token, hash) = refresh_token::generate();
        self.store.create_session(&session, &hash).await.map_err(storage)?;
        let (access_token, expires_in) = self.signer.issue_access(user)?;
        Ok(IssuedTokens { access_token, refresh_token, expires_in })
    }

    /// Spends a refresh token for a new pair. A token spent before is
    /// treated as stolen: its whole session is revoked.
    pub async fn refresh(&self, presented: &str) -> Result<IssuedTokens, Error> {
        let now = Timestamp::now();
        let hash = refresh_token::hash(presented);
        let session = match self.store.consume_token(&hash, now).await.map_err(storage)? {
            Consumed::Fresh(session) => session,
            Consumed::Replayed(family) => {
                tracing::warn!(session = %family, "refresh token reused; revoking its session");
                self.store.revoke_session(family).await.map_err(storage)?;
                return Err(bad_refresh());
            }
            Consumed::Unknown => return Err(bad_refresh()),
        };
        if session.revoked || session.expires_at <= now {
            return Err(bad_refresh());
        }
        let (refresh_token, next) = refresh_token::generate();
        self.store.add_token(session.family_id, &next, now).await.map_err(storage)?;
        let (access_token, expires_in) = self.signer.issue_access(session.user_id)?;
        Ok(IssuedTokens { access_token, refresh_token, expires_in })
    }

    /// Ends the login session a refresh token belongs to.
    pub async fn logout(&self, presented: &str) -> Result<(), Error> {
        let hash = refresh_token::hash(presented);
        let session = self.store.find_session_by_token(&hash).await.map_err(storage)?.ok_or_else(bad_refresh)?;
        self.store.revoke_session(session.family_id).await.map_err(storage)
    }
}
