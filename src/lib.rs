//! ChatterBox assembled: the table of parts ([`parts`]), what each is built
//! with from the configuration, and the two ways to run them, every part in one process ([`embedded`]) or one
//! part per process ([`distributed`]).

pub mod distributed;
pub mod embedded;
mod gateway_app;
pub mod health;
mod local;
pub mod parts;
mod settings;
pub mod storage_credentials;

pub use parts::{Backing, Key, Layout, Part};
pub use settings::message_store;
