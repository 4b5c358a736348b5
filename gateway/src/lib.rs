//! The gateway: the public HTTP API of `api.md` in front of the gRPC
//! services. It verifies access tokens, limits request rates, maps every
//! error to the JSON error body, and keeps nothing durable.

mod admission;
mod client_ip;
mod error;
mod extract;
mod history_cache;
mod http_metrics;
mod message_api;
mod rate_limit;
mod realtime;
mod request_id;
mod routes;
mod state;
mod views;
mod web;

use std::net::SocketAddr;

use axum::serve::ListenerExt as _;
use chatterbox_runtime::Shutdown;

use tokio::net::TcpListener;

pub use admission::SendAdmission;
pub use client_ip::TrustedProxies;
pub use message_api::{GrpcMessageApi, MessageApi};
pub use realtime::{MAX_FRAME_BYTES, MAX_RESUMED, Realtime, RealtimeSettings};
pub use routes::router;
pub use state::{Backends, GatewayState, Limits};
pub use web::{WebSettings, media_origin};

/// Serves the API on `listener` until `shutdown`, then drains for at most
/// the drain timeout.
pub async fn serve(listener: TcpListener, app: axum::Router, shutdown: Shutdown) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "serving HTTP");
    let drain = shutdown.drain();
    let signal = shutdown.clone();
    // Small responses must not wait for the peer's delayed ACK (Nagle).
    let listener = listener.tap_io(|stream| {
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
    });
    let serving = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(async move { signal.requested().await })
        .into_future();
    tokio::pin!(serving);
    tokio::select! {
        result = &mut serving => result?,
        () = async { shutdown.requested().await; tokio::time::sleep(drain).await } => {
            tracing::warn!(%addr, "drain timeout reached, dropping open HTTP requests");
        }
    }
    Ok(())
}
