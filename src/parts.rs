//! Building each part from the configuration: its store (SQLite under the
//! data dir, or MongoDB when `MONGODB_URI` is set), its keys, its clients.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chatterbox_auth::{Auth, AuthSettings, AuthStore, GrpcProfiles, MongoAuthStore, SqliteAuthStore};
use chatterbox_config::Config;
use chatterbox_conversation::{
    ConversationStore, Conversations, GrpcUserDirectory, MongoConversationStore, SqliteConversationStore,
};
use chatterbox_events::{EventBus, MemoryBus, RedisBus};
use chatterbox_gateway::{Backends, GatewayState, Realtime, TrustedProxies};
use chatterbox_identity::{
    KeyPair, TokenSettings, TokenSigner, TokenVerifier, load_or_generate_keypair, load_public_key,
};
use chatterbox_media::{
    BlobStore, DiskBlobStore, GrpcParticipation, Media, MediaSettings, MediaStore, MongoMediaStore, S3BlobStore,
    S3Settings, SqliteMediaStore,
};
use chatterbox_message::{
    CachedAccess, ConversationAccess, MembershipCache, MessageStore, Messages, MongoMessageStore, SqliteMessageStore,
};
use chatterbox_presence::{MemoryPresenceStore, Presence, PresenceSettings, PresenceStore, RedisPresenceStore};
use chatterbox_ratelimit::{MemoryLimiter, Quota, RateLimiter, RedisLimiter};
use chatterbox_runtime::{GrpcChannel, GrpcServer};
use chatterbox_user::{MongoUserStore, SqliteUserStore, UserStore, Users};

/// Channels to every service, as the gateway needs them.
#[derive(Debug, Clone)]
pub(crate) struct ServiceChannels {
    pub auth: GrpcChannel,
    pub user: GrpcChannel,
    pub conversation: GrpcChannel,
    pub message: GrpcChannel,
    pub presence: GrpcChannel,
    pub media: GrpcChannel,
    /// The media service with [`UPLOAD_TIMEOUT`] as its deadline.
    pub media_uploads: GrpcChannel,
    /// Where the gateway's sends and history reads go when not over `message` (the
    /// message service of this process, called directly).
    pub message_api: Option<Arc<dyn chatterbox_gateway::MessageApi>>,
}

/// Deadline of one upload through the gateway: a whole file streams in
/// within one call (10 MiB at 150 KB/s).
pub(crate) const UPLOAD_TIMEOUT: Duration = Duration::from_secs(120);

/// The parts a process can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Part {
    /// The auth service (gRPC).
    Auth,
    /// The user service (gRPC).
    User,
    /// The conversation service (gRPC).
    Conversation,
    /// The message service (gRPC).
    Message,
    /// The presence service (gRPC).
    Presence,
    /// The media service (gRPC).
    Media,
    /// The HTTP gateway.
    Gateway,
}

impl Part {
    /// The gRPC port a service listens on when run alone and none is configured.
    pub fn default_grpc_port(self) -> u16 {
        match self {
            Part::Auth => 50051,
            Part::User => 50052,
            Part::Conversation => 50053,
            Part::Message => 50054,
            Part::Presence => 50055,
            Part::Media => 50056,
            Part::Gateway => 0,
        }
    }
}

pub(crate) fn token_settings(config: &Config) -> TokenSettings {
    TokenSettings {
        issuer: config.jwt_issuer.clone(),
        audience: config.jwt_audience.clone(),
        access_ttl_secs: config.access_token_ttl_secs,
    }
}

/// The key pair of the embedded mode: from the configured files if any,
/// else generated on first start and kept in the data dir.
pub(crate) fn embedded_keys(config: &Config) -> anyhow::Result<KeyPair> {
    match (&config.jwt_private_key_file, &config.jwt_public_key_file) {
        (Some(private), Some(public)) => Ok(KeyPair {
            private_pem: std::fs::read_to_string(private).with_context(|| format!("reading {}", private.display()))?,
            public_pem: load_public_key(public)?,
        }),
        _ => load_or_generate_keypair(&config.data_dir),
    }
}

/// The signer of a lone auth service: the private key file is required.
pub(crate) fn signer_from_file(config: &Config) -> anyhow::Result<TokenSigner> {
    let path = config
        .jwt_private_key_file
        .as_ref()
        .context("CHATTERBOX_JWT_PRIVATE_KEY_FILE must name the signing key (see `chatterbox keygen`)")?;
    let pem = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    TokenSigner::new(&pem, token_settings(config))
}

/// The verifier of a lone service or gateway: the public key file is required.
pub(crate) fn verifier_from_file(config: &Config) -> anyhow::Result<TokenVerifier> {
    let path = config
        .jwt_public_key_file
        .as_ref()
        .context("CHATTERBOX_JWT_PUBLIC_KEY_FILE must name the token-verifying public key")?;
    TokenVerifier::new(&load_public_key(path)?, &token_settings(config))
}

fn sqlite_path(config: &Config, service: &str) -> PathBuf {
    config.data_dir.join(format!("{service}.sqlite3"))
}

/// Each service's own MongoDB database: services never share one.
fn mongo_database(config: &Config, service: &str) -> String {
    format!("{}_{service}", config.mongodb_database)
}

pub(crate) fn grpc_timeout(config: &Config) -> Duration {
    Duration::from_millis(config.grpc_timeout_ms)
}

/// The auth service.
pub(crate) async fn auth_server(config: &Config, signer: TokenSigner, user: GrpcChannel) -> anyhow::Result<GrpcServer> {
    let store: Arc<dyn AuthStore> = match &config.mongodb_uri {
        Some(uri) => Arc::new(MongoAuthStore::connect(uri.expose(), &mongo_database(config, "auth")).await?),
        None => Arc::new(SqliteAuthStore::open(&sqlite_path(config, "auth"))?),
    };
    let profiles = Arc::new(GrpcProfiles::new(user, signer.clone()));
    let settings = AuthSettings { refresh_ttl_secs: config.refresh_token_ttl_secs };
    let auth = Auth::new(store, profiles, signer, settings).await?;
    Ok(chatterbox_auth::grpc_server(Arc::new(auth)))
}

/// The user service.
pub(crate) async fn user_server(
    config: &Config,
    verifier: TokenVerifier,
    media: GrpcChannel,
) -> anyhow::Result<GrpcServer> {
    let store: Arc<dyn UserStore> = match &config.mongodb_uri {
        Some(uri) => Arc::new(MongoUserStore::connect(uri.expose(), &mongo_database(config, "user")).await?),
        None => Arc::new(SqliteUserStore::open(&sqlite_path(config, "user"))?),
    };
    let users = Users::new(store, Arc::new(chatterbox_user::GrpcAvatars::new(media)));
    Ok(chatterbox_user::grpc_server(Arc::new(users), verifier))
}

/// The conversation service, and its domain (which the one-process mode
/// calls directly).
pub(crate) async fn conversation_server(
    config: &Config,
    verifier: TokenVerifier,
    user: GrpcChannel,
    events: Arc<dyn EventBus>,
) -> anyhow::Result<(GrpcServer, Arc<Conversations>)> {
    let store: Arc<dyn ConversationStore> = match &config.mongodb_uri {
        Some(uri) => {
            Arc::new(MongoConversationStore::connect(uri.expose(), &mongo_database(config, "conversation")).await?)
        }
        None => Arc::new(SqliteConversationStore::open(&sqlite_path(config, "conversation"))?),
    };
    let conversations = Arc::new(Conversations::new(store, Arc::new(GrpcUserDirectory::new(user))));
    Ok((chatterbox_conversation::grpc_server(conversations.clone(), verifier, events), conversations))
}

/// The message service's store for `config` (also used to import history).
pub async fn message_store(config: &Config) -> anyhow::Result<Arc<dyn MessageStore>> {
    Ok(match &config.mongodb_uri {
        Some(uri) => Arc::new(MongoMessageStore::connect(uri.expose(), &mongo_database(config, "message")).await?),
        None => Arc::new(SqliteMessageStore::open(&sqlite_path(config, "message"))?),
    })
}

/// The message service, and its sends for callers in this process.
pub(crate) async fn message_server(
    config: &Config,
    verifier: TokenVerifier,
    conversation: Arc<dyn ConversationAccess>,
    media: GrpcChannel,
    events: Arc<dyn EventBus>,
) -> anyhow::Result<(GrpcServer, chatterbox_message::MessageCalls)> {
    let store = message_store(config).await?;
    // Membership answers kept until the bus says they changed.
    let cache = MembershipCache::listening(events.as_ref(), chatterbox_message::membership_cache::TTL).await?;
    let access = Arc::new(CachedAccess::new(conversation, cache));
    let messages = Messages::new(store, access, Arc::new(chatterbox_message::GrpcMediaLibrary::new(media)));
    Ok(chatterbox_message::grpc_server(Arc::new(messages), verifier, events))
}

/// The media service: metadata in SQLite or MongoDB, bytes under the data
/// dir or in the S3 bucket `S3_BUCKET`.
pub(crate) async fn media_server(
    config: &Config,
    verifier: TokenVerifier,
    conversation: GrpcChannel,
) -> anyhow::Result<GrpcServer> {
    let store: Arc<dyn MediaStore> = match &config.mongodb_uri {
        Some(uri) => Arc::new(MongoMediaStore::connect(uri.expose(), &mongo_database(config, "media")).await?),
        None => Arc::new(SqliteMediaStore::open(&sqlite_path(config, "media"))?),
    };
    let blobs: Arc<dyn BlobStore> = match &config.s3_bucket {
        Some(bucket) => {
            let settings = S3Settings {
                bucket: bucket.clone(),
                endpoint: config.s3_endpoint.clone(),
                public_endpoint: config.s3_public_endpoint.clone(),
            };
            Arc::new(S3BlobStore::connect(&settings).await.context("connecting to S3")?)
        }
        None => Arc::new(DiskBlobStore::open(&config.data_dir.join("media"))?),
    };
    let settings = MediaSettings {
        max_bytes: config.media_max_bytes,
        url_ttl: Duration::from_secs(config.media_url_ttl_secs),
        spool_dir: config.data_dir.join("spool"),
    };
    let media = Media::new(store, blobs, Arc::new(GrpcParticipation::new(conversation)), settings)?;
    Ok(chatterbox_media::grpc_server(Arc::new(media), verifier))
}

/// The presence service, and the domain whose sweeper must run beside it.
pub(crate) async fn presence_server(
    config: &Config,
    verifier: TokenVerifier,
    user: GrpcChannel,
    events: Arc<dyn EventBus>,
) -> anyhow::Result<(GrpcServer, Arc<Presence>)> {
    let store: Arc<dyn PresenceStore> = match redis_connection(config).await? {
        Some(connection) => Arc::new(RedisPresenceStore::new(connection, &config.redis_key_prefix)),
        None => Arc::new(MemoryPresenceStore::new()),
    };
    let settings = PresenceSettings {
        ttl: Duration::from_secs(config.presence_ttl_secs),
        idle: Duration::from_secs(config.presence_idle_secs),
    };
    let presence =
        Arc::new(Presence::new(store, Arc::new(chatterbox_presence::GrpcProfiles::new(user)), events, settings));
    Ok((chatterbox_presence::grpc_server(presence.clone(), verifier), presence))
}

/// A fail-fast Redis connection when `REDIS_URL` is set.
async fn redis_connection(config: &Config) -> anyhow::Result<Option<redis::aio::ConnectionManager>> {
    let Some(url) = &config.redis_url else { return Ok(None) };
    let client = redis::Client::open(url.expose()).context("REDIS_URL is not a valid Redis URL")?;
    Ok(Some(chatterbox_runtime::redis_connection(client).await.context("connecting to Redis")?))
}

/// The event bus: Redis pub/sub when `REDIS_URL` is set, else in process
/// (which only reaches subscribers in the same process).
pub(crate) async fn event_bus(config: &Config) -> anyhow::Result<Arc<dyn EventBus>> {
    Ok(match &config.redis_url {
        Some(url) => {
            let client = redis::Client::open(url.expose()).context("REDIS_URL is not a valid Redis URL")?;
            Arc::new(RedisBus::connect(client, config.redis_key_prefix.clone()).await.context("connecting to Redis")?)
        }
        None => Arc::new(MemoryBus::new()),
    })
}

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

/// The gateway's HTTP and WebSocket application.
pub(crate) async fn gateway_app(
    config: &Config,
    verifier: TokenVerifier,
    channels: ServiceChannels,
    events: Arc<dyn EventBus>,
) -> anyhow::Result<axum::Router> {
    let redis = redis_connection(config).await?;
    // Per IP, and per user across every connection; in Redis, across every gateway too.
    let http_limiter = limiter(config, redis.as_ref(), "http", config.http_rate_limit, Quota::per_minute);
    let ws_limiter = limiter(config, redis.as_ref(), "ws", config.ws_rate_limit, Quota::per_second);
    let realtime = Realtime::start(
        events,
        ws_limiter,
        config.ws_allowed_origins.clone(),
        Duration::from_secs(config.ws_heartbeat_secs),
    )
    .await?;
    let message_api = channels
        .message_api
        .unwrap_or_else(|| Arc::new(chatterbox_gateway::GrpcMessageApi::new(channels.message.clone())));
    let backends = Backends {
        auth: channels.auth,
        user: channels.user,
        conversation: channels.conversation,
        message: channels.message,
        message_api,
        presence: channels.presence,
        media: channels.media,
        media_uploads: channels.media_uploads,
        redis,
    };
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
