//! The message service (`chatterbox.message.v1`).
//!
//! [`grpc`] converts protobuf to domain calls, [`domain`] applies the rules
//! (membership through the conversation service, sender-only edits, admin
//! deletions, read watermarks), [`store`] keeps messages in order in SQLite
//! or MongoDB. How ordering holds in each backend is written in [`store`].

pub mod access;
pub mod domain;
pub mod grpc;
pub mod media;
pub mod membership_cache;
pub mod publish_order;
pub mod store;

pub use access::{ConversationAccess, GrpcConversationAccess};
pub use domain::Messages;
pub use grpc::{MessageCalls, grpc_server};
pub use media::{GrpcMediaLibrary, MediaLibrary};
pub use membership_cache::{CachedAccess, MembershipCache};
pub use store::{MessageStore, MongoMessageStore, SqliteMessageStore};
