//! Typed configuration, loaded once at start and passed down.
//!
//! Layers, later winning: compiled-in defaults, then the TOML file named by
//! `CHATTERBOX_CONFIG` (if any), then the environment. The variables listed
//! in `api.md` are the contract; every other field is `CHATTERBOX_<FIELD>`.
//! Other `CHATTERBOX_*` variables (Kubernetes injects `<SERVICE>_PORT` and
//! friends for every Service of a namespace, and `chatterbox-auth` becomes
//! `CHATTERBOX_AUTH_PORT`) are not read; [`Loaded::unknown_variables`]
//! names them so the binary can warn about a typo.

mod fields;
mod secret;

use std::net::SocketAddr;
use std::path::PathBuf;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

pub use secret::Secret;

/// Every setting of every part. One struct, so one table in the manual
/// (`docs/configuration.md`, checked against this struct by a test).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the gateway listens for HTTP and WebSocket traffic.
    pub http_addr: SocketAddr,
    /// Where embedded stores, the generated signing key and media live.
    pub data_dir: PathBuf,
    /// Use MongoDB for every store when set.
    pub mongodb_uri: Option<Secret>,
    /// Prefix of the MongoDB databases: each service keeps its own
    /// (`<prefix>_auth`, `<prefix>_user`, `<prefix>_conversation`, ...).
    pub mongodb_database: String,
    /// Use Redis for events, presence, rate limits and ended login sessions
    /// when set (shared by every process that has it).
    pub redis_url: Option<Secret>,
    /// `standalone` (one server at `redis_url`) or `cluster` (`redis_url` is
    /// a comma-separated list of seed nodes of a Redis Cluster).
    pub redis_mode: RedisMode,
    /// Prefix of every Redis key, so several deployments can share a server.
    pub redis_key_prefix: String,
    /// HTTP requests per minute per client IP; 0 turns the limit off.
    pub http_rate_limit: u32,
    /// WebSocket frames per second per user; 0 turns the limit off.
    pub ws_rate_limit: u32,
    /// Failed logins per account (by the email typed, whether or not an
    /// account has it) per 15 minutes, refilled evenly; past it logins for
    /// that email answer 429 whatever the password; 0 turns the limit off.
    pub login_failure_limit: u32,
    /// WebSockets one user may hold open on one gateway (every device and
    /// tab counts); past it a new one is refused; 0 turns the cap off.
    pub ws_max_per_user: u32,
    /// Messages (and edits or deletions) one WebSocket `resume` replays per
    /// conversation at most; a conversation further behind is named in
    /// `resumed.history` for the client to reload from history.
    pub ws_resume_reach: u64,
    /// Sends (REST and WebSocket) a gateway lets run at once; past it a
    /// send is refused at once with `unavailable` and a retry hint (load
    /// shedding); 0 turns the bound off.
    pub send_concurrency: usize,
    /// Web origins (`https://chat.example.com`) whose pages may open a
    /// WebSocket; the gateway's own origin always may, and clients that send
    /// no `Origin` (not browsers) are not affected.
    pub ws_allowed_origins: Vec<String>,
    /// Seconds between the gateway's WebSocket pings; a peer silent for two
    /// of them is dropped.
    pub ws_heartbeat_secs: u64,
    /// Seconds a WebSocket connection counts as live after the gateway last
    /// reported it (gateways report every `ws_heartbeat_secs`, which must be
    /// shorter); a gateway that dies takes its users offline after this.
    pub presence_ttl_secs: u64,
    /// Seconds without activity on any connection before a user is away.
    pub presence_idle_secs: u64,
    /// Least milliseconds between two announcements of one user's presence
    /// changes (per presence replica); changes within it go out once, in
    /// their final state.
    pub presence_announce_gap_ms: u64,
    /// Upload cap in bytes.
    pub media_max_bytes: u64,
    /// Bytes one user's kept uploads may add up to; 0 turns the quota off.
    pub media_quota_bytes: u64,
    /// Uploads are refused (503) while the disk they spool to has less free
    /// than this many bytes; 0 turns the floor off.
    pub media_min_free_bytes: u64,
    /// Seconds an upload may wait to be attached to a message (or made an
    /// avatar) before it is removed; files of deleted messages go too.
    pub media_unattached_grace_secs: u64,
    /// Keep media in this S3 bucket (credentials, region and endpoint from
    /// the standard `AWS_*` settings); on disk under the data dir when unset.
    pub s3_bucket: Option<String>,
    /// An S3 endpoint other than AWS's (MinIO); `AWS_ENDPOINT_URL` works too.
    pub s3_endpoint: Option<String>,
    /// Where clients reach that S3 server when not at `s3_endpoint`: signed
    /// download URLs are made for it.
    pub s3_public_endpoint: Option<String>,
    /// Seconds a signed media download URL stays valid (at most 300).
    pub media_url_ttl_secs: u64,
    /// Largest JSON request body the gateway accepts, in bytes.
    pub http_body_limit_bytes: usize,
    /// Peers whose `X-Forwarded-For` is believed (the load balancers).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Where a service alone (distributed mode) serves gRPC.
    pub grpc_addr: Option<SocketAddr>,
    /// Where a service alone serves Prometheus `/metrics` over HTTP; off when
    /// unset (the gateway always serves `/metrics` on its own port).
    pub metrics_addr: Option<SocketAddr>,
    /// How the gateway and services reach the auth service (distributed mode).
    pub auth_url: Option<String>,
    /// How the gateway and services reach the user service (distributed mode).
    pub user_url: Option<String>,
    /// How the gateway and services reach the conversation service (distributed mode).
    pub conversation_url: Option<String>,
    /// How the gateway reaches the message service (distributed mode).
    pub message_url: Option<String>,
    /// How the gateway reaches the presence service (distributed mode).
    pub presence_url: Option<String>,
    /// How the gateway, message and user services reach the media service (distributed mode).
    pub media_url: Option<String>,
    /// This part's certificate chain (PEM file), presented by its gRPC
    /// server and to the parts it calls. With the key and the CA it turns on
    /// mutual TLS between the parts; every service URL is then `https://`.
    pub grpc_tls_cert_file: Option<PathBuf>,
    /// The private key of that certificate (PEM file).
    pub grpc_tls_key_file: Option<PathBuf>,
    /// The CA bundle (PEM file) that signs the parts' certificates: a
    /// server accepts only callers it signed, a caller trusts only servers
    /// it signed.
    pub grpc_tls_ca_file: Option<PathBuf>,
    /// The DNS name the parts' certificates carry, checked instead of the
    /// host of each service URL (when the parts share one certificate).
    pub grpc_tls_server_name: Option<String>,
    /// The auth service's Ed25519 private key (PKCS#8 PEM file); embedded
    /// mode generates one under the data dir when unset.
    pub jwt_private_key_file: Option<PathBuf>,
    /// The matching public key, for every other service and the gateway.
    pub jwt_public_key_file: Option<PathBuf>,
    /// The `iss` claim of access tokens.
    pub jwt_issuer: String,
    /// The `aud` claim of access tokens.
    pub jwt_audience: String,
    /// Access-token lifetime in seconds.
    pub access_token_ttl_secs: u64,
    /// Absolute lifetime of a login session (refresh-token family) in seconds.
    pub refresh_token_ttl_secs: u64,
    /// Deadline for every outgoing gRPC call, in milliseconds.
    pub grpc_timeout_ms: u64,
    /// How long in-flight requests may finish after a shutdown signal.
    pub shutdown_drain_secs: u64,
    /// OTLP collector endpoint; tracing export is off when unset.
    pub otel_exporter_otlp_endpoint: Option<String>,
    /// `tracing` filter directives, e.g. `info,chatterbox_auth=debug`.
    pub log: String,
    /// Log as JSON lines rather than human-readable text.
    pub log_json: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            http_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            mongodb_uri: None,
            mongodb_database: "chatterbox".into(),
            redis_url: None,
            redis_mode: RedisMode::Standalone,
            redis_key_prefix: "chatterbox".into(),
            http_rate_limit: 100,
            ws_rate_limit: 10,
            ws_max_per_user: 20,
            login_failure_limit: 10,
            ws_resume_reach: 1_000,
            send_concurrency: 256,
            ws_allowed_origins: Vec::new(),
            ws_heartbeat_secs: 30,
            presence_ttl_secs: 90,
            presence_idle_secs: 300,
            presence_announce_gap_ms: 1_000,
            media_max_bytes: 10 * 1024 * 1024,
            media_quota_bytes: 1024 * 1024 * 1024,
            media_min_free_bytes: 1024 * 1024 * 1024,
            media_unattached_grace_secs: 24 * 60 * 60,
            s3_bucket: None,
            s3_endpoint: None,
            s3_public_endpoint: None,
            media_url_ttl_secs: 300,
            http_body_limit_bytes: 64 * 1024,
            trusted_proxies: Vec::new(),
            grpc_addr: None,
            metrics_addr: None,
            auth_url: None,
            user_url: None,
            conversation_url: None,
            message_url: None,
            presence_url: None,
            media_url: None,
            grpc_tls_cert_file: None,
            grpc_tls_key_file: None,
            grpc_tls_ca_file: None,
            grpc_tls_server_name: None,
            jwt_private_key_file: None,
            jwt_public_key_file: None,
            jwt_issuer: "chatterbox".into(),
            jwt_audience: "chatterbox-api".into(),
            access_token_ttl_secs: 15 * 60,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            grpc_timeout_ms: 5_000,
            shutdown_drain_secs: 10,
            otel_exporter_otlp_endpoint: None,
            log: "info".into(),
            log_json: false,
        }
    }
}

/// What `redis_url` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RedisMode {
    /// One server (or a primary with replicas behind one address).
    Standalone,
    /// A Redis Cluster, reached through any of the listed seed nodes.
    Cluster,
}

/// A configuration that could not be read; the message names the setting.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

/// Variables named by the contract without our prefix.
pub const UNPREFIXED: [&str; 5] =
    ["MONGODB_URI", "REDIS_URL", "REDIS_MODE", "S3_BUCKET", "OTEL_EXPORTER_OTLP_ENDPOINT"];

/// The prefix of every other variable.
const PREFIX: &str = "CHATTERBOX_";

/// Variables with our prefix that name the file, not a field.
const NOT_FIELDS: [&str; 1] = ["CONFIG"];

/// A configuration, and what in the environment it left unread.
#[derive(Debug)]
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    /// `CHATTERBOX_*` variables that name no setting, sorted (a typo, or
    /// something the platform injected); ignored, worth a warning.
    pub unknown_variables: Vec<String>,
}

impl Config {
    /// Defaults, then the file in `CHATTERBOX_CONFIG`, then the environment.
    pub fn load() -> Result<Loaded, ConfigError> {
        let config = Self::from_figment(Self::figment(std::env::var_os("CHATTERBOX_CONFIG").map(PathBuf::from)))?;
        Ok(Loaded { config, unknown_variables: Self::unknown_variables(std::env::vars_os().map(|(k, _)| k)) })
    }

    /// Whether `key` (without the prefix, any case; `a__b` names field `a`)
    /// is a setting.
    fn is_field(key: &str) -> bool {
        let field = key.split("__").next().unwrap_or_default();
        fields::field_names::<Config>().iter().any(|f| f.eq_ignore_ascii_case(field))
    }

    /// The prefixed variables among `names` that name no setting.
    pub fn unknown_variables(names: impl IntoIterator<Item = std::ffi::OsString>) -> Vec<String> {
        let mut unknown: Vec<String> = names
            .into_iter()
            .filter_map(|name| name.into_string().ok())
            .filter(|name| {
                // The prefix matches in any case, as the environment source reads it.
                let key =
                    name.get(..PREFIX.len()).filter(|p| p.eq_ignore_ascii_case(PREFIX)).map(|_| &name[PREFIX.len()..]);
                key.is_some_and(|key| !NOT_FIELDS.iter().any(|n| n.eq_ignore_ascii_case(key)) && !Self::is_field(key))
            })
            .collect();
        unknown.sort();
        unknown
    }

    /// The layered sources, exposed so tests can add their own on top.
    pub fn figment(file: Option<PathBuf>) -> Figment {
        let mut f = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            f = f.merge(Toml::file_exact(path));
        }
        f.merge(
            Env::prefixed(PREFIX)
                .filter(|key| Self::is_field(key.as_str()))
                .split("__")
                .map(|k| k.as_str().to_ascii_lowercase().into()),
        )
        .merge(Env::raw().only(&UNPREFIXED).map(|k| k.as_str().to_ascii_lowercase().into()))
    }

    /// Extracts and checks a configuration.
    pub fn from_figment(f: Figment) -> Result<Self, ConfigError> {
        let config: Config = f.extract().map_err(|e| ConfigError(e.to_string()))?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), ConfigError> {
        if self.access_token_ttl_secs == 0 || self.refresh_token_ttl_secs == 0 {
            return Err(ConfigError("token lifetimes must be positive".into()));
        }
        if self.ws_heartbeat_secs == 0 || self.presence_ttl_secs <= self.ws_heartbeat_secs {
            return Err(ConfigError(
                "presence_ttl_secs must be longer than ws_heartbeat_secs, which must be positive".into(),
            ));
        }
        if self.media_url_ttl_secs == 0 || self.media_url_ttl_secs > 300 {
            return Err(ConfigError("media_url_ttl_secs must be 1 to 300".into()));
        }
        if self.media_unattached_grace_secs == 0 {
            return Err(ConfigError("media_unattached_grace_secs must be positive".into()));
        }
        if self.media_max_bytes == 0 {
            return Err(ConfigError("media_max_bytes must be positive".into()));
        }
        if self.grpc_timeout_ms == 0 {
            return Err(ConfigError("grpc_timeout_ms must be positive".into()));
        }
        if self.redis_mode == RedisMode::Cluster && self.redis_url.is_none() {
            return Err(ConfigError("REDIS_MODE=cluster needs REDIS_URL (the cluster's seed nodes)".into()));
        }
        self.check_grpc_tls()
    }

    /// Whether mutual TLS between the parts is on (its three files set).
    pub fn grpc_tls(&self) -> bool {
        self.grpc_tls_cert_file.is_some()
    }

    fn check_grpc_tls(&self) -> Result<(), ConfigError> {
        let files = [&self.grpc_tls_cert_file, &self.grpc_tls_key_file, &self.grpc_tls_ca_file];
        if files.iter().any(|f| f.is_some()) && !files.iter().all(|f| f.is_some()) {
            return Err(ConfigError(
                "grpc_tls_cert_file, grpc_tls_key_file and grpc_tls_ca_file go together: set all three or none".into(),
            ));
        }
        if self.grpc_tls_server_name.is_some() && !self.grpc_tls() {
            return Err(ConfigError("grpc_tls_server_name needs the gRPC TLS files".into()));
        }
        let (scheme, wrong) = if self.grpc_tls() { ("https://", "http://") } else { ("http://", "https://") };
        let urls = [
            ("auth_url", &self.auth_url),
            ("user_url", &self.user_url),
            ("conversation_url", &self.conversation_url),
            ("message_url", &self.message_url),
            ("presence_url", &self.presence_url),
            ("media_url", &self.media_url),
        ];
        for (name, url) in urls {
            if url.as_deref().is_some_and(|u| u.starts_with(wrong)) {
                let why = if self.grpc_tls() { "gRPC TLS is on" } else { "gRPC TLS is off (no grpc_tls_* files)" };
                return Err(ConfigError(format!("{name} must start with {scheme}: {why}")));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closures return figment's error
mod tests {
    use super::*;

    /// The variable that sets `field`.
    fn variable(field: &str) -> String {
        let upper = field.to_ascii_uppercase();
        if UNPREFIXED.contains(&upper.as_str()) { upper } else { format!("{PREFIX}{upper}") }
    }

    /// The manual's table of settings (`docs/configuration.md`) names every
    /// variable the configuration reads, and nothing else of ours.
    #[test]
    fn the_manual_documents_every_setting_and_no_other() {
        let manual = include_str!("../../../docs/configuration.md");
        let documented: std::collections::BTreeSet<String> = manual
            .lines()
            .filter(|line| line.starts_with("| `"))
            .filter_map(|line| line.split('|').nth(1))
            .flat_map(|cell| cell.split('`').skip(1).step_by(2).map(str::to_owned).collect::<Vec<_>>())
            .collect();
        let read: std::collections::BTreeSet<String> =
            fields::field_names::<Config>().iter().map(|f| variable(f)).collect();
        let missing: Vec<&String> = read.difference(&documented).collect();
        assert!(missing.is_empty(), "settings missing from docs/configuration.md: {missing:?}");
        let ours = |v: &&String| v.starts_with(PREFIX) || UNPREFIXED.contains(&v.as_str());
        let unknown: Vec<&String> = documented
            .iter()
            .filter(ours)
            .filter(|v| !read.contains(*v) && v.as_str() != format!("{PREFIX}{}", NOT_FIELDS[0]))
            .collect();
        assert!(unknown.is_empty(), "docs/configuration.md names variables nothing reads: {unknown:?}");
    }

    #[test]
    fn defaults_match_the_contract() {
        let c = Config::default();
        assert_eq!(c.http_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(c.http_rate_limit, 100);
        assert_eq!(c.ws_rate_limit, 10);
        assert_eq!(c.media_max_bytes, 10_485_760);
        assert!(c.mongodb_uri.is_none() && c.redis_url.is_none());
    }

    #[test]
    fn the_environment_overrides_the_file() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("c.toml", "http_rate_limit = 7\nlog = \"debug\"")?;
            jail.set_env("CHATTERBOX_HTTP_RATE_LIMIT", "0");
            jail.set_env("REDIS_URL", "redis://127.0.0.1:1/");
            let c = Config::from_figment(Config::figment(Some("c.toml".into()))).unwrap();
            assert_eq!(c.http_rate_limit, 0);
            assert_eq!(c.log, "debug");
            assert_eq!(c.redis_url.unwrap().expose(), "redis://127.0.0.1:1/");
            Ok(())
        });
    }

    #[test]
    fn redis_mode_is_read_unprefixed_and_needs_a_url() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("REDIS_MODE", "cluster");
            let e = Config::from_figment(Config::figment(None)).unwrap_err().to_string();
            assert!(e.contains("REDIS_URL"), "{e}");
            jail.set_env("REDIS_URL", "redis://127.0.0.1:7000,redis://127.0.0.1:7001");
            assert_eq!(Config::from_figment(Config::figment(None)).unwrap().redis_mode, RedisMode::Cluster);
            jail.set_env("REDIS_MODE", "sentinel");
            let e = Config::from_figment(Config::figment(None)).unwrap_err().to_string();
            assert!(e.contains("REDIS_MODE"), "{e}");
            Ok(())
        });
    }

    /// The unknown variables the test process itself was started with
    /// (read in a jail before it sets any), so a stray `CHATTERBOX_*` in the
    /// shell does not fail a test.
    fn strays() -> Vec<String> {
        Config::unknown_variables(std::env::vars_os().map(|(k, _)| k))
    }

    fn without(strays: &[String], mut loaded: Loaded) -> Loaded {
        loaded.unknown_variables.retain(|name| !strays.contains(name));
        loaded
    }

    #[test]
    fn variables_kubernetes_injects_for_services_are_ignored_and_named() {
        figment::Jail::expect_with(|jail| {
            let strays = strays();
            let injected = [
                ("CHATTERBOX_AUTH_PORT", "tcp://10.0.0.1:50051"),
                ("CHATTERBOX_AUTH_PORT_50051_TCP", "tcp://10.0.0.1:50051"),
                ("CHATTERBOX_AUTH_PORT_50051_TCP_PROTO", "tcp"),
                ("CHATTERBOX_AUTH_PORT_50051_TCP_PORT", "50051"),
                ("CHATTERBOX_AUTH_PORT_50051_TCP_ADDR", "10.0.0.1"),
                ("CHATTERBOX_AUTH_SERVICE_HOST", "10.0.0.1"),
                ("CHATTERBOX_AUTH_SERVICE_PORT", "50051"),
                ("CHATTERBOX_AUTH_SERVICE_PORT_GRPC", "50051"),
                ("CHATTERBOX_GATEWAY_PORT", "tcp://10.0.0.2:80"),
            ];
            for (name, value) in injected {
                jail.set_env(name, value);
            }
            jail.set_env("CHATTERBOX_AUTH_URL", "http://chatterbox-auth:50051");
            jail.set_env("CHATTERBOX_HTTP_RATE_LIMIT", "5");
            let loaded = without(&strays, Config::load().unwrap());
            assert_eq!(loaded.config.auth_url.as_deref(), Some("http://chatterbox-auth:50051"));
            assert_eq!(loaded.config.http_rate_limit, 5);
            let mut expected: Vec<String> = injected.iter().map(|(n, _)| (*n).to_owned()).collect();
            expected.sort();
            assert_eq!(loaded.unknown_variables, expected);
            Ok(())
        });
    }

    #[test]
    fn a_typo_is_named_but_does_not_stop_the_start() {
        figment::Jail::expect_with(|jail| {
            let strays = strays();
            jail.set_env("CHATTERBOX_HTTP_RATE_LIMT", "5");
            jail.set_env("chatterbox_lower_case_typo", "5");
            let loaded = without(&strays, Config::load().unwrap());
            assert_eq!(loaded.unknown_variables, ["CHATTERBOX_HTTP_RATE_LIMT", "chatterbox_lower_case_typo"]);
            assert_eq!(loaded.config.http_rate_limit, 100);
            Ok(())
        });
    }

    #[test]
    fn every_field_can_be_set_from_the_environment() {
        let names = fields::field_names::<Config>();
        assert_eq!(names.len(), serde_json::to_value(Config::default()).unwrap().as_object().unwrap().len());
        let all = names.iter().map(|f| format!("CHATTERBOX_{}", f.to_uppercase()).into());
        assert!(Config::unknown_variables(all).is_empty());
        assert!(Config::unknown_variables(["CHATTERBOX_CONFIG".into(), "PATH".into()]).is_empty());
    }

    #[test]
    fn a_mistyped_value_is_refused_with_its_name() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("CHATTERBOX_HTTP_RATE_LIMIT", "lots");
            let e = Config::from_figment(Config::figment(None)).unwrap_err();
            assert!(e.to_string().to_lowercase().contains("http_rate_limit"), "{e}");
            Ok(())
        });
    }

    #[test]
    fn grpc_tls_needs_all_three_files_and_https_urls_only_with_it() {
        let tls = |c: &mut Config| {
            c.grpc_tls_cert_file = Some("tls.crt".into());
            c.grpc_tls_key_file = Some("tls.key".into());
            c.grpc_tls_ca_file = Some("ca.crt".into());
        };
        let mut c = Config::default();
        tls(&mut c);
        c.user_url = Some("https://user:50052".into());
        c.grpc_tls_server_name = Some("chatterbox-internal".into());
        c.check().unwrap();
        c.media_url = Some("http://media:50056".into());
        let e = c.check().unwrap_err().to_string();
        assert!(e.contains("media_url must start with https://"), "{e}");

        let mut c = Config::default();
        tls(&mut c);
        c.grpc_tls_key_file = None;
        assert!(c.check().unwrap_err().to_string().contains("set all three or none"));

        let mut c = Config { auth_url: Some("https://auth:50051".into()), ..Config::default() };
        let e = c.check().unwrap_err().to_string();
        assert!(e.contains("auth_url must start with http://"), "{e}");
        c.auth_url = None;
        c.grpc_tls_server_name = Some("x".into());
        assert!(c.check().unwrap_err().to_string().contains("needs the gRPC TLS files"));
    }
}
