//! What every handler can reach: the gRPC clients, the token verifier, the
//! rate limiter and the trusted proxies.

use std::sync::Arc;

use chatterbox_identity::TokenVerifier;
use chatterbox_proto::media::v1::media_service_client::MediaServiceClient;
use chatterbox_runtime::calls::{AuthCalls, ConversationCalls, MessageCalls, PresenceCalls, UserCalls};

use chatterbox_ratelimit::RateLimiter;
use chatterbox_runtime::GrpcChannel;

use crate::admission::SendAdmission;
use crate::client_ip::TrustedProxies;
use crate::history_cache::HistoryCache;
use crate::message_api::MessageApi;
use crate::realtime::Realtime;

/// How the gateway reaches the services behind it: over gRPC, or (the
/// one-process mode) by calling their handlers directly.
#[derive(Debug, Clone)]
pub struct Backends {
    /// The auth service.
    pub auth: AuthCalls,
    /// The user service.
    pub user: UserCalls,
    /// The conversation service.
    pub conversation: ConversationCalls,
    /// The message service.
    pub message: MessageCalls,
    /// The presence service (optional to chat: calls to it may fail).
    pub presence: PresenceCalls,
    /// The media service.
    pub media: GrpcChannel,
    /// The media service again, with a deadline long enough for uploads.
    pub media_uploads: GrpcChannel,
    /// Where sends and history reads go: the message service over gRPC, or
    /// the one of this process, called directly.
    pub message_api: Arc<dyn MessageApi>,
    /// Redis, when the gateway shares state through it (readiness pings it).
    pub redis: Option<chatterbox_redis::Connection>,
}

/// What rendered history pages may hold (only kept where the message
/// service can vouch for them: the one-process mode on SQLite).
const HISTORY_CACHE_BYTES: usize = 64 << 20;

/// Shared state of the gateway: one allocation behind an `Arc`, so the
/// clone every request and WebSocket session takes is a reference count, not
/// a copy of every gRPC client (each clone of one allocates).
#[derive(Debug, Clone)]
pub struct GatewayState(Arc<Shared>);

/// What [`GatewayState`] shares.
pub struct Shared {
    pub(crate) backends: Backends,
    pub(crate) auth: AuthCalls,
    pub(crate) users: UserCalls,
    pub(crate) conversations: ConversationCalls,
    pub(crate) messages: MessageCalls,
    pub(crate) message_api: Arc<dyn MessageApi>,
    /// History pages as rendered, while their version stands.
    pub(crate) history_pages: HistoryCache,
    pub(crate) presence: PresenceCalls,
    pub(crate) media: MediaServiceClient<GrpcChannel>,
    pub(crate) media_uploads: MediaServiceClient<GrpcChannel>,
    /// The upload cap, enforced here too while the body streams in.
    pub(crate) media_max_bytes: u64,
    pub(crate) verifier: TokenVerifier,
    /// `None` when the HTTP limit is turned off (0).
    pub(crate) http_limiter: Option<Arc<dyn RateLimiter>>,
    pub(crate) trusted_proxies: TrustedProxies,
    /// Sends in progress, bounded (REST and WebSocket alike).
    pub(crate) sends: SendAdmission,
    pub(crate) realtime: Arc<Realtime>,
    /// What the web client's pages and sessions need.
    pub(crate) web: crate::web::WebSettings,
}

impl std::ops::Deref for GatewayState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("http_limiter", &self.http_limiter).finish_non_exhaustive()
    }
}

/// What the gateway bounds at its edge.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The upload cap.
    pub media_max_bytes: u64,
    /// The per-IP HTTP limit; `None` when turned off.
    pub http: Option<Arc<dyn RateLimiter>>,
    /// Sends in progress at once.
    pub sends: SendAdmission,
}

impl GatewayState {
    /// Assembles the state.
    pub fn new(
        backends: Backends,
        verifier: TokenVerifier,
        limits: Limits,
        trusted_proxies: TrustedProxies,
        realtime: Realtime,
        web: crate::web::WebSettings,
    ) -> Self {
        let Limits { media_max_bytes, http: http_limiter, sends } = limits;
        Self(Arc::new(Shared {
            auth: backends.auth.clone(),
            users: backends.user.clone(),
            conversations: backends.conversation.clone(),
            messages: backends.message.clone(),
            message_api: backends.message_api.clone(),
            history_pages: HistoryCache::new(HISTORY_CACHE_BYTES),
            presence: backends.presence.clone(),
            media: MediaServiceClient::new(backends.media.clone()),
            media_uploads: MediaServiceClient::new(backends.media_uploads.clone()),
            media_max_bytes,
            backends,
            verifier,
            http_limiter,
            trusted_proxies,
            sends,
            realtime: Arc::new(realtime),
            web,
        }))
    }
}
