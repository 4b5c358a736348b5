//! The auth service (`chatterbox.auth.v1`).
//!
//! Three layers: [`grpc`] converts protobuf to domain calls, [`domain`]
//! decides (registration, login, rotation, logout), [`store`] persists
//! credentials and login sessions in SQLite or MongoDB.

pub mod build;
pub mod domain;
pub mod grpc;
mod password;
pub mod profiles;
mod refresh_token;
pub mod store;

pub use domain::{Auth, AuthSettings};
pub use grpc::grpc_server;
pub use profiles::{GrpcProfiles, Profile, Profiles};
pub use store::{AuthStore, MongoAuthStore, SqliteAuthStore};
