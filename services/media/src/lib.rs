//! The media service (`chatterbox.media.v1`).
//!
//! [`grpc`] is the transport; [`domain`] takes uploads (streamed to a spool
//! file under the cap, typed by [`sniff`], images measured and thumbnailed
//! by [`picture`]) and decides who may download what ([`access`] asks the
//! conversation service); [`blob`] keeps the bytes on disk or in S3, and
//! [`store`] the metadata in SQLite or MongoDB.

pub mod blob;
pub mod build;
pub mod domain;
pub mod grpc;
pub mod picture;
pub mod sniff;
pub mod store;

pub use blob::{BlobStore, DiskBlobStore, S3BlobStore, S3Settings};
pub use chatterbox_membership::{ConversationAccess, GrpcConversationAccess, Standing};
pub use domain::{Media, MediaSettings};
pub use grpc::grpc_server;
pub use store::{MediaStore, MongoMediaStore, SqliteMediaStore};
