//! ChatterBox assembled: how each part is built from the configuration, and
//! the two ways to run them, every part in one process ([`embedded`]) or one
//! part per process ([`distributed`]).

pub mod distributed;
pub mod embedded;
pub mod health;
mod local;
mod parts;

pub use parts::{Part, message_store};
