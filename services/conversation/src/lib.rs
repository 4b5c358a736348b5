//! The conversation service (`chatterbox.conversation.v1`).
//!
//! [`grpc`] authenticates the caller and turns protobuf into typed values,
//! [`domain`] applies the rules of `api.md` (who may see, change, join and
//! leave what) and announces what changed ([`announce`]), [`store`] persists
//! conversations in SQLite or MongoDB, [`wire`] is their protobuf form.

pub mod activity;
mod announce;
pub mod build;
pub mod directory;
pub mod domain;
pub mod grpc;
pub mod store;
pub mod wire;

pub use directory::{GrpcUserDirectory, UserDirectory};
pub use domain::Conversations;
pub use grpc::grpc_server;
pub use store::{ConversationStore, MongoConversationStore, SqliteConversationStore};
