//! Typed ids and validated values, parsed once at the edge so that the domain
//! never handles an unchecked `String`.

mod clock;
mod email;
mod ids;
mod message_kind;
mod page;
mod password;
mod presence;
mod reaction;
mod text;
mod timestamp;
mod unicode;
mod username;

pub use clock::{Clock, ManualClock, SystemClock, system_clock};
pub use email::Email;
pub use ids::{ConnectionId, ConversationId, MediaId, MessageId, SessionId, UserId};
pub use message_kind::MessageKind;
pub use page::{DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT, page_limit};
pub use password::Password;
pub use presence::PresenceStatus;
pub use reaction::{MAX_SHORTCODE, ReactionEmoji};
pub use text::{Description, DisplayName};
pub use timestamp::Timestamp;
pub use unicode::{name_key, without_bidi_overrides};
pub use username::Username;

/// Why a value was refused; the message is safe to show to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(pub String);

impl InvalidValue {
    /// Builds an error with a caller-facing message.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// Counts characters as the API does: Unicode scalar values, not bytes.
pub(crate) fn char_len(s: &str) -> usize {
    s.chars().count()
}
