//! Opaque identifiers. They are ULIDs: sortable by creation time, unguessable
//! enough for ids (never used as secrets), and cheap to index.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::InvalidValue;

/// Ids made by this process increase strictly, even within one millisecond,
/// so sorting by id is sorting by creation.
fn next_ulid() -> ulid::Ulid {
    static GENERATOR: std::sync::Mutex<ulid::Generator> = std::sync::Mutex::new(ulid::Generator::new());
    let mut generator = GENERATOR.lock().unwrap_or_else(std::sync::PoisonError::into_inner);

    // Overflow needs 2^80 ids in one millisecond; fall back to a random one.
    generator.generate().unwrap_or_else(|_| ulid::Ulid::new())
}

macro_rules! ulid_id {

    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(ulid::Ulid);

        impl $name {
            /// A fresh, time-ordered id.
            pub fn generate() -> Self {
                Self(next_ulid())
            }

            /// Parses an id received from outside; anything else is refused.
            pub fn parse(s: &str) -> Result<Self, InvalidValue> {
                ulid::Ulid::from_string(s)
                    .map(Self)
                    .map_err(|_| InvalidValue::new(concat!("invalid ", $what)))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = InvalidValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidValue;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.to_string()
            }
        }
    };
}

ulid_id!(
    /// Identifies a user everywhere in the system.
    UserId,
    "user id"
);
ulid_id!(
    /// Identifies a login session: the refresh tokens rotated from one login
    /// (or registration), and every access token issued from them.
    SessionId,
    "session id"
);

ulid_id!(
    /// Identifies a conversation: direct, group or room.
    ConversationId,
    "conversation id"
);
ulid_id!(
    /// Identifies a message.
    MessageId,
    "message id"
);
ulid_id!(
    /// Identifies an uploaded file or image (and its blob).
    MediaId,
    "media id"
);
ulid_id!(
    /// Identifies one WebSocket connection of a gateway (what presence
    /// counts a user's devices by).
    ConnectionId,
    "connection id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_their_text_form() {
        let id = UserId::generate();
        assert_eq!(UserId::parse(&id.to_string()), Ok(id));
    }

    #[test]
    fn malformed_ids_are_refused() {
        assert!(UserId::parse("").is_err());
        assert!(UserId::parse("not-an-id").is_err());
        assert!(UserId::parse("{\"$ne\":\"\"}").is_err());
    }
}
