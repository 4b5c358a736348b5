//! Building envelopes.

use chatterbox_proto::events::v1::{Envelope, envelope::Event};
use chatterbox_types::Timestamp;

/// The payload schema version this build writes.
pub const EVENT_VERSION: u32 = 1;

/// Wraps an event with its version, a fresh id and the commit time.
pub fn envelope(event: Event, at: Timestamp) -> Envelope {
    Envelope { version: EVENT_VERSION, id: ulid::Ulid::new().to_string(), at_ms: at.millis(), event: Some(event) }
}
