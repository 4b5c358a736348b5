//! From the configuration to what each part is built with: where it keeps
//! its records, its keys, its settings, the event bus. Each service builds
//! itself from these (`chatterbox_<service>::build::build`).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chatterbox_auth::AuthSettings;
use chatterbox_config::{Config, RedisMode};
use chatterbox_events::{EventBus, MemoryBus, RedisBus};
use chatterbox_identity::{
    KeyPair, Revocations, TokenSettings, TokenSigner, TokenVerifier, load_or_generate_keypair, load_public_key,
    public_pem_of,
};
use chatterbox_media::MediaSettings;
use chatterbox_media::build::BlobsAt;
use chatterbox_presence::PresenceSettings;
use chatterbox_presence::build::PresenceAt;
use chatterbox_ratelimit::{MemoryLimiter, Quota, RateLimiter, RedisLimiter};
use chatterbox_redis::{Connection as RedisConnection, Target};
use chatterbox_runtime::{GrpcTls, Readiness};
use chatterbox_store::StoreAt;

use crate::Part;

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

/// The signer of a lone auth service, and the verifier of the tokens it
/// issued (from the same key): the private key file is required.
pub(crate) async fn signer_from_file(
    config: &Config,
    redis: Option<&RedisConnection>,
) -> anyhow::Result<(TokenSigner, TokenVerifier)> {
    let path = config
        .jwt_private_key_file
        .as_ref()
        .context("CHATTERBOX_JWT_PRIVATE_KEY_FILE must name the signing key (see `chatterbox keygen`)")?;
    let pem = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let verifier =
        TokenVerifier::new(&public_pem_of(&pem)?, &token_settings(config), revocations(config, redis).await?)?;
    Ok((TokenSigner::new(&pem, token_settings(config))?, verifier))
}

/// The verifier of a lone service or gateway: the public key file is required.
pub(crate) async fn verifier_from_file(
    config: &Config,
    redis: Option<&RedisConnection>,
) -> anyhow::Result<TokenVerifier> {
    let path = config
        .jwt_public_key_file
        .as_ref()
        .context("CHATTERBOX_JWT_PUBLIC_KEY_FILE must name the token-verifying public key")?;
    TokenVerifier::new(&load_public_key(path)?, &token_settings(config), revocations(config, redis).await?)
}

/// The ended login sessions this process refuses: shared through Redis
/// when `REDIS_URL` is set (kept as long as an access token lives, and a
/// minute for clocks that disagree), else known to this process alone.
pub(crate) async fn revocations(config: &Config, redis: Option<&RedisConnection>) -> anyhow::Result<Revocations> {
    Ok(match redis.cloned() {
        Some(connection) => {
            let retention = Duration::from_secs(config.access_token_ttl_secs + 60);
            Revocations::shared(connection, &config.redis_key_prefix, retention)
                .await
                .context("reading ended login sessions from Redis")?
        }
        None => Revocations::local(),
    })
}

/// A rate limiter of `n` per period (`None` when `n` is 0): a Redis bucket
/// under `<prefix>:ratelimit:<name>` when Redis is there, else in memory.
pub(crate) fn limiter(
    config: &Config,
    redis: Option<&RedisConnection>,
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

/// The per-account limit on failed logins (`login_failure_limit` per 15 minutes).
pub(crate) fn failed_logins(config: &Config, redis: Option<&RedisConnection>) -> Option<Arc<dyn RateLimiter>> {
    let per_quarter_hour = |n| Quota { capacity: n, period: Duration::from_secs(15 * 60) };
    limiter(config, redis, "login-failures", config.login_failure_limit, per_quarter_hour)
}

/// Where `part` keeps its records: its own MongoDB database when
/// `MONGODB_URI` is set (services never share one), else its own SQLite
/// file under the data dir.
pub(crate) fn store_at(config: &Config, part: Part) -> StoreAt {
    match &config.mongodb_uri {
        Some(uri) => StoreAt::MongoDb {
            uri: uri.expose().to_owned(),
            database: format!("{}_{}", config.mongodb_database, part.name()),
        },
        None => StoreAt::Sqlite(config.data_dir.join(format!("{}.sqlite3", part.name()))),
    }
}

/// For a part keeping its records in MongoDB: a check that the server
/// answers, behind the part's gRPC health (so the gateway's `/readyz` names
/// the services that cannot reach their database). Through a client of its
/// own (the services' stores keep theirs private): one more connection per
/// process, used once a second.
pub(crate) async fn store_readiness(config: &Config, part: Part) -> anyhow::Result<Option<Readiness>> {
    if !part.backings().contains(&crate::parts::Backing::MongoDb) {
        return Ok(None);
    }
    let StoreAt::MongoDb { uri, database } = store_at(config, part) else { return Ok(None) };
    let db = chatterbox_store::mongo_database(&uri, &database).await?;
    let check: Readiness = Arc::new(move || {
        let db = db.clone();
        Box::pin(async move { chatterbox_store::mongo_ping(&db).await.map_err(|e| format!("MongoDB: {e}")) })
    });
    Ok(Some(check))
}

/// The message service's store for `config` (also used to import history).
pub async fn message_store(config: &Config) -> anyhow::Result<Arc<dyn chatterbox_message::MessageStore>> {
    Ok(chatterbox_message::build::open_store(&store_at(config, Part::Message)).await?)
}

pub(crate) fn grpc_timeout(config: &Config) -> Duration {
    Duration::from_millis(config.grpc_timeout_ms)
}

/// The parts' mutual TLS, when its files are set (read and checked now).
pub(crate) fn grpc_tls(config: &Config) -> anyhow::Result<Option<GrpcTls>> {
    match (&config.grpc_tls_cert_file, &config.grpc_tls_key_file, &config.grpc_tls_ca_file) {
        (Some(cert), Some(key), Some(ca)) => {
            Ok(Some(GrpcTls::load(cert, key, ca, config.grpc_tls_server_name.clone())?))
        }
        // The configuration's own check refuses a partial set.
        _ => Ok(None),
    }
}

pub(crate) fn auth_settings(config: &Config) -> AuthSettings {
    AuthSettings { refresh_ttl_secs: config.refresh_token_ttl_secs }
}

/// Media bytes: in the S3 bucket `S3_BUCKET`, else under the data dir.
pub(crate) fn blobs_at(config: &Config) -> BlobsAt {
    match &config.s3_bucket {
        Some(bucket) => BlobsAt::S3(chatterbox_media::S3Settings {
            bucket: bucket.clone(),
            endpoint: config.s3_endpoint.clone(),
            public_endpoint: config.s3_public_endpoint.clone(),
        }),
        None => BlobsAt::Disk(config.data_dir.join("media")),
    }
}

pub(crate) fn media_settings(config: &Config) -> MediaSettings {
    MediaSettings {
        max_bytes: config.media_max_bytes,
        url_ttl: Duration::from_secs(config.media_url_ttl_secs),
        spool_dir: config.data_dir.join("spool"),
        quota_bytes: config.media_quota_bytes,
        min_free_bytes: config.media_min_free_bytes,
        unattached_grace: Duration::from_secs(config.media_unattached_grace_secs),
    }
}

/// Who is connected: in Redis when `REDIS_URL` is set, else in this process.
pub(crate) fn presence_at(config: &Config, redis: Option<&RedisConnection>) -> PresenceAt {
    match redis.cloned() {
        Some(connection) => PresenceAt::Redis { connection, prefix: config.redis_key_prefix.clone() },
        None => PresenceAt::Memory,
    }
}

pub(crate) fn presence_settings(config: &Config) -> PresenceSettings {
    PresenceSettings {
        ttl: Duration::from_secs(config.presence_ttl_secs),
        idle: Duration::from_secs(config.presence_idle_secs),
        announce_gap: Duration::from_millis(config.presence_announce_gap_ms),
    }
}

/// Where Redis is, when `REDIS_URL` is set (`REDIS_MODE` says whether it
/// names one server or a cluster's seed nodes).
pub(crate) fn redis_target(config: &Config) -> anyhow::Result<Option<Target>> {
    let Some(url) = &config.redis_url else { return Ok(None) };
    Ok(Some(match config.redis_mode {
        RedisMode::Standalone => Target::standalone(url.expose())?,
        RedisMode::Cluster => Target::cluster(url.expose())?,
    }))
}

/// A fail-fast Redis connection when `REDIS_URL` is set: one per process,
/// multiplexed, shared by presence, the limits and the ended sessions (the
/// event bus keeps its own, for subscriptions).
pub(crate) async fn redis_connection(config: &Config) -> anyhow::Result<Option<RedisConnection>> {
    let Some(target) = redis_target(config)? else { return Ok(None) };
    Ok(Some(target.connect().await.with_context(|| format!("connecting to Redis ({target:?})"))?))
}

/// The event bus: Redis pub/sub when `REDIS_URL` is set, else in process
/// (which only reaches subscribers in the same process).
pub(crate) async fn event_bus(config: &Config) -> anyhow::Result<Arc<dyn EventBus>> {
    Ok(match redis_target(config)? {
        Some(target) => Arc::new(
            RedisBus::connect(target.clone(), config.redis_key_prefix.clone())
                .await
                .with_context(|| format!("connecting to Redis ({target:?})"))?,
        ),
        None => Arc::new(MemoryBus::new()),
    })
}
