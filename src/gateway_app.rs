//! The gateway's HTTP and WebSocket application, from the configuration
//! and its channels to every service.

use std::sync::Arc;
use std::time::Duration;

use chatterbox_config::Config;
use chatterbox_events::EventBus;
use chatterbox_gateway::{Backends, GatewayState, Realtime, TrustedProxies};
use chatterbox_identity::TokenVerifier;
use chatterbox_ratelimit::{MemoryLimiter, Quota, RateLimiter, RedisLimiter};

/// Deadline of one upload through the gateway: a whole file streams in
/// within one call (10 MiB at 150 KB/s).
pub(crate) const UPLOAD_TIMEOUT: Duration = Duration::from_secs(120);

/// A rate limiter of `n` per period (`None` when `n` is 0): a Redis bucket
/// under `<prefix>:ratelimit:<name>` when Redis is there, else in memory.
fn limiter(
    config: &Config,
    redis: Option<&redis::aio::ConnectionManager>,
    name: &str,
    n: u32,
    quota: fn(u32) -> Quota,
) -> Option<Arc<dyn RateLimiter>> {
    match (n, redis) {
        (0, _) => None,
        (n, Some(conn)) => {
            let prefix = format!("{}:ratelimit:{name}", config.redis_key_prefix);
            Some(Arc::new(RedisLimiter::new(conn.clone(), prefix, quota(n))))
        }
        (n, None) => Some(Arc::new(MemoryLimiter::new(quota(n)))),
    }
}

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
        ws_limiter,
        config.ws_allowed_origins.clone(),
        Duration::from_secs(config.ws_heartbeat_secs),
        config.ws_max_per_user,
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
