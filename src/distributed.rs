//! The distributed mode: one part per process, reaching the parts it calls
//! (the table in `parts.rs`) at the configured URLs and sharing state
//! through MongoDB and Redis.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chatterbox_config::Config;
use chatterbox_runtime::calls::{AuthCalls, ConversationCalls, MediaCalls, MessageCalls, PresenceCalls, UserCalls};
use chatterbox_runtime::{GrpcChannel, GrpcTls, Shutdown, connect, serve_grpc, serve_metrics};
use tokio::net::TcpListener;

use crate::Part;
use crate::gateway_app::{self, UPLOAD_TIMEOUT};
use crate::settings::{self, grpc_timeout, signer_from_file, store_at, verifier_from_file};

/// Channels to the parts a part calls, from their configured URLs.
struct Peers {
    part: Part,
    channels: HashMap<Part, GrpcChannel>,
}

impl Peers {
    /// Connects (lazily) to every part `part` calls; each URL is required.
    fn connect(part: Part, config: &Config, timeout: Duration, tls: Option<&GrpcTls>) -> anyhow::Result<Self> {
        let mut channels = HashMap::new();
        for &called in part.calls() {
            let url = called
                .configured_url(config)
                .with_context(|| format!("{} must be set to run {} alone", called.url_variable(), part.name()))?;
            channels.insert(called, connect(url, timeout, tls)?);
        }
        Ok(Self { part, channels })
    }

    /// The channel to `called`, which the table must list among the part's calls.
    fn get(&self, called: Part) -> anyhow::Result<GrpcChannel> {
        self.channels.get(&called).cloned().with_context(|| {
            format!("the table of parts does not list {} among the calls of {}", called.name(), self.part.name())
        })
    }
}

/// Runs one part until `shutdown` is thrown.
pub async fn run(part: Part, config: &Config, shutdown: Shutdown) -> anyhow::Result<()> {
    let timeout = grpc_timeout(config);
    if config.redis_url.is_none() && part.backings().contains(&crate::parts::Backing::Redis) {
        // Without Redis, events, presence and rate limits stay inside this process.
        tracing::warn!(?part, "REDIS_URL is not set: events and rate limits are not shared with other processes");
    }
    let tls = settings::grpc_tls(config)?;
    let peers = Peers::connect(part, config, timeout, tls.as_ref())?;
    // One Redis connection for everything this part keeps there.
    let redis = settings::redis_connection(config).await?;
    let redis = redis.as_ref();
    let mut server = match part {
        Part::Gateway => {
            let media_url = Part::Media.configured_url(config).context("CHATTERBOX_MEDIA_URL must be set")?;
            let message = MessageCalls::remote(peers.get(Part::Message)?);
            let backends = chatterbox_gateway::Backends {
                auth: AuthCalls::remote(peers.get(Part::Auth)?),
                user: UserCalls::remote(peers.get(Part::User)?),
                conversation: ConversationCalls::remote(peers.get(Part::Conversation)?),
                message_api: Arc::new(chatterbox_gateway::GrpcMessageApi::new(message.clone())),
                message,
                presence: PresenceCalls::remote(peers.get(Part::Presence)?),
                media: peers.get(Part::Media)?,
                media_uploads: connect(media_url, UPLOAD_TIMEOUT, tls.as_ref())?,
                redis: redis.cloned(),
            };
            let events = settings::event_bus(config).await?;
            let app =
                gateway_app::gateway_app(config, verifier_from_file(config, redis).await?, backends, events).await?;
            let listener = TcpListener::bind(config.http_addr).await?;
            spawn_metrics(config, &shutdown).await?;
            return chatterbox_gateway::serve(listener, app, shutdown).await;
        }
        Part::Auth => {
            let (signer, verifier) = signer_from_file(config, redis).await?;
            let deps = chatterbox_auth::build::AuthDeps {
                signer,
                verifier,
                user: UserCalls::remote(peers.get(Part::User)?),
                failed_logins: settings::failed_logins(config, redis),
                clock: chatterbox_types::system_clock(),
            };
            chatterbox_auth::build::build(&store_at(config, part), settings::auth_settings(config), deps).await?
        }
        Part::User => {
            let deps = chatterbox_user::build::UserDeps {
                verifier: verifier_from_file(config, redis).await?,
                media: MediaCalls::remote(peers.get(Part::Media)?),
            };
            chatterbox_user::build::build(&store_at(config, part), deps).await?
        }
        Part::Conversation => {
            let deps = chatterbox_conversation::build::ConversationDeps {
                verifier: verifier_from_file(config, redis).await?,
                user: UserCalls::remote(peers.get(Part::User)?),
                events: settings::event_bus(config).await?,
            };
            chatterbox_conversation::build::build(&store_at(config, part), deps).await?.0
        }
        Part::Message => {
            let conversation = ConversationCalls::remote(peers.get(Part::Conversation)?);
            let deps = chatterbox_message::build::MessageDeps {
                verifier: verifier_from_file(config, redis).await?,
                conversation: Arc::new(chatterbox_membership::GrpcConversationAccess::new(conversation)),
                media: MediaCalls::remote(peers.get(Part::Media)?),
                events: settings::event_bus(config).await?,
            };
            chatterbox_message::build::build(&store_at(config, part), deps).await?.0
        }
        Part::Media => {
            let deps = chatterbox_media::build::MediaDeps {
                verifier: verifier_from_file(config, redis).await?,
                conversation: Arc::new(chatterbox_membership::GrpcConversationAccess::new(ConversationCalls::remote(
                    peers.get(Part::Conversation)?,
                ))),
            };
            let (blobs, media_settings) = (settings::blobs_at(config), settings::media_settings(config));
            let (server, media) =
                chatterbox_media::build::build(&store_at(config, part), &blobs, media_settings, deps).await?;
            tokio::spawn(media.run_sweeper(shutdown.clone()));
            server
        }
        Part::Presence => {
            let deps = chatterbox_presence::build::PresenceDeps {
                verifier: verifier_from_file(config, redis).await?,
                user: UserCalls::remote(peers.get(Part::User)?),
                conversation: ConversationCalls::remote(peers.get(Part::Conversation)?),
                events: settings::event_bus(config).await?,
            };
            let (server, presence) = chatterbox_presence::build::build(
                settings::presence_at(config, redis),
                settings::presence_settings(config),
                deps,
            );
            tokio::spawn(presence.run_sweeper(shutdown.clone()));
            server
        }
    };
    server.readiness = settings::store_readiness(config, part).await?;
    spawn_metrics(config, &shutdown).await?;
    serve_grpc(grpc_listener(part, config).await?, server, tls, shutdown).await
}

/// Serves `/metrics` for a lone part when `CHATTERBOX_METRICS_ADDR` is set.
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
