//! The distributed mode: one part per process, reaching the others at the
//! configured URLs and sharing state through MongoDB and Redis.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chatterbox_config::Config;
use chatterbox_runtime::{GrpcChannel, Shutdown, connect, serve_grpc, serve_metrics};
use tokio::net::TcpListener;

use crate::parts::{self, Part, ServiceChannels, grpc_timeout, signer_from_file, verifier_from_file};

fn required<'a>(value: &'a Option<String>, variable: &str) -> anyhow::Result<&'a str> {
    value.as_deref().with_context(|| format!("{variable} must be set to run this part alone"))
}

fn channel(url: &Option<String>, variable: &str, timeout: std::time::Duration) -> anyhow::Result<GrpcChannel> {
    connect(required(url, variable)?, timeout)
}

/// Runs one part until `shutdown` is thrown.
pub async fn run(part: Part, config: &Config, shutdown: Shutdown) -> anyhow::Result<()> {
    let timeout = grpc_timeout(config);
    if config.redis_url.is_none() && matches!(part, Part::Conversation | Part::Message | Part::Presence | Part::Gateway)
    {
        // Without Redis, events, presence and rate limits stay inside this process.
        tracing::warn!(?part, "REDIS_URL is not set: events and rate limits are not shared with other processes");
    }
    let user = || channel(&config.user_url, "CHATTERBOX_USER_URL", timeout);
    let conversation = || channel(&config.conversation_url, "CHATTERBOX_CONVERSATION_URL", timeout);
    let media = || channel(&config.media_url, "CHATTERBOX_MEDIA_URL", timeout);
    let server = match part {
        Part::Gateway => {
            let channels = ServiceChannels {
                auth: channel(&config.auth_url, "CHATTERBOX_AUTH_URL", timeout)?,
                user: user()?,
                conversation: conversation()?,
                message: channel(&config.message_url, "CHATTERBOX_MESSAGE_URL", timeout)?,
                presence: channel(&config.presence_url, "CHATTERBOX_PRESENCE_URL", timeout)?,
                media: media()?,
                media_uploads: channel(&config.media_url, "CHATTERBOX_MEDIA_URL", parts::UPLOAD_TIMEOUT)?,
                message_api: None,
            };
            let events = parts::event_bus(config).await?;
            let app = parts::gateway_app(config, verifier_from_file(config)?, channels, events).await?;
            let listener = TcpListener::bind(config.http_addr).await?;
            return chatterbox_gateway::serve(listener, app, shutdown).await;
        }
        Part::Auth => parts::auth_server(config, signer_from_file(config)?, user()?).await?,
        Part::User => parts::user_server(config, verifier_from_file(config)?, media()?).await?,
        Part::Conversation => {
            let events = parts::event_bus(config).await?;
            parts::conversation_server(config, verifier_from_file(config)?, user()?, events).await?.0
        }
        Part::Message => {
            let events = parts::event_bus(config).await?;
            let access = Arc::new(chatterbox_message::GrpcConversationAccess::new(conversation()?));
            parts::message_server(config, verifier_from_file(config)?, access, media()?, events).await?.0
        }
        Part::Media => parts::media_server(config, verifier_from_file(config)?, conversation()?).await?,
        Part::Presence => {
            let events = parts::event_bus(config).await?;
            let (server, presence) =
                parts::presence_server(config, verifier_from_file(config)?, user()?, events).await?;
            tokio::spawn(presence.run_sweeper(shutdown.clone()));
            server
        }
    };
    spawn_metrics(config, &shutdown).await?;
    serve_grpc(grpc_listener(part, config).await?, server, shutdown).await
}

/// Serves `/metrics` for a lone service when `CHATTERBOX_METRICS_ADDR` is set.
async fn spawn_metrics(config: &Config, shutdown: &Shutdown) -> anyhow::Result<()> {
    if let Some(addr) = config.metrics_addr {
        let listener = TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
        tracing::info!(addr = %listener.local_addr()?, "serving metrics");

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
