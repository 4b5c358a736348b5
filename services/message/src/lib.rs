//! The message service (`chatterbox.message.v1`).
//!
//! [`grpc`] converts protobuf to domain calls, [`calls`] holds the ones a
//! caller in the same process also makes directly (send, history),
//! [`domain`] applies the rules (membership through the conversation
//! service, cached by [`membership_cache`]; sender-only edits, admin
//! deletions, read watermarks), [`publish_order`] sends new messages' events
//! out in `seq` order, [`store`] keeps messages in order in SQLite or
//! MongoDB. How ordering holds in each backend is written in [`store`].

pub mod access;
pub mod build;
pub mod calls;
pub mod domain;
pub mod grpc;
pub mod media;
pub mod membership_cache;
pub mod publish_order;
pub mod store;

pub use access::{ConversationAccess, GrpcConversationAccess};
pub use calls::MessageCalls;
pub use domain::Messages;
pub use grpc::grpc_server;
pub use media::{GrpcMediaLibrary, MediaLibrary};
pub use membership_cache::{CachedAccess, MembershipCache};
pub use store::{MessageStore, MongoMessageStore, SqliteMessageStore};
