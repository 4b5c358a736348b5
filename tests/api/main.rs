//! End-to-end tests through the public HTTP API.
//!
//! Every test runs twice: on the embedded backends (SQLite, in-memory
//! limiter) and on the distributed ones (MongoDB wire protocol via FerretDB,
//! Redis), which `make test` starts. `distributed` additionally runs each part
//! as its own process.

#![allow(clippy::unwrap_used)] // a panic is how a test fails

mod helpers;
#[path = "../shared/media_bucket.rs"]
mod media_bucket;
mod ws_client;

mod auth;
mod blocking;
mod conversations;
mod media;
mod mentions;
mod messages;
mod pins;
mod presence;
mod reactions;
mod replies;
mod rooms;
mod search;
mod sessions;

mod distributed;
mod events;
mod fault_proxy;
mod websocket;

mod forged_tokens;
mod gateway;
mod rate_limit;
mod registration;
mod users;

mod browser;
mod contract;
mod crash;
mod web;
