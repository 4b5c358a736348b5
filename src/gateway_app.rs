//! The gateway's HTTP and WebSocket application, from the configuration
//! and its channels to every service.

use std::sync::Arc;
use std::time::Duration;

use chatterbox_config::Config;
use chatterbox_events::EventBus;
use chatterbox_gateway::{Backends, GatewayState, Realtime, RealtimeSettings, TrustedProxies};
use chatterbox_identity::TokenVerifier;
use chatterbox_ratelimit::Quota;

use crate::settings::limiter;

/// Deadline of one upload through the gateway: a whole file streams in
/// within one call (10 MiB at 150 KB/s).
pub(crate) const UPLOAD_TIMEOUT: Duration = Duration::from_secs(120);

/// The gateway's HTTP and WebSocket application over `backends` (whose
/// Redis connection, when there is one, also keeps the rate limits).
pub(crate) async fn gateway_app(
    config: &Config,
    verifier: TokenVerifier,
    backends: Backends,
    events: Arc<dyn EventBus>,
) -> anyhow::Result<axum::Router> {
    // Per IP, and per user across every connection; in Redis, across every gateway too.
    let redis = backends.redis.as_ref();
    let http_limiter = limiter(config, redis, "http", config.http_rate_limit, Quota::per_minute);
    let ws_limiter = limiter(config, redis, "ws", config.ws_rate_limit, Quota::per_second);
    let realtime = Realtime::start(
        events,
        verifier.revocations().clone(),
        ws_limiter,
        RealtimeSettings {
            allowed_origins: config.ws_allowed_origins.clone(),
            heartbeat: Duration::from_secs(config.ws_heartbeat_secs),
            max_per_user: config.ws_max_per_user,
            resume_reach: config.ws_resume_reach,
        },
    )
    .await?;
    let limits = chatterbox_gateway::Limits {
        media_max_bytes: config.media_max_bytes,
        http: http_limiter,
        sends: chatterbox_gateway::SendAdmission::new(config.send_concurrency),
    };
    let state = GatewayState::new(
        backends,
        verifier,
        limits,
        TrustedProxies::new(config.trusted_proxies.clone()),
        realtime,
        chatterbox_gateway::WebSettings {
            media_origin: chatterbox_gateway::media_origin(
                config.s3_bucket.as_deref(),
                config.s3_public_endpoint.as_deref(),
                config.s3_endpoint.clone().or_else(|| std::env::var("AWS_ENDPOINT_URL").ok()).as_deref(),
                std::env::var("AWS_REGION").ok().as_deref(),
            ),
            session_ttl_secs: config.refresh_token_ttl_secs,
            media_link_ttl_secs: config.media_url_ttl_secs,
        },
    );
    Ok(chatterbox_gateway::router(state, config.http_body_limit_bytes))
}
