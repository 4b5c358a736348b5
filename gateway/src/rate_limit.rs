//! The per-IP HTTP rate limit: a token bucket per client IP, in memory or in
//! Redis (shared by every replica). Every limited response carries
//! `X-RateLimit-Limit` and `X-RateLimit-Remaining`; a refusal is 429 with
//! `Retry-After` and the JSON error body.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chatterbox_errors::{Code, Error};
use http::HeaderValue;

use crate::error::ApiError;
use crate::state::GatewayState;

/// The bucket a client's requests draw from: its IPv4 address, or its
/// IPv6 /64. One subscriber usually holds a whole /64 (2^64 addresses), so
/// keying by the full IPv6 address would hand each of them endless buckets.
fn bucket_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let [a, b, c, d, ..] = v6.segments();
                format!("{}/64", Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
            }
        },
    }
}

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
    let decision = match limiter.acquire(&bucket_key(ip)).await {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_slash_64_is_one_bucket_and_ipv4_one_per_address() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(bucket_key(ip("2001:db8:1:2::1")), "2001:db8:1:2::/64");
        assert_eq!(bucket_key(ip("2001:db8:1:2:ffff:1234:5678:9abc")), "2001:db8:1:2::/64");
        assert_ne!(bucket_key(ip("2001:db8:1:3::1")), bucket_key(ip("2001:db8:1:2::1")));
        assert_eq!(bucket_key(ip("203.0.113.7")), "203.0.113.7");
        assert_ne!(bucket_key(ip("203.0.113.8")), bucket_key(ip("203.0.113.7")));
        // An IPv4 client seen through a dual-stack socket is still that address.
        assert_eq!(bucket_key(ip("::ffff:203.0.113.7")), "203.0.113.7");
    }
}
