//! The user service (`chatterbox.user.v1`).
//!
//! [`grpc`] converts protobuf to domain calls and checks who is calling,
//! [`domain`] decides, [`store`] persists profiles in SQLite or MongoDB.

pub mod avatars;
pub mod build;
pub mod domain;
pub mod grpc;
pub mod store;

pub use avatars::{Avatars, GrpcAvatars};
pub use domain::Users;
pub use grpc::grpc_server;
pub use store::{MongoUserStore, SqliteUserStore, UserStore};
