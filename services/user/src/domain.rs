//! The user service's decisions: who may create profiles (the auth service
//! only), what others may see, search paging, and profile changes.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chatterbox_errors::Error;
use chatterbox_identity::{Actor, Caller};
use chatterbox_store::StoreError;
use chatterbox_types::{Email, MediaId, Timestamp, UserId, Username};

use crate::avatars::Avatars;
use crate::store::{Profile, ProfilePatch, Status, UserStore};

/// The only service allowed to create and delete profiles.
const AUTH_SERVICE: &str = "auth";

/// One page of search results.
#[derive(Debug, Clone)]
pub struct Page {
    /// The profiles, by username.
    pub items: Vec<Profile>,
    /// Where the next page starts, if there is one.
    pub next_cursor: Option<String>,
}

/// The user domain.
#[derive(Debug, Clone)]
pub struct Users {
    store: Arc<dyn UserStore>,
    avatars: Arc<dyn Avatars>,
}

fn storage(e: StoreError) -> Error {
    match e {
        StoreError::Duplicate("username") => Error::already_exists("username is taken"),
        StoreError::Duplicate("email") => Error::already_exists("email is already registered"),
        StoreError::Duplicate(_) => Error::already_exists("user already exists"),
        e => Error::from(e),
    }
}

pub fn no_such_user() -> Error {
    Error::not_found("user not found")
}

/// Most usernames looked up in one call.
pub const MOST_USERNAMES: usize = 100;

/// A search prefix: the username alphabet only, at most a username long.
fn search_prefix(prefix: &str) -> Result<String, Error> {
    // Not empty: an empty prefix would page through every user (enumeration).
    if prefix.is_empty() {
        return Err(Error::invalid("search needs at least the first character of a username"));
    }
    if prefix.chars().count() > 32 || !prefix.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        return Err(Error::invalid("search must be a username prefix"));
    }
    Ok(prefix.to_ascii_lowercase())
}

fn decode_cursor(cursor: &str) -> Result<Option<String>, Error> {
    if cursor.is_empty() {
        return Ok(None);
    }
    let invalid = || Error::invalid("invalid cursor");
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let key = String::from_utf8(bytes).map_err(|_| invalid())?;
    search_prefix(&key).map(Some).map_err(|_| invalid())
}

impl Users {
    /// The domain over a store.
    pub fn new(store: Arc<dyn UserStore>, avatars: Arc<dyn Avatars>) -> Self {
        Self { store, avatars }
    }

    /// Creates the profile of a registering user (auth service only).
    pub async fn create(
        &self,
        caller: &Caller,
        id: UserId,
        username: Username,
        email: Email,
    ) -> Result<Profile, Error> {
        caller.require_service(AUTH_SERVICE)?;
        let now = Timestamp::now();
        let profile = Profile {
            id,
            username: username.to_string(),
            username_key: username.key(),
            email: email.to_string(),
            email_key: email.key(),
            avatar: None,
            status: Status::Offline,
            last_seen: None,
            created_at: now,
            updated_at: now,
        };
        self.store.create_profile(&profile).await.map_err(storage)?;
        Ok(profile)
    }

    /// Removes a profile whose registration failed (auth service only).
    pub async fn delete(&self, caller: &Caller, id: UserId) -> Result<(), Error> {
        caller.require_service(AUTH_SERVICE)?;
        self.store.delete_profile(id).await.map_err(storage)
    }

    /// A profile by id.
    pub async fn get(&self, id: UserId) -> Result<Profile, Error> {
        self.store.get_profile(id).await.map_err(storage)?.ok_or_else(no_such_user)
    }

    /// Profiles whose username starts with `prefix`, a page at a time.
    pub async fn search(&self, prefix: &str, limit: u32, cursor: &str) -> Result<Page, Error> {
        let prefix = search_prefix(prefix)?;
        let limit = chatterbox_types::page_limit(limit)?;
        let after = decode_cursor(cursor)?;
        // One extra row tells whether another page exists.
        let mut items = self.store.search_profiles(&prefix, after.as_deref(), limit + 1).await.map_err(storage)?;
        let next_cursor = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|p| URL_SAFE_NO_PAD.encode(p.username_key.as_bytes()))
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    /// The profiles of those of `usernames` that exist (matched
    /// case-insensitively; other spellings are ignored), in no particular
    /// order. At most [`MOST_USERNAMES`] at once.
    pub async fn by_usernames(&self, usernames: &[String]) -> Result<Vec<Profile>, Error> {
        if usernames.len() > MOST_USERNAMES {
            return Err(Error::invalid(format!("at most {MOST_USERNAMES} usernames at once")));
        }
        let mut keys: Vec<String> = usernames.iter().filter_map(|u| Username::parse(u).ok()).map(|u| u.key()).collect();
        keys.sort_unstable();
        keys.dedup();
        self.store.profiles_by_keys(&keys).await.map_err(storage)
    }

    /// Records the user's presence as the presence service saw it change.
    pub async fn set_presence(
        &self,
        user: UserId,
        status: Status,
        last_seen: Option<Timestamp>,
    ) -> Result<Profile, Error> {
        self.store.set_presence(user, status, last_seen).await.map_err(storage)?.ok_or_else(no_such_user)
    }

    /// Changes the caller's username and/or avatar (`Some(None)` clears it;
    /// a new one must be an image they uploaded).
    pub async fn update(
        &self,
        actor: &Actor,
        username: Option<Username>,
        avatar: Option<Option<MediaId>>,
    ) -> Result<Profile, Error> {
        let user = actor.id;
        if let Some(Some(id)) = avatar {
            // Checked (and made visible) before anything changes here.
            self.avatars.adopt(&actor.token, id).await?;
        }
        let patch = ProfilePatch {
            username: username.map(|u| (u.to_string(), u.key())),
            avatar: avatar.map(|a| a.map(|id| id.to_string())),
        };
        self.store.update_profile(user, &patch, Timestamp::now()).await.map_err(storage)?.ok_or_else(no_such_user)
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Whatever a client sends as a cursor is a page start or a clear 400.
        #[test]
        fn any_cursor_is_a_start_or_a_refusal(cursor in ".{0,80}") {
            if let Err(e) = decode_cursor(&cursor) {
                prop_assert_eq!(e.code(), chatterbox_errors::Code::InvalidArgument);
            }
        }

        /// And a cursor made of a username prefix reads back as it, lower case.
        #[test]
        fn username_cursors_read_back(prefix in "[A-Za-z0-9_.-]{1,32}") {
            let cursor = URL_SAFE_NO_PAD.encode(&prefix);
            prop_assert_eq!(decode_cursor(&cursor).map_err(|e| TestCaseError::fail(e.to_string()))?, Some(prefix.to_ascii_lowercase()));
        }
    }
}
