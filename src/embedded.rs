//! The embedded mode: every service and the gateway in one process. The
//! parts call each other in process: the gateway's sends and history reads
//! and the message service's membership checks and activity are function calls through the traits their
//! gRPC adapters implement (`local.rs`); other calls run the callee's gRPC
//! routes in the caller's task (no socket, no HTTP/2). Each service also
//! serves real gRPC on a loopback port the OS picks, for internal callers
//! and for a gateway run beside the suite, so several instances can run
//! side by side.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chatterbox_config::Config;
use chatterbox_events::EventBus;
use chatterbox_identity::{TokenSigner, TokenVerifier};
use chatterbox_runtime::calls::{AuthCalls, ConversationCalls, MediaCalls, MessageCalls, PresenceCalls, UserCalls};
use chatterbox_runtime::{GrpcChannel, LocalEnd, Shutdown, local_channel, serve_grpc};
use chatterbox_types::Clock;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::Part;
use crate::gateway_app::{self, UPLOAD_TIMEOUT};
use crate::local::{LocalConversationAccess, LocalMessageApi};
use crate::settings::{self, embedded_keys, grpc_timeout, store_at, token_settings};

/// A running suite.
#[derive(Debug)]
pub struct Suite {
    /// Where the gateway serves HTTP.
    pub http_addr: SocketAddr,
    /// Where the message service serves gRPC (for load tests that skip HTTP).
    pub message_addr: SocketAddr,
    /// Where each service serves gRPC, for a gateway run beside the suite.
    pub services: Vec<(Part, SocketAddr)>,
    /// The bus every part publishes on.
    pub events: Arc<dyn EventBus>,
    /// Where `/metrics` is served, when `CHATTERBOX_METRICS_ADDR` asks for it
    /// (never on the public HTTP port).
    pub metrics_addr: Option<SocketAddr>,
    shutdown: Shutdown,
    tasks: JoinSet<anyhow::Result<()>>,
}

/// A service's loopback listener, and the in-process channel the other
/// parts use to call it.
async fn loopback(timeout: Duration) -> anyhow::Result<(TcpListener, GrpcChannel, LocalEnd)> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let (channel, end) = local_channel(timeout);
    Ok((listener, channel, end))
}

/// Starts every part; returns once all are listening.
pub async fn start(config: &Config) -> anyhow::Result<Suite> {
    start_with_clock(config, chatterbox_types::system_clock()).await
}

/// Starts every part, telling the time of tokens and login sessions by
/// `clock` (tests of expiry move a clock instead of waiting).
pub async fn start_with_clock(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<Suite> {
    let keys = embedded_keys(config)?;
    let settings = token_settings(config);
    let signer = TokenSigner::new(&keys.private_pem, settings.clone())?.with_clock(clock.clone());
    // One Redis connection for everything the parts keep there (the bus
    // has its own), and one view of the ended login sessions for them all.
    let redis = settings::redis_connection(config).await?;
    let verifier =
        TokenVerifier::new(&keys.public_pem, &settings, settings::revocations(config, redis.as_ref()).await?)?
            .with_clock(clock.clone());
    let shutdown = Shutdown::new(Duration::from_secs(config.shutdown_drain_secs));
    let timeout = grpc_timeout(config);

    let (auth_listener, auth, auth_end) = loopback(timeout).await?;
    let (user_listener, user, user_end) = loopback(timeout).await?;
    let (conversation_listener, conversation, conversation_end) = loopback(timeout).await?;
    let (message_listener, message, message_end) = loopback(timeout).await?;
    let (presence_listener, presence, presence_end) = loopback(timeout).await?;
    let (media_listener, media, media_end) = loopback(timeout).await?;
    // How the parts call each other: straight into the callee's handlers
    // once its server is built (they call each other in a cycle, so the
    // calls come first and are attached below).
    let auth_calls = AuthCalls::pending(auth, timeout);
    let user_calls = UserCalls::pending(user, timeout);
    let conversation_calls = ConversationCalls::pending(conversation, timeout);
    let message_calls = MessageCalls::pending(message, timeout);
    let presence_calls = PresenceCalls::pending(presence, timeout);
    let media_calls = MediaCalls::pending(media, timeout);
    // Uploads: the media service again, with the longer deadline.
    let (media_uploads, media_uploads_end) = local_channel(UPLOAD_TIMEOUT);
    let media_listener_addr = media_listener.local_addr()?;
    let message_addr = message_listener.local_addr()?;
    let services = vec![
        (Part::Auth, auth_listener.local_addr()?),
        (Part::User, user_listener.local_addr()?),
        (Part::Conversation, conversation_listener.local_addr()?),
        (Part::Message, message_addr),
        (Part::Presence, presence_listener.local_addr()?),
        (Part::Media, media_listener_addr),
    ];
    let http_listener = TcpListener::bind(config.http_addr).await?;
    let http_addr = http_listener.local_addr()?;
    let metrics_listener = match config.metrics_addr {
        Some(addr) => Some(TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?),
        None => None,
    };
    let metrics_addr = metrics_listener.as_ref().map(TcpListener::local_addr).transpose()?;

    let events = settings::event_bus(config).await?;
    let (presence_server, presence_domain) = chatterbox_presence::build::build(
        settings::presence_at(config, redis.as_ref()),
        settings::presence_settings(config),
        chatterbox_presence::build::PresenceDeps {
            verifier: verifier.clone(),
            user: user_calls.clone(),
            conversation: conversation_calls.clone(),
            events: events.clone(),
        },
    );
    // The message and media services ask the conversation domain directly.
    let (conversation_server, conversations) = chatterbox_conversation::build::build(
        &store_at(config, Part::Conversation),
        chatterbox_conversation::build::ConversationDeps {
            verifier: verifier.clone(),
            user: user_calls.clone(),
            events: events.clone(),
        },
    )
    .await?;
    let (media_server, media_domain) = chatterbox_media::build::build(
        &store_at(config, Part::Media),
        &settings::blobs_at(config),
        settings::media_settings(config),
        chatterbox_media::build::MediaDeps {
            verifier: verifier.clone(),
            conversation: Arc::new(LocalConversationAccess(conversations.clone())),
        },
    )
    .await?;
    media_uploads_end.attach(&media_server).await;
    // And the gateway sends and reads history straight through the message service.
    let (message_server, calls) = chatterbox_message::build::build(
        &store_at(config, Part::Message),
        chatterbox_message::build::MessageDeps {
            verifier: verifier.clone(),
            conversation: Arc::new(LocalConversationAccess(conversations)),
            media: media_calls.clone(),
            events: events.clone(),
        },
    )
    .await?;
    let auth_server = chatterbox_auth::build::build(
        &store_at(config, Part::Auth),
        settings::auth_settings(config),
        chatterbox_auth::build::AuthDeps {
            signer,
            verifier: verifier.clone(),
            user: user_calls.clone(),
            failed_logins: settings::failed_logins(config, redis.as_ref()),
            clock,
        },
    )
    .await?;
    let user_server = chatterbox_user::build::build(
        &store_at(config, Part::User),
        chatterbox_user::build::UserDeps { verifier: verifier.clone(), media: media_calls.clone() },
    )
    .await?;
    // Each server with its listener and the in-process end its callers use.
    let servers = [
        (auth_listener, auth_end, auth_server),
        (user_listener, user_end, user_server),
        (conversation_listener, conversation_end, conversation_server),
        (message_listener, message_end, message_server),
        (presence_listener, presence_end, presence_server),
        (media_listener, media_end, media_server),
    ];
    let attached = [
        auth_calls.attach_handlers(&servers[0].2),
        user_calls.attach_handlers(&servers[1].2),
        conversation_calls.attach_handlers(&servers[2].2),
        message_calls.attach_handlers(&servers[3].2),
        presence_calls.attach_handlers(&servers[4].2),
        media_calls.attach_handlers(&servers[5].2),
    ];
    anyhow::ensure!(attached.iter().all(|&a| a), "a service offered no handlers to call in process");
    let backends = chatterbox_gateway::Backends {
        auth: auth_calls,
        user: user_calls,
        conversation: conversation_calls,
        message: message_calls,
        message_api: Arc::new(LocalMessageApi(calls)),
        presence: presence_calls,
        media: media_calls.channel().clone(),
        media_uploads,
        redis,
    };
    let mut serving = Vec::with_capacity(servers.len());
    for (listener, end, server) in servers {
        end.attach(&server).await;
        serving.push((listener, server));
    }
    let app = gateway_app::gateway_app(config, verifier, backends, events.clone()).await?;

    let mut tasks = JoinSet::new();
    // Internal callers reach the gRPC ports with the parts' TLS, when configured.
    let tls = settings::grpc_tls(config)?;
    for (listener, server) in serving {
        tasks.spawn(serve_grpc(listener, server, tls.clone(), shutdown.clone()));
    }
    let sweeper_shutdown = shutdown.clone();
    tasks.spawn(async move {
        presence_domain.run_sweeper(sweeper_shutdown).await;
        Ok(())
    });
    let sweeper_shutdown = shutdown.clone();
    tasks.spawn(async move {
        media_domain.run_sweeper(sweeper_shutdown).await;
        Ok(())
    });
    tasks.spawn(chatterbox_gateway::serve(http_listener, app, shutdown.clone()));
    if let (Some(listener), Some(addr)) = (metrics_listener, metrics_addr) {
        // Logged as lone parts log it (tools read the address from this line).
        tracing::info!(%addr, "serving metrics");
        tasks.spawn(chatterbox_runtime::serve_metrics(listener, shutdown.clone()));
    }
    Ok(Suite { http_addr, message_addr, services, events, metrics_addr, shutdown, tasks })
}

impl Suite {
    /// Runs until `stop` resolves or a part fails, then shuts everything down.
    pub async fn run_until(mut self, stop: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
        let outcome = tokio::select! {
            () = stop => Ok(()),
            Some(finished) = self.tasks.join_next() => match finished {
                Ok(Ok(())) => Err(anyhow::anyhow!("a part stopped unexpectedly")),
                Ok(Err(e)) => Err(e),
                Err(e) => Err(e.into()),
            },
        };
        self.stop().await;
        outcome
    }

    /// Stops every part, letting in-flight work drain.
    pub async fn stop(mut self) {
        self.shutdown.trigger();
        while let Some(finished) = self.tasks.join_next().await {
            if let Ok(Err(e)) = finished {
                tracing::warn!(error = %e, "a part failed while stopping");
            }
        }
    }
}
