//! `/metrics` over plain HTTP for a service running alone, so Prometheus can
//! scrape every process, not only the gateway.

use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;

use crate::Shutdown;

/// Serves the process's metrics on `listener` until `shutdown`.
pub async fn serve_metrics(listener: TcpListener, shutdown: Shutdown) -> anyhow::Result<()> {
    chatterbox_telemetry::install_metrics();
    let app = Router::new().route(
        "/metrics",
        get(|| async {
            ([(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], chatterbox_telemetry::prometheus_text())
        }),
    );

    axum::serve(listener, app).with_graceful_shutdown(async move { shutdown.requested().await }).await?;
    Ok(())
}
