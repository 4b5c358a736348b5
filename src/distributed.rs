//! The distributed mode: one part per process, reaching the others at the
//! configured URLs and sharing state through MongoDB and Redis.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use chatterbox_config::Config;
use chatterbox_runtime::{Shutdown, connect, serve_grpc, serve_metrics};
use tokio::net::TcpListener;

use crate::parts::{self, Part, grpc_timeout, signer_from_file, verifier_from_file};

fn required<'a>(value: &'a Option<String>, variable: &str) -> anyhow::Result<&'a str> {
    value.as_deref().with_context(|| format!("{variable} must be set to run this part alone"))
}

/// Runs one part until `shutdown` is thrown.
pub async fn run(part: Part, config: &Config, shutdown: Shutdown) -> anyhow::Result<()> {
    let timeout = grpc_timeout(config);
    match part {
        Part::Gateway => {
            let auth = connect(required(&config.auth_url, "CHATTERBOX_AUTH_URL")?, timeout)?;
            let user = connect(required(&config.user_url, "CHATTERBOX_USER_URL")?, timeout)?;
            let app = parts::gateway_app(config, verifier_from_file(config)?, auth, user).await?;
            let listener = TcpListener::bind(config.http_addr).await?;
            chatterbox_gateway::serve(listener, app, shutdown).await
        }
        Part::Auth => {
            spawn_metrics(config, &shutdown).await?;
            let user = connect(required(&config.user_url, "CHATTERBOX_USER_URL")?, timeout)?;
            let server = parts::auth_server(config, signer_from_file(config)?, user).await?;
            serve_grpc(grpc_listener(part, config).await?, server, shutdown).await
        }
        Part::User => {
            spawn_metrics(config, &shutdown).await?;
            let server = parts::user_server(config, verifier_from_file(config)?).await?;
            serve_grpc(grpc_listener(part, config).await?, server, shutdown).await
        }
    }
}

/// Serves `/metrics` for a lone service when `CHATTERBOX_METRICS_ADDR` is set.
async fn spawn_metrics(config: &Config, shutdown: &Shutdown) -> anyhow::Result<()> {
    if let Some(addr) = config.metrics_addr {
        let listener = TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
        tokio::spawn(serve_metrics(listener, shutdown.clone()));
    }
    Ok(())
}

async fn grpc_listener(part: Part, config: &Config) -> anyhow::Result<TcpListener> {
    let addr = config.grpc_addr.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], part.default_grpc_port())));
    TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))
}

/// The drain timeout a lone part uses.
pub fn drain(config: &Config) -> Duration {
    Duration::from_secs(config.shutdown_drain_secs)
}
