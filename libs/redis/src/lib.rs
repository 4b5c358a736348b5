//! Redis for every part that shares state through it (events, rate limits,
//! presence, ended sessions), on one server or a Redis Cluster.
//!
//! [`Target`] is where Redis is (`REDIS_URL`, and `REDIS_MODE=cluster` for a
//! comma-separated list of seed nodes); [`Connection`] is one multiplexed,
//! self-reconnecting connection to it that callers clone. Commands fail
//! within about a second while Redis (or, on a cluster, the shard that owns a
//! key) is away, and reconnection continues behind them: every caller here
//! would rather fail fast and carry on.
//!
//! On a cluster every script and pipeline must touch one hash slot; the
//! stores keep the keys one call touches under one hash tag (`{...}`).

mod connection;
mod target;

pub use connection::Connection;
pub use target::{Target, TargetError};
