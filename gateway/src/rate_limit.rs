//! The per-IP HTTP rate limit: a token bucket per client IP, in memory or in
//! Redis (shared by every replica). Every limited response carries
//! `X-RateLimit-Limit` and `X-RateLimit-Remaining`; a refusal is 429 with
//! `Retry-After` and the JSON error body.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chatterbox_errors::{Code, Error};
use http::HeaderValue;

use crate::error::ApiError;
use crate::state::GatewayState;

/// The middleware.
pub async fn limit(State(state): State<GatewayState>, request: Request, next: Next) -> Response {
    let Some(limiter) = state.http_limiter.clone() else {
        return next.run(request).await;
    };
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    let ip = state.trusted_proxies.client_ip(peer, request.headers());
    let decision = match limiter.acquire(&ip.to_string()).await {
        Ok(d) => d,
        Err(e) => {
            // Fail open: losing the limiter must not take the API down.
            tracing::warn!(error = %e, "rate limiter unavailable; request let through");
            metrics::counter!("http_rate_limiter_errors_total").increment(1);
            return next.run(request).await;
        }
    };
    let mut response = if decision.allowed {
        next.run(request).await
    } else {
        let seconds = decision.retry_after.as_secs_f64().ceil().max(1.0) as u64;
        let mut r = ApiError(Error::new(Code::RateLimited, "too many requests, slow down")).into_response();
        r.headers_mut().insert(http::header::RETRY_AFTER, HeaderValue::from(seconds));
        r
    };
    let headers = response.headers_mut();
    headers.insert("x-ratelimit-limit", HeaderValue::from(decision.limit));
    headers.insert("x-ratelimit-remaining", HeaderValue::from(decision.remaining));
    response
}
