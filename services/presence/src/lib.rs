//! The presence service (`chatterbox.presence.v1`).
//!
//! Gateways report each WebSocket connection opening, beating and closing;
//! [`status`] decides online / away / offline from the live ones, [`store`]
//! keeps them with an expiry (Redis, or memory when embedded) so the
//! connections of a gateway that died expire on their own, [`domain`]
//! publishes changes to the user's conversation partners and records them in
//! the user service ([`profiles`]), and [`grpc`] is the transport.

pub mod build;
pub mod circles;
pub mod domain;
pub mod grpc;
pub mod profiles;
pub mod status;
pub mod store;

pub use circles::{Circles, GrpcCircles};
pub use domain::{Presence, PresenceSettings};
pub use grpc::grpc_server;
pub use profiles::{GrpcProfiles, Profiles};
pub use status::Status;
pub use store::{MemoryPresenceStore, PresenceStore, RedisPresenceStore};
