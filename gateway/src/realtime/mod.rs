//! Real time over WebSocket (`GET /ws`, `api.md`): sessions authenticated
//! by an access token, fed by one bus subscription per gateway ([`Hub`]),
//! with ordered, gap-free delivery ([`track`]), resume from history, a
//! per-user frame rate shared by every connection and gateway, bounded
//! buffers and heartbeats.

mod answers;
mod delivery;
mod frames;
mod hub;
mod presence;
#[cfg(test)]
mod protocol_document;
mod session;
mod track;
mod upgrade;

use std::sync::Arc;
use std::time::Duration;

use chatterbox_events::EventBus;
use chatterbox_identity::Revocations;
use chatterbox_ratelimit::RateLimiter;

pub use hub::Hub;
pub(crate) use upgrade::{origin_allowed, upgrade};

/// Largest client frame, in bytes; larger ones close the socket with 1009.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// What every WebSocket session of a gateway shares.
#[derive(Debug)]
pub struct Realtime {
    pub(crate) hub: Arc<Hub>,
    /// Where typing indicators are published (they are never stored).
    pub(crate) bus: Arc<dyn EventBus>,
    /// Frames per second per user; `None` when turned off.
    pub(crate) limiter: Option<Arc<dyn RateLimiter>>,
    /// Web origins allowed besides the gateway's own.
    pub(crate) allowed_origins: Vec<String>,
    /// Ping period; a peer silent for two of them is dropped.
    pub(crate) heartbeat: Duration,
    /// Sockets one user may hold open on this gateway; 0: no cap.
    pub(crate) max_per_user: u32,
    /// Messages (and changes) one `resume` replays per conversation at most;
    /// a conversation further behind is left to history.
    pub(crate) resume_reach: u64,
}

/// How a gateway's WebSockets behave.
#[derive(Debug, Clone)]
pub struct RealtimeSettings {
    /// Web origins allowed besides the gateway's own.
    pub allowed_origins: Vec<String>,
    /// Ping period; a peer silent for two of them is dropped.
    pub heartbeat: Duration,
    /// Sockets one user may hold open on this gateway; 0: no cap.
    pub max_per_user: u32,
    /// Messages (and changes) one `resume` replays per conversation at most.
    pub resume_reach: u64,
}

/// Conversations one `resume` may name.
pub const MAX_RESUMED: usize = chatterbox_types::MAX_PAGE_LIMIT as usize;

impl Realtime {
    /// Subscribes the gateway to `bus` and gathers the settings; sockets of
    /// login sessions `revocations` reports ended are closed.
    pub async fn start(
        bus: Arc<dyn EventBus>,
        revocations: Revocations,
        limiter: Option<Arc<dyn RateLimiter>>,
        settings: RealtimeSettings,
    ) -> anyhow::Result<Self> {
        let hub = Hub::start(bus.clone(), revocations).await?;
        let RealtimeSettings { allowed_origins, heartbeat, max_per_user, resume_reach } = settings;
        let allowed_origins = allowed_origins.into_iter().map(|o| o.trim_end_matches('/').to_owned()).collect();
        let heartbeat = heartbeat.max(Duration::from_secs(1));
        Ok(Self { hub, bus, limiter, allowed_origins, heartbeat, max_per_user, resume_reach: resume_reach.max(1) })
    }
}
