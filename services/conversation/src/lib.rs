//! The conversation service (`chatterbox.conversation.v1`).
//!
//! [`grpc`] converts protobuf to domain calls and authenticates the caller,
//! [`domain`] applies the rules of `api.md` (who may see, change, join and
//! leave what), [`store`] persists conversations in SQLite or MongoDB.

pub mod activity;
pub mod build;
pub mod directory;
pub mod domain;
pub mod grpc;
pub mod store;

pub use directory::{GrpcUserDirectory, UserDirectory};
pub use domain::Conversations;
pub use grpc::grpc_server;
pub use store::{ConversationStore, MongoConversationStore, SqliteConversationStore};
