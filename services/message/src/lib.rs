//! The message service (`chatterbox.message.v1`).
//!
//! [`grpc`] authenticates callers and turns protobuf into typed values,
//! [`calls`] holds the calls a caller in the same process also makes
//! directly (send, history), [`domain`] applies the rules (membership
//! through the conversation service, cached by [`membership_cache`];
//! sender-only edits, admin deletions, read watermarks) and announces what
//! changed ([`announce`]; new messages in `seq` order by
//! [`publish_order`]), [`store`] keeps messages in order in SQLite or
//! MongoDB ([`search`] says how text is matched, [`mentions`] how `@names`
//! are read), [`wire`] is their protobuf form. How ordering holds in each
//! backend is written in [`store`].

mod announce;
pub mod build;
pub mod calls;
pub mod domain;
pub mod grpc;
pub mod media;
pub mod membership_cache;
pub mod mentions;
pub mod publish_order;
pub mod search;
pub mod store;
pub mod wire;

pub use calls::MessageCalls;
pub use chatterbox_membership::{ConversationAccess, GrpcConversationAccess, Standing};
pub use domain::Messages;
pub use grpc::grpc_server;
pub use media::{GrpcMediaLibrary, MediaLibrary};
pub use membership_cache::{CachedAccess, MembershipCache};
pub use store::{MessageStore, MongoMessageStore, SqliteMessageStore};
